package engine

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// errLocked means another process holds a conflicting lock.
var errLocked = errors.New("locked by another process")

// lockFile takes an exclusive lock over the whole of f, without waiting.
// It is an open file description lock (F_OFD_SETLK): held until f is
// closed, whatever else the process opens or closes, and in conflict with
// the locks QEMU takes on the images of a running VM.
func lockFile(f *os.File) error {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
	err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk)
	if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
		return errLocked
	}
	return err
}

// backupLockByte is the byte a backup locks: any byte conflicts with a
// restore's whole-file lock, and this one with no hypervisor's. QEMU locks
// bytes 100 to 299 of its images, and libvirt's virtlockd byte 0.
const backupLockByte = 1 << 30

// lockShared takes a shared lock on one byte of f, without waiting, for a
// backup that reads f: it conflicts with the whole-file lock of a restore
// that writes f (lockFile), and with nothing QEMU or virtlockd takes, so a
// disk is never read while it is restored, backups may read it together,
// and a guest may start while its disk is read.
func lockShared(f *os.File) error {
	lk := unix.Flock_t{Type: unix.F_RDLCK, Whence: io.SeekStart, Start: backupLockByte, Len: 1}
	err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk)
	if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
		return errLocked
	}
	return err
}

// openExclusive opens a block device with O_EXCL, which the kernel refuses
// (EBUSY) while the device is mounted, part of a RAID or device-mapper
// device, a swap area, or opened exclusively by another process; and locks
// it as a file, so that a backup does not read it meanwhile (lockShared).
func openExclusive(path string, flags int) (*os.File, error) {
	f, err := os.OpenFile(path, flags|unix.O_EXCL|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := lockFile(f); err != nil {
		f.Close()
		if errors.Is(err, errLocked) {
			return nil, &os.PathError{Op: "open", Path: path, Err: unix.EBUSY}
		}
		return nil, err
	}
	return f, nil
}

// mountPoint returns where the block device at path, or a partition of
// it, is mounted, or "" when /proc/self/mountinfo lists no such mount.
func mountPoint(path string) (string, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return "", err
	}
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	want := fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	return findMount(string(data), want, partitionParent), nil
}

// findMount returns the mount point of the first mount in mountinfo whose
// device is want, or a partition of want by parent.
func findMount(mountinfo, want string, parent func(majMin string) string) string {
	for _, line := range strings.Split(mountinfo, "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		if f[2] == want || parent(f[2]) == want {
			return unescapeMount(f[4])
		}
	}
	return ""
}

// partitionParent returns the major:minor of the disk that the block
// device majMin is a partition of, or "".
func partitionParent(majMin string) string {
	sys := "/sys/dev/block/" + majMin
	if _, err := os.Stat(filepath.Join(sys, "partition")); err != nil {
		return ""
	}
	real, err := filepath.EvalSymlinks(sys)
	if err != nil {
		return ""
	}
	dev, err := os.ReadFile(filepath.Join(filepath.Dir(real), "dev"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(dev))
}

// unescapeMount undoes the octal escapes (\040 for a space) of a path in
// mountinfo.
func unescapeMount(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// createUnnamed returns a new file in dir that has no name (O_TMPFILE), so
// that a restore killed while writing it leaves nothing; nil where the
// filesystem has no such files or /proc, needed to name it, is missing.
// The file is named path in error messages.
func createUnnamed(dir, path string) *os.File {
	fd, err := unix.Open(dir, unix.O_RDWR|unix.O_TMPFILE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil
	}
	f := os.NewFile(uintptr(fd), path)
	if _, err := os.Stat(procPath(f)); err != nil {
		f.Close()
		return nil
	}
	return f
}

func procPath(f *os.File) string { return "/proc/self/fd/" + strconv.Itoa(int(f.Fd())) }

// linkUnnamed gives the unnamed file f the name path; it fails with
// fs.ErrExist when path exists.
func linkUnnamed(f *os.File, path string) error {
	err := unix.Linkat(unix.AT_FDCWD, procPath(f), unix.AT_FDCWD, path, unix.AT_SYMLINK_FOLLOW)
	if err != nil {
		return &os.LinkError{Op: "link", Old: f.Name(), New: path, Err: err}
	}
	return nil
}

// renameNoReplace renames old to new unless new exists (fs.ErrExist).
func renameNoReplace(old, new string) error {
	err := unix.Renameat2(unix.AT_FDCWD, old, unix.AT_FDCWD, new, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP) {
		return linkThenRemove(old, new) // a filesystem without RENAME_NOREPLACE
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: old, New: new, Err: err}
	}
	return nil
}

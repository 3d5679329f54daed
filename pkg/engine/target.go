package engine

// Where a restore writes. Every target is checked, and opened where it is
// written in place, before the first byte of any disk is written: a target
// a restore may not or cannot write is refused with nothing changed. What
// is opened stays held for the whole restore: a regular file under an
// exclusive lock, a block device opened exclusively.

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/dropback/dropback/internal/directio"
)

var (
	// ErrTargetExists means that a restore to a new file found something
	// at its path that it was not allowed to replace: a file, a symbolic
	// link or a block device. RestoreTarget.Overwrite allows it.
	ErrTargetExists = errors.New("restore target exists")
	// ErrInUse means that a restore target is locked by another process
	// (another restore, a backup reading it, a running VM), mounted, or
	// opened exclusively; or that a disk to back up is locked by a
	// restore writing it.
	ErrInUse = errors.New("disk in use")
)

// openTarget is a checked restore target. f is the file or device written
// in place, open and held; nil when the restore makes a new file.
type openTarget struct {
	RestoreTarget
	f     *os.File
	df    *directio.File // f with its direct descriptor, once writing starts
	isDev bool
}

func (t *openTarget) close() {
	switch {
	case t == nil:
	case t.df != nil:
		t.df.Close()
	case t.f != nil:
		t.f.Close()
	}
}

// direct returns the target's file for writing, with a direct descriptor.
func (t *openTarget) direct() *directio.File {
	if t.df == nil {
		t.df = directio.Wrap(t.f)
	}
	return t.df
}

// CheckTarget reports whether a disk of size bytes could be restored to t
// now, without changing anything: the error Restore would return when it
// opens t. Restore checks again when it opens its targets.
//
// Not in place, a missing path is a new file; a regular file or a symbolic
// link there needs t.Overwrite (ErrTargetExists), and a link is replaced,
// never followed; a block device needs t.Overwrite and is written in place,
// but never through a symbolic link. In place, the path may be a link (a
// host's disk may be /dev/vg0/root). A block device must hold at least size
// bytes (ErrInvalid), must not be mounted and must not be open exclusively
// elsewhere (ErrInUse); a regular file written in place must not be locked
// by another process (ErrInUse), and takes the disk's size.
func CheckTarget(t RestoreTarget, size int64) error {
	ot, err := openTargetFor(t, size)
	ot.close()
	return err
}

// openTargets checks and opens every target, or none.
func openTargets(targets []RestoreTarget, images []*Image) ([]*openTarget, error) {
	out := make([]*openTarget, len(targets))
	for i, t := range targets {
		ot, err := openTargetFor(t, images[i].Size)
		if err != nil {
			closeTargets(out)
			return nil, err
		}
		out[i] = ot
	}
	return out, nil
}

func closeTargets(ts []*openTarget) {
	for _, t := range ts {
		t.close()
	}
}

func openTargetFor(t RestoreTarget, size int64) (*openTarget, error) {
	if t.InPlace {
		return openInPlace(t, size)
	}
	p := shortPath(t.Path)
	fi, err := os.Lstat(t.Path)
	if errors.Is(err, fs.ErrNotExist) {
		if di, err := os.Stat(filepath.Dir(t.Path)); err != nil || !di.IsDir() {
			return nil, errorf(ErrInvalid, "%s: the directory does not exist", p)
		}
		return &openTarget{RestoreTarget: t}, nil
	}
	if err != nil {
		return nil, errorf(ErrInvalid, "%s: %v", p, unwrapPathError(err))
	}
	switch m := fi.Mode(); {
	case m&fs.ModeSymlink != 0:
		if dest, err := os.Stat(t.Path); err == nil && isBlockDevice(dest.Mode()) {
			return nil, errorf(ErrInvalid, "%s is a symbolic link to a block device, which a restore never writes through a link; name the device itself", p)
		}
		if !t.Overwrite {
			return nil, errorf(ErrTargetExists, "%s is a symbolic link, which a restore replaces and never follows", p)
		}
	case m.IsRegular():
		if !t.Overwrite {
			return nil, errorf(ErrTargetExists, "%s exists", p)
		}
	case isBlockDevice(m):
		if !t.Overwrite {
			return nil, errorf(ErrTargetExists, "%s is a block device", p)
		}
		return openDevice(t, size, syscall.O_NOFOLLOW)
	case m.IsDir():
		return nil, errorf(ErrInvalid, "%s is a directory", p)
	default:
		return nil, errorf(ErrInvalid, "%s is not a regular file or block device", p)
	}
	return &openTarget{RestoreTarget: t}, nil
}

// openInPlace opens and holds the disk an in-place restore writes.
func openInPlace(t RestoreTarget, size int64) (*openTarget, error) {
	p := shortPath(t.Path)
	fi, err := os.Stat(t.Path)
	if err != nil {
		return nil, errorf(ErrInvalid, "disk %s: %v", p, unwrapPathError(err))
	}
	if isBlockDevice(fi.Mode()) {
		return openDevice(t, size, 0)
	}
	if !fi.Mode().IsRegular() {
		return nil, errorf(ErrInvalid, "disk %s is not a regular file or block device", p)
	}
	f, err := os.OpenFile(t.Path, os.O_RDWR|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, errorf(ErrInvalid, "disk %s: %v", p, unwrapPathError(err))
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, errorf(ErrInvalid, "disk %s changed while it was opened; try again", p)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		return nil, inUse(p, err)
	}
	return &openTarget{RestoreTarget: t, f: f}, nil
}

// inUse turns a failed lock into ErrInUse, and any other error into one
// that says what was tried.
func inUse(p string, err error) error {
	if errors.Is(err, errLocked) {
		return errorf(ErrInUse, "%s is in use by another process, e.g. a running VM, another restore or a backup reading it (it holds a lock on the file)", p)
	}
	return fmt.Errorf("lock %s: %w", p, err)
}

// openDevice opens a block device exclusively, after checking that it is
// not mounted, and checks that it can hold size bytes.
func openDevice(t RestoreTarget, size int64, flags int) (*openTarget, error) {
	p := shortPath(t.Path)
	if mnt, err := mountPoint(t.Path); err != nil {
		return nil, fmt.Errorf("check whether %s is mounted: %w", p, err)
	} else if mnt != "" {
		return nil, errorf(ErrInUse, "device %s is mounted on %s; unmount it first", p, shortPath(mnt))
	}
	f, err := openExclusive(t.Path, os.O_RDWR|flags)
	switch {
	case errors.Is(err, syscall.EBUSY):
		return nil, errorf(ErrInUse, "device %s is mounted or in use by another process (e.g. another restore or a backup reading it)", p)
	case errors.Is(err, syscall.ELOOP):
		return nil, errorf(ErrInvalid, "%s became a symbolic link; name the device itself", p)
	case err != nil:
		return nil, errorf(ErrInvalid, "device %s: %v", p, unwrapPathError(err))
	}
	if fi, err := f.Stat(); err != nil || !isBlockDevice(fi.Mode()) {
		f.Close()
		return nil, errorf(ErrInvalid, "device %s changed while it was opened; try again", p)
	}
	have, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("size of device %s: %w", p, err)
	}
	if have < size {
		f.Close()
		return nil, errorf(ErrInvalid, "device %s is too small: %d bytes, the disk is %d; nothing was written", p, have, size)
	}
	return &openTarget{RestoreTarget: t, f: f, isDev: true}, nil
}

func isBlockDevice(m fs.FileMode) bool {
	return m&fs.ModeDevice != 0 && m&fs.ModeCharDevice == 0
}

// tempPrefix starts the names of the temporary files of restores to base.
func tempPrefix(base string) string { return "." + base + ".dropback-" }

// removeStaleTemps removes the temporary files that restores to dir/base
// left when they were killed: those whose creator, where the name tells
// it (<prefix><pid>-<random>), is not running here, and on which no process
// holds a lock. What it cannot tell, it keeps.
func removeStaleTemps(dir, base string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	prefix := tempPrefix(base)
	for _, en := range entries {
		name := en.Name()
		if !strings.HasPrefix(name, prefix) || !en.Type().IsRegular() {
			continue
		}
		if pid, ok := tempPID(name[len(prefix):]); ok && processRunning(pid) {
			continue
		}
		removeIfUnlocked(filepath.Join(dir, name))
	}
}

// tempPID reads the PID from the rest of a temporary file's name.
func tempPID(rest string) (int, bool) {
	s, _, found := strings.Cut(rest, "-")
	pid, err := strconv.Atoi(s)
	return pid, found && err == nil && pid > 0
}

// removeIfUnlocked removes the regular file p unless another process holds
// a lock on it.
func removeIfUnlocked(p string) {
	f, err := os.OpenFile(p, os.O_WRONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || lockFile(f) != nil {
		return
	}
	if now, err := os.Lstat(p); err == nil && os.SameFile(fi, now) {
		_ = os.Remove(p)
	}
}

package integration

// Restore targets and disk identity, on real loop devices, real ext4
// filesystems and a real qemu-nbd: a restore refuses, before it writes a
// byte, a target that cannot hold the image, that is mounted or in use, or
// that it would reach through a symbolic link; --to creates new files and
// needs --force for anything that exists; and two in-place restores of one
// disk never run at once. Each refusal is one line on stderr, a non-zero exit, and the target
// byte-identical to what it was.

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// devSize is the size of a file or block device as a backup reads it.
func devSize(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	n, err := f.Seek(0, io.SeekEnd)
	require.NoError(t, err)
	return n
}

// fillDevice writes pseudo-random bytes over the whole of a block device,
// through the device, so that the kernel's cache of it is never stale.
func fillDevice(t *testing.T, dev string, seed uint64) {
	t.Helper()
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	require.NoError(t, err)
	defer f.Close()
	buf := make([]byte, devSize(t, dev))
	rng := rand.New(rand.NewPCG(seed, 5))
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	_, err = f.WriteAt(buf, 0)
	require.NoError(t, err)
	require.NoError(t, f.Sync())
}

// losetup runs losetup with args.
func losetup(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("losetup", args...).CombinedOutput()
	require.NoError(t, err, "losetup %v: %s", args, out)
}

// makeExt4 makes an ext4 filesystem of size bytes in file (or on a block
// device) with mkfs.ext4 -d, holding a file whose content depends on seed.
func makeExt4(t *testing.T, file string, size int64, seed uint64) {
	t.Helper()
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		t.Fatal("mkfs.ext4 is missing: scripts/deps.sh installs e2fsprogs")
	}
	files := filepath.Join(t.TempDir(), "files")
	require.NoError(t, os.MkdirAll(filepath.Join(files, "etc"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(files, "etc", "hostname"), []byte(fmt.Sprintf("vm-%d\n", seed)), 0o644))
	data := make([]byte, 2*mib)
	rng := rand.New(rand.NewPCG(seed, 3))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	require.NoError(t, os.WriteFile(filepath.Join(files, "data.bin"), data, 0o644))
	if fi, err := os.Stat(file); err != nil || fi.Mode().IsRegular() {
		require.NoError(t, os.WriteFile(file, nil, 0o644))
		require.NoError(t, os.Truncate(file, size))
	}
	out, err := exec.Command("mkfs.ext4", "-q", "-F", "-d", files, file).CombinedOutput()
	require.NoError(t, err, "mkfs.ext4: %s", out)
}

// mountReadOnly mounts the ext4 filesystem on dev read-only, so that nothing
// writes to it while it is mounted, and returns the function that unmounts
// it (also called when the test ends). Like the full-disk test, it skips
// only when not run as root.
func mountReadOnly(t *testing.T, dev string) func() {
	t.Helper()
	mnt := filepath.Join(t.TempDir(), "mnt")
	require.NoError(t, os.Mkdir(mnt, 0o700))
	out, err := exec.Command("mount", "-o", "ro", "-t", "ext4", dev, mnt).CombinedOutput()
	if err != nil {
		msg := fmt.Sprintf("mount %s (it needs root or CAP_SYS_ADMIN): %v: %s", dev, err, strings.TrimSpace(string(out)))
		if os.Geteuid() != 0 {
			t.Skip("skipping: " + msg)
		}
		t.Fatal(msg)
	}
	mounted := true
	unmount := func() {
		if mounted {
			mounted = false
			if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
				t.Errorf("umount %s: %v: %s", mnt, err, out)
			}
		}
	}
	t.Cleanup(unmount)
	return unmount
}

// lockProbe tells whether another open file holds a lock on a file that
// conflicts with a write lock over all of it, as QEMU's and a restore's do.
type lockProbe struct{ f *os.File }

func newLockProbe(t *testing.T, path string) *lockProbe {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return &lockProbe{f: f}
}

func (p *lockProbe) locked(t *testing.T) bool {
	t.Helper()
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
	require.NoError(t, unix.FcntlFlock(p.f.Fd(), unix.F_OFD_GETLK, &lk))
	return lk.Type != unix.F_UNLCK
}

// assertUnchanged checks that a refused command left path as it was.
func assertUnchanged(t *testing.T, path, before, what string) {
	t.Helper()
	assert.Equal(t, before, sha(t, path), "%s changed %s", what, path)
}

// Finding 9: an in-place restore, or a restore --to a device, onto a device
// smaller than the backed-up disk is refused before a byte is written. A
// regular file restored in place is resized to the disk's size.
func TestTargetSmallerDeviceIsRefused(t *testing.T) {
	e := newLocal(t)
	file := filepath.Join(e.dir, "backing.img")
	makeDisk(t, file, 32*mib, 1, part{0, 32 * mib, "random"})
	dev := loopDevice(t, file)
	e.ok("hosts", "add", "vm-1", "--disk", dev)
	b := e.create("vm-1")

	// Other bytes on the device, so that a restore has all of it to
	// write; then the device shrinks to 16 MiB.
	fillDevice(t, dev, 2)
	require.NoError(t, os.Truncate(file, 16*mib))
	losetup(t, "-c", dev)
	require.Equal(t, int64(16*mib), devSize(t, dev))
	before := sha(t, dev)
	r := e.run("backups", "restore", "vm-1", fmt.Sprint(b.ID), "--force")
	oneCleanLine(t, r, "too small")
	assertUnchanged(t, dev, before, "a refused in-place restore")

	small := filepath.Join(e.dir, "small.img")
	makeDisk(t, small, 8*mib, 3, part{0, 8 * mib, "text"})
	dev2 := loopDevice(t, small)
	before2 := sha(t, dev2)
	r = e.run("backups", "restore", "vm-1", fmt.Sprint(b.ID), "--to", dev2, "--force")
	oneCleanLine(t, r, "too small")
	assertUnchanged(t, dev2, before2, "a refused restore --to a device")

	// A regular file is no device: in place, it takes the disk's size.
	disk := filepath.Join(e.dir, "web-1.img")
	makeDisk(t, disk, 24*mib, 4, part{0, 24 * mib, "random"})
	e.ok("hosts", "add", "web-1", "--disk", disk)
	wb := e.create("web-1")
	want := sha(t, disk)
	require.NoError(t, os.Truncate(disk, 4*mib))
	e.ok("backups", "restore", "web-1", fmt.Sprint(wb.ID), "--force")
	assert.Equal(t, want, sha(t, disk), "a shrunk file restored in place")
}

// Finding 12: restore --to an existing block device needs --force, never
// goes through a symbolic link, and is refused while the device is mounted
// or opened exclusively by another process.
func TestTargetExistingDevice(t *testing.T) {
	e := newLocal(t)
	src := filepath.Join(e.dir, "web-1.img")
	makeDisk(t, src, 16*mib, 1, part{0, 16 * mib, "random"})
	e.ok("hosts", "add", "web-1", "--disk", src)
	e.create("web-1")
	want := sha(t, src)

	file := filepath.Join(e.dir, "backing.img")
	makeExt4(t, file, 16*mib, 1)
	dev := loopDevice(t, file)
	before := sha(t, dev)
	restore := func(to string, force bool) result {
		args := []string{"backups", "restore", "web-1", "latest", "--to", to}
		if force {
			args = append(args, "--force")
		}
		return e.run(args...)
	}

	oneCleanLine(t, restore(dev, false), "--force")
	assertUnchanged(t, dev, before, "a restore --to a device without --force")

	link := filepath.Join(e.dir, "planted.img")
	require.NoError(t, os.Symlink(dev, link))
	for _, force := range []bool{false, true} {
		oneCleanLine(t, restore(link, force), "symbolic link")
		assertUnchanged(t, dev, before, "a restore --to a link to a device")
		fi, err := os.Lstat(link)
		require.NoError(t, err)
		assert.Equal(t, os.ModeSymlink, fi.Mode().Type(), "the link was replaced (--force %v)", force)
	}

	// While it is mounted, the device reads as ext4's cache of it; after
	// unmounting, as what it holds.
	unmount := mountReadOnly(t, dev)
	oneCleanLine(t, restore(dev, true), "mounted")
	unmount()
	assertUnchanged(t, dev, before, "a restore --to a mounted device")

	fd, err := unix.Open(dev, unix.O_RDONLY|unix.O_EXCL|unix.O_CLOEXEC, 0)
	require.NoError(t, err, "open the device exclusively")
	oneCleanLine(t, restore(dev, true), "in use")
	assertUnchanged(t, dev, before, "a restore --to a device in use")
	require.NoError(t, unix.Close(fd))

	e.ok("backups", "restore", "web-1", "latest", "--to", dev, "--force")
	assert.Equal(t, want, sha(t, dev))
}

// Finding 12: a symbolic link planted at the --to path is refused without
// --force; with it, the link itself is replaced, and what it pointed at is
// never written.
func TestTargetPlantedSymlinkIsReplacedNotFollowed(t *testing.T) {
	e := newLocal(t)
	src := filepath.Join(e.dir, "web-1.img")
	makeDisk(t, src, 8*mib, 1, part{0, 8 * mib, "random"})
	e.ok("hosts", "add", "web-1", "--disk", src)
	e.create("web-1")
	victim := filepath.Join(e.dir, "victim.img")
	require.NoError(t, os.WriteFile(victim, []byte("precious"), 0o644))
	dir := filepath.Join(e.dir, "restores")
	require.NoError(t, os.Mkdir(dir, 0o755))
	link := filepath.Join(dir, "web-1.img")
	require.NoError(t, os.Symlink(victim, link))

	victimSum := sha(t, victim)

	r := e.run("backups", "restore", "web-1", "latest", "--to", link)
	oneCleanLine(t, r, "symbolic link")
	assertUnchanged(t, victim, victimSum, "a refused restore --to a link")
	fi, err := os.Lstat(link)
	require.NoError(t, err)
	assert.Equal(t, os.ModeSymlink, fi.Mode().Type(), "a refused restore replaced the link")

	e.ok("backups", "restore", "web-1", "latest", "--to", link, "--force")
	assertUnchanged(t, victim, victimSum, "a restore --to a link with --force")
	fi, err = os.Lstat(link)
	require.NoError(t, err)
	assert.True(t, fi.Mode().IsRegular(), "the link was not replaced by a file")
	assert.Equal(t, sha(t, src), sha(t, link))
}

// startRestore starts `backups restore` in another process; done receives
// its exit code.
func (e *localEnv) startRestore(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer, <-chan int) {
	t.Helper()
	cmd := e.command(append([]string{"backups", "restore"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	done := make(chan int, 1)
	go func() {
		code, err := exitCode(cmd.Wait())
		if err != nil {
			code = -2
		}
		done <- code
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return cmd, &stderr, done
}

// Finding 13: while one in-place restore of a disk runs, a second is
// refused at once, naming the lock, and the disk ends byte-identical to the
// first one's backup. The first restore runs in short steps between
// SIGSTOPs; the first step after which, stopped, it holds a lock on the disk
// is where the second runs beside it.
func TestTargetTwoInPlaceRestoresAtOnce(t *testing.T) {
	e := newLocal(t)
	disk := filepath.Join(e.dir, "web-1.img")
	makeDisk(t, disk, 64*mib, 1, part{0, 64 * mib, "random"})
	e.ok("hosts", "add", "web-1", "--disk", disk)
	a := e.create("web-1")
	sumA := sha(t, disk)
	makeDisk(t, disk, 64*mib, 2, part{0, 64 * mib, "random"})
	b := e.create("web-1")
	probe := newLockProbe(t, disk)

	first, stderr, done := e.startRestore(t, "web-1", fmt.Sprint(a.ID), "--force")
	for step := 0; ; step++ {
		require.NoError(t, first.Process.Signal(syscall.SIGSTOP))
		if !waitStopped(t, first.Process.Pid, done) {
			t.Fatalf("the first restore ended before its lock on the disk was seen (%d steps): %s", step, stderr.String())
		}
		if probe.locked(t) {
			break
		}
		require.NoError(t, first.Process.Signal(syscall.SIGCONT))
		time.Sleep(time.Millisecond)
	}
	second := e.run("backups", "restore", "web-1", fmt.Sprint(b.ID), "--force")
	oneCleanLine(t, second, "in use by another process")
	assert.Equal(t, 14, second.code, "exit code of the second restore")
	// A backup meanwhile would store a mix of the disk and the restore
	// (found by a walkthrough): it is refused, and stores nothing.
	during := e.run("backups", "create", "web-1")
	oneCleanLine(t, during, "restore in place")
	assert.Equal(t, 14, during.code, "exit code of the backup")
	var list []backupJSON
	e.json(&list, "backups", "list", "web-1")
	assert.Len(t, list, 2, "backups after the refused one")
	require.NoError(t, first.Process.Signal(syscall.SIGCONT))
	require.Equal(t, 0, <-done, "the first restore: %s", stderr.String())
	assert.Equal(t, sumA, sha(t, disk), "the disk is not the first restore's backup")
}

// waitStopped waits until every thread of process pid is stopped, and
// reports false if the process ended first.
func waitStopped(t *testing.T, pid int, done <-chan int) bool {
	t.Helper()
	for {
		select {
		case code := <-done:
			require.Equal(t, 0, code)
			return false
		default:
		}
		if allThreadsStopped(pid) {
			return true
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// allThreadsStopped reads each thread's state from /proc.
func allThreadsStopped(pid int) bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, task := range tasks {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
		if err != nil {
			return false
		}
		// The state follows the command name, which ends at the last ')'.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 || i+2 >= len(stat) || (stat[i+2] != 'T' && stat[i+2] != 't') {
			return false
		}
	}
	return true
}

// Finding 13: a running QEMU (here qemu-nbd serving the image, which takes
// the same locks as a VM) holds locks on its image; an in-place restore is
// refused while it runs and changes nothing.
func TestTargetInPlaceRestoreOfAnImageInUseByQEMU(t *testing.T) {
	if _, err := exec.LookPath("qemu-nbd"); err != nil {
		t.Fatal("qemu-nbd is missing: scripts/deps.sh installs qemu-utils")
	}
	e := newLocal(t)
	disk := filepath.Join(e.dir, "web-1.img")
	makeDisk(t, disk, 16*mib, 1, part{0, 16 * mib, "random"})
	e.ok("hosts", "add", "web-1", "--disk", disk)
	b := e.create("web-1")
	makeDisk(t, disk, 16*mib, 2, part{0, 8 * mib, "random"})
	before := sha(t, disk)

	sock := filepath.Join(e.dir, "nbd.sock")
	qemu := exec.Command("qemu-nbd", "-f", "raw", "-k", sock, disk)
	var qemuOut bytes.Buffer
	qemu.Stdout, qemu.Stderr = &qemuOut, &qemuOut
	require.NoError(t, qemu.Start())
	exited := make(chan error, 1)
	go func() { exited <- qemu.Wait() }()
	t.Cleanup(func() { _ = qemu.Process.Kill() })
	probe := newLockProbe(t, disk)
	for deadline := time.Now().Add(30 * time.Second); !probe.locked(t); {
		select {
		case err := <-exited:
			t.Fatalf("qemu-nbd exited: %v: %s", err, qemuOut.String())
		case <-time.After(10 * time.Millisecond):
		}
		require.True(t, time.Now().Before(deadline), "qemu-nbd took no lock on the image")
	}

	r := e.run("backups", "restore", "web-1", fmt.Sprint(b.ID), "--force")
	oneCleanLine(t, r, "is open in a running QEMU")
	assert.Equal(t, 14, r.code, "a disk in use: %s", r.stderr)
	assertUnchanged(t, disk, before, "a refused in-place restore")
	require.NoError(t, qemu.Process.Kill())
	<-exited
	e.ok("backups", "restore", "web-1", fmt.Sprint(b.ID), "--force")
}

// Finding 13: a mounted device is never restored in place.
func TestTargetInPlaceRestoreOfAMountedDevice(t *testing.T) {
	e := newLocal(t)
	file := filepath.Join(e.dir, "backing.img")
	makeExt4(t, file, 32*mib, 1)
	dev := loopDevice(t, file)
	e.ok("hosts", "add", "vm-1", "--disk", dev)
	b := e.create("vm-1")
	makeExt4(t, dev, 32*mib, 2)
	before := sha(t, dev)

	// While it is mounted, the device reads as ext4's cache of it; after
	// unmounting, as what it holds.
	unmount := mountReadOnly(t, dev)
	r := e.run("backups", "restore", "vm-1", fmt.Sprint(b.ID), "--force")
	oneCleanLine(t, r, "mounted")
	unmount()
	assertUnchanged(t, dev, before, "a refused in-place restore of a mounted device")

	// Opened exclusively, as by a device mapper or another restore.
	fd, err := unix.Open(dev, unix.O_RDONLY|unix.O_EXCL|unix.O_CLOEXEC, 0)
	require.NoError(t, err, "open the device exclusively")
	r = e.run("backups", "restore", "vm-1", fmt.Sprint(b.ID), "--force")
	oneCleanLine(t, r, "in use")
	assertUnchanged(t, dev, before, "a refused in-place restore of a device in use")
	require.NoError(t, unix.Close(fd))
}

// hiddenTemps lists the temporary files of restores to base in dir.
func hiddenTemps(t *testing.T, dir, base string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var out []string
	for _, en := range entries {
		if strings.HasPrefix(en.Name(), "."+base+".dropback-") {
			out = append(out, en.Name())
		}
	}
	return out
}

// A restore --to removes the temporary files that earlier
// restores to the same path left when they were killed, and keeps those
// whose restore still runs; a restore killed now leaves none.
func TestTargetStaleRestoreTempFiles(t *testing.T) {
	e := newLocal(t)
	src := filepath.Join(e.dir, "web-1.img")
	makeDisk(t, src, 128*mib, 1, part{0, 128 * mib, "random"})
	e.ok("hosts", "add", "web-1", "--disk", src)
	e.create("web-1")
	want := sha(t, src)
	dir := filepath.Join(e.dir, "out")
	require.NoError(t, os.Mkdir(dir, 0o755))

	// A process that has ended, for a PID that is surely not running.
	gone := exec.Command("true")
	require.NoError(t, gone.Run())
	plant := func(name string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, bytes.Repeat([]byte("partial "), 1024), 0o600))
		return p
	}
	plant(".web-1.img.dropback-2837465")                                      // an older version's name
	plant(".web-1.img.dropback-" + strconv.Itoa(gone.Process.Pid) + "-81723") // its creator has ended
	live := plant(".web-1.img.dropback-" + strconv.Itoa(os.Getpid()) + "-12345")
	lf, err := os.OpenFile(live, os.O_RDWR, 0)
	require.NoError(t, err)
	defer lf.Close()
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
	require.NoError(t, unix.FcntlFlock(lf.Fd(), unix.F_OFD_SETLK, &lk), "lock the live temp file as its restore does")
	other := plant(".db-1.img.dropback-1")

	e.ok("backups", "restore", "web-1", "latest", "--to", filepath.Join(dir, "web-1.img"))
	assert.Equal(t, want, sha(t, filepath.Join(dir, "web-1.img")))
	assert.Equal(t, []string{filepath.Base(live)}, hiddenTemps(t, dir, "web-1.img"), "stale temp files left, or a live one removed")
	assert.FileExists(t, other, "the temp file of another target was removed")

	// Kill a restore while its file is open; nothing of it remains.
	for attempt := 1; ; attempt++ {
		require.LessOrEqual(t, attempt, 20, "never saw the restore open its file")
		cmd, _, done := e.startRestore(t, "web-1", "latest", "--to", filepath.Join(dir, "killed.img"))
		if !waitForFileUnder(t, cmd.Process.Pid, dir, done) {
			require.NoError(t, os.Remove(filepath.Join(dir, "killed.img")))
			continue
		}
		require.NoError(t, cmd.Process.Kill())
		<-done
		break
	}
	assert.Empty(t, hiddenTemps(t, dir, "killed.img"), "a killed restore left its temp file")
	e.ok("backups", "restore", "web-1", "latest", "--to", filepath.Join(dir, "killed.img"), "--force")
	assert.Equal(t, want, sha(t, filepath.Join(dir, "killed.img")))
	assert.Empty(t, hiddenTemps(t, dir, "killed.img"))
}

// waitForFileUnder waits until process pid has a file under dir open and
// reports true, or false when the process ended first.
func waitForFileUnder(t *testing.T, pid int, dir string, done <-chan int) bool {
	t.Helper()
	fds := fmt.Sprintf("/proc/%d/fd", pid)
	for {
		select {
		case code := <-done:
			require.Equal(t, 0, code, "the restore failed")
			return false
		default:
		}
		entries, _ := os.ReadDir(fds)
		for _, en := range entries {
			if target, err := os.Readlink(filepath.Join(fds, en.Name())); err == nil && strings.HasPrefix(target, dir+"/") {
				return true
			}
		}
	}
}

// The common disaster: a host's disk image is deleted. Restored in place,
// the refusal names the command that restores it there as a new file, and
// that command does (found by a walkthrough: both ways were refused, each
// naming the other). A --to onto another host's disk is refused without
// suggesting a command that cannot work.
func TestTargetRestoreOfADeletedDisk(t *testing.T) {
	e := newLocal(t)
	disk := filepath.Join(e.dir, "web-1.img")
	other := filepath.Join(e.dir, "other.img")
	makeDisk(t, disk, 8*mib, 1, part{0, 8 * mib, "random"})
	makeDisk(t, other, 8*mib, 2, part{0, 8 * mib, "random"})
	e.ok("hosts", "add", "web-1", "--disk", disk)
	e.ok("hosts", "add", "other", "--disk", other)
	b := e.create("web-1")
	want := sha(t, disk)
	sumOther := sha(t, other)
	require.NoError(t, os.Remove(disk))

	inPlace := e.run("backups", "restore", "web-1", "latest", "--force")
	oneCleanLine(t, inPlace, "is gone")
	assert.Equal(t, 2, inPlace.code)
	hint := fmt.Sprintf("dropback backups restore web-1 %d --to %s", b.ID, disk)
	assert.Contains(t, inPlace.stderr, hint)
	_, err := os.Lstat(disk)
	assert.True(t, os.IsNotExist(err), "the refused restore made %s", disk)

	e.ok(strings.Fields(hint)[1:]...)
	assert.Equal(t, want, sha(t, disk), "the disk restored to its own path")

	onOther := e.run("backups", "restore", "web-1", "latest", "--to", other, "--force")
	oneCleanLine(t, onOther, "is a disk of host other")
	assert.NotContains(t, onOther.stderr, "restore in place with", "a hint that cannot work")
	assert.Equal(t, sumOther, sha(t, other))
}

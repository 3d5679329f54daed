package engine

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// A backup's shared lock and a restore's whole-file lock are locks on the
// inode of the path each opened. A block device has an inode for every
// node that names it: a node made by mknod (a container's /dev, device-
// mapper nodes made without udev, a chroot's /dev that is not bound), is
// the same disk under another inode. A backup reading the disk through one
// node does not stop a restore in place through the other, which O_EXCL
// does not stop either (a backup does not open its disk exclusively): the
// backup stores a mix of the disk before and after the restore.
func TestRedteamRestoreInPlaceThroughAnotherNodeOfTheDiskABackupReads(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a loop device and mknod")
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(file, make([]byte, 4<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "-f", "--show", file).CombinedOutput()
	if err != nil {
		t.Fatalf("losetup: %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { _ = exec.Command("losetup", "-d", dev).Run() })
	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "disk")
	if err := unix.Mknod(other, unix.S_IFBLK|0o600, int(st.Rdev)); err != nil {
		t.Fatal(err)
	}

	// The backup's steps on the disk it reads (Backup).
	f, size, err := OpenDisk(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := lockShared(f); err != nil {
		t.Fatal(err)
	}

	// Through the node the backup reads, the restore is refused.
	if ot, err := openInPlace(RestoreTarget{Path: dev, InPlace: true}, size); !errors.Is(err, ErrInUse) {
		ot.close()
		t.Fatalf("restore in place through %s: %v, want ErrInUse", dev, err)
	}
	ot, err := openInPlace(RestoreTarget{Path: other, InPlace: true}, size)
	if err == nil {
		ot.close()
		t.Fatalf("a restore in place opened %s for writing while a backup reads the same disk through %s", other, dev)
	}
	if !errors.Is(err, ErrInUse) {
		t.Fatalf("restore in place: %v, want ErrInUse", err)
	}
}

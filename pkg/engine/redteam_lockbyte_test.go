//go:build linux

package engine

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// leaseByteZero takes the lock libvirt's virtlockd takes on each disk of
// a guest it starts (lock_manager = "lockd", its default of leases on the
// disk files themselves): a POSIX record lock on byte 0, length 1,
// exclusive for a disk the guest writes. It reports the error of F_SETLK.
func leaseByteZero(t *testing.T, path string) (*os.File, error) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart, Start: 0, Len: 1}
	return f, unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk)
}

// A backup's shared lock lies on byte 0 of the disk, which is not free of
// others' locks as QEMU's bytes 100-299 are: it is the very byte on which
// virtlockd holds the lease of a running libvirt guest's disk. So
//   - a backup of a disk whose guest runs under virtlockd (what
//     `backups create --allow-live` is for) is refused with ErrInUse, as if
//     a restore in place wrote it, although nothing restores it;
//   - and while any backup reads a stopped guest's disk, virtlockd cannot
//     take its lease, so libvirt refuses to start the guest ("Lockspace
//     resource ... is locked") for as long as the backup runs.
//
// The lock that keeps a backup and a restore in place apart must not be
// one that a hypervisor's lock manager takes too.
func TestRedteamBackupLockCollidesWithVirtlockdLease(t *testing.T) {
	t.Run("a guest running under virtlockd", func(t *testing.T) {
		r, _ := newRepo(t)
		src := filepath.Join(t.TempDir(), "guest.img")
		makeDisk(t, src, 4*testChunk, region{0, 4 * testChunk, "random"})
		if _, err := leaseByteZero(t, src); err != nil {
			t.Fatalf("virtlockd's lease: %v", err)
		}
		_, err := r.Backup(context.Background(), BackupRequest{HostID: 1, HostName: "web-1", Disks: []DiskSource{{Name: "disk0", Path: src}}})
		if err != nil {
			t.Fatalf("backup of a disk whose running guest virtlockd leases: %v", err)
		}
	})
	t.Run("a guest started while a backup reads its disk", func(t *testing.T) {
		src := filepath.Join(t.TempDir(), "guest.img")
		makeDisk(t, src, 4*testChunk, region{0, 4 * testChunk, "random"})
		reading, err := os.Open(src)
		if err != nil {
			t.Fatal(err)
		}
		defer reading.Close()
		if err := lockShared(reading); err != nil { // what Backup holds while it reads
			t.Fatal(err)
		}
		if _, err := leaseByteZero(t, src); err != nil {
			t.Fatalf("virtlockd cannot lease the disk while a backup reads it, so the guest does not start: %v", err)
		}
	})
}

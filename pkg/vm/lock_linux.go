package vm

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// QEMU holds byte locks on every image it has open (open file description
// locks): byte 100+i for each permission bit i it holds, 200+i for each it
// does not share. Bit 1 is write.
const (
	qemuLockBase  = 100
	qemuLockBytes = 200 // bytes 100 to 299
	qemuWritePerm = 1
)

// InUse reports whether a running QEMU has the image at path open (for
// write, when write is set): whether it holds one of QEMU's image locks
// there. A lock of another program that covers QEMU's bytes (a whole-file
// lock) is not QEMU's. A file that cannot be opened or locked is not in use
// as far as this can tell.
func InUse(path string, write bool) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	start, n := int64(qemuLockBase), int64(qemuLockBytes)
	if write {
		start, n = qemuLockBase+qemuWritePerm, 1
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: start, Len: n}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_GETLK, &lk); err != nil {
		return false, fmt.Errorf("look for QEMU's locks on %s: %w", path, err)
	}
	// QEMU locks single bytes in its range; a lock that reaches beyond it
	// (an in-place restore locks the whole file) is another program's.
	qemus := lk.Start >= qemuLockBase && lk.Len > 0 && lk.Start+lk.Len <= qemuLockBase+qemuLockBytes
	return lk.Type != unix.F_UNLCK && qemus, nil
}

// LockOwned takes an exclusive lock over the whole of f, without waiting,
// held until f is closed: the mark of a process that owns files named
// after f (an open file description lock, so that nothing else the process
// opens or closes drops it).
func LockOwned(f *os.File) error {
	lk := unix.Flock_t{Type: unix.F_WRLCK}
	return unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk)
}

// Owned reports whether a process holds LockOwned's lock on the file at
// path. A file that is missing or cannot be read is owned by no one.
func Owned(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	lk := unix.Flock_t{Type: unix.F_WRLCK}
	return unix.FcntlFlock(f.Fd(), unix.F_OFD_GETLK, &lk) == nil && lk.Type != unix.F_UNLCK
}

// LocksKnown says whether InUse and Owned can tell: they can here.
const LocksKnown = true

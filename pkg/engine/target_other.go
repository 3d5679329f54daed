//go:build !linux

package engine

import (
	"errors"
	"os"
	"syscall"
)

// errLocked means another process holds a conflicting lock.
var errLocked = errors.New("locked by another process")

// lockFile takes an exclusive flock on f, without waiting.
func lockFile(f *os.File) error {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return errLocked
	}
	return err
}

// lockShared takes a shared flock on f, without waiting, for a backup that
// reads f: it conflicts with a restore's lockFile.
func lockShared(f *os.File) error {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return errLocked
	}
	return err
}

// openExclusive opens a device and locks it; EBUSY when it is locked.
func openExclusive(path string, flags int) (*os.File, error) {
	f, err := os.OpenFile(path, flags, 0)
	if err != nil {
		return nil, err
	}
	if err := lockFile(f); err != nil {
		f.Close()
		if errors.Is(err, errLocked) {
			return nil, &os.PathError{Op: "open", Path: path, Err: syscall.EBUSY}
		}
		return nil, err
	}
	return f, nil
}

// mountPoint is not known here; the device's lock is the only check.
func mountPoint(string) (string, error) { return "", nil }

// createUnnamed: there are no unnamed files here.
func createUnnamed(string, string) *os.File { return nil }

func linkUnnamed(*os.File, string) error { return errors.ErrUnsupported }

// renameNoReplace renames old to new unless new exists (fs.ErrExist).
func renameNoReplace(old, new string) error { return linkThenRemove(old, new) }

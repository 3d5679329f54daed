//go:build !linux

package vm

import "os"

// InUse reports whether a running QEMU has the image at path open. Only
// Linux can tell; elsewhere it reports false.
func InUse(path string, write bool) (bool, error) { return false, nil }

// LockOwned marks f as owned by this process, where locks are known: not
// here, where it does nothing.
func LockOwned(*os.File) error { return nil }

// Owned reports whether a process owns the file at path: here no one can
// tell, so no one does.
func Owned(string) bool { return false }

// LocksKnown says whether InUse and Owned can tell: not here.
const LocksKnown = false

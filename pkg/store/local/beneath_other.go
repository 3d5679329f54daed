//go:build !linux

package local

// openBeneath reports that this system has no openat2: walkOpen opens one
// element at a time.
func openBeneath(root int, rel string, flags int) (int, bool, error) { return -1, false, nil }

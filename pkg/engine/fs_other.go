//go:build !linux

package engine

import (
	"errors"
	"os"
)

// punchHole is not available here; callers write zeros instead.
func punchHole(f *os.File, off, n int64) error {
	return errors.ErrUnsupported
}

func startWriteback(f *os.File) {}

//go:build !linux

package directio

import "os"

// Flag is the open flag that asks for direct I/O, 0 where there is none.
const Flag = 0

func reopenDirect(*os.File) *os.File { return nil }

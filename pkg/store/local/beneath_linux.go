package local

import (
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// noOpenat2 is set once the kernel says it has no openat2 (before Linux
// 5.6, or a seccomp filter that refuses it).
var noOpenat2 atomic.Bool

// openBeneath opens rel under the directory root with one openat2 that
// follows no symbolic link and never leaves root. ok is false when the
// kernel has no openat2, and walkOpen must do it.
func openBeneath(root int, rel string, flags int) (fd int, ok bool, err error) {
	if noOpenat2.Load() {
		return -1, false, nil
	}
	// RESOLVE_NO_SYMLINKS refuses a link at the end too, with ELOOP (which
	// O_NOFOLLOW with O_DIRECTORY would make ENOTDIR).
	how := unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC),
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	for {
		fd, err := unix.Openat2(root, rel, &how)
		switch err {
		case unix.EINTR, unix.EAGAIN: // a signal, or a rename raced the lookup
			continue
		case unix.ENOSYS:
			noOpenat2.Store(true)
			return -1, false, nil
		}
		return fd, true, err
	}
}

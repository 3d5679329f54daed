// Package directio reads and writes files around the kernel's page cache
// (O_DIRECT on Linux) where the filesystem allows it, and through the page
// cache where it does not.
//
// A backup streams gigabytes that it will not read again; copying them
// through the page cache costs more kernel time than hashing and compressing
// them, and evicts what the host's own programs had cached. Direct I/O needs
// the buffer's address, the file offset and the length to be multiples of
// Align. Requests that are not go through the page cache instead, so callers
// lose nothing by passing an unaligned one; they gain by allocating their
// buffers with Alloc.
package directio

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// Align is the alignment direct I/O needs: the largest logical block size
// of the disks in use (4 KiB), so that it also serves 512-byte ones.
const Align = 4096

// Alloc returns a buffer of n bytes whose first byte lies on an Align
// boundary and whose capacity is n rounded up to a multiple of Align.
func Alloc(n int) []byte {
	c := RoundUp(n)
	b := make([]byte, c+Align)
	off := 0
	if r := int(uintptr(unsafe.Pointer(unsafe.SliceData(b))) & (Align - 1)); r != 0 {
		off = Align - r
	}
	return b[off : off+n : off+c]
}

// RoundUp rounds n up to a multiple of Align.
func RoundUp(n int) int { return (n + Align - 1) &^ (Align - 1) }

// RoundDown rounds off down to a multiple of Align.
func RoundDown(off int64) int64 { return off &^ (Align - 1) }

// Aligned reports whether a read of p at off can be direct: p starts on an
// Align boundary, and off and len(p) are multiples of Align.
func Aligned(p []byte, off int64) bool {
	return aligned(p, off) && len(p)&(Align-1) == 0
}

// aligned reports whether p starts on an Align boundary and off is a
// multiple of Align.
func aligned(p []byte, off int64) bool {
	return off >= 0 && off&(Align-1) == 0 && len(p) > 0 && uintptr(unsafe.Pointer(unsafe.SliceData(p)))&(Align-1) == 0
}

// File is an open file that reads and writes aligned requests directly and
// the others through the page cache. Its embedded *os.File is the buffered
// descriptor, for everything else (Sync, Truncate, Stat, …). Like os.File,
// it is safe for concurrent reads and writes, but not concurrent with Close.
type File struct {
	*os.File
	// direct is the direct descriptor, nil when the platform or filesystem
	// has none. It stays open until Close even once refused is set, so that
	// a concurrent ReadAt never reads from a descriptor number that was
	// closed and perhaps reused for another file.
	direct *os.File
	// refused is set when the filesystem refused a direct request it had
	// accepted at open; every request then goes through the page cache.
	refused atomic.Bool
}

// Wrap returns f with a second, direct descriptor of the same file when the
// platform and filesystem allow one. Close closes both.
func Wrap(f *os.File) *File {
	return &File{File: f, direct: reopenDirect(f)}
}

// Direct reports whether aligned requests bypass the page cache.
func (f *File) Direct() bool { return f.direct != nil && !f.refused.Load() }

// ReadAt reads len(p) bytes at off, like os.File.ReadAt. When p and off are
// aligned and p's capacity holds len(p) rounded up to Align, it reads
// directly, possibly into p's capacity beyond len(p).
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	if f.Direct() && aligned(p, off) && RoundUp(len(p)) <= cap(p) {
		got, err := ReadFull(int(f.direct.Fd()), p[:RoundUp(len(p))], off, true)
		if !errors.Is(err, syscall.EINVAL) {
			if got >= len(p) {
				return len(p), nil
			}
			if err == nil {
				return got, io.EOF
			}
			return got, &fs.PathError{Op: "read", Path: f.Name(), Err: err}
		}
		f.refused.Store(true)
	}
	return f.File.ReadAt(p, off)
}

// WriteAt writes p at off, like os.File.WriteAt. When p and off are aligned,
// the largest multiple of Align at p's start is written directly and the
// rest through the page cache.
func (f *File) WriteAt(p []byte, off int64) (int, error) {
	if f.Direct() && aligned(p, off) && len(p) >= Align {
		n := len(p) &^ (Align - 1)
		got, err := f.direct.WriteAt(p[:n], off)
		if errors.Is(err, syscall.EINVAL) {
			f.refused.Store(true)
			n = got // the page cache takes what the direct write did not
		} else if err != nil || n == len(p) {
			return got, err
		}
		rest, err := f.File.WriteAt(p[n:], off+int64(n))
		return n + rest, err
	}
	return f.File.WriteAt(p, off)
}

// Close closes both descriptors.
func (f *File) Close() error {
	if f.direct != nil {
		f.direct.Close()
	}
	return f.File.Close()
}

// ReadFull reads into p from offset off of descriptor fd until p is full or
// the file ends, and returns how many bytes it read; a signal does not cut
// it short. With direct set, a read that ends off an Align boundary is the
// file's end: the next one could not be aligned.
func ReadFull(fd int, p []byte, off int64, direct bool) (int, error) {
	got := 0
	for got < len(p) {
		n, err := syscall.Pread(fd, p[got:], off+int64(got))
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return got, err
		}
		if n == 0 {
			break
		}
		got += n
		if direct && got&(Align-1) != 0 {
			break
		}
	}
	return got, nil
}

package export

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// ErrNoFUSE means that FUSE cannot be used here: no /dev/fuse, no right to
// open it, or no way to mount (neither the right to mount nor fusermount).
var ErrNoFUSE = errors.New("FUSE is unavailable")

// Mount is a read-only FUSE file system with one file per disk.
type Mount struct {
	dir    string
	files  []string
	server *fuse.Server
	errs   chan error
}

// MountOptions tune a Mount.
type MountOptions struct {
	// ModTime is the modification time of the files: the backup's time.
	ModTime time.Time
	// Logf, if set, receives a line for each read that failed.
	Logf func(format string, args ...any)
}

// FileName is the name of disk's file in a mount: its name, with ".img"
// added unless it ends so already, and with "/" and NUL bytes replaced,
// so that any name a backup holds is one file of the mount's directory.
func FileName(disk string) string {
	name := strings.Map(func(r rune) rune {
		if r == '/' || r == 0 {
			return '_'
		}
		return r
	}, disk)
	if !strings.HasSuffix(name, ".img") {
		name += ".img"
	}
	return name
}

// MountDisks mounts the disks, read-only, on dir: one file per disk, named
// by FileName, that reads the disk. It fails with an error wrapping
// ErrNoFUSE when FUSE cannot be used here. The caller ends the mount with
// Unmount.
func MountDisks(dir string, disks []Disk, opts MountOptions) (*Mount, error) {
	if err := fuseUsable(); err != nil {
		return nil, err
	}
	m := &Mount{dir: dir, errs: make(chan error, 1)}
	root := &fs.Inode{}
	seen := map[string]bool{}
	var files []*diskFile
	for _, d := range disks {
		name := FileName(d.Name())
		if seen[name] {
			return nil, fmt.Errorf("two disks would be the file %s of the mount", name)
		}
		seen[name] = true
		m.files = append(m.files, name)
		f := &diskFile{d: d, mtime: opts.ModTime, logf: opts.Logf}
		for _, e := range d.Extents(0, d.Size()) {
			if !e.Zero {
				f.data += e.Length
			}
		}
		files = append(files, f)
	}
	timeout := time.Hour // nothing here ever changes
	fopts := &fs.Options{
		MountOptions: fuse.MountOptions{
			FsName: "dropback", Name: "dropback", Options: []string{"ro"},
			DirectMount: os.Geteuid() == 0, MaxReadAhead: 1 << 20,
		},
		EntryTimeout: &timeout, AttrTimeout: &timeout,
		OnAdd: func(ctx context.Context) {
			for i, f := range files {
				ch := root.NewPersistentInode(ctx, f, fs.StableAttr{Mode: syscall.S_IFREG, Ino: uint64(i + 2)})
				root.AddChild(m.files[i], ch, false)
			}
		},
	}
	server, err := fs.Mount(dir, root, fopts)
	if err != nil {
		return nil, mountError(dir, err)
	}
	m.server = server
	return m, nil
}

// fuseUsable checks that /dev/fuse can be opened.
func fuseUsable() error {
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNoFUSE, err)
	}
	return f.Close()
}

// mountError says why a mount failed: FUSE itself, or the directory.
func mountError(dir string, err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "fusermount"), errors.Is(err, syscall.EPERM), errors.Is(err, os.ErrPermission):
		return fmt.Errorf("%w: mount on %s: %v", ErrNoFUSE, dir, err)
	}
	return fmt.Errorf("mount on %s: %w", dir, err)
}

// Files are the names of the mount's files, one per disk, in the order of
// the disks.
func (m *Mount) Files() []string { return m.files }

// Unmount unmounts the file system. It fails, and the mount stays, while
// something uses it (a loop device, a process with a file open).
func (m *Mount) Unmount() error {
	if err := m.server.Unmount(); err != nil {
		return fmt.Errorf("unmount %s: %w", m.dir, err)
	}
	m.server.Wait()
	return nil
}

// diskFile is the file of one disk.
type diskFile struct {
	fs.Inode
	d     Disk
	data  int64 // bytes in data extents
	mtime time.Time
	logf  func(format string, args ...any)
}

var (
	_ fs.NodeGetattrer = (*diskFile)(nil)
	_ fs.NodeOpener    = (*diskFile)(nil)
	_ fs.NodeReader    = (*diskFile)(nil)
	_ fs.NodeLseeker   = (*diskFile)(nil)
)

func (f *diskFile) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFREG | 0o444
	out.Size = uint64(f.d.Size())
	out.Blocks = uint64(f.data+511) / 512
	out.Blksize = 4096
	out.SetTimes(nil, &f.mtime, &f.mtime)
	return 0
}

func (f *diskFile) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR|syscall.O_TRUNC|syscall.O_APPEND) != 0 {
		return nil, 0, syscall.EROFS
	}
	// The bytes never change: the kernel may keep them cached.
	return nil, fuse.FOPEN_KEEP_CACHE, 0
}

func (f *diskFile) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n, err := f.d.ReadAt(ctx, dest, off)
	if err != nil && !errors.Is(err, io.EOF) {
		if f.logf != nil {
			f.logf("read %d bytes at %d of %s: %v", len(dest), off, f.d.Name(), err)
		}
		return nil, syscall.EIO
	}
	return fuse.ReadResultData(dest[:n]), 0
}

// Lseek answers SEEK_DATA and SEEK_HOLE from the disk's extents, so that
// sparse-aware copies (cp, qemu-img) skip its zeros. It looks at the
// extents a window at a time, so that a seek costs what it passes over.
func (f *diskFile) Lseek(ctx context.Context, fh fs.FileHandle, off uint64, whence uint32) (uint64, syscall.Errno) {
	const window = 1 << 30
	size := f.d.Size()
	if int64(off) >= size || int64(off) < 0 {
		return 0, syscall.ENXIO
	}
	for at := int64(off); at < size; at += window {
		for _, e := range f.d.Extents(at, window) {
			if whence == unix.SEEK_DATA && !e.Zero || whence == unix.SEEK_HOLE && e.Zero {
				return uint64(e.Offset), 0
			}
		}
	}
	if whence == unix.SEEK_HOLE {
		return uint64(size), 0 // the end of a file counts as a hole
	}
	return 0, syscall.ENXIO
}

// Package local implements store.Store on a local filesystem.
//
// An object named "packs/ab/abcdef" is the regular file root/packs/ab/abcdef.
// Put writes a temporary file under root/.tmp, fsyncs it, and hard-links it
// into place: link(2) fails if the name exists, which makes Put create-once
// without any lock, and the object is never visible half-written. The
// directory that gained the name is then fsynced, as is every directory Put
// had to create, so an object survives a crash once Put returns.
//
// Only regular files are objects. Nothing under the root is reached through
// a symbolic link, and files are opened without blocking and checked before
// they are read (fs.go): a FIFO, socket, device or link at an object's name,
// or a link in place of one of its directories, is store.ErrNotObject.
//
// Object names whose first element is ".tmp" are reserved for those temporary
// files and rejected. Directories are never removed, so empty ones may remain
// after Delete. Objects and directories are private to their owner (0600 and
// 0700): a repository holds whole disks.
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dropback/dropback/internal/directio"
	"github.com/dropback/dropback/pkg/store"
)

const (
	// tmpDir is the directory under root that holds temporary files.
	tmpDir = ".tmp"
	// tmpPattern names the temporary files, "*" being a random string.
	tmpPattern = "put-*"
	// staleTemp is the age past which a temporary file is left over from a
	// crash and removed.
	staleTemp = 24 * time.Hour

	dirMode = 0o700
)

// Store is a store.Store on a directory of the local filesystem. It is safe
// for concurrent use, also by several processes sharing the directory.
type Store struct {
	root string

	// durable holds the directories known to exist with their entry fsynced
	// in their parent, so that Put syncs each directory chain only once per
	// process.
	durable sync.Map // string -> struct{}

	cleanOnce sync.Once
}

var _ store.Store = (*Store)(nil)

// Open returns the store rooted at the directory root. It creates nothing:
// a missing root behaves as an empty store until the first Put creates it,
// so that reading a mistyped path changes nothing. root must not be a file.
func Open(root string) (*Store, error) {
	if root == "" {
		return nil, errors.New("open local store: empty path")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("open local store %s: %w", root, err)
	}
	fi, err := os.Stat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("open local store %s: %w", root, err)
	case !fi.IsDir():
		return nil, fmt.Errorf("open local store %s: not a directory", root)
	}
	return &Store{root: abs}, nil
}

// Location returns the absolute path of the store's root directory.
func (s *Store) Location() string { return s.root }

// ListLag implements store.Lagger: a listing shows every object written.
func (s *Store) ListLag() time.Duration { return 0 }

// path checks name and returns the file that holds it.
func (s *Store) path(name string) (string, error) {
	if err := store.CheckName(name); err != nil {
		return "", err
	}
	if name == tmpDir || strings.HasPrefix(name, tmpDir+"/") {
		return "", fmt.Errorf("invalid object name %q: %q is reserved for temporary files", name, tmpDir)
	}
	return s.root + "/" + name, nil
}

// Get implements store.Store. It costs four system calls (open, fstat,
// pread, close) when the object is small.
func (s *Store) Get(ctx context.Context, name string, off, length int64) ([]byte, error) {
	if _, err := s.path(name); err != nil {
		return nil, fmt.Errorf("get %s: %w", name, err)
	}
	if off < 0 || length < -1 {
		return nil, fmt.Errorf("get %s: invalid range offset %d length %d", name, off, length)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("get %s: %w", name, err)
	}
	fd, err := s.openFile(name, 0)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", name, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("get %s: %w", name, err)
	}
	// Never allocate more than the object holds, whatever was asked.
	n := max(0, st.Size-off)
	if length >= 0 {
		n = min(n, length)
	}
	buf := make([]byte, n)
	got, err := directio.ReadFull(fd, buf, off, false)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", name, pathError("read", name, err))
	}
	return buf[:got], nil
}

var _ store.ReaderAt = (*Store)(nil)

// ReadAt implements store.ReaderAt: open, pread, close, into the caller's
// buffer. A large aligned request (see directio.Aligned) is read around the
// page cache where the filesystem allows it.
func (s *Store) ReadAt(ctx context.Context, name string, buf []byte, off int64) (int, error) {
	if _, err := s.path(name); err != nil {
		return 0, fmt.Errorf("get %s: %w", name, err)
	}
	if off < 0 {
		return 0, fmt.Errorf("get %s: invalid offset %d", name, off)
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("get %s: %w", name, err)
	}
	direct := directio.Flag != 0 && len(buf) >= directMin && directio.Aligned(buf, off)
	got, err := s.readFile(name, buf, off, direct)
	if direct && errors.Is(err, syscall.EINVAL) {
		// The filesystem has no direct I/O, at open or at read.
		got, err = s.readFile(name, buf, off, false)
	}
	if err != nil {
		return got, fmt.Errorf("get %s: %w", name, err)
	}
	return got, nil
}

// readFile reads the object name into buf from off, directly or not, until
// buf is full or the object ends.
func (s *Store) readFile(name string, buf []byte, off int64, direct bool) (int, error) {
	flag := 0
	if direct {
		flag = directio.Flag
	}
	fd, err := s.openFile(name, flag)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	got, err := directio.ReadFull(fd, buf, off, direct)
	if err != nil && !errors.Is(err, syscall.EINVAL) {
		err = pathError("read", name, err)
	}
	return got, err
}

// Stat implements store.Store.
func (s *Store) Stat(ctx context.Context, name string) (store.Info, error) {
	if _, err := s.path(name); err != nil {
		return store.Info{}, fmt.Errorf("stat %s: %w", name, err)
	}
	if err := ctx.Err(); err != nil {
		return store.Info{}, fmt.Errorf("stat %s: %w", name, err)
	}
	st, err := s.statIn(name)
	if err == nil {
		err = checkMode(uint32(st.Mode))
	} else {
		err = pathError("stat", name, err)
	}
	if err != nil {
		return store.Info{}, fmt.Errorf("stat %s: %w", name, err)
	}
	return store.Info{Name: name, Size: st.Size, ModTime: time.Unix(st.Mtim.Unix())}, nil
}

// List implements store.Store. It walks only the directories that can hold
// names starting with prefix.
func (s *Store) List(ctx context.Context, prefix string, fn func(store.Info) error) error {
	if err := store.CheckPrefix(prefix); err != nil {
		return fmt.Errorf("list %q: %w", prefix, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("list %q: %w", prefix, err)
	}
	if err := s.walk(ctx, s.root, "", prefix, fn); err != nil {
		return fmt.Errorf("list %q: %w", prefix, err)
	}
	return nil
}

// walk calls fn for the objects under dir, whose names start with rel,
// that match prefix, and descends into the directories that may hold more.
func (s *Store) walk(ctx context.Context, dir, rel, prefix string, fn func(store.Info) error) error {
	flag := os.O_RDONLY
	if rel != "" {
		flag |= unix.O_NOFOLLOW | unix.O_DIRECTORY // a directory replaced by a link meanwhile
	}
	f, err := os.OpenFile(dir, flag, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.ELOOP) {
			return nil // no such directory yet, or deleted meanwhile
		}
		return err
	}
	defer f.Close()
	for {
		entries, err := f.ReadDir(1024)
		for _, e := range entries {
			if err := ctx.Err(); err != nil {
				return err
			}
			name := rel + e.Name()
			if rel == "" && e.Name() == tmpDir {
				continue
			}
			if e.IsDir() {
				if !couldMatch(name+"/", prefix) {
					continue
				}
				if err := s.walk(ctx, dir+"/"+e.Name(), name+"/", prefix, fn); err != nil {
					return err
				}
				continue
			}
			// Anything else that is there is listed, a FIFO or a link too
			// (never followed), so that the damage can be named; Get and
			// Stat refuse it.
			if !strings.HasPrefix(name, prefix) {
				continue
			}
			fi, err := e.Info()
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue // deleted since the directory was read
				}
				return err
			}
			if err := fn(store.Info{Name: name, Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
				return err
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// couldMatch reports whether a name under the directory dir (which ends in a
// slash) could start with prefix.
func couldMatch(dir, prefix string) bool {
	return strings.HasPrefix(dir, prefix) || strings.HasPrefix(prefix, dir)
}

// Delete implements store.Store. The removal is durable when it returns.
// What is at the name is removed, never what a link there points to; a
// name whose way passes through a link holds no object.
func (s *Store) Delete(ctx context.Context, name string) error {
	if _, err := s.path(name); err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	dir, base := splitRel(name)
	dfd, err := s.openDir(dir)
	switch {
	case errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP):
		return nil
	case err != nil:
		return fmt.Errorf("delete %s: %w", name, &fs.PathError{Op: "open", Path: dir, Err: err})
	}
	defer unix.Close(dfd)
	// unlinkat(2) without AT_REMOVEDIR never removes a directory.
	switch err := unix.Unlinkat(dfd, base, 0); err {
	case nil:
	case unix.ENOENT, unix.ENOTDIR, unix.EISDIR:
		return nil
	default:
		var st unix.Stat_t
		if unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return nil // a directory (EPERM on some systems) is no object
		}
		return fmt.Errorf("delete %s: %w", name, &fs.PathError{Op: "unlink", Path: name, Err: err})
	}
	if err := unix.Fsync(dfd); err != nil {
		return fmt.Errorf("delete %s: sync directory: %w", name, err)
	}
	return nil
}

// ReadParallelism implements store.Paralleler: a filesystem gains little
// from more reads at once than a few.
func (s *Store) ReadParallelism() int { return 8 }

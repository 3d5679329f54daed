// Package local implements store.Store on a local filesystem.
//
// An object named "packs/ab/abcdef" is the regular file root/packs/ab/abcdef.
// Put writes a temporary file under root/.tmp, fsyncs it, and hard-links it
// into place: link(2) fails if the name exists, which makes Put create-once
// without any lock, and the object is never visible half-written. The
// directory that gained the name is then fsynced, as is every directory Put
// had to create, so an object survives a crash once Put returns.
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
	// maxBlindRead is the largest read buffer Get allocates without first
	// asking for the object's size.
	maxBlindRead = 32 << 20

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

// Put implements store.Store.
func (s *Store) Put(ctx context.Context, name string, data []byte) (err error) {
	p, err := s.path(name)
	if err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	// Content-addressed writers put the same object often; spare the write.
	if _, err := os.Lstat(p); err == nil {
		return fmt.Errorf("put %s: %w", name, s.linkError(p, fs.ErrExist))
	}
	if err := s.ensureDir(s.root + "/" + tmpDir); err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	s.cleanOnce.Do(s.removeStaleTemps)

	tmp, err := writeTemp(s.root+"/"+tmpDir, data)
	if err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	defer func() {
		if rerr := os.Remove(tmp); rerr != nil && err == nil {
			err = fmt.Errorf("put %s: remove temporary file: %w", name, rerr)
		}
	}()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	dir := filepath.Dir(p)
	if err := s.ensureDir(dir); err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	if err := os.Link(tmp, p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			// A directory of the chain vanished since it was made; make it
			// again once.
			s.forget(dir)
			if err = s.ensureDir(dir); err == nil {
				err = os.Link(tmp, p)
			}
		}
		if err != nil {
			return fmt.Errorf("put %s: %w", name, s.linkError(p, err))
		}
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	return nil
}

// linkError explains a failed link to p.
func (s *Store) linkError(p string, err error) error {
	if !errors.Is(err, fs.ErrExist) {
		return err
	}
	if fi, serr := os.Lstat(p); serr == nil && fi.IsDir() {
		return fmt.Errorf("a directory of objects has that name")
	}
	return store.ErrExists
}

// writeTemp writes data to a new file in dir, fsyncs it and returns its path.
func writeTemp(dir string, data []byte) (string, error) {
	f, err := os.CreateTemp(dir, tmpPattern)
	if err != nil {
		return "", fmt.Errorf("create temporary file: %w", err)
	}
	// A pack is written once and read rarely: spare the page cache the copy
	// when the writer's buffer allows.
	w := &directio.File{File: f}
	if len(data) >= directMin && directio.Aligned(data[:directio.Align], 0) {
		w = directio.Wrap(f)
	}
	_, err = w.WriteAt(data, 0)
	if err == nil {
		err = f.Sync()
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("write temporary file: %w", err)
	}
	return f.Name(), nil
}

// directMin is the size from which an object is written and read around
// the page cache.
const directMin = 256 << 10

// ensureDir makes sure dir, the root or a directory below it, exists and
// that its entry is on disk in its parent, as are those of the directories
// between it and the root.
func (s *Store) ensureDir(dir string) error {
	if _, ok := s.durable.Load(dir); ok {
		return nil
	}
	if dir == s.root {
		if err := mkdirSynced(dir); err != nil {
			return err
		}
		s.durable.Store(dir, struct{}{})
		return nil
	}
	parent := filepath.Dir(dir)
	if err := s.ensureDir(parent); err != nil {
		return err
	}
	if err := mkdir(dir); err != nil {
		return err
	}
	// Sync the parent even if dir existed: another process may have made it
	// a moment ago and not synced it yet.
	if err := syncDir(parent); err != nil {
		return err
	}
	s.durable.Store(dir, struct{}{})
	return nil
}

// mkdirSynced creates dir and its missing parents, syncing the parent of
// each directory it creates. A directory that exists is left alone.
func mkdirSynced(dir string) error {
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("create directory %s: a file has that name", dir)
		}
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := mkdirSynced(parent); err != nil {
			return err
		}
	}
	if err := mkdir(dir); err != nil {
		return err
	}
	return syncDir(parent)
}

// mkdir creates dir unless a directory of that name exists.
func mkdir(dir string) error {
	err := os.Mkdir(dir, dirMode)
	if err == nil || !errors.Is(err, fs.ErrExist) {
		return err
	}
	if fi, serr := os.Stat(dir); serr != nil || !fi.IsDir() {
		return fmt.Errorf("create directory %s: an object has that name", dir)
	}
	return nil
}

// forget drops dir and the directories below the root above it from the
// cache of durable directories.
func (s *Store) forget(dir string) {
	for ; len(dir) > len(s.root); dir = filepath.Dir(dir) {
		s.durable.Delete(dir)
	}
}

// syncDir fsyncs the directory dir, so that the names it holds are durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// removeStaleTemps removes the temporary files that crashed writers left.
// It is best-effort: a failure only leaves garbage.
func (s *Store) removeStaleTemps() {
	dir := s.root + "/" + tmpDir
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil || !fi.Mode().IsRegular() || time.Since(fi.ModTime()) < staleTemp {
			continue
		}
		os.Remove(filepath.Join(dir, e.Name()))
	}
}

// Get implements store.Store. It costs three system calls (open, pread,
// close) when length is known and small.
func (s *Store) Get(ctx context.Context, name string, off, length int64) ([]byte, error) {
	p, err := s.path(name)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", name, err)
	}
	if off < 0 || length < -1 {
		return nil, fmt.Errorf("get %s: invalid range offset %d length %d", name, off, length)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("get %s: %w", name, err)
	}
	fd, err := openRead(p, 0)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", name, notFound(err))
	}
	defer syscall.Close(fd)

	n := length
	// A length of 0 reads nothing, so only fstat tells a directory, which
	// is no object, from an empty file.
	if length <= 0 || length > maxBlindRead {
		var st syscall.Stat_t
		if err := syscall.Fstat(fd, &st); err != nil {
			return nil, fmt.Errorf("get %s: %w", name, err)
		}
		if st.Mode&syscall.S_IFMT == syscall.S_IFDIR {
			return nil, fmt.Errorf("get %s: %w", name, store.ErrNotFound)
		}
		n = max(0, st.Size-off)
		if length >= 0 {
			n = min(n, length)
		}
	}
	buf := make([]byte, n)
	got, err := directio.ReadFull(fd, buf, off, false)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", name, notFound(err))
	}
	return buf[:got], nil
}

var _ store.ReaderAt = (*Store)(nil)

// ReadAt implements store.ReaderAt: open, pread, close, into the caller's
// buffer. A large aligned request (see directio.Aligned) is read around the
// page cache where the filesystem allows it.
func (s *Store) ReadAt(ctx context.Context, name string, buf []byte, off int64) (int, error) {
	p, err := s.path(name)
	if err != nil {
		return 0, fmt.Errorf("get %s: %w", name, err)
	}
	if off < 0 {
		return 0, fmt.Errorf("get %s: invalid offset %d", name, off)
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("get %s: %w", name, err)
	}
	direct := directio.Flag != 0 && len(buf) >= directMin && directio.Aligned(buf, off)
	got, err := readFile(p, buf, off, direct)
	if direct && errors.Is(err, syscall.EINVAL) {
		// The filesystem has no direct I/O, at open or at read.
		got, err = readFile(p, buf, off, false)
	}
	if err != nil {
		return got, fmt.Errorf("get %s: %w", name, notFound(err))
	}
	return got, nil
}

// readFile reads the file p into buf from off, directly or not, until buf
// is full or the file ends.
func readFile(p string, buf []byte, off int64, direct bool) (int, error) {
	flag := 0
	if direct {
		flag = directio.Flag
	}
	fd, err := openRead(p, flag)
	if err != nil {
		return 0, err
	}
	defer syscall.Close(fd)
	return directio.ReadFull(fd, buf, off, direct)
}

// openRead opens p for reading, retrying when a signal interrupts it.
func openRead(p string, flag int) (int, error) {
	for {
		fd, err := syscall.Open(p, syscall.O_RDONLY|syscall.O_CLOEXEC|flag, 0)
		if err != syscall.EINTR {
			if err != nil {
				return -1, &fs.PathError{Op: "open", Path: p, Err: err}
			}
			return fd, nil
		}
	}
}

// notFound makes a missing file, a path through a file, or a directory read
// as a file ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EISDIR) {
		return store.ErrNotFound
	}
	return err
}

// Stat implements store.Store.
func (s *Store) Stat(ctx context.Context, name string) (store.Info, error) {
	p, err := s.path(name)
	if err != nil {
		return store.Info{}, fmt.Errorf("stat %s: %w", name, err)
	}
	if err := ctx.Err(); err != nil {
		return store.Info{}, fmt.Errorf("stat %s: %w", name, err)
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return store.Info{}, fmt.Errorf("stat %s: %w", name, notFound(err))
	}
	if !fi.Mode().IsRegular() {
		return store.Info{}, fmt.Errorf("stat %s: %w", name, store.ErrNotFound)
	}
	return store.Info{Name: name, Size: fi.Size(), ModTime: fi.ModTime()}, nil
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
	f, err := os.Open(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
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
			if e.IsDir() {
				if (rel == "" && e.Name() == tmpDir) || !couldMatch(name+"/", prefix) {
					continue
				}
				if err := s.walk(ctx, dir+"/"+e.Name(), name+"/", prefix, fn); err != nil {
					return err
				}
				continue
			}
			if !e.Type().IsRegular() || !strings.HasPrefix(name, prefix) {
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
func (s *Store) Delete(ctx context.Context, name string) error {
	p, err := s.path(name)
	if err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	// unlink(2), unlike os.Remove, never removes a directory.
	switch err := syscall.Unlink(p); err {
	case nil:
	case syscall.ENOENT, syscall.ENOTDIR, syscall.EISDIR:
		return nil
	default:
		if fi, serr := os.Lstat(p); serr == nil && fi.IsDir() {
			return nil // a directory (EPERM on some systems) is no object
		}
		return fmt.Errorf("delete %s: %w", name, &fs.PathError{Op: "unlink", Path: p, Err: err})
	}
	if err := syncDir(filepath.Dir(p)); err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}

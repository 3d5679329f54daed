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
	"crypto/rand"
	"encoding/hex"
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
	if _, err := s.path(name); err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	// Content-addressed writers put the same object often; spare the write.
	if _, err := s.statIn(name); err == nil {
		return fmt.Errorf("put %s: %w", name, s.linkError(name, unix.EEXIST))
	}
	if err := s.ensureDir(tmpDir); err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	s.cleanOnce.Do(s.removeStaleTemps)

	tmp, tmpName, err := s.writeTemp(data)
	if err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	defer func() {
		rerr := unix.Unlinkat(tmp, tmpName, 0)
		unix.Close(tmp)
		if rerr != nil && err == nil {
			err = fmt.Errorf("put %s: remove temporary file: %w", name, rerr)
		}
	}()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	dir, base := splitRel(name)
	if err := s.ensureDir(dir); err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	err = s.linkInto(tmp, tmpName, dir, base)
	if errors.Is(err, unix.ENOENT) {
		// A directory of the chain vanished since it was made; make it
		// again once.
		s.forget(dir)
		if err = s.ensureDir(dir); err == nil {
			err = s.linkInto(tmp, tmpName, dir, base)
		}
	}
	if err != nil {
		return fmt.Errorf("put %s: %w", name, s.linkError(name, err))
	}
	return nil
}

// linkInto links the temporary file tmpName of the directory tmp as base
// in the directory dir, and syncs dir.
func (s *Store) linkInto(tmp int, tmpName, dir, base string) error {
	dfd, err := s.openDir(dir)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	if err := unix.Linkat(tmp, tmpName, dfd, base, 0); err != nil {
		return err
	}
	if err := unix.Fsync(dfd); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// linkError explains a failed link to name.
func (s *Store) linkError(name string, err error) error {
	if errors.Is(err, unix.ELOOP) {
		return fmt.Errorf("a directory on the way is a symbolic link, %w", store.ErrNotObject)
	}
	if !errors.Is(err, unix.EEXIST) {
		return err
	}
	if st, serr := s.statIn(name); serr == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return fmt.Errorf("a directory of objects has that name")
	}
	return store.ErrExists
}

// writeTemp writes data to a new file in the temporary directory, fsyncs
// it, and returns the directory, open, and the file's name in it.
func (s *Store) writeTemp(data []byte) (dir int, name string, err error) {
	dir, err = s.openDir(tmpDir)
	if err != nil {
		return -1, "", fmt.Errorf("open temporary directory: %w", err)
	}
	var fd int
	for {
		name = strings.Replace(tmpPattern, "*", randomName(), 1)
		fd, err = openRetry(func() (int, error) {
			return unix.Openat(dir, name, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		})
		if !errors.Is(err, unix.EEXIST) {
			break
		}
	}
	if err != nil {
		unix.Close(dir)
		return -1, "", fmt.Errorf("create temporary file: %w", err)
	}
	f := os.NewFile(uintptr(fd), s.root+"/"+tmpDir+"/"+name)
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
		unix.Unlinkat(dir, name, 0)
		unix.Close(dir)
		return -1, "", fmt.Errorf("write temporary file: %w", err)
	}
	return dir, name, nil
}

func randomName() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// directMin is the size from which an object is written and read around
// the page cache.
const directMin = 256 << 10

// ensureDir makes sure the directory rel ("" is the root) exists under the
// root and that its entry is on disk in its parent, as are those of the
// directories between it and the root. A symbolic link where a directory
// should be is refused.
func (s *Store) ensureDir(rel string) error {
	if _, ok := s.durable.Load(rel); ok {
		return nil
	}
	if rel == "" {
		if err := mkdirSynced(s.root); err != nil {
			return err
		}
		s.durable.Store(rel, struct{}{})
		return nil
	}
	parent, base := splitRel(rel)
	if err := s.ensureDir(parent); err != nil {
		return err
	}
	dfd, err := s.openDir(parent)
	if err != nil {
		return fmt.Errorf("create directory %s: %w", rel, pathError("open", parent, err))
	}
	defer unix.Close(dfd)
	if err := mkdirAt(dfd, base); err != nil {
		return fmt.Errorf("create directory %s: %w", rel, err)
	}
	// Sync the parent even if rel existed: another process may have made
	// it a moment ago and not synced it yet.
	if err := unix.Fsync(dfd); err != nil {
		return fmt.Errorf("sync directory %s: %w", parent, err)
	}
	s.durable.Store(rel, struct{}{})
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
	if err := os.Mkdir(dir, dirMode); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return syncDir(parent)
}

// forget drops rel and the directories above it from the cache of durable
// directories.
func (s *Store) forget(rel string) {
	for rel != "" {
		s.durable.Delete(rel)
		rel, _ = splitRel(rel)
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
	fd, err := s.openDir(tmpDir)
	if err != nil {
		return
	}
	d := os.NewFile(uintptr(fd), s.root+"/"+tmpDir)
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return
	}
	for _, name := range names {
		var st unix.Stat_t
		if unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG ||
			time.Since(time.Unix(st.Mtim.Unix())) < staleTemp {
			continue
		}
		unix.Unlinkat(fd, name, 0)
	}
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

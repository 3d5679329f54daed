package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dropback/dropback/internal/directio"
	"github.com/dropback/dropback/pkg/store"
)

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

package local

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/dropback/dropback/pkg/store"
)

// Everything under the root is reached without following a symbolic link:
// a link (to a file or a directory, inside the store or out of it) is no
// object and no directory of objects, so a repository cannot be made to
// read, write or delete what lies elsewhere. Files are opened with
// O_NONBLOCK and checked to be regular before they are read, so a FIFO or
// a device at an object's name is refused instead of blocking forever. The
// root itself is opened as the user named it, links and all.

// openRoot opens the root directory with flags.
func (s *Store) openRoot(flags int) (int, error) {
	return openRetry(func() (int, error) {
		return unix.Open(s.root, flags|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	})
}

// openIn opens rel, a slash-separated path under the root ("" is the root),
// with flags, following no symbolic link on the way or at the end: one on
// the way fails with ELOOP (or ENOTDIR), one at the end with ELOOP.
func (s *Store) openIn(rel string, flags int) (int, error) {
	if rel == "" {
		return s.openRoot(flags)
	}
	root, err := s.openRoot(unix.O_RDONLY)
	if err != nil {
		return -1, err
	}
	defer unix.Close(root)
	if fd, ok, err := openBeneath(root, rel, flags); ok {
		return fd, err
	}
	return walkOpen(root, rel, flags)
}

// walkOpen opens rel under the directory root one element at a time, each
// with O_NOFOLLOW: what openBeneath does where the kernel has no openat2.
func walkOpen(root int, rel string, flags int) (int, error) {
	dir := root
	defer func() {
		if dir != root {
			unix.Close(dir)
		}
	}()
	parts := strings.Split(rel, "/")
	for _, part := range parts[:len(parts)-1] {
		next, err := openAtNoFollow(dir, part, unix.O_RDONLY|unix.O_DIRECTORY)
		if err != nil {
			return -1, err
		}
		if dir != root {
			unix.Close(dir)
		}
		dir = next
	}
	return openAtNoFollow(dir, parts[len(parts)-1], flags)
}

// openAtNoFollow opens name in the directory dir with flags, refusing a
// link with ELOOP.
func openAtNoFollow(dir int, name string, flags int) (int, error) {
	fd, err := openRetry(func() (int, error) {
		return unix.Openat(dir, name, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	})
	if errors.Is(err, unix.ENOTDIR) && flags&unix.O_DIRECTORY != 0 {
		// Linux says so of a link opened with O_DIRECTORY and O_NOFOLLOW:
		// say it is a link.
		var st unix.Stat_t
		if unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			err = unix.ELOOP
		}
	}
	return fd, err
}

// openRetry calls open until a signal does not interrupt it.
func openRetry(open func() (int, error)) (int, error) {
	for {
		fd, err := open()
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// openDir opens the directory rel under the root ("" is the root) for
// reading and syncing.
func (s *Store) openDir(rel string) (int, error) {
	return s.openIn(rel, unix.O_RDONLY|unix.O_DIRECTORY)
}

// splitRel splits a path under the root into its directory ("" for the
// root) and last element.
func splitRel(rel string) (dir, base string) {
	i := strings.LastIndexByte(rel, '/')
	if i < 0 {
		return "", rel
	}
	return rel[:i], rel[i+1:]
}

// openFile opens the object name for reading, without blocking, and checks
// that it is a regular file. A directory is no object (ErrNotFound, as on
// a store without directories); anything else that is not a regular file,
// or a link, is ErrNotObject.
func (s *Store) openFile(name string, flags int) (int, error) {
	fd, err := s.openIn(name, unix.O_RDONLY|unix.O_NONBLOCK|flags)
	if err != nil {
		return -1, pathError("open", name, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, pathError("stat", name, err)
	}
	if err := checkMode(uint32(st.Mode)); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// checkMode says what is wrong with a file of mode, unless it is a regular
// file.
func checkMode(mode uint32) error {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return nil
	case unix.S_IFDIR:
		return store.ErrNotFound
	case unix.S_IFLNK:
		return fmt.Errorf("it is a symbolic link, %w", store.ErrNotObject)
	case unix.S_IFIFO:
		return fmt.Errorf("it is a FIFO, %w", store.ErrNotObject)
	case unix.S_IFSOCK:
		return fmt.Errorf("it is a socket, %w", store.ErrNotObject)
	}
	return fmt.Errorf("it is a device, %w", store.ErrNotObject)
}

// pathError explains a failed system call on name: a missing file, a path
// through a file, or a directory read as a file is ErrNotFound; a symbolic
// link on the way or at the end, or a socket, is ErrNotObject.
func pathError(op, name string, err error) error {
	switch {
	case errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.EISDIR):
		return store.ErrNotFound
	case errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EMLINK):
		return fmt.Errorf("it is or passes through a symbolic link, %w", store.ErrNotObject)
	case errors.Is(err, unix.ENXIO):
		return fmt.Errorf("it is a socket or device, %w", store.ErrNotObject)
	}
	return &fs.PathError{Op: op, Path: name, Err: err}
}

// statIn returns the mode and size of what is at rel, not following a
// link at the end.
func (s *Store) statIn(rel string) (unix.Stat_t, error) {
	var st unix.Stat_t
	dir, base := splitRel(rel)
	dfd, err := s.openDir(dir)
	if err != nil {
		return st, err
	}
	defer unix.Close(dfd)
	err = unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	return st, err
}

// mkdirAt makes the directory base in the directory dfd, unless a
// directory of that name is there.
func mkdirAt(dfd int, base string) error {
	err := unix.Mkdirat(dfd, base, dirMode)
	if err == nil || !errors.Is(err, unix.EEXIST) {
		return err
	}
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return nil
	case unix.S_IFLNK:
		return fmt.Errorf("%s is a symbolic link: %w", base, store.ErrNotObject)
	}
	return errors.New("an object has that name")
}

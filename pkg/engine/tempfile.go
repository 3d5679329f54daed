package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// tempFile is the file a restore to a new file writes before it takes the
// target's path: unnamed where the filesystem allows it, so that a restore
// killed meanwhile leaves nothing, else a hidden file beside the target
// named <prefix><pid>-<random>. It is locked while it is written, so that
// removeStaleTemps can tell it from one whose restore was killed.
type tempFile struct {
	f         *os.File
	name      string // its path while it has one
	dir, base string
}

func createTemp(dir, base string) (*tempFile, error) {
	t := &tempFile{dir: dir, base: base}
	if t.f = createUnnamed(dir, filepath.Join(dir, base)); t.f == nil {
		f, err := os.CreateTemp(dir, tempPrefix(base)+strconv.Itoa(os.Getpid())+"-*")
		if err != nil {
			// Named by the file the user asked for, not the hidden one.
			return nil, fmt.Errorf("create %s: %w", shortPath(filepath.Join(dir, base)), unwrapPathError(err))
		}
		t.f, t.name = f, f.Name()
	}
	// Where the filesystem has no locks, the PID in the name still marks
	// the file as live while this process runs.
	_ = lockFile(t.f)
	return t, nil
}

// discard closes the file and removes its name, if it still has one.
func (t *tempFile) discard() {
	t.f.Close()
	if t.name != "" {
		os.Remove(t.name)
	}
}

// publish gives the finished file the path. Without overwrite it fails
// with ErrTargetExists when something appeared at path meanwhile; with it,
// whatever is at path is replaced, a symbolic link included.
func (t *tempFile) publish(path string, overwrite bool) error {
	if t.name == "" && !overwrite {
		return appeared(path, linkUnnamed(t.f, path))
	}
	if t.name == "" {
		if err := t.linkHidden(); err != nil {
			return err
		}
	}
	var err error
	if overwrite {
		err = os.Rename(t.name, path)
	} else {
		err = appeared(path, renameNoReplace(t.name, path))
	}
	if err == nil {
		t.name = ""
	}
	return err
}

// linkHidden gives the unnamed file a hidden name beside the target.
func (t *tempFile) linkHidden() error {
	for {
		name := filepath.Join(t.dir, tempPrefix(t.base)+strconv.Itoa(os.Getpid())+"-"+strconv.FormatUint(uint64(rand.Uint32()), 10))
		err := linkUnnamed(t.f, name)
		if err == nil {
			t.name = name
			return nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
}

func appeared(path string, err error) error {
	if errors.Is(err, fs.ErrExist) {
		return errorf(ErrTargetExists, "%s appeared during the restore", shortPath(path))
	}
	return err
}

// linkThenRemove renames old to new unless new exists, on a filesystem
// without an atomic way to: by a hard link, where it has them.
func linkThenRemove(old, new string) error {
	err := os.Link(old, new)
	if err == nil {
		return os.Remove(old)
	}
	if errors.Is(err, fs.ErrExist) {
		return err
	}
	if _, err := os.Lstat(new); err == nil {
		return &os.LinkError{Op: "rename", Old: old, New: new, Err: fs.ErrExist}
	}
	return os.Rename(old, new)
}

// processRunning reports whether a process with this PID runs here.
func processRunning(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

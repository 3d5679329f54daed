package engine

import (
	"os"
	"path/filepath"

	"github.com/dropback/dropback/internal/directio"
)

// NewFile is a file written the way a restore writes a new file: without a
// name (or under a hidden one) beside its path, which it takes only once
// Commit is called, so that a write that fails or is killed leaves nothing
// at the path. Exports to files write their images through it.
type NewFile struct {
	tmp       *tempFile
	f         *directio.File
	path, dir string
	overwrite bool
}

// CreateFile starts a new file for path. What may be at path is what a
// restore to a new file allows (CheckTarget), except a block device: a
// file or symbolic link there needs overwrite (else ErrTargetExists) and
// is replaced, never followed; a directory, device or anything else is
// ErrInvalid.
func CreateFile(path string, overwrite bool) (*NewFile, error) {
	if fi, err := os.Lstat(path); err == nil && isBlockDevice(fi.Mode()) {
		return nil, errorf(ErrInvalid, "%s is a block device, and this writes files only", shortPath(path))
	}
	if err := CheckTarget(RestoreTarget{Path: path, Overwrite: overwrite}, 0); err != nil {
		return nil, err
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	removeStaleTemps(dir, base)
	tmp, err := createTemp(dir, base)
	if err != nil {
		return nil, err
	}
	return &NewFile{tmp: tmp, f: directio.Wrap(tmp.f), path: path, dir: dir, overwrite: overwrite}, nil
}

// Path is the path the file takes once committed.
func (n *NewFile) Path() string { return n.path }

// File is the file to write: aligned requests go around the page cache.
func (n *NewFile) File() *directio.File { return n.f }

// Commit syncs the file, makes it readable by its owner only, and gives it
// its path: with overwrite, in place of whatever is there; without, only
// if nothing appeared there meanwhile (ErrTargetExists).
func (n *NewFile) Commit() error {
	if err := n.f.Sync(); err != nil {
		return err
	}
	if err := n.f.Chmod(0o600); err != nil {
		return err
	}
	if err := n.tmp.publish(n.path, n.overwrite); err != nil {
		return err
	}
	return syncDir(n.dir)
}

// Close closes the file and, unless it was committed, removes it. It is
// safe to call after Commit and more than once.
func (n *NewFile) Close() {
	if n.f != nil {
		n.f.Close()
		n.f = nil
	}
	if n.tmp.name != "" {
		_ = os.Remove(n.tmp.name)
		n.tmp.name = ""
	}
}

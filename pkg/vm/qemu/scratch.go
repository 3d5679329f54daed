package qemu

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"syscall"
	"time"

	"github.com/dropback/dropback/pkg/vm"
)

// A point in time keeps three kinds of files in the scratch directory: a
// fleecing image per disk (dropback-TOKEN-N.qcow2), QEMU's NBD socket
// (dropback-TOKEN.nbd), and its owner file (dropback-TOKEN.lock), made
// before the others and locked by the backup for as long as it runs. The
// backup that made them removes them through QEMU when it ends; when QEMU
// is gone, or the backup was killed, they stay, and a later backup sweeps
// them.
var scratchName = regexp.MustCompile(`^dropback-([0-9a-f]{6})(-[0-9]+\.qcow2|\.nbd|\.lock)$`)

// scratchOwner is a backup's owner file in the scratch directory.
type scratchOwner struct {
	f    *os.File
	path string
}

// holdScratch makes and locks the owner file of token in dir: every file
// of a token whose owner file is locked is left alone by every sweep,
// whatever its time or QEMU's locks (QEMU holds none on a fleecing image
// between creating and formatting it). The file is made and locked under
// another name, then linked to its own, so that it is never seen
// unlocked, and so that a token another backup holds, or one left, is
// refused (fs.ErrExist) rather than taken over. Where it cannot be made
// or locked the sweep goes by times and QEMU's locks alone.
func holdScratch(dir, token string) (*scratchOwner, error) {
	f, err := os.CreateTemp(dir, ".dropback-owner-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name()) // the temporary name goes, linked or not
	if err := vm.LockOwned(f); err != nil {
		f.Close()
		return nil, err
	}
	o := &scratchOwner{f: f, path: ownerFile(dir, token)}
	if err := os.Link(f.Name(), o.path); err != nil {
		f.Close()
		return nil, err
	}
	return o, nil
}

// release removes the owner file, then lets go of its lock.
func (o *scratchOwner) release() {
	if o == nil {
		return
	}
	os.Remove(o.path)
	o.f.Close()
}

func ownerFile(dir, token string) string { return filepath.Join(dir, "dropback-"+token+".lock") }

// sweepMinAge is how old a scratch file must be before a backup of another
// guest may remove it: between QEMU creating a fleecing image and opening
// it (when it locks it), and between binding its NBD socket and listening,
// a file is in use with no sign of it.
const sweepMinAge = time.Minute

// sweepScratch removes the scratch files of earlier backups in dir that
// nothing uses: fleecing images no QEMU holds a lock on, and NBD sockets
// no one listens on. It leaves alone the files of the backup token is,
// files younger than sweepMinAge, and every file not named as dropback
// names its own. It returns how many files it removed. It is housekeeping:
// a directory it cannot read is left as it is.
func sweepScratch(dir, token string, now time.Time) int {
	if !vm.LocksKnown {
		return 0 // nothing here tells a file in use from one left
	}
	entries, _ := os.ReadDir(dir)
	n := 0
	owned := map[string]bool{}
	for _, e := range entries {
		m := scratchName.FindStringSubmatch(e.Name())
		if m == nil || m[1] == token {
			continue
		}
		held, seen := owned[m[1]]
		if !seen {
			held = vm.Owned(ownerFile(dir, m[1]))
			owned[m[1]] = held
		}
		if held {
			continue // its backup runs
		}
		path := filepath.Join(dir, e.Name())
		fi, err := os.Lstat(path)
		if err != nil || now.Sub(fi.ModTime()) < sweepMinAge {
			continue
		}
		if removeUnused(path, fi) {
			n++
		}
	}
	return n
}

// removeUnused removes the scratch file at path if nothing uses it, and
// reports whether it did.
func removeUnused(path string, fi os.FileInfo) bool {
	switch {
	case fi.Mode().IsRegular():
		if inUse, err := vm.InUse(path, false); err != nil || inUse {
			return false
		}
	case fi.Mode()&os.ModeSocket != 0:
		if !deadSocket(path) {
			return false
		}
	default:
		return false
	}
	return os.Remove(path) == nil
}

// deadSocket reports whether no one listens on the unix socket at path:
// a connection to it is refused.
func deadSocket(path string) bool {
	c, err := net.DialTimeout("unix", path, connectTimeout)
	if err == nil {
		c.Close()
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// ownInUse reports whether something still uses the scratch files of the
// point in time: a QEMU holds a lock on a fleecing image, or listens on
// its NBD socket.
func (p *point) ownInUse() bool {
	for _, path := range p.files {
		if inUse, err := vm.InUse(path, false); err == nil && inUse {
			return true
		}
	}
	sock := p.socket()
	if fi, err := os.Lstat(sock); err == nil && fi.Mode()&os.ModeSocket != 0 && !deadSocket(sock) {
		return true
	}
	return false
}

func (p *point) socket() string {
	return filepath.Join(p.scratch, fmt.Sprintf("dropback-%s.nbd", p.token))
}

// removeOwn removes the scratch files of a point in time that its QEMU
// no longer uses: what it left when QEMU went away before it could remove
// them. Missing files are no error.
func (p *point) removeOwn() {
	paths := append([]string{p.socket()}, p.files...)
	for _, path := range paths {
		if fi, err := os.Lstat(path); err == nil {
			removeUnused(path, fi)
		}
	}
}

package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"golang.org/x/sys/unix"
)

// DiskSource names a disk to back up: a raw image file or a block device.
type DiskSource struct {
	Name string
	Path string
	// Format is the image format of a running guest's disk ("qcow2",
	// "raw"); empty for a raw image or block device.
	Format string `json:",omitempty"`
}

// OpenDisk opens a disk image or block device for reading and returns its
// size. Directories, FIFOs, sockets and character devices are refused.
func OpenDisk(path string) (*os.File, int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, 0, errorf(ErrInvalid, "disk %s: %v", shortPath(path), unwrapPathError(err))
	}
	mode := fi.Mode()
	switch {
	case mode.IsDir():
		return nil, 0, errorf(ErrInvalid, "disk %s is a directory, not a disk image or block device", shortPath(path))
	case mode.IsRegular(), mode&os.ModeDevice != 0 && mode&os.ModeCharDevice == 0:
	default:
		return nil, 0, errorf(ErrInvalid, "disk %s is not a regular file or block device", shortPath(path))
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, errorf(ErrInvalid, "disk %s: %v", shortPath(path), unwrapPathError(err))
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("size of disk %s: %w", shortPath(path), err)
	}
	if size == 0 && mode&os.ModeDevice != 0 {
		// What a detached loop device or a drive without its medium
		// reads as: storing it would store an empty disk.
		f.Close()
		return nil, 0, errorf(ErrInvalid, "disk %s is a block device of 0 bytes: nothing is attached to it, or its medium is gone", shortPath(path))
	}
	return f, size, nil
}

// PreviousDisk is what the last backup of a disk recorded of it.
type PreviousDisk struct {
	BackupID  int
	SizeBytes int64
	// Bitmap is the dirty bitmap that backup started on a running guest's
	// disk, if it did.
	Bitmap string
}

// PreviousDisks returns, for each named disk of host hostID, what the last
// backup or snapshot that holds it recorded: the one of the highest ID, the
// last taken, whatever date it carries. Damaged manifests are passed over;
// a disk never backed up is missing from the map. It reads manifests from
// the newest back, and stops once every disk is found.
func (r *Repo) PreviousDisks(ctx context.Context, hostID int, names []string) (map[string]PreviousDisk, error) {
	set, err := r.listIDs(ctx, "backups")
	if err != nil {
		return nil, err
	}
	ids := make([]int, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(ids)))
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]PreviousDisk{}
	for _, id := range ids {
		if len(out) == len(want) {
			break
		}
		m, err := r.readManifest(ctx, id)
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrCorrupt) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, d := range m.Disks {
			if _, seen := out[d.Name]; m.HostID == hostID && want[d.Name] && !seen {
				out[d.Name] = PreviousDisk{BackupID: m.ID, SizeBytes: d.SizeBytes, Bitmap: d.Bitmap}
			}
		}
	}
	return out, nil
}

// shortPath makes a user-given path fit a one-line message: control
// characters escaped, and the middle of a very long path left out.
func shortPath(p string) string {
	if len(p) > 160 {
		p = p[:80] + "…" + p[len(p)-60:]
	}
	if strings.ContainsFunc(p, unicode.IsControl) {
		q := strconv.Quote(p)
		p = q[1 : len(q)-1]
	}
	return p
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// dataRegions returns the [start, end) ranges of f that may hold data. Holes
// found with SEEK_DATA/SEEK_HOLE are left out; where the filesystem or device
// cannot tell, the whole range is data.
func dataRegions(f *os.File, size int64) [][2]int64 {
	fd := int(f.Fd())
	var regions [][2]int64
	for off := int64(0); off < size; {
		start, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if err != nil {
			if errors.Is(err, unix.ENXIO) {
				break // only a hole remains
			}
			return [][2]int64{{off, size}} // not supported: read it all
		}
		if start >= size {
			break
		}
		end, err := unix.Seek(fd, start, unix.SEEK_HOLE)
		if err != nil || end > size {
			end = size
		}
		regions = append(regions, [2]int64{start, end})
		off = end
	}
	return regions
}

// dataChunks turns data regions into the sorted list of chunk indexes that
// overlap them.
func dataChunks(regions [][2]int64, chunkSize int) []int {
	var out []int
	cs := int64(chunkSize)
	for _, r := range regions {
		first, last := int(r[0]/cs), int((r[1]-1)/cs)
		if len(out) > 0 && out[len(out)-1] >= first {
			first = out[len(out)-1] + 1
		}
		for i := first; i <= last; i++ {
			out = append(out, i)
		}
	}
	return out
}

package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"
)

// Live backups read a running guest's disks through a point in time its
// hypervisor exports, and, when a dirty bitmap has recorded every write since
// an earlier backup, read only what changed and take the rest of the chunk
// IDs from that backup's image index. The engine knows nothing of the
// hypervisor: it is given readers and, per disk, the regions a bitmap
// reports changed, and it decides itself whether the backup they are
// relative to is one it can trust.

// Consistency of a live backup, as its manifest records it.
const (
	// ConsistencyApplication: the guest agent froze the guest's
	// filesystems for the instant the point in time was taken.
	ConsistencyApplication = "application"
	// ConsistencyCrash: the disks as they were at one instant, as after a
	// power cut; no filesystem was frozen.
	ConsistencyCrash = "crash"
)

// LiveReader is a disk that is not a local file: a point in time a
// hypervisor exports (an NBD export of a fleecing node). Its size and bytes
// do not change while it is read. Its methods are safe for concurrent use.
type LiveReader interface {
	// Size is the disk's size in bytes.
	Size() int64
	// ReadAt reads len(p) bytes at off, as io.ReaderAt does.
	ReadAt(ctx context.Context, p []byte, off int64) (int, error)
	// DataRegions returns the sorted, disjoint ranges [start, end) that may
	// hold data; everything else reads as zeros and is not read.
	DataRegions(ctx context.Context) ([][2]int64, error)
}

// LiveDisk is how one disk of a live backup is read.
type LiveDisk struct {
	Reader LiveReader
	// Bitmap names the dirty bitmap started at the instant of this backup,
	// recorded in the manifest so that the next backup can read only what
	// changed since.
	Bitmap string
	// Changed, when set, is what a bitmap recorded since it was started.
	Changed *Changes
}

// Changes are the regions of a disk written since the bitmap Bitmap was
// started, sorted and disjoint.
type Changes struct {
	Bitmap  string
	Regions [][2]int64
}

// DiskSince records that a disk was read incrementally: only the regions
// the bitmap Bitmap reported changed were read, and the other chunks were
// taken from backup Backup, which started that bitmap.
type DiskSince struct {
	Backup int    `json:"backup"`
	Bitmap string `json:"bitmap"`
}

// backupLive backs up the disks of req.Live, under an operation of its own
// or req.Op.
func (r *Repo) backupLive(ctx context.Context, req BackupRequest, started time.Time) (*Manifest, error) {
	if len(req.Live) != len(req.Disks) {
		return nil, errorf(ErrInvalid, "back up host %s: %d disks, %d readers", req.HostName, len(req.Disks), len(req.Live))
	}
	op := req.Op
	if op == nil {
		var err error
		if op, err = r.Begin(ctx, OpBackup, req.HostID); err != nil {
			return nil, err
		}
		defer op.End()
	}
	m, err := r.liveBackup(op.Context(), op, req, started)
	return m, lostOr(op, err)
}

func (r *Repo) liveBackup(ctx context.Context, op *Op, req BackupRequest, started time.Time) (*Manifest, error) {
	idx, _, err := r.LoadIndex(ctx)
	if err != nil {
		return nil, err
	}
	defer idx.release()
	var total int64
	for _, l := range req.Live {
		total += l.Reader.Size()
	}
	w := newPackWriter(ctx, r, idx, 2)
	req.Progress.Start("backup", total)
	m := &Manifest{Version: manifestVersion, HostID: req.HostID, HostName: req.HostName, CreatedAt: started, Consistency: req.Consistency}
	images := make([]*Image, len(req.Disks))
	defer func() {
		for _, im := range images {
			im.release()
		}
	}()
	for i, d := range req.Disks {
		im, md, err := r.backupLiveDisk(w.ctx, req, d, req.Live[i], idx, w)
		if err != nil {
			w.abort()
			return nil, fmt.Errorf("back up disk %s: %w", shortPath(d.Name), err)
		}
		images[i] = im
		m.Disks = append(m.Disks, md)
	}
	return m, r.writeBackup(ctx, op, req, w, idx, m, images)
}

// backupLiveDisk reads one disk of a live backup: every chunk that may hold
// data, or, when its changes are relative to a backup that checks out, only
// the changed chunks.
func (r *Repo) backupLiveDisk(ctx context.Context, req BackupRequest, d DiskSource, l LiveDisk, idx *Index, w *packWriter) (*Image, ManifestDisk, error) {
	size, cs := l.Reader.Size(), r.cfg.ChunkSize
	md := ManifestDisk{Name: d.Name, Path: d.Path, SizeBytes: size, Bitmap: l.Bitmap}
	if err := checkDisks([]diskInfo{{d.Name, size}}, cs); err != nil {
		return nil, md, errorf(ErrInvalid, "%v", err)
	}
	regions, err := l.Reader.DataRegions(ctx)
	if err != nil {
		return nil, md, fmt.Errorf("find the data of the disk: %w", err)
	}
	data := dataChunks(regions, cs)
	im, err := r.newImage(size)
	if err != nil {
		return nil, md, err
	}
	read := data
	if l.Changed != nil {
		base, since, why, err := r.liveBase(ctx, req.HostID, d.Name, size, l.Changed.Bitmap)
		if err != nil {
			im.release()
			return nil, md, err
		}
		if base != nil {
			read = incrementalChunks(im, base, data, dataChunks(l.Changed.Regions, cs), idx)
			base.release()
			md.Since = since
		} else if req.Notify != nil {
			req.Notify(fmt.Sprintf("disk %s is read whole: %s", d.Name, why))
		}
	}
	src := readerAt{ctx: ctx, r: l.Reader}
	if err := r.readChunks(ctx, src, im, read, liveReaders, idx, w, req.Progress); err != nil {
		im.release()
		return nil, md, err
	}
	for _, i := range read {
		md.ReadBytes += int64(im.chunkLen(i))
	}
	md.DataBytes = im.dataBytes()
	return im, md, nil
}

// incrementalChunks fills im with the IDs of base for the chunks that hold
// data and did not change, and returns the chunks to read: those that
// changed, and those whose chunk the repository no longer has in a pack gc
// left alone (it is read again, as a backup would store it anew). A chunk
// that holds no data now is zero, whatever base says.
func incrementalChunks(im, base *Image, data, changed []int, idx *Index) []int {
	dirty := make(map[int]bool, len(changed))
	for _, i := range changed {
		dirty[i] = true
	}
	var read []int
	for _, i := range data {
		id := base.Chunks[i]
		switch {
		case dirty[i]:
			read = append(read, i)
		case id.IsZero() || idx.Has(id):
			im.Chunks[i] = id
		default:
			read = append(read, i)
		}
	}
	return read
}

// liveBase finds the backup of host hostID that started bitmap on disk name
// and returns its image of that disk, with what the manifest records of
// the incremental read. When there is none it can use, it returns a nil
// image and why, for the notice of a full read. Its error is for failing
// to read the repository.
func (r *Repo) liveBase(ctx context.Context, hostID int, name string, size int64, bitmap string) (*Image, *DiskSince, string, error) {
	if bitmap == "" {
		return nil, nil, "no bitmap named", nil
	}
	set, err := r.listIDs(ctx, "backups")
	if err != nil {
		return nil, nil, "", err
	}
	ids := make([]int, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(ids)))
	seen := 0
	for _, id := range ids {
		m, err := r.readManifest(ctx, id)
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrCorrupt) {
			continue
		}
		if err != nil {
			return nil, nil, "", err
		}
		if m.HostID != hostID {
			continue
		}
		if seen++; seen > maxBaseSearch {
			break
		}
		for i, d := range m.Disks {
			if d.Name != name || d.Bitmap != bitmap {
				continue
			}
			if d.SizeBytes != size {
				return nil, nil, fmt.Sprintf("it was %d bytes in backup %d, which started bitmap %s, and is %d bytes now", d.SizeBytes, m.ID, bitmap, size), nil
			}
			im, err := r.LoadDiskImage(ctx, m, i)
			if err != nil {
				return nil, nil, fmt.Sprintf("the image of backup %d, which started bitmap %s, cannot be read (%v)", m.ID, bitmap, err), nil
			}
			return im, &DiskSince{Backup: m.ID, Bitmap: bitmap}, "", nil
		}
	}
	return nil, nil, fmt.Sprintf("no backup of the host in the repository started bitmap %s", bitmap), nil
}

// liveReaders is how many chunks of a disk of a running guest are read at
// once: the reads go over NBD to the hypervisor, which serves many at once
// and scatters them over the image (measured in docs/benchmarks.md).
const liveReaders = 16

// maxBaseSearch bounds how many of a host's backups liveBase reads, newest
// first, to find the one that started a bitmap: normally it is the newest.
const maxBaseSearch = 64

// readerAt reads a LiveReader under a context, as io.ReaderAt.
type readerAt struct {
	ctx context.Context
	r   LiveReader
}

func (a readerAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := a.r.ReadAt(a.ctx, p, off)
	if err == nil && n < len(p) {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

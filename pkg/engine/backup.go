package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dropback/dropback/internal/directio"
	"github.com/dropback/dropback/pkg/crypt"
	"github.com/dropback/dropback/pkg/progress"
)

// BackupRequest describes one backup of a host's disks.
type BackupRequest struct {
	HostID   int
	HostName string
	Disks    []DiskSource
	// Time, when set, is the backup's created_at instead of now.
	Time time.Time
	// Progress, if not nil, counts the disks' bytes as a "backup" job:
	// holes as skipped, everything read from the disks as read.
	Progress *progress.Counter
	// Op, when set, is the operation the backup runs as (a scheduling pass
	// begins it first, to name it in its claim); the caller ends it. When
	// nil, the backup begins and ends its own.
	Op *Op
	// Live, when set, has one entry per disk of Disks: the disks are read
	// through these readers (a point in time a hypervisor exports) instead
	// of from their paths, which then only name them (live.go).
	Live []LiveDisk
	// Consistency is recorded in the manifest of a live backup:
	// ConsistencyApplication or ConsistencyCrash.
	Consistency string
	// Check, when set, is asked after every disk was read and stored and
	// before the manifest is written; an error fails the backup and
	// nothing is visible. A live backup checks that its point in time
	// held while it read.
	Check func(ctx context.Context) error
	// Notify, when set, is told what the user should know that does not
	// fail the backup, such as an incremental read that fell back to a
	// full one.
	Notify func(msg string)
	// Stats, if not nil, is filled with what the backup read and wrote, as
	// it goes, so that one that fails or is cancelled still says what it
	// left in the repository for gc.
	Stats *BackupStats
}

// BackupStats count what one backup did. Its fields are updated
// atomically while the backup runs; read them once Backup has returned.
type BackupStats struct {
	// Read is the bytes read from the disks (holes are never read).
	Read atomic.Int64
	// New is the bytes, uncompressed, of the chunks new to the repository.
	New atomic.Int64
	// Stored is the bytes of the packs the backup wrote: its new chunks,
	// compressed, and the packs' own overhead.
	Stored atomic.Int64
}

// Backup reads the disks, stores their new chunks and writes the manifest
// last. On any error nothing visible is left: only unreferenced objects that
// gc collects.
func (r *Repo) Backup(ctx context.Context, req BackupRequest) (*Manifest, error) {
	started := r.now().UTC().Truncate(time.Second)
	if !req.Time.IsZero() {
		started = req.Time.UTC().Truncate(time.Second)
	}
	disks := make([]diskInfo, len(req.Disks))
	for i, d := range req.Disks {
		disks[i] = diskInfo{name: d.Name}
	}
	if err := checkDisks(disks, r.cfg.ChunkSize); err != nil {
		return nil, errorf(ErrInvalid, "back up host %s: %v", req.HostName, err)
	}
	if req.Live != nil {
		return r.backupLive(ctx, req, started)
	}
	files := make([]*directio.File, len(req.Disks))
	sizes := make([]int64, len(req.Disks))
	defer func() {
		for _, f := range files {
			if f != nil {
				f.Close()
			}
		}
	}()
	var total int64
	for i, d := range req.Disks {
		f, size, err := OpenDisk(d.Path)
		if err != nil {
			return nil, err
		}
		// Held until the disk is closed: a restore in place does not
		// write it meanwhile, nor does this backup read one being
		// written, which would store a mix of the two.
		// A filesystem that takes no locks takes none from a restore
		// either, which then refuses to run (openInPlace): the backup
		// goes on.
		if err := lockShared(f); errors.Is(err, errLocked) {
			f.Close()
			return nil, errorf(ErrInUse, "disk %s is being written by another process that holds a lock on the whole of it, e.g. a restore in place: back it up once that ends", shortPath(d.Path))
		}
		files[i], sizes[i] = directio.Wrap(f), size
		total += size
	}
	// Announce the backup before reading the index, so that gc either sees
	// it running or this backup sees gc's marks.
	op := req.Op
	if op == nil {
		var err error
		if op, err = r.Begin(ctx, OpBackup, req.HostID); err != nil {
			return nil, err
		}
		defer op.End()
	}
	if err := r.checkClock(op.Context(), op); err != nil {
		return nil, err
	}
	m, err := r.backup(op.Context(), op, req, files, sizes, total, started)
	return m, lostOr(op, err)
}

// backup does the work of Backup under its operation op.
func (r *Repo) backup(ctx context.Context, op *Op, req BackupRequest, files []*directio.File, sizes []int64, total int64, started time.Time) (*Manifest, error) {
	idx, _, err := r.LoadIndex(ctx)
	if err != nil {
		return nil, err
	}
	defer idx.release()
	w := newPackWriter(ctx, r, idx, 2)
	if req.Stats != nil {
		w.stats = req.Stats
	}
	prog := req.Progress
	prog.Start("backup", total)
	m := &Manifest{Version: manifestVersion, HostID: req.HostID, HostName: req.HostName, CreatedAt: started}
	images := make([]*Image, len(req.Disks))
	defer func() {
		for _, im := range images {
			im.release()
		}
	}()
	for i, d := range req.Disks {
		im, data, err := r.backupDisk(w.ctx, files[i], sizes[i], idx, w, prog)
		if err == nil {
			// A disk resized while it was read is not what any moment
			// held: refuse it rather than keep a mix.
			if now, serr := files[i].Seek(0, io.SeekEnd); serr == nil && now != sizes[i] {
				err = fmt.Errorf("the disk changed size during the backup, from %d to %d bytes; back it up again", sizes[i], now)
			}
		}
		if err != nil {
			w.abort()
			return nil, fmt.Errorf("back up disk %s: %w", shortPath(d.Path), err)
		}
		images[i] = im
		m.Disks = append(m.Disks, ManifestDisk{Name: d.Name, Path: d.Path, SizeBytes: sizes[i], DataBytes: data})
	}
	return m, r.writeBackup(ctx, op, req, w, idx, m, images)
}

// writeBackup finishes a backup whose disks were read: it writes the last
// pack, the index segments and the image indexes, asks req.Check, and
// commits the manifest.
func (r *Repo) writeBackup(ctx context.Context, op *Op, req BackupRequest, w *packWriter, idx *Index, m *Manifest, images []*Image) error {
	segs, err := w.finish()
	if err != nil {
		return err
	}
	// The manifest names every segment its chunks were found in, not only
	// its own: readers load them by name (and follow index-replaced/
	// markers), so no backup depends on a listing that may lag.
	for _, seg := range append(segs, idx.segmentsOf(images)...) {
		m.IndexSegments = append(m.IndexSegments, seg.String())
	}
	m.NewBytes, m.NewChunks = w.newBytes, w.newChunks
	for i, im := range images {
		id, err := r.putImage(ctx, im, idx.condemnedImages)
		if err != nil {
			return err
		}
		m.Disks[i].Image = id.String()
	}
	if req.Check != nil {
		if err := req.Check(ctx); err != nil {
			return err
		}
	}
	m.CompletedAt = r.now().UTC().Truncate(time.Second)
	return r.commit(ctx, op, m)
}

// commit writes a backup's manifest, which makes it visible, if the backup
// is still protected from gc before and after: a manifest written after gc
// may have counted the backup as gone could name deleted data, so it is
// deleted again and the backup fails.
func (r *Repo) commit(ctx context.Context, op *Op, m *Manifest) error {
	if err := op.CheckNow(); err != nil {
		return err
	}
	id, err := r.allocate(ctx, []string{"backups", "deleted"},
		func(id int) string { return objectName("backups", id) },
		func(id int) ([]byte, error) {
			m.ID = id
			return seal(m)
		})
	if err != nil {
		return err
	}
	m.ID = id
	if info, err := r.st.Stat(ctx, objectName("backups", id)); err == nil {
		op.noteTime(info.ModTime) // a pause during the write itself
	}
	if err := op.Check(); err != nil {
		if derr := r.DeleteBackup(context.WithoutCancel(ctx), id); derr != nil {
			return fmt.Errorf("%w; and backup %d, written too late, could not be deleted again: %v", err, id, derr)
		}
		return err
	}
	r.NoteChange(ctx)
	return nil
}

type chunkResult struct {
	idx   int
	id    ID
	n     int
	blob  []byte // nil unless the chunk is new
	flags uint8
	buf   []byte // to recycle
	cbuf  []byte // to recycle
}

// diskReaders is how many chunks of a disk are read at once. A virtual or
// network disk delivers several times the throughput to parallel reads than
// to one sequential reader (measured in docs/benchmarks.md).
const diskReaders = 6

// backupDisk chunks one disk. Workers read, hash and compress chunks in
// parallel; this goroutine builds the image and feeds the packs.
func (r *Repo) backupDisk(ctx context.Context, f *directio.File, size int64, idx *Index, w *packWriter, prog *progress.Counter) (*Image, int64, error) {
	im, err := r.newImage(size)
	if err != nil {
		return nil, 0, err
	}
	chunks := dataChunks(dataRegions(f.File, size), im.ChunkSize)
	if err := r.readChunks(ctx, f, im, chunks, max(diskReaders, runtime.GOMAXPROCS(0)), idx, w, prog); err != nil {
		return nil, 0, err
	}
	return im, im.dataBytes(), nil
}

// newImage returns the image of a disk of size bytes about to be read,
// with no chunk set yet; its chunk IDs are reserved from the memory budget
// first.
func (r *Repo) newImage(size int64) (*Image, error) {
	cs := r.cfg.ChunkSize
	n := chunkCount(size, cs)
	hold, err := r.mem.reserve(imageMemory(int64(n)), fmt.Sprintf("the image of a disk of %s (%d chunks)", MemText(size), n))
	if err != nil {
		return nil, err
	}
	return &Image{Size: size, ChunkSize: cs, Chunks: make([]ID, n), mem: hold}, nil
}

// readChunks reads the chunks of a disk that chunks lists (sorted) from f,
// workers at a time, and sets their IDs in im; the other chunks keep the
// IDs im has, and count as skipped.
func (r *Repo) readChunks(ctx context.Context, f io.ReaderAt, im *Image, chunks []int, workers int, idx *Index, w *packWriter, prog *progress.Counter) error {
	cs, size := im.ChunkSize, im.Size
	holes := size
	for _, i := range chunks {
		holes -= int64(im.chunkLen(i))
	}
	prog.AddSkipped(holes) // never read

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	free := make(chan []byte, 2*workers)
	cfree := make(chan []byte, 2*workers)
	for range cap(free) {
		free <- directio.Alloc(cs)
		cfree <- make([]byte, 0, cs+cs/8+1024+crypt.BlobOverhead)
	}
	jobs := make(chan int, workers)
	results := make(chan chunkResult, workers)
	go func() {
		defer close(jobs)
		for _, i := range chunks {
			select {
			case jobs <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := newChunkHasher(r.key)
			for i := range jobs {
				res, err := r.readChunkOf(f, size, i, idx, w, h, free, cfree)
				if err != nil {
					cancel(err)
					return
				}
				select {
				case results <- res:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); close(results) }()

	for res := range results {
		im.Chunks[res.idx] = res.id
		if res.blob != nil {
			if err := w.add(res.id, res.blob, res.n, res.flags); err != nil {
				cancel(err)
			}
		}
		free <- res.buf[:cap(res.buf)]
		if res.cbuf != nil {
			cfree <- res.cbuf[:0]
		}
		prog.AddRead(int64(res.n))
		w.stats.Read.Add(int64(res.n))
	}
	return context.Cause(ctx)
}

// dataBytes is the size of the image's chunks that are not zero.
func (im *Image) dataBytes() int64 {
	var n int64
	for i, id := range im.Chunks {
		if !id.IsZero() {
			n += int64(im.chunkLen(i))
		}
	}
	return n
}

// packWriter collects new chunks into packs and uploads them in the
// background, as many at a time as it has uploaders.
type packWriter struct {
	r      *Repo
	idx    *Index // the index the backup began with: which packs gc condemned
	ctx    context.Context
	cancel context.CancelCauseFunc
	cur    *packBuilder
	free   chan *packBuilder
	queue  chan *packBuilder
	wg     sync.WaitGroup

	mu      sync.Mutex
	pending map[ID]bool // chunks added in this run
	written []PackIndex

	newBytes, newChunks int64
	stats               *BackupStats // never nil
}

// newPackWriter returns a writer that uploads up to uploaders packs at once
// while it fills the next: its memory is uploaders+1 packs.
func newPackWriter(ctx context.Context, r *Repo, idx *Index, uploaders int) *packWriter {
	ctx, cancel := context.WithCancelCause(ctx)
	w := &packWriter{
		r: r, idx: idx, ctx: ctx, cancel: cancel, pending: map[ID]bool{}, stats: &BackupStats{},
		free:  make(chan *packBuilder, uploaders+1),
		queue: make(chan *packBuilder),
	}
	for range uploaders + 1 {
		w.free <- newPackBuilder(r.cfg.ChunkSize)
	}
	w.cur = <-w.free
	for range uploaders {
		w.wg.Add(1)
		go w.upload()
	}
	return w
}

// seen reports whether this run already stored the chunk. Safe to call from
// any goroutine.
func (w *packWriter) seen(id ID) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pending[id]
}

// add stores a new chunk. Called from one goroutine only.
func (w *packWriter) add(id ID, blob []byte, raw int, flags uint8) error {
	w.mu.Lock()
	dup := w.pending[id]
	w.pending[id] = true
	w.mu.Unlock()
	if dup {
		return nil
	}
	if w.cur == nil { // the last flush was cut short: the writer is stopping
		return context.Cause(w.ctx)
	}
	w.cur.add(id, blob, raw, flags)
	w.newBytes += int64(len(blob))
	w.newChunks++
	w.stats.New.Add(int64(raw))
	if w.cur.full() {
		return w.flushPack()
	}
	return nil
}

// flushPack hands the current pack to an uploader and takes a free one. Once
// handed over, the pack belongs to the uploader: if no free one comes, cur
// stays nil rather than point at a pack another goroutine owns.
func (w *packWriter) flushPack() error {
	select {
	case w.queue <- w.cur:
		w.cur = nil
	case <-w.ctx.Done():
		return context.Cause(w.ctx)
	}
	select {
	case w.cur = <-w.free:
	case <-w.ctx.Done():
		return context.Cause(w.ctx)
	}
	return nil
}

func (w *packWriter) upload() {
	defer w.wg.Done()
	for p := range w.queue {
		data, id := p.finish(w.r)
		id, entries, err := w.r.putPack(w.ctx, data, id, p.entries, w.idx.condemned)
		if err != nil {
			w.cancel(err)
		} else {
			w.stats.Stored.Add(int64(len(data)))
			w.mu.Lock()
			w.written = append(w.written, PackIndex{Pack: id, Entries: append([]Entry(nil), entries...)})
			w.mu.Unlock()
		}
		p.buf, p.entries = append(p.buf[:0], packMagic...), p.entries[:0]
		w.free <- p
	}
}

// finish uploads the last pack, waits for every upload and writes the index
// segments naming the new packs, each far below the largest a segment can
// be. It returns none when there were no new packs.
func (w *packWriter) finish() ([]ID, error) {
	defer w.cancel(nil)
	var err error
	if w.cur != nil && !w.cur.empty() {
		err = w.flushPack()
	}
	close(w.queue)
	w.wg.Wait()
	if cause := context.Cause(w.ctx); cause != nil {
		return nil, cause
	}
	if err != nil {
		return nil, err
	}
	return w.r.putSegments(w.ctx, w.written)
}

// abort stops the uploads; what was written stays as garbage for gc.
func (w *packWriter) abort() {
	w.cancel(errors.New("backup aborted"))
	close(w.queue)
	w.wg.Wait()
}

// readChunkOf reads chunk i of a disk and names it; a chunk the repository
// lacks is compressed too. The result owns buffers from free and cfree that
// the caller gives back.
func (r *Repo) readChunkOf(f io.ReaderAt, size int64, i int, idx *Index, w *packWriter, h chunkHasher, free, cfree chan []byte) (chunkResult, error) {
	cs := r.cfg.ChunkSize
	off := int64(i) * int64(cs)
	n := int(min(int64(cs), size-off))
	buf := (<-free)[:n]
	if _, err := f.ReadAt(buf, off); err != nil {
		free <- buf[:cap(buf)]
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("disk shrank during the backup (read at %d of %d bytes)", off, size)
		}
		return chunkResult{}, err
	}
	res := chunkResult{idx: i, n: n, buf: buf}
	if !isZero(buf) {
		res.id = h.sum(buf)
		if !idx.Has(res.id) && !w.seen(res.id) {
			res.cbuf = <-cfree
			res.blob, res.flags = r.storeChunk(res.id, buf, res.cbuf)
		}
	}
	return res, nil
}

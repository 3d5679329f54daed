package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/dropback/dropback/internal/directio"
	"github.com/dropback/dropback/pkg/crypt"
	"github.com/dropback/dropback/pkg/progress"
	"github.com/dropback/dropback/pkg/store"
)

// RestoreTarget says where one disk of a backup goes.
type RestoreTarget struct {
	Path string
	// InPlace reads the target and writes only the chunks that differ. When
	// false, a new sparse file is written beside Path and takes its name
	// once complete, so a failed restore leaves no half-written file. A
	// block device is always restored in place.
	InPlace bool
	// Overwrite lets a restore that is not in place replace a file or a
	// symbolic link at Path, or write a block device named by Path itself.
	// Without it, such a restore only creates a new file. See CheckTarget.
	Overwrite bool
}

// RestoreStats counts what a restore did.
type RestoreStats struct {
	BytesWritten  int64
	ChunksWritten int64
	ChunksRead    int64
}

// Restore writes every disk of backup m to its target. Every chunk written is
// re-hashed and checked against its ID first; a damaged or missing chunk fails
// the restore with ErrCorrupt. prog, if not nil, counts the images' bytes as
// a "restore" job: what is read from packs as read; zero chunks, and chunks
// an in-place restore finds in place, as skipped.
//
// It runs as the restore operation ctx carries (WithOp), or announces one of
// its own, so that gc deletes nothing it reads.
func (r *Repo) Restore(ctx context.Context, m *Manifest, targets []RestoreTarget, prog *progress.Counter) ([]RestoreStats, error) {
	op, end, _, err := r.readerOp(ctx, OpRestore, m.HostID)
	if err != nil {
		return nil, err
	}
	defer end()
	stats, err := r.restore(op.Context(), m, targets, prog)
	return stats, lostOr(op, err)
}

func (r *Repo) restore(ctx context.Context, m *Manifest, targets []RestoreTarget, prog *progress.Counter) ([]RestoreStats, error) {
	if len(targets) != len(m.Disks) {
		return nil, errorf(ErrInvalid, "backup %d has %d disks, %d targets given", m.ID, len(m.Disks), len(targets))
	}
	imageIDs, err := m.Images()
	if err != nil {
		return nil, err
	}
	images := make([]*Image, len(imageIDs))
	defer func() {
		for _, im := range images {
			im.release()
		}
	}()
	var total int64
	for i := range imageIDs {
		if images[i], err = r.LoadDiskImage(ctx, m, i); err != nil {
			return nil, fmt.Errorf("restore backup %d: %w", m.ID, err)
		}
		total += images[i].Size
	}
	idx, problems, err := r.LoadIndex(ctx, m.segmentIDs()...)
	if err != nil {
		return nil, err
	}
	defer idx.release()
	for _, p := range problems {
		// A segment that could not be read is no damage: say why, rather
		// than call its chunks missing.
		if !errors.Is(p, ErrCorrupt) {
			return nil, fmt.Errorf("restore backup %d: %w", m.ID, p)
		}
	}
	// Every target is checked and held before any is written.
	opened, err := openTargets(targets, images)
	if err != nil {
		return nil, err
	}
	defer closeTargets(opened)
	prog.Start("restore", total)
	stats := make([]RestoreStats, len(targets))
	for i, t := range opened {
		if stats[i], err = r.restoreDisk(ctx, images[i], idx, t, prog); err != nil {
			err = fmt.Errorf("restore disk %s of backup %d to %s: %w", m.Disks[i].Name, m.ID, t.Path, err)
			return stats, partlyRestored(err, opened[:i+1], stats)
		}
	}
	return stats, nil
}

// partlyRestored adds to the error of a restore that failed which disks it
// had written in place by then: neither as they were nor as the backup.
// A new file is never left (restoreNew).
func partlyRestored(err error, opened []*openTarget, stats []RestoreStats) error {
	var paths []string
	for i, t := range opened {
		if t.f != nil && (i < len(opened)-1 || stats[i].BytesWritten > 0) {
			paths = append(paths, shortPath(t.Path))
		}
	}
	if len(paths) == 0 {
		return err
	}
	return fmt.Errorf("%w; it had written %s in place, which may be partly restored", err, strings.Join(paths, ", "))
}

func (r *Repo) restoreDisk(ctx context.Context, im *Image, idx *Index, t *openTarget, prog *progress.Counter) (RestoreStats, error) {
	// Any known place will do, also in a pack gc condemned: the sweep keeps
	// what a backup needs, and every chunk read is checked against its hash.
	for _, id := range im.Chunks {
		if _, _, ok := idx.lookup(id); !id.IsZero() && !ok {
			return RestoreStats{}, fmt.Errorf("%w: chunk %s is missing from the repository", ErrCorrupt, id)
		}
	}
	if t.f == nil {
		return r.restoreNew(ctx, im, idx, t.RestoreTarget, prog)
	}
	f := t.direct()
	st, err := r.writeImage(ctx, f, im, idx, true, !t.isDev, prog)
	if err != nil {
		return st, err
	}
	if !t.isDev {
		if err := f.Truncate(im.Size); err != nil {
			return st, err
		}
	}
	return st, f.Sync()
}

// restoreNew writes im to a new file, which takes t's path once complete.
func (r *Repo) restoreNew(ctx context.Context, im *Image, idx *Index, t RestoreTarget, prog *progress.Counter) (RestoreStats, error) {
	dir, base := filepath.Split(t.Path)
	if dir == "" {
		dir = "."
	}
	removeStaleTemps(dir, base)
	tmp, err := createTemp(dir, base)
	if err != nil {
		return RestoreStats{}, err
	}
	defer tmp.discard()
	f := directio.Wrap(tmp.f)
	defer f.Close()
	if err := f.Truncate(im.Size); err != nil {
		return RestoreStats{}, err
	}
	st, err := r.writeImage(ctx, f, im, idx, false, true, prog)
	if err != nil {
		return st, err
	}
	if err := f.Sync(); err != nil {
		return st, err
	}
	if err := f.Chmod(0o600); err != nil {
		return st, err
	}
	if err := tmp.publish(t.Path, t.Overwrite); err != nil {
		return st, err
	}
	return st, syncDir(dir)
}

// restoreRun is chunks of an image whose blobs lie within restoreRead bytes
// of each other in one pack, read with one ranged get. A run of an in-place
// restore holds one chunk, so that chunks the target has are never fetched.
type restoreRun struct {
	pack       ID
	start, end int64 // byte range in the pack
	chunks     []int // image chunk indexes
}

// restoreRead is the most a restore reads from a pack at once.
const restoreRead = 4 << 20

// planRuns sends the runs of im to jobs. For a new file it visits the
// chunks in pack order, so that blobs a pack holds near each other are read
// together whatever their order in the image; zero chunks need nothing and
// are only counted. In place, every chunk is a run of its own.
func planRuns(ctx context.Context, im *Image, idx *Index, inPlace bool, prog *progress.Counter, jobs chan<- restoreRun) {
	defer close(jobs)
	send := func(run restoreRun) bool {
		select {
		case jobs <- run:
			return true
		case <-ctx.Done():
			return false
		}
	}
	if inPlace {
		for i, id := range im.Chunks {
			run := restoreRun{chunks: []int{i}}
			if !id.IsZero() {
				pack, loc, _ := idx.lookup(id)
				run.pack, run.start, run.end = pack, int64(loc.offset), int64(loc.offset)+int64(loc.length)
			}
			if !send(run) {
				return
			}
		}
		return
	}
	type placed struct {
		i   int
		loc location
	}
	var order []placed
	for i, id := range im.Chunks {
		if id.IsZero() {
			prog.AddSkipped(int64(im.chunkLen(i)))
		} else {
			order = append(order, placed{i, idx.chunks[id]})
		}
	}
	sort.Slice(order, func(a, b int) bool {
		la, lb := order[a].loc, order[b].loc
		return la.pack < lb.pack || la.pack == lb.pack && la.offset < lb.offset
	})
	var run *restoreRun
	for _, c := range order {
		pack := idx.packs[c.loc.pack]
		s, e := int64(c.loc.offset), int64(c.loc.offset)+int64(c.loc.length)
		if run != nil && run.pack == pack && e-run.start <= restoreRead {
			run.end = max(run.end, e)
			run.chunks = append(run.chunks, c.i)
			continue
		}
		if run != nil && !send(*run) {
			return
		}
		run = &restoreRun{pack: pack, start: s, end: e, chunks: []int{c.i}}
	}
	if run != nil {
		send(*run)
	}
}

// writeImage writes im's chunks into f. With inPlace, f's current content is
// read first and only differing chunks are written; otherwise f is a new,
// all-hole file and zero runs are skipped so it stays sparse.
func (r *Repo) writeImage(ctx context.Context, f *directio.File, im *Image, idx *Index, inPlace, canPunch bool, prog *progress.Counter) (RestoreStats, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var st restoreCounters
	st.flush = make(chan struct{}, 1)
	flushed := make(chan struct{})
	// Start writeback as data accumulates, so that the final fsync is short.
	// Most writes go around the page cache and need none; this is for those
	// that cannot (no direct I/O here, unaligned tails).
	go func() {
		defer close(flushed)
		for range st.flush {
			startWriteback(f.File)
		}
	}()
	defer func() { close(st.flush); <-flushed }()
	jobs := make(chan restoreRun, 16)
	go planRuns(ctx, im, idx, inPlace, prog, jobs)
	var wg sync.WaitGroup
	for range max(diskReaders, 2*runtime.GOMAXPROCS(0)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := restoreWorker{r: r, f: f, im: im, idx: idx, inPlace: inPlace, canPunch: canPunch,
				h: newChunkHasher(r.key), plain: directio.Alloc(im.ChunkSize), prog: prog, st: &st}
			if inPlace {
				w.cur = directio.Alloc(im.ChunkSize) // the target's own chunk
			}
			for run := range jobs {
				if err := w.do(ctx, run); err != nil {
					cancel(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	out := RestoreStats{BytesWritten: st.written.Load(), ChunksWritten: st.chunksWritten.Load(), ChunksRead: st.chunksRead.Load()}
	return out, context.Cause(ctx)
}

type restoreCounters struct {
	written, chunksWritten, chunksRead atomic.Int64
	flush                              chan struct{}
}

// writebackEvery is how much a restore writes between two requests to the
// kernel to start writing back.
const writebackEvery = 64 << 20

// restoreWorker restores runs of chunks; each worker goroutine has one.
type restoreWorker struct {
	r                 *Repo
	f                 *directio.File
	im                *Image
	idx               *Index
	inPlace, canPunch bool
	h                 chunkHasher
	cur, plain, buf   []byte
	prog              *progress.Counter
	st                *restoreCounters
}

func (w *restoreWorker) do(ctx context.Context, run restoreRun) error {
	first := run.chunks[0]
	if w.inPlace {
		n := w.im.chunkLen(first)
		same, err := chunkMatches(w.f, w.cur[:n], int64(first)*int64(w.im.ChunkSize), w.im.Chunks[first], w.h)
		if err != nil {
			return err
		}
		if same {
			w.prog.AddSkipped(int64(n))
			return nil
		}
	}
	if w.im.Chunks[first].IsZero() {
		n := int64(w.im.chunkLen(first))
		written, err := zeroRange(w.f, int64(first)*int64(w.im.ChunkSize), n, w.canPunch)
		w.count(written)
		w.prog.AddSkipped(n)
		return err
	}
	// Read whole aligned blocks, so that a local pack can be read around
	// the page cache.
	start := directio.RoundDown(run.start)
	need := directio.RoundUp(int(run.end - start))
	if cap(w.buf) < need {
		w.buf = directio.Alloc(need)
	}
	n, err := store.ReadAt(ctx, w.r.st, packName(run.pack), w.buf[:need], start)
	data := w.buf[:n]
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: pack %s is missing", ErrCorrupt, run.pack)
	}
	if err != nil {
		return fmt.Errorf("read pack %s: %w", run.pack, err)
	}
	for _, i := range run.chunks {
		id := w.im.Chunks[i]
		_, loc, _ := w.idx.lookup(id)
		lo, hi := int64(loc.offset)-start, int64(loc.offset)+int64(loc.length)-start
		if hi > int64(len(data)) {
			return fmt.Errorf("%w: pack %s is truncated", ErrCorrupt, run.pack)
		}
		plain, err := w.r.openBlob(data[lo:hi], loc, id, w.h, &w.plain)
		if err != nil {
			return fmt.Errorf("chunk %s in pack %s: %w", id, run.pack, err)
		}
		if loc.flags == 0 && w.f.Direct() {
			// A stored blob sits unaligned in the pack; move it to where
			// it can be written directly.
			plain = append(w.plain[:0], plain...)
		}
		w.st.chunksRead.Add(1)
		written, err := writeSparse(w.f, plain, int64(i)*int64(w.im.ChunkSize), w.inPlace)
		if err != nil {
			return err
		}
		w.count(written)
		w.prog.AddRead(int64(len(plain)))
	}
	return nil
}

func (w *restoreWorker) count(written int64) {
	if total := w.st.written.Add(written); total/writebackEvery != (total-written)/writebackEvery {
		select {
		case w.st.flush <- struct{}{}:
		default: // one is pending already
		}
	}
	w.st.chunksWritten.Add(1)
}

// chunkMatches reads the target's chunk at off into buf and reports whether
// it already holds the chunk id.
func chunkMatches(f *directio.File, buf []byte, off int64, id ID, h chunkHasher) (bool, error) {
	n, err := f.ReadAt(buf, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	if n < len(buf) {
		return false, nil // the target is shorter
	}
	if id.IsZero() {
		return isZero(buf), nil
	}
	return h.sum(buf) == id, nil
}

// openBlob decrypts and decompresses a blob into *buf, kept for the next
// one, and checks it against its chunk ID. A blob stored raw and not
// encrypted is returned as it is: a slice of blob, not of *buf. blob is
// never changed.
func (r *Repo) openBlob(blob []byte, loc location, id ID, h chunkHasher, buf *[]byte) ([]byte, error) {
	return r.openBlobWith(blob, loc, id, h, buf, nil)
}

// openBlobWith is openBlob, with *own, if own is not nil, holding a
// compressed blob between decryption and decompression (grown as needed
// and kept for the next blob) instead of a buffer from a shared pool: for
// a goroutine that opens blob after blob, so that a collection that empties
// the pool does not make it allocate again.
func (r *Repo) openBlobWith(blob []byte, loc location, id ID, h chunkHasher, buf, own *[]byte) ([]byte, error) {
	if (loc.flags&flagEncrypted != 0) != (r.sec != nil) {
		return nil, fmt.Errorf("%w: the blob is encrypted and the repository is not, or the other way round", ErrCorrupt)
	}
	var plain []byte
	var err error
	switch {
	case r.sec == nil:
		plain, err = decompress(blob, loc.flags, int(loc.raw), *buf)
	case loc.flags&flagZstd == 0:
		plain, err = r.sec.cipher.OpenBlob((*buf)[:0], id, blob)
		if err == nil && len(plain) != int(loc.raw) {
			err = fmt.Errorf("%w: blob length %d, want %d", ErrCorrupt, len(plain), loc.raw)
		}
	default:
		s := own
		if s == nil {
			s = scratch.Get().(*[]byte)
			defer scratch.Put(s)
		}
		if cap(*s) < len(blob) {
			// A compressed blob is smaller than its chunk: room for a
			// chunk's box serves every blob of the repository.
			*s = make([]byte, 0, max(len(blob), r.cfg.ChunkSize+crypt.BlobOverhead))
		}
		var z []byte
		if z, err = r.sec.cipher.OpenBlob((*s)[:0], id, blob); err == nil {
			plain, err = decompress(z, flagZstd, int(loc.raw), *buf)
		}
		*s = z[:0]
	}
	if err != nil {
		if errors.Is(err, crypt.ErrOpen) {
			err = fmt.Errorf("%w: the blob does not decrypt: damaged, moved, or not the chunk's", ErrCorrupt)
		}
		return nil, err
	}
	if loc.flags != 0 {
		*buf = plain
	}
	if h.sum(plain) != id {
		return nil, fmt.Errorf("%w: the chunk does not match its hash", ErrCorrupt)
	}
	return plain, nil
}

// scratch holds buffers for a compressed blob between decryption and
// decompression, for openBlob. They are allocated as blobs need them, not
// at MaxChunkSize: a pool is emptied by every collection, and a reader
// that runs under a soft memory limit collects often.
var scratch = sync.Pool{New: func() any { return new([]byte) }}

// storeChunk returns the blob that stores the chunk id of plain bytes data,
// made in dst (room for a chunk, an eighth more and crypt.BlobOverhead),
// and its flags: compressed when that makes it smaller, and sealed in an
// encrypted repository.
func (r *Repo) storeChunk(id ID, data, dst []byte) ([]byte, uint8) {
	if r.sec == nil {
		return compress(data, dst)
	}
	blob, flags := compress(data, dst[crypt.NonceSize:crypt.NonceSize])
	// A compressed blob lies where SealBlob seals in place; a raw one is
	// the chunk itself, sealed into dst.
	return r.sec.cipher.SealBlob(dst[:0], id, blob), flags | flagEncrypted
}

const blockSize = 4096

// writeSparse writes data at off. Into a new file (all holes) it writes only
// the runs of non-zero 4 KiB blocks; in place it writes everything.
func writeSparse(f *directio.File, data []byte, off int64, inPlace bool) (int64, error) {
	if inPlace {
		_, err := f.WriteAt(data, off)
		return int64(len(data)), err
	}
	var written int64
	for start := 0; start < len(data); {
		for start < len(data) && isZero(data[start:min(start+blockSize, len(data))]) {
			start += blockSize
		}
		if start >= len(data) {
			break
		}
		end := start
		for end < len(data) && !isZero(data[end:min(end+blockSize, len(data))]) {
			end += blockSize
		}
		end = min(end, len(data))
		if _, err := f.WriteAt(data[start:end], off+int64(start)); err != nil {
			return written, err
		}
		written += int64(end - start)
		start = end
	}
	return written, nil
}

var zeroBlock = directio.Alloc(MaxChunkSize)

// zeroRange makes [off, off+n) read as zeros: a punched hole in a file,
// written zeros on a device.
func zeroRange(f *directio.File, off, n int64, canPunch bool) (int64, error) {
	if canPunch && punchHole(f.File, off, n) == nil {
		return n, nil
	}
	_, err := f.WriteAt(zeroBlock[:n], off)
	return n, err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

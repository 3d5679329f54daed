package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/dropback/dropback/internal/directio"
	"github.com/dropback/dropback/pkg/store"
)

// DefaultCacheBytes is how many bytes of decompressed chunks a BackupReader
// keeps for ReadAt when ReadOptions leave it to the engine.
const DefaultCacheBytes = 32 << 20

// ReadOptions tune a BackupReader.
type ReadOptions struct {
	// CacheBytes bounds the decompressed chunks kept for ReadAt, shared by
	// every disk of the backup; 0 means DefaultCacheBytes. At least a few
	// chunks are always kept.
	CacheBytes int64
}

// BackupReader reads the disks of one backup in place, without restoring
// them: at any offset through a bounded cache of decompressed chunks
// (DiskReader.ReadAt), or front to back at the speed of a restore
// (DiskReader.Stream). Every chunk is checked against its ID before any of
// its bytes is returned; one that fails is an error wrapping ErrCorrupt,
// never data.
//
// It reads as an operation announced to gc: the one its opening context
// carries (WithOp), begun by the caller before it read the manifest, or
// else an export operation of its own, ended by Close. Once that operation
// loses its protection (its marker could not be refreshed, so gc may count
// it as gone), every read fails with an error wrapping ErrLostProtection
// and Done is closed.
//
// Its methods, and those of its disks, are safe for concurrent use.
type BackupReader struct {
	r     *Repo
	m     *Manifest
	op    *Op
	end   func()
	idx   *Index
	disks []*DiskReader
	cache *chunkCache
	pool  readerPool
	// mem is the memory reserved for the disks' maps (budget.go).
	mem []*memHold
}

// maxLoads is how many chunks ReadAt reads from packs at once: enough to
// keep two cores decompressing and a remote store busy, and few enough
// that the buffers they take stay few however many readers wait.
const maxLoads = 8

// OpenBackup opens backup m for reading: it loads the image index of each
// disk and the repository's index, and checks that every chunk the disks
// need is stored somewhere, so that a missing one is reported now
// (ErrCorrupt) rather than on the read that needs it.
func (r *Repo) OpenBackup(ctx context.Context, m *Manifest, opts ReadOptions) (*BackupReader, error) {
	op, end, _, err := r.readerOp(ctx, OpExport, m.HostID)
	if err != nil {
		return nil, err
	}
	b := &BackupReader{r: r, m: m, op: op, end: end}
	if err := b.load(op.Context()); err != nil {
		b.release()
		end()
		return nil, lostOr(op, err)
	}
	cacheBytes := opts.CacheBytes
	if cacheBytes <= 0 {
		cacheBytes = DefaultCacheBytes
	}
	b.cache = newChunkCache(int(max(4, cacheBytes/int64(r.cfg.ChunkSize))), r.cfg.ChunkSize, maxLoads)
	b.pool.init(r)
	return b, nil
}

func (b *BackupReader) load(ctx context.Context) error {
	if _, err := b.m.Images(); err != nil {
		return err
	}
	for i, d := range b.m.Disks {
		im, err := b.r.LoadDiskImage(ctx, b.m, i)
		if err != nil {
			return fmt.Errorf("read backup %d: %w", b.m.ID, err)
		}
		// The reader keeps a map of the disk, 4 bytes a chunk and the IDs
		// of its data chunks, in place of the image.
		b.mem = append(b.mem, im.mem)
		if err := im.mem.grow(diskMapMemory(im), fmt.Sprintf("the map of disk %s of backup %d", d.Name, b.m.ID)); err != nil {
			return fmt.Errorf("read backup %d: %w", b.m.ID, err)
		}
		b.disks = append(b.disks, &DiskReader{b: b, name: d.Name, im: newDiskMap(im)})
		im.mem.shrink(imageMemory(int64(len(im.Chunks))))
	}
	idx, problems, err := b.r.LoadIndex(ctx, b.m.segmentIDs()...)
	if err != nil {
		return err
	}
	for _, p := range problems {
		if !errors.Is(p, ErrCorrupt) {
			return fmt.Errorf("read backup %d: %w", b.m.ID, p)
		}
	}
	b.idx = idx
	b.mem = append(b.mem, idx.mem)
	for _, d := range b.disks {
		for _, id := range d.im.ids {
			if _, _, ok := idx.lookup(id); !ok {
				return fmt.Errorf("%w: disk %s of backup %d: chunk %s is missing from the repository", ErrCorrupt, d.name, b.m.ID, id)
			}
		}
	}
	return nil
}

// Manifest is the backup being read.
func (b *BackupReader) Manifest() *Manifest { return b.m }

// Disks returns a reader for each disk of the backup, in the manifest's
// order.
func (b *BackupReader) Disks() []*DiskReader { return b.disks }

// Done is closed when the reader can no longer read: its operation lost its
// protection (Err says so), or it ended.
func (b *BackupReader) Done() <-chan struct{} { return b.op.Context().Done() }

// Err returns the error wrapping ErrLostProtection once the reader's
// operation lost its protection, else nil.
func (b *BackupReader) Err() error {
	if cause := context.Cause(b.op.Context()); errors.Is(cause, ErrLostProtection) {
		return cause
	}
	return b.op.Check()
}

// Close ends the operation the reader began, if it began one. Reads after
// Close fail.
func (b *BackupReader) Close() error {
	b.end()
	b.release()
	return nil
}

// release gives back the memory reserved for the disks' maps and the
// index.
func (b *BackupReader) release() {
	for _, h := range b.mem {
		h.release()
	}
}

// diskMapMemory is what the diskMap of im takes.
func diskMapMemory(im *Image) int64 {
	data := int64(0)
	for _, id := range im.Chunks {
		if !id.IsZero() {
			data++
		}
	}
	return 4*int64(len(im.Chunks)) + imageMemory(data)
}

// ready fails once the reader may no longer read.
func (b *BackupReader) ready(ctx context.Context) error {
	if err := b.Err(); err != nil {
		return err
	}
	if err := b.op.Context().Err(); err != nil {
		return fmt.Errorf("read backup %d: the reader is closed", b.m.ID)
	}
	return ctx.Err()
}

// blobRun is chunks whose blobs lie close together in one pack, read with
// one ranged get.
type blobRun struct {
	pack       ID
	start, end int64 // byte range in the pack
	ids        []ID
}

// readState is what one goroutine needs to read runs: a hasher, a buffer
// for the packs' bytes and one for a compressed blob once decrypted, kept
// from one run to the next.
type readState struct {
	h       chunkHasher
	buf     []byte
	scratch []byte
}

// readerPool keeps readStates for the goroutines of ReadAt.
type readerPool struct{ p sync.Pool }

func (p *readerPool) init(r *Repo) {
	p.p.New = func() any { return &readState{h: newChunkHasher(r.key)} }
}

func (p *readerPool) get() *readState  { return p.p.Get().(*readState) }
func (p *readerPool) put(s *readState) { p.p.Put(s) }

// readRun reads the blobs of run with one ranged get, opens each
// (decompresses it and checks it against its chunk ID) and calls fn with
// its index in run.ids and its plain bytes, decompressed into plain[k] when
// plain is not nil and the blob is compressed, else a slice of the bytes
// read. The bytes are valid until the next readRun with the same state.
// This is the one place where a reader of backups reads chunks.
func (b *BackupReader) readRun(ctx context.Context, s *readState, run blobRun, plain [][]byte, fn func(k int, data []byte) error) error {
	if err := b.ready(ctx); err != nil {
		return err
	}
	// Whole aligned blocks, so that a local pack is read around the page
	// cache.
	start := directio.RoundDown(run.start)
	need := directio.RoundUp(int(run.end - start))
	if cap(s.buf) < need {
		s.buf = directio.Alloc(need)
	}
	n, err := store.ReadAt(ctx, b.r.st, packName(run.pack), s.buf[:need], start)
	data := s.buf[:n]
	if errors.Is(err, store.ErrNotFound) {
		return lostOr(b.op, fmt.Errorf("%w: pack %s is missing", ErrCorrupt, run.pack))
	}
	if err != nil {
		return lostOr(b.op, fmt.Errorf("read pack %s: %w", run.pack, err))
	}
	for k, id := range run.ids {
		_, loc, _ := b.idx.lookup(id)
		lo, hi := int64(loc.offset)-start, int64(loc.offset)+int64(loc.length)-start
		if lo < 0 || hi > int64(len(data)) {
			return fmt.Errorf("%w: pack %s is truncated", ErrCorrupt, run.pack)
		}
		var dst []byte
		if plain != nil {
			dst = plain[k]
		}
		out, err := b.r.openBlobWith(data[lo:hi], loc, id, s.h, &dst, &s.scratch)
		if err != nil {
			return fmt.Errorf("chunk %s in pack %s: %w", id, run.pack, err)
		}
		if err := fn(k, out); err != nil {
			return err
		}
	}
	return nil
}

// runOf is the run of the one chunk id.
func (b *BackupReader) runOf(id ID) blobRun {
	pack, loc, _ := b.idx.lookup(id)
	return blobRun{pack: pack, start: int64(loc.offset), end: int64(loc.offset) + int64(loc.length), ids: []ID{id}}
}

// loadChunk reads chunk id into dst, which has room for a whole chunk,
// and returns its plain bytes.
func (b *BackupReader) loadChunk(ctx context.Context, id ID, dst []byte) ([]byte, error) {
	s := b.pool.get()
	defer b.pool.put(s)
	var out []byte
	err := b.readRun(ctx, s, b.runOf(id), [][]byte{dst[:0]}, func(_ int, data []byte) error {
		if len(data) > 0 && &data[0] == &dst[:1][0] {
			out = data // decompressed into dst
		} else {
			out = append(dst[:0], data...)
		}
		return nil
	})
	return out, err
}

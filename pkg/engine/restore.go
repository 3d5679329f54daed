package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
)

// RestoreTarget says where one disk of a backup goes.
type RestoreTarget struct {
	Path string
	// InPlace reads the target and writes only the chunks that differ. When
	// false, a new sparse file is written beside Path and renamed over it
	// once complete, so a failed restore leaves no half-written file. A
	// block device is always restored in place.
	InPlace bool
}

// RestoreStats counts what a restore did.
type RestoreStats struct {
	BytesWritten  int64
	ChunksWritten int64
	ChunksRead    int64
}

// Restore writes every disk of backup m to its target. Every chunk written is
// re-hashed and checked against its ID first; a damaged or missing chunk fails
// the restore with ErrCorrupt.
func (r *Repo) Restore(ctx context.Context, m *Manifest, targets []RestoreTarget, progressFn func(done, total int64)) ([]RestoreStats, error) {
	if len(targets) != len(m.Disks) {
		return nil, errorf(ErrInvalid, "backup %d has %d disks, %d targets given", m.ID, len(m.Disks), len(targets))
	}
	imageIDs, err := m.Images()
	if err != nil {
		return nil, err
	}
	images := make([]*Image, len(imageIDs))
	var total int64
	for i, id := range imageIDs {
		if images[i], err = r.LoadImage(ctx, id); err != nil {
			return nil, fmt.Errorf("restore backup %d: %w", m.ID, err)
		}
		total += images[i].Size
	}
	idx, _, err := r.LoadIndex(ctx, m.segmentIDs()...)
	if err != nil {
		return nil, err
	}
	prog := &progress{fn: progressFn, total: total}
	stats := make([]RestoreStats, len(targets))
	for i, t := range targets {
		if stats[i], err = r.restoreDisk(ctx, images[i], idx, t, prog); err != nil {
			return stats, fmt.Errorf("restore disk %s of backup %d to %s: %w", m.Disks[i].Name, m.ID, t.Path, err)
		}
	}
	return stats, nil
}

func (r *Repo) restoreDisk(ctx context.Context, im *Image, idx *Index, t RestoreTarget, prog *progress) (RestoreStats, error) {
	for _, id := range im.Chunks {
		if !id.IsZero() && !idx.Has(id) {
			return RestoreStats{}, fmt.Errorf("%w: chunk %s is missing from the repository", ErrCorrupt, id)
		}
	}
	fi, err := os.Stat(t.Path)
	isDev := err == nil && fi.Mode()&os.ModeDevice != 0
	if t.InPlace || isDev {
		f, err := os.OpenFile(t.Path, os.O_RDWR, 0)
		if err != nil {
			return RestoreStats{}, err
		}
		defer f.Close()
		st, err := r.writeImage(ctx, f, im, idx, true, !isDev, prog)
		if err != nil {
			return st, err
		}
		if !isDev {
			if err := f.Truncate(im.Size); err != nil {
				return st, err
			}
		}
		return st, f.Sync()
	}
	dir, base := filepath.Split(t.Path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".dropback-")
	if err != nil {
		return RestoreStats{}, err
	}
	defer func() {
		f.Close()
		os.Remove(f.Name()) // harmless after the rename
	}()
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
	if err := os.Rename(f.Name(), t.Path); err != nil {
		return st, err
	}
	return st, syncDir(dir)
}

// writeImage writes im's chunks into f. With inPlace, f's current content is
// read first and only differing chunks are written; otherwise f is a new,
// all-hole file and zero runs are skipped so it stays sparse.
func (r *Repo) writeImage(ctx context.Context, f *os.File, im *Image, idx *Index, inPlace, canPunch bool, prog *progress) (RestoreStats, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var written, chunksWritten, chunksRead atomic.Int64
	jobs := make(chan int, 16)
	go func() {
		defer close(jobs)
		for i, id := range im.Chunks {
			if id.IsZero() && !inPlace {
				prog.add(int64(im.chunkLen(i)))
				continue
			}
			select {
			case jobs <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for range max(diskReaders, 2*runtime.GOMAXPROCS(0)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := newChunkHasher(r.key)
			cur := make([]byte, im.ChunkSize)
			var blobBuf, plainBuf []byte
			for i := range jobs {
				n := im.chunkLen(i)
				off := int64(i) * int64(im.ChunkSize)
				id := im.Chunks[i]
				if inPlace {
					same, err := chunkMatches(f, cur[:n], off, id, h)
					if err != nil {
						cancel(err)
						return
					}
					if same {
						prog.add(int64(n))
						continue
					}
				}
				var w int64
				var err error
				if id.IsZero() {
					w, err = zeroRange(f, off, int64(n), canPunch)
				} else {
					var plain []byte
					plain, blobBuf, plainBuf, err = r.readChunk(ctx, idx, id, h, blobBuf, plainBuf)
					if err == nil {
						chunksRead.Add(1)
						w, err = writeSparse(f, plain, off, inPlace)
					}
				}
				if err != nil {
					cancel(err)
					return
				}
				written.Add(w)
				chunksWritten.Add(1)
				prog.add(int64(n))
			}
		}()
	}
	wg.Wait()
	st := RestoreStats{BytesWritten: written.Load(), ChunksWritten: chunksWritten.Load(), ChunksRead: chunksRead.Load()}
	return st, context.Cause(ctx)
}

// chunkMatches reads the target's chunk at off into buf and reports whether
// it already holds the chunk id.
func chunkMatches(f *os.File, buf []byte, off int64, id ID, h chunkHasher) (bool, error) {
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

// readChunk fetches, decompresses and checks one chunk.
func (r *Repo) readChunk(ctx context.Context, idx *Index, id ID, h chunkHasher, blobBuf, plainBuf []byte) (plain, blob, pbuf []byte, err error) {
	pack, loc, ok := idx.lookup(id)
	if !ok {
		return nil, blobBuf, plainBuf, fmt.Errorf("%w: chunk %s is missing from the repository", ErrCorrupt, id)
	}
	blob, err = r.st.Get(ctx, packName(pack), int64(loc.offset), int64(loc.length))
	if err != nil {
		return nil, blobBuf, plainBuf, fmt.Errorf("%w: read chunk %s from pack %s: %v", ErrCorrupt, id, pack, err)
	}
	if len(blob) != int(loc.length) {
		return nil, blob, plainBuf, fmt.Errorf("%w: pack %s is truncated", ErrCorrupt, pack)
	}
	plain, err = decompress(blob, loc.flags, int(loc.raw), plainBuf)
	if err != nil {
		return nil, blob, plainBuf, fmt.Errorf("chunk %s in pack %s: %w", id, pack, err)
	}
	if loc.flags != 0 {
		plainBuf = plain
	}
	if h.sum(plain) != id {
		return nil, blob, plainBuf, fmt.Errorf("%w: chunk %s in pack %s does not match its hash", ErrCorrupt, id, pack)
	}
	return plain, blob, plainBuf, nil
}

const blockSize = 4096

// writeSparse writes data at off. Into a new file (all holes) it writes only
// the runs of non-zero 4 KiB blocks; in place it writes everything.
func writeSparse(f *os.File, data []byte, off int64, inPlace bool) (int64, error) {
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

var zeroBlock = make([]byte, MaxChunkSize)

// zeroRange makes [off, off+n) read as zeros: a punched hole in a file,
// written zeros on a device.
func zeroRange(f *os.File, off, n int64, canPunch bool) (int64, error) {
	if canPunch && punchHole(f, off, n) == nil {
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

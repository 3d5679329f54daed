package engine

import (
	"context"
	"fmt"
	"io"
	"slices"
)

// DiskReader reads one disk of a backup; see BackupReader.
type DiskReader struct {
	b    *BackupReader
	name string
	im   *diskMap
}

// Name is the disk's name in the backup.
func (d *DiskReader) Name() string { return d.name }

// Size is the disk's size in bytes.
func (d *DiskReader) Size() int64 { return d.im.Size }

// ChunkSize is the size of the disk's chunks: the granularity of Extents.
func (d *DiskReader) ChunkSize() int { return d.im.ChunkSize }

// Extent is a run of a disk's bytes: data, or zeros (Zero) that the
// repository does not store, because they were a hole of the disk or a
// chunk of written zeros.
type Extent struct {
	Offset int64
	Length int64
	Zero   bool
}

// End is the offset just past the extent.
func (e Extent) End() int64 { return e.Offset + e.Length }

// Extents describes [off, off+length) of the disk, cut to the disk's size,
// as alternating runs of data and zeros in ascending order with no gaps. A
// chunk is data when it holds a single non-zero byte, so a data extent may
// hold zeros too.
func (d *DiskReader) Extents(off, length int64) []Extent {
	end := min(off+length, d.im.Size)
	if off < 0 || off >= end {
		return nil
	}
	cs := int64(d.im.ChunkSize)
	var out []Extent
	for i := off / cs; i*cs < end; i++ {
		s, e := max(i*cs, off), min((i+1)*cs, end)
		zero := d.im.zero(int(i))
		if n := len(out); n > 0 && out[n-1].Zero == zero {
			out[n-1].Length += e - s
			continue
		}
		out = append(out, Extent{Offset: s, Length: e - s, Zero: zero})
	}
	return out
}

// DataBytes is the number of bytes of the disk in data chunks.
func (d *DiskReader) DataBytes() int64 {
	var n int64
	for i := range d.im.count() {
		if !d.im.zero(i) {
			n += int64(d.im.chunkLen(i))
		}
	}
	return n
}

// ReadAt reads len(p) bytes at off, as io.ReaderAt does: fewer only at the
// end of the disk, with io.EOF. Chunks come from the reader's cache, or are
// read from their packs, checked and cached.
func (d *DiskReader) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%w: read at offset %d", ErrInvalid, off)
	}
	if off >= d.im.Size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	// Cached chunks too are served only while the reader may read.
	if err := d.b.ready(ctx); err != nil {
		return 0, err
	}
	want := len(p)
	p = p[:min(int64(len(p)), d.im.Size-off)]
	cs := int64(d.im.ChunkSize)
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		i, within := int(pos/cs), int(pos%cs)
		k := min(len(p)-n, d.im.chunkLen(i)-within)
		if err := d.copyChunk(ctx, i, within, p[n:n+k]); err != nil {
			return n, fmt.Errorf("read disk %s of backup %d at offset %d: %w", d.name, d.b.m.ID, pos, err)
		}
		n += k
	}
	if n < want {
		return n, io.EOF
	}
	return n, nil
}

// copyChunk copies bytes of chunk i from within into p.
func (d *DiskReader) copyChunk(ctx context.Context, i, within int, p []byte) error {
	id := d.im.id(i)
	if id.IsZero() {
		clear(p)
		return nil
	}
	e, err := d.b.cache.get(ctx, id, func(buf []byte) ([]byte, error) {
		return d.b.loadChunk(ctx, id, buf)
	})
	if err != nil {
		return err
	}
	defer d.b.cache.release(e)
	if len(e.data) != d.im.chunkLen(i) {
		return fmt.Errorf("%w: chunk %s has %d bytes, not %d", ErrCorrupt, id, len(e.data), d.im.chunkLen(i))
	}
	copy(p, e.data[within:])
	return nil
}

// diskMap is an image index as a reader keeps it: the IDs of the data
// chunks, in disk order, and for each chunk where its ID is (0 for a zero
// chunk). A sparse disk costs 4 bytes a chunk, not the image's 32.
type diskMap struct {
	Size      int64
	ChunkSize int
	ids       []ID
	at        []uint32 // 1 + index into ids, or 0
}

func newDiskMap(im *Image) *diskMap {
	m := &diskMap{Size: im.Size, ChunkSize: im.ChunkSize, at: make([]uint32, len(im.Chunks))}
	for i, id := range im.Chunks {
		if !id.IsZero() {
			m.ids = append(m.ids, id)
			m.at[i] = uint32(len(m.ids))
		}
	}
	m.ids = slices.Clip(m.ids)
	return m
}

// count is the number of chunks.
func (m *diskMap) count() int { return len(m.at) }

// id is the ID of chunk i, ZeroID for a zero chunk.
func (m *diskMap) id(i int) ID {
	if k := m.at[i]; k != 0 {
		return m.ids[k-1]
	}
	return ZeroID
}

// zero reports whether chunk i is a zero chunk.
func (m *diskMap) zero(i int) bool { return m.at[i] == 0 }

// chunkLen is the length of chunk i.
func (m *diskMap) chunkLen(i int) int {
	return int(min(int64(m.ChunkSize), m.Size-int64(i)*int64(m.ChunkSize)))
}

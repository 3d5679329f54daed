package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dropback/dropback/pkg/store"

	"github.com/dropback/dropback/internal/directio"
)

const (
	packMagic    = "DBPACK01"
	packEndMagic = "DBPKEND1"
	indexMagic   = "DBINDX01"
	entrySize    = 32 + 4 + 4 + 4 + 1

	// packTarget is the size at which a pack is closed.
	packTarget = 16 << 20
)

// Entry locates one blob inside a pack.
type Entry struct {
	Chunk  ID
	Offset uint32
	Length uint32 // stored bytes
	Raw    uint32 // plain bytes
	Flags  uint8
}

func appendEntry(b []byte, e Entry) []byte {
	b = append(b, e.Chunk[:]...)
	b = binary.LittleEndian.AppendUint32(b, e.Offset)
	b = binary.LittleEndian.AppendUint32(b, e.Length)
	b = binary.LittleEndian.AppendUint32(b, e.Raw)
	return append(b, e.Flags)
}

func readEntry(b []byte) Entry {
	var e Entry
	copy(e.Chunk[:], b)
	e.Offset = binary.LittleEndian.Uint32(b[32:])
	e.Length = binary.LittleEndian.Uint32(b[36:])
	e.Raw = binary.LittleEndian.Uint32(b[40:])
	e.Flags = b[44]
	return e
}

// packBuilder accumulates blobs into one pack.
type packBuilder struct {
	buf     []byte
	entries []Entry
}

func newPackBuilder(chunkSize int) *packBuilder {
	// Room for a full pack, one more chunk and the trailer: the buffer
	// never grows.
	// It is aligned so that a local store can write it around the page
	// cache.
	b := &packBuilder{buf: directio.Alloc(packTarget + chunkSize + chunkSize/8 + 64<<10)[:0]}
	b.buf = append(b.buf, packMagic...)
	return b
}

func (p *packBuilder) add(id ID, blob []byte, raw int, flags uint8) {
	p.entries = append(p.entries, Entry{
		Chunk: id, Offset: uint32(len(p.buf)), Length: uint32(len(blob)),
		Raw: uint32(raw), Flags: flags,
	})
	p.buf = append(p.buf, blob...)
}

func (p *packBuilder) full() bool {
	return len(p.buf) >= packTarget || len(p.entries) >= maxPackEntries
}

func (p *packBuilder) empty() bool { return len(p.entries) == 0 }

// finish appends the trailer and returns the pack's bytes and ID. The ID is
// the hash of the trailer, which names every chunk by its own hash, so it
// identifies the pack's content without hashing the blobs a second time.
func (p *packBuilder) finish() ([]byte, ID) {
	start := len(p.buf)
	for _, e := range p.entries {
		p.buf = appendEntry(p.buf, e)
	}
	p.buf = binary.LittleEndian.AppendUint32(p.buf, uint32(len(p.entries)))
	p.buf = append(p.buf, packEndMagic...)
	return p.buf, contentID(p.buf[start:])
}

// shifted returns a copy of the finished pack data, of entries, with pad
// zero bytes between the magic and the first blob, its entries and its ID:
// the same blobs under another name.
func shifted(data []byte, entries []Entry, pad int) ([]byte, []Entry, ID) {
	end := len(data) - 12 - len(entries)*entrySize
	out := make([]byte, 0, len(data)+pad)
	out = append(out, data[:len(packMagic)]...)
	out = append(out, make([]byte, pad)...)
	out = append(out, data[len(packMagic):end]...)
	moved := make([]Entry, len(entries))
	start := len(out)
	for i, e := range entries {
		e.Offset += uint32(pad)
		moved[i] = e
		out = appendEntry(out, e)
	}
	out = binary.LittleEndian.AppendUint32(out, uint32(len(entries)))
	out = append(out, packEndMagic...)
	return out, moved, contentID(out[start:])
}

// parsePackTrailer reads the entries a pack lists for itself.
func parsePackTrailer(pack []byte) ([]Entry, error) {
	if len(pack) < len(packMagic)+4+len(packEndMagic) || string(pack[:8]) != packMagic ||
		string(pack[len(pack)-8:]) != packEndMagic {
		return nil, fmt.Errorf("%w: not a pack", ErrCorrupt)
	}
	n := int(binary.LittleEndian.Uint32(pack[len(pack)-12:]))
	start := len(pack) - 12 - n*entrySize
	if n < 0 || start < 8 {
		return nil, fmt.Errorf("%w: pack trailer of %d entries does not fit", ErrCorrupt, n)
	}
	return trailerEntries(pack[start:], n, int64(start))
}

// trailerEntries reads the n entries at the start of b, a pack's trailer,
// each checked to lie among the pack's blobs, which end at end.
func trailerEntries(b []byte, n int, end int64) ([]Entry, error) {
	entries := make([]Entry, n)
	for i := range entries {
		e := readEntry(b[i*entrySize:])
		if int64(e.Offset) < int64(len(packMagic)) || int64(e.Offset)+int64(e.Length) > end {
			return nil, fmt.Errorf("%w: pack entry %d out of range", ErrCorrupt, i)
		}
		if err := checkEntry(e); err != nil {
			return nil, fmt.Errorf("pack entry %d: %w", i, err)
		}
		entries[i] = e
	}
	return entries, nil
}

// PackIndex lists the entries of one pack.
type PackIndex struct {
	Pack    ID
	Entries []Entry
}

// segmentGroups splits packs into groups of about segmentTarget bytes of
// index segment each.
func segmentGroups(packs []PackIndex) [][]PackIndex {
	var out [][]PackIndex
	start, size := 0, 12
	for i, p := range packs {
		n := 36 + len(p.Entries)*entrySize
		if i > start && size+n > segmentTarget {
			out = append(out, packs[start:i])
			start, size = i, 12
		}
		size += n
	}
	if start < len(packs) {
		out = append(out, packs[start:])
	}
	return out
}

// encodeIndexSegments serialises packs as index segments of about
// segmentTarget bytes each.
func encodeIndexSegments(packs []PackIndex) [][]byte {
	var out [][]byte
	for _, g := range segmentGroups(packs) {
		out = append(out, encodeIndexSegment(g))
	}
	return out
}

// putSegments writes packs as index segments and returns their IDs.
func (r *Repo) putSegments(ctx context.Context, packs []PackIndex) ([]ID, error) {
	var ids []ID
	for _, g := range segmentGroups(packs) {
		id, err := r.putSegment(ctx, g)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// putSegment writes one index segment and returns its ID. Its name is
// never that of a damaged segment: then the same packs are written with
// one more empty record of the first pack, which means the same and reads
// as other bytes.
func (r *Repo) putSegment(ctx context.Context, packs []PackIndex) (ID, error) {
	for variant := 0; variant < maxVariants; variant++ {
		g := packs
		for range variant {
			g = append(g[:len(g):len(g)], PackIndex{Pack: packs[0].Pack})
		}
		data := encodeIndexSegment(g)
		id := contentID(data)
		err := r.putObject(ctx, "index/"+id.String(), data)
		if errors.Is(err, errNameDamaged) {
			continue
		}
		return id, err
	}
	return ID{}, fmt.Errorf("write index segment: %d encodings of it are taken by damaged objects", maxVariants)
}

// encodeIndexSegment serialises an index segment.
func encodeIndexSegment(packs []PackIndex) []byte {
	out := binary.LittleEndian.AppendUint32([]byte(indexMagic), uint32(len(packs)))
	for _, p := range packs {
		out = append(out, p.Pack[:]...)
		out = binary.LittleEndian.AppendUint32(out, uint32(len(p.Entries)))
		for _, e := range p.Entries {
			out = appendEntry(out, e)
		}
	}
	return out
}

// decodeIndexSegment parses an index segment.
func decodeIndexSegment(data []byte) ([]PackIndex, error) {
	if len(data) < 12 || string(data[:8]) != indexMagic {
		return nil, fmt.Errorf("%w: not an index segment", ErrCorrupt)
	}
	n := binary.LittleEndian.Uint32(data[8:])
	data = data[12:]
	var packs []PackIndex
	for i := uint32(0); i < n; i++ {
		if len(data) < 36 {
			return nil, fmt.Errorf("%w: index segment truncated", ErrCorrupt)
		}
		var p PackIndex
		copy(p.Pack[:], data)
		m := int(binary.LittleEndian.Uint32(data[32:]))
		data = data[36:]
		if m < 0 || m > len(data)/entrySize {
			return nil, fmt.Errorf("%w: index segment truncated", ErrCorrupt)
		}
		p.Entries = make([]Entry, m)
		for j := range p.Entries {
			p.Entries[j] = readEntry(data[j*entrySize:])
			if err := checkEntry(p.Entries[j]); err != nil {
				return nil, fmt.Errorf("pack %s: %w", p.Pack, err)
			}
		}
		data = data[m*entrySize:]
		packs = append(packs, p)
	}
	if len(data) != 0 {
		return nil, fmt.Errorf("%w: index segment has %d trailing bytes", ErrCorrupt, len(data))
	}
	return packs, nil
}

func packName(id ID) string {
	s := id.String()
	return "packs/" + s[:2] + "/" + s
}

// putPack writes a finished pack. A pack of that name that exists already
// holds the same blobs, unless it was damaged since, or gc condemned it (it
// is in avoid) and may delete it any time. It is never replaced: when it is
// condemned, cannot be read back, or any blob in it does not match its
// chunk, the blobs are written again as a pack of another name (shifted),
// and the old one is left for verify to report and gc to collect. It returns
// the name and entries of the pack that holds the blobs.
func (r *Repo) putPack(ctx context.Context, data []byte, id ID, entries []Entry, avoid map[ID]bool) (ID, []Entry, error) {
	for pad := 1; ; pad++ {
		err := errCondemned
		if !avoid[id] {
			err = r.st.Put(ctx, packName(id), data)
		}
		if err == nil {
			return id, entries, nil
		}
		if !errors.Is(err, store.ErrExists) && err != errCondemned {
			return id, nil, fmt.Errorf("write pack %s: %w", id, err)
		}
		if err != errCondemned && r.packIntact(ctx, id, data) {
			return id, entries, nil
		}
		if ctx.Err() != nil || pad > 16 {
			return id, nil, fmt.Errorf("write pack %s: it exists and is damaged, and so are %d others of the same blobs", id, pad-1)
		}
		data, entries, id = shifted(data, entries, pad)
	}
}

// errCondemned stands for a pack name gc condemned: one not to take.
var errCondemned = errors.New("condemned")

// packIntact reports whether the stored pack id holds exactly want, the
// bytes of a pack of that name, or at least a trailer equal to want's and
// every blob matching its chunk (a compressor may store a chunk otherwise).
func (r *Repo) packIntact(ctx context.Context, id ID, want []byte) bool {
	got, err := r.st.Get(ctx, packName(id), 0, int64(len(want))+1)
	if err != nil {
		return false
	}
	if bytes.Equal(got, want) {
		return true
	}
	entries, err := parsePackTrailer(got)
	if err != nil || contentID(got[len(got)-12-len(entries)*entrySize:]) != id {
		return false
	}
	h := newChunkHasher(r.key)
	var buf []byte
	for _, e := range entries {
		l := location{offset: e.Offset, length: e.Length, raw: e.Raw, flags: e.Flags}
		if _, err := r.openBlob(got[e.Offset:e.Offset+e.Length], l, e.Chunk, h, &buf); err != nil {
			return false
		}
	}
	return true
}

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
	// packSealedMagic ends a pack of an encrypted repository, whose
	// trailer is sealed.
	packSealedMagic = "DBPKENC1"
	indexMagic      = "DBINDX01"
	entrySize       = 32 + 4 + 4 + 4 + 1

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

// finish appends the trailer and returns the pack's bytes and ID.
func (p *packBuilder) finish(r *Repo) ([]byte, ID) {
	var id ID
	p.buf, id = r.closePack(p.buf, p.entries)
	return p.buf, id
}

// closePack appends to buf, the magic and blobs of a pack, the trailer that
// lists entries, and returns the pack and its ID. The ID is the hash of the
// plain trailer, which names every chunk by its own hash, so it identifies
// the pack's content without hashing the blobs a second time. In an
// encrypted repository the hash is keyed with the name key and the trailer
// is sealed:
//
//	sealed trailer (crypt.SealTrailer)   the plain trailer below, boxed
//	sealed trailer length    uint32
//	"DBPKENC1"
func (r *Repo) closePack(buf []byte, entries []Entry) ([]byte, ID) {
	start := len(buf)
	for _, e := range entries {
		buf = appendEntry(buf, e)
	}
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(entries)))
	buf = append(buf, packEndMagic...)
	id := r.contentID(buf[start:])
	if r.sec == nil {
		return buf, id
	}
	plain := append([]byte(nil), buf[start:]...)
	buf = r.sec.cipher.SealTrailer(buf[:start], plain)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(buf)-start))
	return append(buf, packSealedMagic...), id
}

// shifted returns a copy of the finished pack data, of entries, with pad
// zero bytes between the magic and the first blob, its entries and its ID:
// the same blobs under another name.
func (r *Repo) shifted(data []byte, entries []Entry, pad int) ([]byte, []Entry, ID) {
	end := int64(len(packMagic))
	for _, e := range entries {
		end = max(end, int64(e.Offset)+int64(e.Length))
	}
	out := make([]byte, 0, len(data)+pad)
	out = append(out, data[:len(packMagic)]...)
	out = append(out, make([]byte, pad)...)
	out = append(out, data[len(packMagic):end]...)
	moved := make([]Entry, len(entries))
	for i, e := range entries {
		e.Offset += uint32(pad)
		moved[i] = e
	}
	out, id := r.closePack(out, moved)
	return out, moved, id
}

// parsePackTrailer reads the entries a whole pack lists for itself, and
// its plain trailer.
func (r *Repo) parsePackTrailer(pack []byte) ([]Entry, []byte, error) {
	if len(pack) < len(packMagic)+4+len(packEndMagic) || string(pack[:8]) != packMagic {
		return nil, nil, fmt.Errorf("%w: not a pack", ErrCorrupt)
	}
	tail := pack[len(pack)-12:]
	tlen, err := r.trailerLen(tail, "a pack")
	if err != nil {
		return nil, nil, err
	}
	start := int64(len(pack)) - tlen
	if start < int64(len(packMagic)) {
		return nil, nil, fmt.Errorf("%w: pack trailer of %d bytes does not fit", ErrCorrupt, tlen)
	}
	plain, err := r.openTrailer(pack[start:], "a pack")
	if err != nil {
		return nil, nil, err
	}
	entries, err := decodeTrailer(plain, start)
	return entries, plain, err
}

// trailerLen reads the length of a pack's trailer, all of what follows its
// blobs, from the pack's last 12 bytes.
func (r *Repo) trailerLen(tail []byte, what string) (int64, error) {
	n := int64(binary.LittleEndian.Uint32(tail))
	switch {
	case string(tail[4:]) == packEndMagic && r.sec == nil:
		return n*entrySize + 12, nil
	case string(tail[4:]) == packSealedMagic && r.sec != nil:
		return n + 12, nil
	case string(tail[4:]) == packEndMagic || string(tail[4:]) == packSealedMagic:
		return 0, errorf(ErrCorrupt, "%s is encrypted and the repository is not, or the other way round", what)
	}
	return 0, errorf(ErrCorrupt, "%s has no trailer", what)
}

// openTrailer returns the plain trailer of a pack from all of what follows
// its blobs: the trailer itself, or in an encrypted repository its box,
// length and magic.
func (r *Repo) openTrailer(t []byte, what string) ([]byte, error) {
	if r.sec == nil {
		return t, nil
	}
	plain, err := r.sec.cipher.OpenTrailer(t[:len(t)-12])
	if err != nil {
		return nil, errorf(ErrCorrupt, "the trailer of %s does not decrypt", what)
	}
	return plain, nil
}

// decodeTrailer reads a plain trailer, the entries of a pack whose blobs end
// at end.
func decodeTrailer(plain []byte, end int64) ([]Entry, error) {
	if len(plain) < 12 || string(plain[len(plain)-8:]) != packEndMagic {
		return nil, fmt.Errorf("%w: not a pack trailer", ErrCorrupt)
	}
	n := int64(binary.LittleEndian.Uint32(plain[len(plain)-12:]))
	if n*entrySize+12 != int64(len(plain)) {
		return nil, fmt.Errorf("%w: pack trailer of %d entries does not fit", ErrCorrupt, n)
	}
	return trailerEntries(plain, int(n), end)
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
	return groupsOf(packs, 12, segmentTarget, func(p PackIndex) int { return 36 + len(p.Entries)*entrySize })
}

// groupsOf splits items, in order, into groups of about target bytes each,
// an item taking size(item) and a group head bytes besides; an item is
// never split, and a group holds at least one.
func groupsOf[T any](items []T, head, target int, size func(T) int) [][]T {
	var out [][]T
	start, n := 0, head
	for i, item := range items {
		k := size(item)
		if i > start && n+k > target {
			out = append(out, items[start:i])
			start, n = i, head
		}
		n += k
	}
	if start < len(items) {
		out = append(out, items[start:])
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
		id := r.contentID(data)
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
		data, entries, id = r.shifted(data, entries, pad)
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
	entries, plain, err := r.parsePackTrailer(got)
	if err != nil || r.contentID(plain) != id {
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

package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/dropback/dropback/pkg/store"
)

// location is where a chunk is stored: a compact form of Entry.
type location struct {
	pack   uint32 // index into Index.packs
	offset uint32
	length uint32
	raw    uint32
	flags  uint8
}

// Index maps chunk IDs to their place in packs. It is built from the index
// segments in the repository; its memory is about 70 bytes per unique chunk.
type Index struct {
	packs     []ID
	packNum   map[ID]uint32
	chunks    map[ID]location
	segments  map[ID][]ID // segment -> packs it lists
	condemned map[ID]bool // packs gc has marked for deletion
	// condemnedImages are the images gc has marked for deletion: a backup
	// never takes one for its own.
	condemnedImages map[ID]bool
	damaged         damage // places verify found damaged (damaged.go)
	// listedPacks, when not nil, are the packs a listing made as the index
	// was read showed: of two places of a chunk, one in a pack the listing
	// did not show ranks below, since a segment written by a gc that was
	// paused unawares may still name a pack another gc deleted since.
	listedPacks map[ID]store.Info
	// mem is the memory reserved for the index (budget.go), or nil.
	mem *memHold
}

// release gives back the memory reserved for the index, which is not used
// after. It may be called more than once, and on nil.
func (x *Index) release() {
	if x != nil {
		x.mem.release()
	}
}

// What the index takes, as reserved from the memory budget: the bytes of
// each segment while it is read and decoded; indexDecoded bytes per byte
// of segment from then until the index is built (its decoded entries, and
// the map they go into: the 45 bytes of an entry become 48 decoded and up
// to 112 in the map, measured with a million entries); once built,
// indexHeld (the map alone); and listEntryMemory per segment or pack a
// listing shows.
const (
	indexDecoded    = 4
	indexHeld       = 3
	listEntryMemory = 256
	// setEntryMemory is what a chunk takes in a set of chunk IDs
	// (map[ID]bool: measured from 53 to 80 bytes as it grows).
	setEntryMemory = 80
)

// segmentBytes is the size of the segment that lists packs.
func segmentBytes(packs []PackIndex) int64 {
	n := int64(12)
	for _, p := range packs {
		n += 36 + int64(len(p.Entries))*entrySize
	}
	return n
}

// listCounter reserves listEntryMemory for each name a listing gives, a
// batch at a time.
type listCounter struct {
	hold *memHold
	what string
	n    int64
}

func (c *listCounter) add() error {
	if c == nil {
		return nil
	}
	if c.n++; c.n%64 == 1 {
		return c.hold.grow(64*listEntryMemory, fmt.Sprintf("%s (%d names or more)", c.what, c.n))
	}
	return nil
}

func newIndex(condemned map[ID]bool) *Index {
	return &Index{packNum: map[ID]uint32{}, chunks: map[ID]location{}, segments: map[ID][]ID{}, condemned: condemned}
}

func (x *Index) add(p PackIndex) {
	n, ok := x.packNum[p.Pack]
	if !ok {
		n = uint32(len(x.packs))
		x.packs = append(x.packs, p.Pack)
		x.packNum[p.Pack] = n
	}
	for _, e := range p.Entries {
		if old, dup := x.chunks[e.Chunk]; dup && x.rank(x.packs[old.pack], e.Chunk) <= x.rank(p.Pack, e.Chunk) {
			continue // keep the first place, unless this one is better
		}
		x.chunks[e.Chunk] = location{pack: n, offset: e.Offset, length: e.Length, raw: e.Raw, flags: e.Flags}
	}
}

// rank orders the places of a chunk: 0 intact, 1 in a pack gc condemned,
// 2 recorded damaged, 3 in a pack the listing did not show.
func (x *Index) rank(pack, chunk ID) int {
	switch {
	case x.listedPacks != nil && !x.listed(pack):
		return 3
	case x.damaged.has(pack, chunk):
		return 2
	case x.condemned[pack]:
		return 1
	}
	return 0
}

// listed reports whether the listing made with the index showed the pack.
func (x *Index) listed(pack ID) bool {
	_, ok := x.listedPacks[pack]
	return ok
}

// Has reports whether the chunk is stored in a pack that gc has not
// condemned, at a place verify did not find damaged: a backup may refer to
// it instead of storing it again.
func (x *Index) Has(id ID) bool {
	l, ok := x.chunks[id]
	return ok && x.rank(x.packs[l.pack], id) == 0
}

// segmentsOf returns the segments that list the packs the images' chunks
// are placed in, in the order first met.
func (x *Index) segmentsOf(images []*Image) []ID {
	packSeg := map[ID]ID{}
	segs := make([]ID, 0, len(x.segments))
	for seg := range x.segments {
		segs = append(segs, seg)
	}
	sort.Slice(segs, func(i, j int) bool { return bytes.Compare(segs[i][:], segs[j][:]) < 0 })
	for _, seg := range segs {
		for _, p := range x.segments[seg] {
			if _, ok := packSeg[p]; !ok {
				packSeg[p] = seg
			}
		}
	}
	seen := map[ID]bool{}
	var out []ID
	for _, im := range images {
		for _, c := range im.Chunks {
			p, _, ok := x.lookup(c)
			if seg, listed := packSeg[p]; ok && listed && !seen[seg] {
				seen[seg] = true
				out = append(out, seg)
			}
		}
	}
	return out
}

// Len is the number of unique chunks.
func (x *Index) Len() int { return len(x.chunks) }

func (x *Index) lookup(id ID) (ID, location, bool) {
	l, ok := x.chunks[id]
	if !ok {
		return ID{}, l, false
	}
	return x.packs[l.pack], l, true
}

// LoadIndex reads every index segment it can list, plus the named extra
// segments (those a manifest depends on). A segment that cannot be read or
// parsed is reported in the returned problems and skipped, so one damaged
// segment does not hide the rest of the repository.
func (r *Repo) LoadIndex(ctx context.Context, extra ...ID) (*Index, []error, error) {
	condemned, images, err := r.condemned(ctx)
	if err != nil {
		return nil, nil, err
	}
	dmg, _, dmgProblems, err := r.loadDamage(ctx)
	if err != nil {
		return nil, nil, err
	}
	x := newIndex(condemned)
	x.condemnedImages = images
	x.damaged = dmg
	// The index's memory is reserved as it loads: what the listings give,
	// each segment before it is read (from its listed size) and as it
	// decodes; once loaded, what the index keeps stays reserved until it
	// is released.
	hold, err := r.mem.reserve(0, "")
	if err != nil {
		return nil, nil, err
	}
	ok := false
	defer func() {
		if !ok {
			hold.release()
		}
	}()
	segList := &listCounter{hold: hold, what: "the listing of index segments"}
	var names []ID
	var sizes []int64
	var infos []store.Info
	err = r.st.List(ctx, "index/", func(info store.Info) error {
		id, err := ParseID(strings.TrimPrefix(info.Name, "index/"))
		if err == nil {
			names = append(names, id)
			sizes = append(sizes, info.Size)
			infos = append(infos, info)
			return segList.add()
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("list index segments: %w", err)
	}
	names = append(names, extra...)
	for range extra {
		sizes = append(sizes, -1)
	}
	var (
		mu       sync.Mutex
		problems = dmgProblems
		segs     = make([][]PackIndex, len(names))
		first    = make([]bool, len(names))
		loaded   int64 // bytes of the segments read
	)
	seen := map[ID]bool{}
	listed := map[ID]bool{}
	var listedBytes int64
	for i, id := range names {
		first[i] = !seen[id]
		seen[id] = true
		listed[id] = listed[id] || sizes[i] >= 0
		if first[i] {
			listedBytes += max(sizes[i], 0)
		}
	}
	what := func() string {
		return fmt.Sprintf("the index of chunks (%d index segments of %s)", len(names), MemText(listedBytes))
	}
	// The bytes of a segment are reserved while it is read and decoded
	// (from its listed size: one larger than a segment can be is refused
	// unread); one that does not fit beside the reads in flight waits for
	// them, since they give theirs back; what it decoded to stays reserved.
	cond := sync.NewCond(&mu)
	inflight := 0
	take := func(n int64) error {
		mu.Lock()
		defer mu.Unlock()
		for {
			err := hold.grow(n, what())
			if err == nil || inflight == 0 {
				if err == nil {
					inflight++
				}
				return err
			}
			cond.Wait()
		}
	}
	done := func(n int64) {
		mu.Lock()
		hold.shrink(n)
		inflight--
		cond.Broadcast()
		mu.Unlock()
	}
	err = r.forEach(ctx, len(names), func(ctx context.Context, i int) error {
		if !first[i] {
			return nil
		}
		raw := sizes[i]
		if raw < 0 || raw > maxSegmentSize {
			raw = 0
		}
		if err := take(raw); err != nil {
			return err
		}
		var packs []PackIndex
		var err error
		if i < len(infos) {
			packs, err = r.readListedSegment(ctx, names[i], infos[i], listed)
		} else {
			packs, err = r.readSegmentAt(ctx, names[i], sizes[i], 0, listed)
		}
		if err != nil {
			done(raw)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			mu.Lock()
			problems = append(problems, err)
			mu.Unlock()
			return nil
		}
		n := segmentBytes(packs)
		err = hold.grow(indexDecoded*n, what())
		done(raw)
		if err != nil {
			return err
		}
		mu.Lock()
		loaded += n
		mu.Unlock()
		segs[i] = packs
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	// The packs are listed after the segments are read: a pack a segment
	// names was written before the segment, so a pack that exists is
	// listed, but for a listing that lags, whose new packs only rank below.
	x.listedPacks = map[ID]store.Info{}
	packList := &listCounter{hold: hold, what: "the listing of packs"}
	err = r.st.List(ctx, "packs/", func(info store.Info) error {
		if id, err := ParseID(info.Name[strings.LastIndex(info.Name, "/")+1:]); err == nil {
			x.listedPacks[id] = info
			return packList.add()
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("list packs: %w", err)
	}
	for i, packs := range segs {
		if packs == nil {
			continue
		}
		ids := make([]ID, len(packs))
		for j, p := range packs {
			x.add(p)
			ids[j] = p.Pack
		}
		x.segments[names[i]] = ids
	}
	// What stays: the map of chunks and the listing of packs; the decoded
	// segments and the listing of segments go.
	hold.shrink(hold.size() - indexHeld*loaded - packList.n*listEntryMemory)
	x.mem, ok = hold, true
	return x, problems, nil
}

// readSegment reads and decodes an index segment. known is its size when a
// listing gave it, else -1. A missing segment that gc replaced gives no
// packs and no error.
// readReplaced reads what replaced a segment that is gone: the segment its
// index-replaced/ marker names, read by name, since a listing made a moment
// ago may not show it (a marker from before markers named it, or for a
// segment that lost all its packs, names none: nothing is missing then, or
// the listing has the new one). No marker: the segment is lost. depth
// bounds a chain of replacements.
func (r *Repo) readReplaced(ctx context.Context, id ID, depth int, loaded map[ID]bool) ([]PackIndex, error) {
	by, err := r.st.Get(ctx, replacedName(id), 0, int64(2*len(ID{})+1))
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: index segment %s is missing", ErrCorrupt, id)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", replacedName(id), err)
	}
	next, perr := ParseID(string(by))
	if len(by) == 0 || perr != nil || depth >= maxReplacedChain || loaded[next] {
		return nil, nil // nothing left, or read from the listing already
	}
	return r.readSegmentAt(ctx, next, -1, depth+1, loaded)
}

// maxReplacedChain bounds a chain of index-replaced/ markers a reader
// follows: each gc that drops packs from a segment or merges it adds a link.
const maxReplacedChain = 64

func (r *Repo) readSegment(ctx context.Context, id ID, known int64) ([]PackIndex, error) {
	return r.readSegmentAt(ctx, id, known, 0, nil)
}

// readSegmentAt reads segment id, or what replaced it; a replacement in
// loaded (segments the caller reads from a listing) is not read again.
func (r *Repo) readSegmentAt(ctx context.Context, id ID, known int64, depth int, loaded map[ID]bool) ([]PackIndex, error) {
	name := "index/" + id.String()
	if known < 0 {
		var err error
		if known, err = r.statBounded(ctx, name, "index segment", maxSegmentSize); err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
	}
	data, err := r.getContent(ctx, name, "index segment", id, maxSegmentSize, known)
	if errors.Is(err, store.ErrNotFound) {
		return r.readReplaced(ctx, id, depth, loaded)
	}
	if err != nil {
		return nil, err
	}
	return r.decodeSegment(id, data)
}

// readListedSegment reads a segment a listing showed a moment ago as info,
// through the cache: an entry is used only if it matches the segment's
// name and decodes, and what is read from the store goes into the cache
// only then.
func (r *Repo) readListedSegment(ctx context.Context, id ID, info store.Info, loaded map[ID]bool) ([]PackIndex, error) {
	if r.cacheFor(ctx) == nil || info.Size > maxSegmentSize {
		return r.readSegmentAt(ctx, id, info.Size, 0, loaded)
	}
	var packs []PackIndex
	data, err := r.readListed(ctx, info, "index segment", maxSegmentSize, func(b []byte) bool {
		if r.contentID(b) != id {
			return false
		}
		var err error
		packs, err = r.decodeSegment(id, b)
		return err == nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return r.readReplaced(ctx, id, 0, loaded)
	}
	if err != nil {
		return nil, err
	}
	if r.contentID(data) != id {
		return nil, fmt.Errorf("%w: index segment %s does not match its name", ErrCorrupt, id)
	}
	if packs == nil {
		return r.decodeSegment(id, data)
	}
	return packs, nil
}

// decodeSegment decodes segment id and checks its entries.
func (r *Repo) decodeSegment(id ID, data []byte) ([]PackIndex, error) {
	packs, err := decodeIndexSegment(data)
	if err != nil {
		return nil, fmt.Errorf("index segment %s: %w", id, err)
	}
	// Within the format, a chunk is no longer than this repository's.
	cs := uint32(r.cfg.ChunkSize)
	for _, p := range packs {
		for _, e := range p.Entries {
			if e.Raw > cs || e.Length > cs+blobOverhead(e.Flags) {
				return nil, fmt.Errorf("%w: index segment %s: a chunk of %d bytes is longer than this repository's chunks (%d)",
					ErrCorrupt, id, e.Raw, cs)
			}
		}
	}
	return packs, nil
}

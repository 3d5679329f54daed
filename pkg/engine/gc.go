package engine

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dropback/dropback/pkg/store"
)

// Garbage collection works in two phases, under the exclusive gc lease
// (lease.go), by the rule of docs/format.md, "Who may delete what".
//
// Mark: gc finds the packs that no backup needs (and rewrites the live chunks
// of packs that are mostly dead into new packs), then writes a mark,
// gc/condemned/<time>-<rand>, naming them. It only condemns what is settled:
// older than MinAge, and than every running operation. From then on a new
// backup treats a condemned pack's chunks as absent and stores them again if
// it meets them.
//
// Sweep: a later gc (or the same one, once nothing is in flight) deletes the
// packs of a mark that is older than the grace period, provided no operation
// that may have started before the mark is still running (ops.go), and that
// no backup needs a chunk whose every other copy is missing or condemned.

// DefaultMinAge is how old an object must be before gc condemns it, unless
// GCOptions say otherwise.
const DefaultMinAge = StaleAfter

type gcMark struct {
	At     time.Time `json:"at"`
	Packs  []string  `json:"packs"`
	Images []string  `json:"images"`
}

type gcDone struct {
	At             time.Time `json:"at"`
	DeletedPacks   int       `json:"deleted_packs"`
	RewrittenPacks int       `json:"rewritten_packs"`
	ReclaimedBytes int64     `json:"reclaimed_bytes"`
	// Covers, in a roll-up, names the records it sums, which it replaces.
	Covers []string `json:"covers,omitempty"`
}

func randomName() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// markState is a gc mark and when it was made: the later of its own time
// and the store's time of the object.
type markState struct {
	gcMark
	made time.Time
}

// marks reads every gc mark.
func (r *Repo) marks(ctx context.Context) (map[string]markState, error) {
	out := map[string]markState{}
	err := r.st.List(ctx, "gc/condemned/", func(info store.Info) error {
		data, err := r.readObject(ctx, info.Name, "gc mark", maxGCMarkSize, info.Size)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil && !errors.Is(err, ErrCorrupt) {
			return err
		}
		var m gcMark
		if err != nil || json.Unmarshal(data, &m) != nil {
			// A damaged mark condemns nothing, so nothing is deleted on
			// its account; failing here would stop every backup.
			return nil
		}
		made := m.At
		if info.ModTime.After(made) {
			made = info.ModTime
		}
		out[info.Name] = markState{gcMark: m, made: made}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read gc marks: %w", err)
	}
	return out, nil
}

// condemned returns the packs and the images named by any gc mark.
func (r *Repo) condemned(ctx context.Context) (packs, images map[ID]bool, err error) {
	marks, err := r.marks(ctx)
	if err != nil {
		return nil, nil, err
	}
	packs, images = map[ID]bool{}, map[ID]bool{}
	for _, m := range marks {
		for _, s := range m.Packs {
			if id, err := ParseID(s); err == nil {
				packs[id] = true
			}
		}
		for _, s := range m.Images {
			if id, err := ParseID(s); err == nil {
				images[id] = true
			}
		}
	}
	return packs, images, nil
}

// reclaimed sums the bytes every gc run has freed. A record that a
// roll-up covers (history.go) is counted through the roll-up only.
func (r *Repo) reclaimed(ctx context.Context) (int64, error) {
	records := map[string]gcDone{}
	err := r.st.List(ctx, "gc/done/", func(info store.Info) error {
		data, err := r.readObject(ctx, info.Name, "gc record", maxGCDoneSize, info.Size)
		if err != nil {
			return nil
		}
		var d gcDone
		if json.Unmarshal(data, &d) == nil {
			records[info.Name] = d
		}
		return nil
	})
	covered := map[string]bool{}
	for _, d := range records {
		for _, n := range d.Covers {
			covered[n] = true
		}
	}
	var total int64
	for name, d := range records {
		if !covered[name] {
			total += d.ReclaimedBytes
		}
	}
	return total, err
}

// GCOptions tune a garbage collection.
type GCOptions struct {
	// Grace is how old a mark must be before its packs are deleted.
	Grace time.Duration
	// MinAge is how old an unneeded pack or image must be before it is
	// condemned; 0 means DefaultMinAge, a negative value no minimum. It
	// must also be older than every running operation, whatever MinAge.
	MinAge time.Duration
	// WaitLock is how long to wait for another gc to let go of the lease
	// before failing with a *LockedError.
	WaitLock time.Duration
	// RewriteBelow rewrites packs whose live share of bytes is below it;
	// 0 means 0.5.
	RewriteBelow float64
	// History is how long gc keeps action records and gc records (by the
	// store's time of their objects); 0 means DefaultHistory, a negative
	// value for ever.
	History time.Duration
	// CompactFanout is how many index segments of one size tier are merged
	// into one (compact.go); 0 means 8, a negative value no compaction.
	CompactFanout int
}

// GCResult reports what a gc did.
type GCResult struct {
	DeletedPacks   int
	RewrittenPacks int
	CondemnedPacks int
	ReclaimedBytes int64
	// MergedSegments is how many index segments compaction merged.
	MergedSegments int
	// Catalogs is how many catalogs of manifests and host records gc
	// wrote (catalog.go).
	Catalogs int
	// PrunedActions and PrunedRecords are the action records and gc
	// records that history pruning deleted.
	PrunedActions, PrunedRecords int
	// Deferred is set when a sweep waited for an operation still running;
	// DeferredFor names it.
	Deferred    bool
	DeferredFor string
}

// gcRun is one garbage collection: its operation, the lease generation it
// holds, and what it did.
type gcRun struct {
	r    *Repo
	op   *Op
	gen  int
	opts GCOptions
	res  *GCResult
	mu   sync.Mutex // guards res where steps run many at a time
}

// GC reclaims the space of data no backup or snapshot needs: it sweeps the
// marks that are ripe, then marks what is newly garbage, then sweeps again if
// the new mark is already ripe (grace 0 and nothing running). It holds the
// gc lease throughout; another gc holding it gives a *LockedError.
func (r *Repo) GC(ctx context.Context, opts GCOptions) (*GCResult, error) {
	if opts.RewriteBelow == 0 {
		opts.RewriteBelow = 0.5
	}
	if opts.MinAge == 0 {
		opts.MinAge = DefaultMinAge
	}
	op, err := r.Begin(ctx, OpGC, 0)
	if err != nil {
		return nil, err
	}
	defer op.End()
	ctx = withoutCache(op.Context()) // gc judges by what the store holds
	if err := r.checkClock(ctx, op); err != nil {
		return nil, err
	}
	gen, err := r.acquireLease(ctx, op, opts.WaitLock)
	if err != nil {
		return nil, err
	}
	defer r.releaseLease(ctx, gen)
	g := &gcRun{r: r, op: op, gen: gen, opts: opts, res: &GCResult{}}
	if err := g.run(ctx); err != nil {
		return g.res, lostOr(op, err)
	}
	return g.res, nil
}

// ErrClockSkew means this machine's clock and the store's disagree by more
// than the protocol allows for; gc refuses to judge ages by them.
var ErrClockSkew = errors.New("clock skew")

// checkClock compares this machine's clock with the store's, through the
// time the store gave op's marker: gc judges markers and marks by both, and
// a clock far ahead would take a running operation for one long gone; a
// backup dates itself by this machine's clock, and one dated far ahead
// would be the newest of its host for that long.
func (r *Repo) checkClock(ctx context.Context, op *Op) error {
	var info store.Info
	var wrote time.Time
	for try := 0; ; try++ {
		op.mu.Lock()
		seq := op.m.Seq
		wrote = op.m.RefreshedAt
		op.mu.Unlock()
		var err error
		info, err = r.st.Stat(ctx, opObject(op.ID(), seq))
		if err == nil {
			break
		}
		if !errors.Is(err, store.ErrNotFound) || try == 2 {
			return fmt.Errorf("read back the %s's own marker: %w", op.m.Kind, err)
		}
		// Refreshed meanwhile: read the newer one.
	}
	skew := info.ModTime.Sub(wrote)
	if skew < -clockSkew || skew > clockSkew+time.Minute { // the write itself may take a while
		return fmt.Errorf("%w: this machine's clock is %s off the repository's (%s); a %s judges and dates by it, so set the clock right (NTP) first",
			ErrClockSkew, (-skew).Round(time.Second), r.st.Location(), op.m.Kind)
	}
	return nil
}

// lostOr returns, when op lost its protection (its marker went unrefreshed
// so long that gc may have counted it as gone), that instead of err: what
// err says (a pack missing, say) may be gc's doing, not damage.
func lostOr(op *Op, err error) error {
	if err == nil || errors.Is(err, ErrLostProtection) {
		return err
	}
	if cause := context.Cause(op.Context()); errors.Is(cause, ErrLostProtection) {
		return cause
	}
	if lost := op.Check(); lost != nil {
		return fmt.Errorf("%w (%v)", lost, err)
	}
	return err
}

func (g *gcRun) run(ctx context.Context) error {
	// First, as it needs nothing else read: a backup whose delete died and
	// that is damaged, which stops gc below, would keep its marker and
	// refuse its own delete for good.
	if err := g.dropStaleDeleting(ctx); err != nil {
		return err
	}
	if err := g.sweep(ctx); err != nil {
		return err
	}
	if err := g.mark(ctx); err != nil {
		return err
	}
	if err := g.sweep(ctx); err != nil {
		return err
	}
	if err := g.compact(ctx); err != nil {
		return err
	}
	n, err := g.writeCatalog(ctx)
	g.res.Catalogs += n
	if err != nil {
		return err
	}
	if err := g.pruneHistory(ctx); err != nil {
		return err
	}
	res := g.res
	if res.DeletedPacks > 0 || res.RewrittenPacks > 0 {
		d := gcDone{At: g.r.now().UTC(), DeletedPacks: res.DeletedPacks, RewrittenPacks: res.RewrittenPacks, ReclaimedBytes: res.ReclaimedBytes}
		data, _ := json.Marshal(d)
		name := fmt.Sprintf("gc/done/%020d-%s", d.At.UnixNano(), randomName())
		if err := g.r.st.Put(ctx, name, data); err != nil {
			return fmt.Errorf("record gc: %w", err)
		}
	}
	return nil
}

// delete deletes one object, after checking that this gc still holds its
// lease.
func (g *gcRun) delete(ctx context.Context, name string, notAfter time.Time) error {
	if err := g.op.Check(); err != nil {
		return err
	}
	// A gc that was paused unawares may have lost its lease to another,
	// which may have finished the work; and a name it condemned may have
	// been written again since, by a backup, as a new object.
	if _, err := g.r.st.Stat(ctx, leaseObject(g.gen+1)); err == nil {
		return fmt.Errorf("%w: another gc took over the lease (generation %d); this one stops", ErrLostProtection, g.gen+1)
	} else if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("gc: read the lease: %w", err)
	}
	info, err := g.r.st.Stat(ctx, name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil // gone already
	case err != nil:
		return fmt.Errorf("gc: delete %s: %w", name, err)
	case info.ModTime.After(notAfter):
		return nil // written again since it was condemned: not what was condemned
	}
	if err := g.r.st.Delete(ctx, name); err != nil {
		return fmt.Errorf("gc: delete %s: %w", name, err)
	}
	return nil
}

// liveState is what gc learns of the repository before deciding anything.
type liveState struct {
	idx    *Index
	live   map[ID]bool // chunks some backup or snapshot needs
	mem    *memHold    // live's reservation from the memory budget
	images map[ID]bool // images some backup or snapshot needs
	packs  map[ID]store.Info
	orphan []ID // packs no index segment lists
}

// survey reads every manifest, image and index segment. Any damage stops gc:
// it never deletes on incomplete knowledge.
func (r *Repo) survey(ctx context.Context) (*liveState, error) {
	ms, damaged, err := r.readManifests(ctx)
	if err != nil {
		return nil, err
	}
	for id, err := range damaged { // any one will do
		return nil, fmt.Errorf("gc stopped: %w; delete backup %d with `dropback snapshots delete %d --force` to go on", err, id, id)
	}
	s := &liveState{live: map[ID]bool{}, images: map[ID]bool{}, packs: map[ID]store.Info{}}
	// The set of the chunks the backups use is reserved from the memory
	// budget as it grows, as verify's is: past the budget, gc stops, and
	// deletes nothing.
	if s.mem, err = r.mem.reserve(0, ""); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			s.mem.release()
		}
	}()
	var extra []ID
	var mu sync.Mutex
	for _, m := range ms {
		extra = append(extra, m.segmentIDs()...)
	}
	err = r.forEach(ctx, len(ms), func(ctx context.Context, i int) error {
		m := ms[i]
		imgs, err := m.Images()
		if err != nil {
			return fmt.Errorf("gc stopped: %w", err)
		}
		for j, id := range imgs {
			im, from, err := r.loadDiskImage(ctx, m, j)
			if errors.Is(err, ErrMemory) {
				return fmt.Errorf("gc stopped: %w", err)
			}
			if err != nil {
				return fmt.Errorf("gc stopped, run `dropback backups verify`: %w", err)
			}
			mu.Lock()
			s.images[id], s.images[from] = true, true
			added := int64(0)
			for _, c := range im.Chunks {
				if !c.IsZero() && !s.live[c] {
					s.live[c] = true
					added++
				}
			}
			err = s.mem.grow(added*setEntryMemory, fmt.Sprintf("gc's set of the chunks the backups use (%d chunks)", len(s.live)))
			mu.Unlock()
			im.release()
			if err != nil {
				return fmt.Errorf("gc stopped: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	idx, problems, err := r.LoadIndex(ctx, extra...)
	if err != nil {
		return nil, err
	}
	if len(problems) > 0 {
		idx.release()
		return nil, fmt.Errorf("gc stopped, run `dropback backups verify`: %w", problems[0])
	}
	s.idx = idx
	// The packs as the listing made while the index was read showed them.
	for id, info := range idx.listedPacks {
		s.packs[id] = info
		if _, ok := idx.packNum[id]; !ok {
			s.orphan = append(s.orphan, id)
		}
	}
	slices.SortFunc(s.orphan, func(a, b ID) int { return bytes.Compare(a[:], b[:]) })
	ok = true
	return s, nil
}

// settledFunc returns whether an object written at the given time may be
// condemned: older than MinAge and than the start of every running
// operation but this gc's own, less a margin for clock skew and listings.
func (g *gcRun) settledFunc(ctx context.Context) (func(time.Time) bool, error) {
	ops, err := g.r.runningOps(ctx)
	if err != nil {
		return nil, err
	}
	oldest, _, running := oldestStart(ops, g.op.ID())
	now := g.r.now()
	return func(t time.Time) bool {
		if g.opts.MinAge > 0 && now.Sub(t) < g.opts.MinAge {
			return false
		}
		return !running || t.Before(oldest.Add(-g.r.opMargin()))
	}, nil
}

// mark condemns what no backup needs, rewriting mostly-dead packs first.
func (g *gcRun) mark(ctx context.Context) error {
	r := g.r
	settled, err := g.settledFunc(ctx)
	if err != nil {
		return err
	}
	s, err := r.survey(ctx)
	if err != nil {
		return err
	}
	defer s.mem.release()
	defer s.idx.release() // its reservation, not the index
	idx := s.idx
	liveBytes := map[uint32]int64{}
	liveChunks := map[uint32][]ID{}
	for c := range s.live {
		if l, ok := idx.chunks[c]; ok {
			liveBytes[l.pack] += int64(l.length)
			liveChunks[l.pack] = append(liveChunks[l.pack], c)
		}
	}
	var condemn, rewrite []uint32
	for n, pack := range idx.packs {
		info, exists := s.packs[pack]
		if idx.condemned[pack] || !exists || !settled(info.ModTime) {
			continue
		}
		switch live := liveBytes[uint32(n)]; {
		case live == 0:
			condemn = append(condemn, uint32(n))
		case float64(live) <= g.opts.RewriteBelow*float64(info.Size):
			rewrite = append(rewrite, uint32(n))
		}
	}
	if len(rewrite) > 0 {
		if err := r.rewrite(ctx, idx, rewrite, liveChunks); err != nil {
			return err
		}
		g.res.RewrittenPacks += len(rewrite)
		condemn = append(condemn, rewrite...)
	}
	m := gcMark{At: r.now().UTC()}
	for _, n := range condemn {
		m.Packs = append(m.Packs, idx.packs[n].String())
	}
	for _, id := range s.orphan {
		if !idx.condemned[id] && settled(s.packs[id].ModTime) {
			m.Packs = append(m.Packs, id.String())
		}
	}
	err = r.st.List(ctx, "images/", func(info store.Info) error {
		if id, err := ParseID(strings.TrimPrefix(info.Name, "images/")); err == nil && !s.images[id] && settled(info.ModTime) {
			m.Images = append(m.Images, id.String())
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list images: %w", err)
	}
	if len(m.Packs) == 0 && len(m.Images) == 0 {
		return nil
	}
	g.res.CondemnedPacks += len(m.Packs)
	data, _ := json.Marshal(m)
	name := fmt.Sprintf("gc/condemned/%020d-%s", m.At.UnixNano(), randomName())
	if err := r.st.Put(ctx, name, data); err != nil {
		return fmt.Errorf("write gc mark: %w", err)
	}
	return nil
}

// rewrite copies the live chunks of the given packs into new packs and an
// index segment. Damaged chunks are left behind for verify to report.
func (r *Repo) rewrite(ctx context.Context, idx *Index, packs []uint32, liveChunks map[uint32][]ID) error {
	w := newPackWriter(ctx, r, idx, 1) // gc is not in a hurry; keep its memory small
	h := newChunkHasher(r.key)
	var plain, buf []byte
	var failed error
	for _, n := range packs {
		r.readBlobs(ctx, idx, idx.packs[n], liveChunks[n], &buf, func(c ID, l location, blob []byte, err error) {
			switch {
			case failed != nil:
				return
			case err != nil && !errors.Is(err, ErrCorrupt):
				failed = fmt.Errorf("gc: read pack %s: %w", idx.packs[n], err)
				return
			case err != nil:
				return // a damaged chunk stays behind for verify to report
			}
			if _, err := r.openBlob(blob, l, c, h, &plain); err != nil {
				return
			}
			failed = w.add(c, blob, int(l.raw), l.flags)
		})
		if failed != nil {
			w.abort()
			return failed
		}
	}
	_, err := w.finish()
	return err
}

// sweep deletes the packs and images of every ripe mark that no backup has
// come to need, then drops them from the index segments, then the marks.
func (g *gcRun) sweep(ctx context.Context) error {
	r := g.r
	marks, err := r.marks(ctx)
	if err != nil || len(marks) == 0 {
		return err
	}
	ops, err := r.runningOps(ctx)
	if err != nil {
		return err
	}
	oldest, who, running := oldestStart(ops, g.op.ID())
	now := r.now()
	ripe := map[string]markState{}
	grace := max(g.opts.Grace, r.minRipe())
	for name, m := range marks {
		switch {
		case now.Sub(m.made) < grace:
		case running && oldest.Before(m.made.Add(r.opMargin())):
			g.res.Deferred, g.res.DeferredFor = true, who
		default:
			ripe[name] = m
		}
	}
	if len(ripe) == 0 {
		return nil
	}
	s, err := r.survey(ctx)
	if err != nil {
		return err
	}
	defer s.mem.release()
	defer s.idx.release() // its reservation, not the index
	// Each candidate with the earliest mark that condemned it: an object
	// written after that is a new one of the same name.
	cand := map[ID]bool{}
	condemnedAt := map[string]time.Time{}
	at := func(name string, t time.Time) {
		if old, ok := condemnedAt[name]; !ok || t.Before(old) {
			condemnedAt[name] = t
		}
	}
	for _, m := range ripe {
		for _, p := range m.Packs {
			if id, err := ParseID(p); err == nil {
				cand[id] = true
				at(packName(id), m.made)
			}
		}
		for _, im := range m.Images {
			if id, err := ParseID(im); err == nil {
				at(imageName(id), m.made)
			}
		}
	}
	keep, err := r.packsToKeep(ctx, s, cand)
	if err != nil {
		return err
	}
	deleted := map[ID]bool{}
	for id := range cand {
		if keep[id] {
			continue
		}
		if err := g.delete(ctx, packName(id), condemnedAt[packName(id)]); err != nil {
			return err
		}
		deleted[id] = true
		g.res.DeletedPacks++
		g.res.ReclaimedBytes += s.packs[id].Size
	}
	for _, m := range ripe {
		for _, im := range m.Images {
			if id, err := ParseID(im); err == nil && !s.images[id] {
				if err := g.delete(ctx, imageName(id), condemnedAt[imageName(id)]); err != nil {
					return err
				}
			}
		}
	}
	if err := g.dropFromSegments(ctx, s.idx, deleted, now); err != nil {
		return err
	}
	for name, m := range ripe {
		if err := g.delete(ctx, name, m.made); err != nil {
			return err
		}
	}
	return nil
}

// packsToKeep returns the candidates for deletion that may hold the last
// copy of a chunk some backup needs. A needed chunk is safe when the index
// places it in a pack that exists, is no candidate, and was not found
// damaged; the candidates that hold any unsafe chunk are kept. Whatever
// cannot be told is kept.
func (r *Repo) packsToKeep(ctx context.Context, s *liveState, cand map[ID]bool) (map[ID]bool, error) {
	keep := map[ID]bool{}
	unsafe := map[ID]bool{}
	unplaced := false
	for c := range s.live {
		p, _, ok := s.idx.lookup(c)
		_, exists := s.packs[p]
		switch {
		case !ok:
			unplaced = true
		case cand[p] || !exists || s.idx.damaged.has(p, c):
			unsafe[c] = true
		}
	}
	if unplaced {
		// A needed chunk the index does not place may be in a pack no
		// segment lists: keep every such pack for verify to find.
		for _, id := range s.orphan {
			keep[id] = true
		}
	}
	if len(unsafe) == 0 {
		return keep, nil
	}
	for seg, packs := range s.idx.segments {
		listsCand := false
		for _, p := range packs {
			listsCand = listsCand || cand[p]
		}
		if !listsCand {
			continue
		}
		pis, err := r.readSegment(ctx, seg, -1)
		if err != nil {
			for _, p := range packs {
				keep[p] = true
			}
			continue
		}
		for _, pi := range pis {
			for _, e := range pi.Entries {
				if cand[pi.Pack] && unsafe[e.Chunk] {
					keep[pi.Pack] = true
					break
				}
			}
		}
	}
	return keep, nil
}

// replacedName is the marker gc leaves for an index segment it replaced.
func replacedName(seg ID) string { return "index-replaced/" + seg.String() }

// dropFromSegments rewrites every index segment that lists a deleted pack
// without it: the new segment first, then an index-replaced/ marker, then
// the old one goes.
func (g *gcRun) dropFromSegments(ctx context.Context, idx *Index, deleted map[ID]bool, surveyed time.Time) error {
	r := g.r
	for seg, packs := range idx.segments {
		touched := false
		for _, p := range packs {
			touched = touched || deleted[p]
		}
		if !touched {
			continue
		}
		pis, err := r.readSegment(ctx, seg, -1)
		if err != nil {
			return fmt.Errorf("gc: %w", err)
		}
		var keep []PackIndex
		for _, pi := range pis {
			if !deleted[pi.Pack] {
				keep = append(keep, pi)
			}
		}
		var by []byte // the ID of the segment that replaces it, if any
		if len(keep) > 0 {
			id, err := r.putSegment(ctx, keep)
			if err != nil {
				return fmt.Errorf("gc: %w", err)
			}
			by = []byte(id.String())
		}
		// A manifest, or a reader that listed index/ a moment ago, may name
		// the old segment: leave word that it was replaced, not lost, and
		// by which.
		if err := r.st.Put(ctx, replacedName(seg), by); err != nil && !errors.Is(err, store.ErrExists) {
			return fmt.Errorf("gc: %w", err)
		}
		if err := g.delete(ctx, "index/"+seg.String(), surveyed); err != nil {
			return err
		}
	}
	return nil
}

// RipeMarks reports whether a gc mark is older than grace: a gc would
// delete something now, unless an operation still runs.
func (r *Repo) RipeMarks(ctx context.Context, grace time.Duration) (bool, error) {
	marks, err := r.marks(ctx)
	if err != nil {
		return false, err
	}
	now := r.now()
	grace = max(grace, r.minRipe())
	for _, m := range marks {
		if now.Sub(m.made) >= grace {
			return true, nil
		}
	}
	return false, nil
}

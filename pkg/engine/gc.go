package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dropback/dropback/pkg/store"
)

// Garbage collection works in two phases and takes no lock.
//
// Mark: gc finds the packs that no backup needs (and rewrites the live chunks
// of packs that are mostly dead into new packs), then writes a mark,
// gc/condemned/<time>-<rand>, naming them. From then on a new backup treats a
// condemned pack's chunks as absent and stores them again if it meets them.
//
// Sweep: a later gc (or the same one, once nothing is in flight) deletes the
// packs of a mark that is older than the grace period, provided no backup
// that may have started before the mark is still running. Backups announce
// themselves with running/<rand> objects; one whose process is gone (same
// machine) or that is older than StaleAfter no longer counts, so a crash
// never needs a manual unlock. A condemned pack that a backup has since come
// to need is kept.

// StaleAfter is the age after which a running/ marker of another machine is
// taken to be left behind by a crash.
const StaleAfter = 12 * time.Hour

// clockSkew is the margin allowed between the clocks of two machines.
const clockSkew = time.Minute

type runningMarker struct {
	StartedAt time.Time `json:"started_at"`
	processID
	HostID int `json:"host_id"`
}

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
}

func randomName() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// announce writes a running/ marker for a backup and returns a function that
// removes it.
func (r *Repo) announce(ctx context.Context, hostID int) (func(), error) {
	m := runningMarker{StartedAt: r.now().UTC(), processID: thisProcess(), HostID: hostID}
	data, _ := json.Marshal(m)
	name := "running/" + randomName()
	if err := r.st.Put(ctx, name, data); err != nil {
		return nil, fmt.Errorf("announce backup: %w", err)
	}
	return func() { _ = r.st.Delete(context.WithoutCancel(ctx), name) }, nil
}

// runningSince returns the start of the oldest backup still running.
func (r *Repo) runningSince(ctx context.Context) (time.Time, bool, error) {
	now := r.now()
	var oldest time.Time
	found := false
	err := r.st.List(ctx, "running/", func(info store.Info) error {
		data, err := r.st.Get(ctx, info.Name, 0, -1)
		if err != nil {
			return nil // gone meanwhile
		}
		var m runningMarker
		if json.Unmarshal(data, &m) != nil {
			return nil
		}
		if m.ended() {
			_ = r.st.Delete(ctx, info.Name) // left by a crash here
			return nil
		}
		if now.Sub(m.StartedAt) > StaleAfter {
			return nil
		}
		if !found || m.StartedAt.Before(oldest) {
			oldest, found = m.StartedAt, true
		}
		return nil
	})
	return oldest, found, err
}

// marks reads every gc mark.
func (r *Repo) marks(ctx context.Context) (map[string]gcMark, error) {
	out := map[string]gcMark{}
	err := r.st.List(ctx, "gc/condemned/", func(info store.Info) error {
		data, err := r.st.Get(ctx, info.Name, 0, -1)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		var m gcMark
		if err := json.Unmarshal(data, &m); err != nil {
			// A damaged mark condemns nothing, so nothing is deleted on
			// its account; failing here would stop every backup.
			return nil
		}
		out[info.Name] = m
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read gc marks: %w", err)
	}
	return out, nil
}

// condemnedPacks is the set of packs named by any gc mark.
func (r *Repo) condemnedPacks(ctx context.Context) (map[ID]bool, error) {
	marks, err := r.marks(ctx)
	if err != nil {
		return nil, err
	}
	out := map[ID]bool{}
	for _, m := range marks {
		for _, s := range m.Packs {
			if id, err := ParseID(s); err == nil {
				out[id] = true
			}
		}
	}
	return out, nil
}

// reclaimed sums the bytes every gc run has freed.
func (r *Repo) reclaimed(ctx context.Context) (int64, error) {
	var total int64
	err := r.st.List(ctx, "gc/done/", func(info store.Info) error {
		data, err := r.st.Get(ctx, info.Name, 0, -1)
		if err != nil {
			return nil
		}
		var d gcDone
		if json.Unmarshal(data, &d) == nil {
			total += d.ReclaimedBytes
		}
		return nil
	})
	return total, err
}

// GCOptions tune a garbage collection.
type GCOptions struct {
	// Grace is how old a mark must be before its packs are deleted.
	Grace time.Duration
	// RewriteBelow rewrites packs whose live share of bytes is below it;
	// 0 means 0.5.
	RewriteBelow float64
}

// GCResult reports what a gc did.
type GCResult struct {
	DeletedPacks   int
	RewrittenPacks int
	CondemnedPacks int
	ReclaimedBytes int64
	// Deferred is set when a sweep waited for a backup still running.
	Deferred bool
}

// GC reclaims the space of data no backup or snapshot needs: it sweeps the
// marks that are ripe, then marks what is newly garbage, then sweeps again if
// the new mark is already ripe (grace 0 and nothing running).
func (r *Repo) GC(ctx context.Context, opts GCOptions) (*GCResult, error) {
	if opts.RewriteBelow == 0 {
		opts.RewriteBelow = 0.5
	}
	res := &GCResult{}
	if err := r.sweep(ctx, opts, res); err != nil {
		return res, err
	}
	if err := r.mark(ctx, opts, res); err != nil {
		return res, err
	}
	if err := r.sweep(ctx, opts, res); err != nil {
		return res, err
	}
	if res.DeletedPacks > 0 || res.RewrittenPacks > 0 {
		d := gcDone{At: r.now().UTC(), DeletedPacks: res.DeletedPacks, RewrittenPacks: res.RewrittenPacks, ReclaimedBytes: res.ReclaimedBytes}
		data, _ := json.Marshal(d)
		name := fmt.Sprintf("gc/done/%020d-%s", d.At.UnixNano(), randomName())
		if err := r.st.Put(ctx, name, data); err != nil {
			return res, fmt.Errorf("record gc: %w", err)
		}
	}
	return res, nil
}

// liveState is what gc learns of the repository before deciding anything.
type liveState struct {
	idx    *Index
	live   map[ID]bool // chunks some backup or snapshot needs
	images map[ID]bool // images some backup or snapshot needs
	sizes  map[ID]int64
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
	s := &liveState{live: map[ID]bool{}, images: map[ID]bool{}, sizes: map[ID]int64{}}
	var extra []ID
	for _, m := range ms {
		imgs, err := m.Images()
		if err != nil {
			return nil, fmt.Errorf("gc stopped: %w", err)
		}
		for _, id := range imgs {
			im, err := r.LoadImage(ctx, id)
			if err != nil {
				return nil, fmt.Errorf("gc stopped, run `dropback backups verify`: %w", err)
			}
			s.images[id] = true
			for _, c := range im.Chunks {
				if !c.IsZero() {
					s.live[c] = true
				}
			}
		}
		extra = append(extra, m.segmentIDs()...)
	}
	idx, problems, err := r.LoadIndex(ctx, extra...)
	if err != nil {
		return nil, err
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("gc stopped, run `dropback backups verify`: %w", problems[0])
	}
	s.idx = idx
	err = r.st.List(ctx, "packs/", func(info store.Info) error {
		id, err := ParseID(info.Name[strings.LastIndex(info.Name, "/")+1:])
		if err != nil {
			return nil
		}
		s.sizes[id] = info.Size
		if _, ok := idx.packNum[id]; !ok {
			s.orphan = append(s.orphan, id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list packs: %w", err)
	}
	return s, nil
}

// mark condemns what no backup needs, rewriting mostly-dead packs first.
func (r *Repo) mark(ctx context.Context, opts GCOptions, res *GCResult) error {
	s, err := r.survey(ctx)
	if err != nil {
		return err
	}
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
		size, exists := s.sizes[pack]
		if idx.condemned[pack] || !exists {
			continue
		}
		switch live := liveBytes[uint32(n)]; {
		case live == 0:
			condemn = append(condemn, uint32(n))
		case float64(live) <= opts.RewriteBelow*float64(size):
			rewrite = append(rewrite, uint32(n))
		}
	}
	if len(rewrite) > 0 {
		if err := r.rewrite(ctx, idx, rewrite, liveChunks); err != nil {
			return err
		}
		res.RewrittenPacks += len(rewrite)
		condemn = append(condemn, rewrite...)
	}
	m := gcMark{At: r.now().UTC()}
	for _, n := range condemn {
		m.Packs = append(m.Packs, idx.packs[n].String())
	}
	for _, id := range s.orphan {
		if !idx.condemned[id] {
			m.Packs = append(m.Packs, id.String())
		}
	}
	err = r.st.List(ctx, "images/", func(info store.Info) error {
		if id, err := ParseID(strings.TrimPrefix(info.Name, "images/")); err == nil && !s.images[id] {
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
	res.CondemnedPacks += len(m.Packs)
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
	w := newPackWriter(ctx, r, 1) // gc is not in a hurry; keep its memory small
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
// come to need, then drops them from the index segments.
func (r *Repo) sweep(ctx context.Context, opts GCOptions, res *GCResult) error {
	marks, err := r.marks(ctx)
	if err != nil || len(marks) == 0 {
		return err
	}
	oldest, running, err := r.runningSince(ctx)
	if err != nil {
		return fmt.Errorf("list running backups: %w", err)
	}
	now := r.now()
	ripe := map[string]gcMark{}
	for name, m := range marks {
		switch {
		case now.Sub(m.At) < opts.Grace:
		case running && oldest.Before(m.At.Add(clockSkew)):
			res.Deferred = true
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
	needed := map[ID]bool{}
	for c := range s.live {
		if p, _, ok := s.idx.lookup(c); ok {
			needed[p] = true
		}
	}
	deleted := map[ID]bool{}
	for _, m := range ripe {
		for _, p := range m.Packs {
			id, err := ParseID(p)
			if err != nil || needed[id] || deleted[id] {
				continue
			}
			if err := r.st.Delete(ctx, packName(id)); err != nil {
				return fmt.Errorf("gc: delete pack %s: %w", id, err)
			}
			deleted[id] = true
			res.DeletedPacks++
			res.ReclaimedBytes += s.sizes[id]
		}
		for _, im := range m.Images {
			if id, err := ParseID(im); err == nil && !s.images[id] {
				if err := r.st.Delete(ctx, imageName(id)); err != nil {
					return fmt.Errorf("gc: delete image %s: %w", id, err)
				}
			}
		}
	}
	if err := r.dropFromSegments(ctx, s.idx, deleted); err != nil {
		return err
	}
	for name := range ripe {
		if err := r.st.Delete(ctx, name); err != nil {
			return fmt.Errorf("gc: delete mark %s: %w", name, err)
		}
	}
	return nil
}

// replacedName is the marker gc leaves for an index segment it replaced.
func replacedName(seg ID) string { return "index-replaced/" + seg.String() }

// dropFromSegments rewrites every index segment that lists a deleted pack
// without it: the new segment first, then an index-replaced/ marker, then
// the old one goes.
func (r *Repo) dropFromSegments(ctx context.Context, idx *Index, deleted map[ID]bool) error {
	for seg, packs := range idx.segments {
		touched := false
		for _, p := range packs {
			touched = touched || deleted[p]
		}
		if !touched {
			continue
		}
		pis, err := r.readSegment(ctx, seg)
		if err != nil {
			return fmt.Errorf("gc: %w", err)
		}
		var keep []PackIndex
		for _, pi := range pis {
			if !deleted[pi.Pack] {
				keep = append(keep, pi)
			}
		}
		if len(keep) > 0 {
			data := encodeIndexSegment(keep)
			if err := r.putObject(ctx, "index/"+contentID(data).String(), data); err != nil {
				return fmt.Errorf("gc: %w", err)
			}
		}
		// A manifest may name the old segment: leave word that it was
		// replaced, not lost.
		if err := r.st.Put(ctx, replacedName(seg), nil); err != nil && !errors.Is(err, store.ErrExists) {
			return fmt.Errorf("gc: %w", err)
		}
		if err := r.st.Delete(ctx, "index/"+seg.String()); err != nil {
			return fmt.Errorf("gc: delete index segment %s: %w", seg, err)
		}
	}
	return nil
}

package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/dropback/dropback/pkg/store"
)

// Index compaction: gc merges small index segments into larger ones, so that
// their number stays bounded however many backups wrote one
// (docs/format.md, "Index compaction"). It writes the merged segment, then
// an index-replaced/ marker naming it for each segment it merged, then
// deletes those: a crash anywhere leaves every entry in some segment, and a
// reader that listed or names a merged segment finds its replacement by the
// marker, as after gc drops packs from a segment.

const (
	// compactFanout is how many segments of one tier are merged at once,
	// and how many a tier may hold before they are.
	compactFanout = 8
	// compactTier0 is the size below which a segment is of the lowest tier.
	compactTier0 = 4 << 10
	// compactBatch bounds the bytes of the segments merged into one: the
	// merged segment stays one segment (segmentTarget), which one marker
	// can name.
	compactBatch = segmentTarget / 2
)

// compactTier is the tier of a segment of size bytes: 0 below
// compactTier0, then one more for each compactFanout times larger.
func compactTier(size int64) int {
	t := 0
	for s := int64(compactTier0); size >= s; s *= compactFanout {
		t++
	}
	return t
}

// compactionBatches chooses the segments to merge, by name, in batches each
// merged into one segment: in every tier that holds at least compactFanout
// segments, all of them; in the lowest tier only once they make a segment
// of a higher tier together, or are fanout² (64), so that what is
// merged is seldom merged again at the same tier (a reader follows a chain
// of at most eight markers). Segments past compactBatch stay as they are.
func compactionBatches(segs []store.Info, fanout int) [][]store.Info {
	tiers := map[int][]store.Info{}
	for _, s := range segs {
		if s.Size < compactBatch {
			t := compactTier(s.Size)
			tiers[t] = append(tiers[t], s)
		}
	}
	var out [][]store.Info
	for _, t := range sortedKeys(tiers) {
		group := tiers[t]
		if len(group) < fanout {
			continue
		}
		var sum int64
		for _, s := range group {
			sum += s.Size
		}
		if t == 0 && sum < compactTier0 && len(group) < fanout*fanout {
			continue
		}
		sort.Slice(group, func(i, j int) bool { return group[i].Name < group[j].Name })
		var batch []store.Info
		var size int64
		for _, s := range group {
			if size+s.Size > compactBatch && len(batch) > 0 {
				out = append(out, batch)
				batch, size = nil, 0
			}
			batch = append(batch, s)
			size += s.Size
		}
		if len(batch) > 1 {
			out = append(out, batch)
		}
	}
	return out
}

func sortedKeys[V any](m map[int]V) []int {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	return keys
}

// compact merges small index segments. It runs with the gc lease held, after
// the sweeps: no one else deletes or rewrites a segment meanwhile. Any doubt
// (a segment that cannot be read) stops it before it deletes anything of
// that batch.
func (g *gcRun) compact(ctx context.Context) error {
	r := g.r
	fanout := g.opts.CompactFanout
	if fanout == 0 {
		fanout = compactFanout
	}
	if fanout < 0 {
		return nil
	}
	listed := r.now()
	var segs []store.Info
	err := r.st.List(ctx, "index/", func(info store.Info) error {
		id, err := ParseID(strings.TrimPrefix(info.Name, "index/"))
		if err == nil && id.String() == strings.TrimPrefix(info.Name, "index/") {
			segs = append(segs, info)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("gc: list index segments: %w", err)
	}
	for _, batch := range compactionBatches(segs, fanout) {
		if err := g.merge(ctx, batch, listed); err != nil {
			return err
		}
	}
	return nil
}

// merge writes the segments of batch as one, then a marker for each naming
// it, then deletes them.
func (g *gcRun) merge(ctx context.Context, batch []store.Info, listed time.Time) error {
	r := g.r
	ids := make([]ID, len(batch))
	read := make([][]PackIndex, len(batch))
	err := r.forEach(ctx, len(batch), func(ctx context.Context, i int) error {
		s := batch[i]
		id, _ := ParseID(strings.TrimPrefix(s.Name, "index/"))
		ids[i] = id
		data, err := r.getContent(ctx, s.Name, "index segment", id, maxSegmentSize, s.Size)
		if err != nil {
			return fmt.Errorf("gc: compact the index: %w", err)
		}
		pis, err := decodeIndexSegment(data)
		if err != nil {
			return fmt.Errorf("gc: compact the index: index segment %s: %w", id, err)
		}
		read[i] = pis
		return nil
	})
	if err != nil {
		return err
	}
	var packs []PackIndex
	seen := map[ID]bool{}
	for _, pis := range read {
		for _, p := range pis {
			if !seen[p.Pack] {
				seen[p.Pack] = true
				packs = append(packs, p)
			}
		}
	}
	if len(packs) == 0 {
		return nil // empty segments: nothing to carry, and gc leaves them be
	}
	if len(segmentGroups(packs)) != 1 {
		return fmt.Errorf("gc: compact the index: %d segments merge into more than one", len(batch))
	}
	merged, err := r.putSegment(ctx, packs)
	if err != nil {
		return fmt.Errorf("gc: compact the index: %w", err)
	}
	// Every marker before any segment goes; each many at a time.
	err = r.forEach(ctx, len(ids), func(ctx context.Context, i int) error {
		if ids[i] == merged {
			return nil
		}
		err := r.st.Put(ctx, replacedName(ids[i]), []byte(merged.String()))
		if err != nil && !errors.Is(err, store.ErrExists) {
			return fmt.Errorf("gc: compact the index: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	err = r.forEach(ctx, len(ids), func(ctx context.Context, i int) error {
		if ids[i] == merged {
			return nil
		}
		return g.delete(ctx, "index/"+ids[i].String(), listed)
	})
	if err != nil {
		return err
	}
	g.res.MergedSegments += len(ids)
	return nil
}

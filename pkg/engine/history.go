package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/dropback/dropback/pkg/store"
)

// DefaultHistory is how long gc keeps action records and gc records.
const DefaultHistory = 90 * 24 * time.Hour

// maxRollup bounds the gc records one roll-up covers, so that it stays far
// below maxGCDoneSize.
const maxRollup = 500

// pruneHistory deletes what only tells of the past once it is older than
// the history kept (docs/format.md, "History"): every state of an action
// whose states are all that old, but the newest action (new IDs count on
// from it); and gc records, summed first into a roll-up that names them.
// It judges age by the store's time of each object, and deletes through
// gc's checked delete, which keeps an object newer than the cutoff.
func (g *gcRun) pruneHistory(ctx context.Context) error {
	keep := g.opts.History
	if keep == 0 {
		keep = DefaultHistory
	}
	if keep < 0 {
		return nil
	}
	cutoff := g.r.now().Add(-keep)
	if err := g.pruneActions(ctx, cutoff); err != nil {
		return err
	}
	if err := g.rollUpDeleted(ctx, cutoff); err != nil {
		return err
	}
	return g.rollUpRecords(ctx, cutoff)
}

func (g *gcRun) pruneActions(ctx context.Context, cutoff time.Time) error {
	r := g.r
	type action struct {
		states []int
		young  bool
	}
	actions := map[int]*action{}
	top := 0
	err := r.st.List(ctx, "actions/", func(info store.Info) error {
		parts := strings.Split(info.Name, "/")
		if len(parts) != 3 {
			return nil
		}
		id, ok1 := parseDigits(parts[1])
		n, ok2 := parseDigits(parts[2])
		if !ok1 || !ok2 {
			return nil
		}
		a := actions[id]
		if a == nil {
			a = &action{}
			actions[id] = a
		}
		a.states = append(a.states, n)
		a.young = a.young || !info.ModTime.Before(cutoff)
		top = max(top, id)
		return nil
	})
	if err != nil {
		return fmt.Errorf("gc: list actions: %w", err)
	}
	var old []int
	for id, a := range actions {
		if !a.young && id != top {
			old = append(old, id)
		}
	}
	sort.Ints(old)
	return r.forEach(ctx, len(old), func(ctx context.Context, i int) error {
		id := old[i]
		states := actions[id].states
		sort.Sort(sort.Reverse(sort.IntSlice(states)))
		// The latest state first: a crash leaves an earlier state, as old.
		for _, n := range states {
			if err := g.delete(ctx, actionObject(id, n), cutoff); err != nil {
				return err
			}
		}
		g.mu.Lock()
		g.res.PrunedActions++
		g.mu.Unlock()
		return nil
	})
}

// rollUpRecords sums the gc records older than cutoff into one that names
// them, then deletes them: a crash between the two counts each once, as
// repo stats skips what a roll-up covers.
func (g *gcRun) rollUpRecords(ctx context.Context, cutoff time.Time) error {
	r := g.r
	var old []store.Info
	records := map[string]gcDone{}
	err := r.st.List(ctx, "gc/done/", func(info store.Info) error {
		data, err := r.readObject(ctx, info.Name, "gc record", maxGCDoneSize, info.Size)
		if err != nil {
			return fmt.Errorf("gc: roll up gc records: %w", err)
		}
		var d gcDone
		if json.Unmarshal(data, &d) != nil {
			return nil // unreadable: left as it is, and not counted anyway
		}
		records[info.Name] = d
		if info.ModTime.Before(cutoff) {
			old = append(old, info)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("gc: list gc records: %w", err)
	}
	if len(old) < 2 {
		return nil
	}
	covered := map[string]bool{}
	for _, d := range records {
		for _, n := range d.Covers {
			covered[n] = true
		}
	}
	sort.Slice(old, func(i, j int) bool { return old[i].Name < old[j].Name })
	old = old[:min(len(old), maxRollup)]
	sum := gcDone{At: r.now().UTC()}
	for _, info := range old {
		sum.Covers = append(sum.Covers, info.Name)
		if covered[info.Name] {
			continue // counted by the roll-up that covers it
		}
		d := records[info.Name]
		sum.DeletedPacks += d.DeletedPacks
		sum.RewrittenPacks += d.RewrittenPacks
		sum.ReclaimedBytes += d.ReclaimedBytes
	}
	data, err := json.Marshal(sum)
	if err != nil {
		return err
	}
	name := fmt.Sprintf("gc/done/%020d-%s", sum.At.UnixNano(), randomName())
	if err := r.st.Put(ctx, name, data); err != nil {
		return fmt.Errorf("gc: roll up gc records: %w", err)
	}
	for _, n := range sum.Covers {
		if err := g.delete(ctx, n, cutoff); err != nil {
			return err
		}
		g.res.PrunedRecords++
	}
	return nil
}

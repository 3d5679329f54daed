package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/dropback/dropback/pkg/store"
)

// Damage records.
//
// The index says where a chunk is stored; it cannot say that the bytes there
// were lost. When verify finds a chunk missing from its pack, unreadable, or
// not matching its hash, it writes damaged/<time>-<rand>, a create-once JSON
// object naming each damaged place (pack and chunk). LoadIndex reads these
// records: a damaged place is the last choice for a chunk, and Index.Has
// reports a chunk absent when no intact place is known, so the next backup
// that meets the chunk stores it again. Restore and verify then read the new
// copy, which heals every older backup that uses the chunk as well.
//
// Verify keeps the records current: a recorded place that it finds intact
// again (a pack put back, or written again under the same name) is dropped
// by writing a record of what remains and deleting the old ones. Two
// verifies at once may leave both their records: the union, which only
// makes backups store a few chunks again.

// damageRecord is the content of a damaged/ object.
type damageRecord struct {
	At time.Time `json:"at"`
	// Packs maps a pack ID to the chunks found damaged or missing in it.
	Packs map[string][]string `json:"packs"`
}

// damage is the set of damaged places: pack -> chunks.
type damage map[ID]map[ID]bool

func (d damage) has(pack, chunk ID) bool { return d[pack][chunk] }

func (d damage) add(pack, chunk ID) {
	if d[pack] == nil {
		d[pack] = map[ID]bool{}
	}
	d[pack][chunk] = true
}

func (d damage) len() int {
	n := 0
	for _, cs := range d {
		n += len(cs)
	}
	return n
}

// decodeDamage parses a damaged/ object.
func decodeDamage(data []byte) (damage, error) {
	var rec damageRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, errorf(ErrCorrupt, "damage record is unreadable")
	}
	d := damage{}
	for p, cs := range rec.Packs {
		pack, err := ParseID(p)
		if err != nil {
			return nil, errorf(ErrCorrupt, "damage record names an invalid pack")
		}
		for _, c := range cs {
			chunk, err := ParseID(c)
			if err != nil {
				return nil, errorf(ErrCorrupt, "damage record names an invalid chunk")
			}
			d.add(pack, chunk)
		}
	}
	return d, nil
}

func encodeDamage(at time.Time, d damage) []byte {
	rec := damageRecord{At: at, Packs: map[string][]string{}}
	for p, cs := range d {
		var ids []string
		for c := range cs {
			ids = append(ids, c.String())
		}
		sort.Strings(ids)
		rec.Packs[p.String()] = ids
	}
	data, _ := json.MarshalIndent(rec, "", "  ")
	return append(data, '\n')
}

// loadDamage reads every damage record and returns their union and names.
// A record that cannot be read is a problem, not a failure: it is skipped.
func (r *Repo) loadDamage(ctx context.Context) (damage, []string, []error, error) {
	var names []string
	err := r.st.List(ctx, "damaged/", func(info store.Info) error {
		names = append(names, info.Name)
		return nil
	})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("list damage records: %w", err)
	}
	sort.Strings(names)
	all := damage{}
	var problems []error
	var kept []string
	for _, name := range names {
		data, err := r.st.Get(ctx, name, 0, -1)
		if errors.Is(err, store.ErrNotFound) {
			continue // replaced meanwhile
		}
		if err != nil {
			problems = append(problems, fmt.Errorf("read %s: %w", name, err))
			continue
		}
		d, err := decodeDamage(data)
		if err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", name, err))
			continue
		}
		for p, cs := range d {
			for c := range cs {
				all.add(p, c)
			}
		}
		kept = append(kept, name)
	}
	return all, kept, problems, nil
}

// noteDamage brings the damage records up to date with a verify: the chunks
// in bad that idx places in a pack are damaged there; a recorded place of a
// chunk in checked that is its place in idx and not in bad is intact again.
func (r *Repo) noteDamage(ctx context.Context, idx *Index, checked, bad map[ID]bool) error {
	old, names, _, err := r.loadDamage(ctx)
	if err != nil {
		return err
	}
	want := damage{}
	changed := false
	for p, cs := range old {
		for c := range cs {
			if at, _, ok := idx.lookup(c); ok && at == p && checked[c] && !bad[c] {
				changed = true // healed
				continue
			}
			want.add(p, c)
		}
	}
	for c := range bad {
		if p, _, ok := idx.lookup(c); ok && !old.has(p, c) {
			want.add(p, c)
			changed = true
		}
	}
	if !changed {
		return nil
	}
	if want.len() > 0 {
		at := r.now().UTC()
		name := fmt.Sprintf("damaged/%020d-%s", at.UnixNano(), randomName())
		if err := r.st.Put(ctx, name, encodeDamage(at, want)); err != nil {
			return fmt.Errorf("record damaged chunks: %w", err)
		}
	}
	for _, name := range names {
		if err := r.st.Delete(ctx, name); err != nil {
			return fmt.Errorf("replace damage record %s: %w", name, err)
		}
	}
	return nil
}

package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/dropback/dropback/pkg/store"
)

// Deleted-backup markers (deleted/<id>) are one object per deleted backup.
// A fleet whose retention deletes hundreds of backups a day would list
// ever more of them, so gc rolls old ones up (docs/format.md, "History"):
// it writes a create-once deleted-ranges/<time>-<rand> record of the IDs
// as ranges, then, in a later run once every listing shows the record,
// deletes the markers it covers. The marker of the highest deleted ID is
// never rolled up, so that new IDs still count on from it; a record is
// never deleted.

const (
	// maxDeletedRangesSize bounds a deleted-ranges record.
	maxDeletedRangesSize = 1 << 20
	// maxRolledIDs bounds the markers one record covers, so that even as
	// single IDs its ranges stay far below maxDeletedRangesSize.
	maxRolledIDs = 10_000
	// minRolledIDs is how many old markers make a record worth writing.
	minRolledIDs = 64
)

// deletedRanges is a deleted-ranges record: IDs whose backup was deleted,
// as [from, to] ranges, ascending.
type deletedRanges struct {
	At     time.Time `json:"at"`
	Ranges [][2]int  `json:"ranges"`
}

// ranges checks the record's ranges and returns them.
func (d deletedRanges) ranges() ([]IDRange, error) {
	out := make([]IDRange, 0, len(d.Ranges))
	next, ids := 1, 0
	for _, p := range d.Ranges {
		g := IDRange{p[0], p[1]}
		if g.From < next || g.To < g.From || g.To > MaxID {
			return nil, fmt.Errorf("range %d-%d is out of order or out of bounds", g.From, g.To)
		}
		if ids += g.To - g.From + 1; ids > maxRolledIDs {
			return nil, fmt.Errorf("it holds more than the %d IDs a record may", maxRolledIDs)
		}
		out = append(out, g)
		next = g.To + 1
	}
	return out, nil
}

// rolledRecord is a deleted-ranges record as listed and read.
type rolledRecord struct {
	info   store.Info
	ranges []IDRange
}

// readDeletedRanges reads every deleted-ranges record. A record that cannot
// be read is returned in damaged, by name: the IDs it holds are then
// unknown, and LostBackups reports them as lost.
func (r *Repo) readDeletedRanges(ctx context.Context) ([]rolledRecord, map[string]error, error) {
	var infos []store.Info
	err := r.st.List(ctx, "deleted-ranges/", func(info store.Info) error {
		infos = append(infos, info)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("list deleted-ranges: %w", err)
	}
	out := make([]rolledRecord, len(infos))
	errs := make([]error, len(infos))
	err = r.forEach(ctx, len(infos), func(ctx context.Context, i int) error {
		data, err := r.readObject(ctx, infos[i].Name, "deleted-ranges record", maxDeletedRangesSize, infos[i].Size)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return nil
		case err != nil && !errors.Is(err, ErrCorrupt):
			return err
		}
		var d deletedRanges
		var rs []IDRange
		if err == nil {
			if uerr := unseal(data, &d); uerr != nil {
				err = fmt.Errorf("%w: %s is unreadable: %s", ErrCorrupt, infos[i].Name, sealProblem(uerr))
			} else if rs, uerr = d.ranges(); uerr != nil {
				err = fmt.Errorf("%w: %s is unreadable: %v", ErrCorrupt, infos[i].Name, uerr)
			}
		}
		out[i], errs[i] = rolledRecord{info: infos[i], ranges: rs}, err
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	damaged := map[string]error{}
	var good []rolledRecord
	for i, rec := range out {
		switch {
		case errs[i] != nil:
			damaged[infos[i].Name] = errs[i]
		case rec.info.Name != "":
			good = append(good, rec)
		}
	}
	return good, damaged, nil
}

// mergeRanges returns the union of rs as ascending ranges that neither
// overlap nor touch.
func mergeRanges(rs []IDRange) []IDRange {
	rs = append([]IDRange(nil), rs...)
	sort.Slice(rs, func(i, j int) bool { return rs[i].From < rs[j].From })
	var out []IDRange
	for _, g := range rs {
		if n := len(out); n > 0 && g.From <= out[n-1].To+1 {
			out[n-1].To = max(out[n-1].To, g.To)
			continue
		}
		out = append(out, g)
	}
	return out
}

// idsToRanges turns sorted IDs into ranges.
func idsToRanges(ids []int) []IDRange {
	var out []IDRange
	for _, id := range ids {
		if n := len(out); n > 0 && out[n-1].To == id-1 {
			out[n-1].To = id
			continue
		}
		out = append(out, IDRange{id, id})
	}
	return out
}

// covers reports whether the merged ranges rs hold id.
func covers(rs []IDRange, id int) bool {
	i := sort.Search(len(rs), func(i int) bool { return rs[i].To >= id })
	return i < len(rs) && rs[i].From <= id
}

// rollUpDeleted rolls old deleted/ markers up (see the top of this file):
// it deletes, through gc's checked delete, the markers older than cutoff
// that a record covers which every listing shows by now, and writes a
// record of the old markers no record covers yet, when there are enough.
func (g *gcRun) rollUpDeleted(ctx context.Context, cutoff time.Time) error {
	r := g.r
	records, damaged, err := r.readDeletedRanges(ctx)
	if err != nil {
		return fmt.Errorf("gc: %w", err)
	}
	if len(damaged) > 0 {
		return nil // keep every marker while a record cannot be read
	}
	type marker struct {
		id  int
		old bool
	}
	var markers []marker
	top := 0
	err = r.st.List(ctx, "deleted/", func(info store.Info) error {
		if id, ok := parseObjectID(info.Name, "deleted"); ok {
			markers = append(markers, marker{id, info.ModTime.Before(cutoff)})
			top = max(top, id)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("gc: list deleted: %w", err)
	}
	// A record counts once no listing can miss it any more: once the
	// store's time, which this gc's lease took when it was written, is
	// past the record's by the listing lag and the skew allowed. The
	// store's times, not this machine's clock, which may step meanwhile.
	lease, err := r.st.Stat(ctx, leaseObject(g.gen))
	if err != nil {
		return fmt.Errorf("gc: read the lease: %w", err)
	}
	shown := lease.ModTime.Add(-(r.listLag() + clockSkew))
	var all, settled []IDRange
	for _, rec := range records {
		all = append(all, rec.ranges...)
		if rec.info.ModTime.Before(shown) {
			settled = append(settled, rec.ranges...)
		}
	}
	all, settled = mergeRanges(all), mergeRanges(settled)
	var drop, roll []int
	for _, m := range markers {
		switch {
		case !m.old || m.id == top:
		case covers(settled, m.id):
			drop = append(drop, m.id)
		case !covers(all, m.id):
			roll = append(roll, m.id)
		}
	}
	sort.Ints(drop)
	err = r.forEach(ctx, len(drop), func(ctx context.Context, i int) error {
		return g.delete(ctx, objectName("deleted", drop[i]), cutoff)
	})
	if err != nil {
		return err
	}
	g.res.PrunedRecords += len(drop)
	if len(roll) < minRolledIDs {
		return nil
	}
	sort.Ints(roll)
	roll = roll[:min(len(roll), maxRolledIDs)]
	rec := deletedRanges{At: r.now().UTC()}
	for _, g := range idsToRanges(roll) {
		rec.Ranges = append(rec.Ranges, [2]int{g.From, g.To})
	}
	data, err := seal(rec)
	if err != nil {
		return err
	}
	name := fmt.Sprintf("deleted-ranges/%020d-%s", rec.At.UnixNano(), randomName())
	if err := r.st.Put(ctx, name, data); err != nil {
		return fmt.Errorf("gc: roll up deleted markers: %w", err)
	}
	return nil
}

package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
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
	all, kept, _, problems, err := r.loadDamageRecords(ctx)
	return all, kept, problems, err
}

// loadDamageRecords is loadDamage, and also the names of the records that
// are themselves damaged (as opposed to ones a read failed on).
func (r *Repo) loadDamageRecords(ctx context.Context) (damage, []string, []string, []error, error) {
	var infos []store.Info
	err := r.st.List(ctx, "damaged/", func(info store.Info) error {
		infos = append(infos, info)
		return nil
	})
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("list damage records: %w", err)
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].Name < infos[j].Name })
	all := damage{}
	var problems []error
	var kept, unreadable []string
	for _, info := range infos {
		name := info.Name
		data, err := r.readObject(ctx, name, "damage record", maxDamageSize, info.Size)
		if errors.Is(err, store.ErrNotFound) {
			continue // replaced meanwhile
		}
		if err != nil {
			problems = append(problems, err)
			if errors.Is(err, ErrCorrupt) {
				unreadable = append(unreadable, name)
			}
			continue
		}
		d, err := decodeDamage(data)
		if err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", name, err))
			unreadable = append(unreadable, name)
			continue
		}
		for p, cs := range d {
			for c := range cs {
				all.add(p, c)
			}
		}
		kept = append(kept, name)
	}
	return all, kept, unreadable, problems, nil
}

// noteDamage brings the damage records up to date with a verify: the chunks
// in bad that idx places in a pack are damaged there; a recorded place of a
// chunk in checked that is its place in idx and not in bad is intact again.
//
// A whole-repository verify (whole) also retires the records that are
// themselves damaged: it has just found all there is to record, and gc
// stops while such a record stands.
func (r *Repo) noteDamage(ctx context.Context, idx *Index, checked, bad map[ID]bool, whole bool) error {
	old, names, unreadable, _, err := r.loadDamageRecords(ctx)
	if err != nil {
		return err
	}
	want := damage{}
	changed := false
	if whole && len(unreadable) > 0 {
		names, changed = append(names, unreadable...), true
	}
	for p, cs := range old {
		for c := range cs {
			if at, _, ok := idx.lookup(c); ok && at == p && checked[c] && !bad[c] {
				changed = true // healed
				continue
			}
			if _, listed := idx.packNum[p]; !listed {
				if _, err := r.st.Stat(ctx, packName(p)); errors.Is(err, store.ErrNotFound) {
					changed = true // gc deleted the damaged pack
					continue
				}
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

// Index repair.
//
// A pack names every chunk it holds in its own trailer, so a lost or
// damaged index segment can be rebuilt. When verify finds one, it first
// checks the backups against the index as it is (and names those the damage
// affects), then calls repairIndex: every pack that no readable segment
// lists gets an entry in a new segment, read from its trailer, and each
// damaged or missing segment gets an index-replaced/ marker (a damaged one
// is deleted), so that it no longer reads as damage and gc can go on.

// repairIndex rebuilds the index of the packs idx does not list, and
// retires the damaged and missing segments. named are the segments the
// manifests name. It returns a line saying what it did, or "".
func (r *Repo) repairIndex(ctx context.Context, idx *Index, named []ID) (string, error) {
	var bad, missing []ID
	err := r.st.List(ctx, "index/", func(info store.Info) error {
		id, err := ParseID(info.Name[len("index/"):])
		if err != nil {
			return nil
		}
		if _, err := r.readSegment(ctx, id, info.Size); errors.Is(err, ErrCorrupt) {
			bad = append(bad, id)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("repair the index: %w", err)
	}
	seen := map[ID]bool{}
	for _, id := range named {
		if _, ok := idx.segments[id]; ok || seen[id] {
			continue
		}
		seen[id] = true
		if _, err := r.readSegment(ctx, id, -1); errors.Is(err, ErrCorrupt) && !containsID(bad, id) {
			missing = append(missing, id)
		}
	}
	if len(bad) == 0 && len(missing) == 0 {
		return "", nil
	}
	var rebuilt []PackIndex
	unreadable := 0
	err = r.st.List(ctx, "packs/", func(info store.Info) error {
		id, err := ParseID(info.Name[strings.LastIndexByte(info.Name, '/')+1:])
		if err != nil {
			return nil
		}
		if _, ok := idx.packNum[id]; ok {
			return nil
		}
		entries, err := r.packTrailer(ctx, info.Name, info.Size, id)
		if err != nil {
			unreadable++
			return nil
		}
		rebuilt = append(rebuilt, PackIndex{Pack: id, Entries: entries})
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("repair the index: %w", err)
	}
	if len(idx.segments) == 0 && len(rebuilt) == 0 && unreadable > 0 {
		// No segment and no trailer reads: that is what a wrong key (a
		// config or key object planted in the store) looks like, more than
		// damage. Retiring the segments would lose the index of a right
		// key, so nothing is changed.
		return fmt.Sprintf("index not repaired: none of its %d segments and none of the trailers of %d packs can be read; with a repository whose config or keys were replaced, repairing would lose what the right ones read, so nothing was changed",
			len(bad)+len(missing), unreadable), nil
	}
	if _, err := r.putSegments(ctx, rebuilt); err != nil {
		return "", fmt.Errorf("repair the index: %w", err)
	}
	for _, id := range append(bad, missing...) {
		if err := r.st.Put(ctx, replacedName(id), nil); err != nil && !errors.Is(err, store.ErrExists) {
			return "", fmt.Errorf("repair the index: %w", err)
		}
	}
	for _, id := range bad {
		if err := r.st.Delete(ctx, "index/"+id.String()); err != nil {
			return "", fmt.Errorf("repair the index: %w", err)
		}
	}
	msg := fmt.Sprintf("index repaired: %d damaged or missing segments replaced by segments rebuilt from the trailers of %d packs",
		len(bad)+len(missing), len(rebuilt))
	if unreadable > 0 {
		msg += fmt.Sprintf("; %d packs have no readable trailer", unreadable)
	}
	return msg, nil
}

func containsID(ids []ID, id ID) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// packTrailer reads the entries a pack of the given size lists in its
// trailer, checked against the pack's name and its size. Index repair
// rebuilds from it; verify uses it to check a trailer.
func (r *Repo) packTrailer(ctx context.Context, name string, size int64, pack ID) ([]Entry, error) {
	if size > maxPackSize {
		return nil, tooLarge(name, "pack", maxPackSize)
	}
	tail, err := r.st.Get(ctx, name, max(0, size-12), 12)
	if err != nil {
		return nil, err
	}
	if len(tail) != 12 {
		return nil, errorf(ErrCorrupt, "pack %s has no trailer", pack)
	}
	tlen, err := r.trailerLen(tail, "pack "+pack.String())
	if err != nil {
		return nil, err
	}
	if tlen > size-int64(len(packMagic)) {
		return nil, errorf(ErrCorrupt, "pack %s has no trailer", pack)
	}
	trailer, err := r.st.Get(ctx, name, size-tlen, tlen)
	if err != nil {
		return nil, err
	}
	if int64(len(trailer)) != tlen {
		return nil, errorf(ErrCorrupt, "the trailer of pack %s does not match its name", pack)
	}
	plain, err := r.openTrailer(trailer, "pack "+pack.String())
	if err != nil {
		return nil, err
	}
	if r.contentID(plain) != pack {
		return nil, errorf(ErrCorrupt, "the trailer of pack %s does not match its name", pack)
	}
	entries, err := decodeTrailer(plain, size-tlen)
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w", pack, err)
	}
	return entries, nil
}

// hostProblems reports damaged host records: a latest revision that cannot
// be read (the newest readable one before it is in use instead), and
// backups whose host has no record at all in a repository that has host
// records. Only a whole-repository verify asks.
func (r *Repo) hostProblems(ctx context.Context, manifests []*Manifest) ([]string, error) {
	latest, err := r.latestRevisions(ctx, "hosts", nil)
	if err != nil {
		return nil, err
	}
	var problems []string
	for id, rev := range latest {
		if _, err := r.readHostRev(ctx, id, rev); errors.Is(err, ErrCorrupt) {
			problems = append(problems, err.Error()+"; the newest readable revision before it is in use")
		}
	}
	orphans := map[int][]int{}
	for _, m := range manifests {
		// A repository used through the engine alone has no host records
		// at all; one that has some should have every backup's.
		if _, ok := latest[m.HostID]; !ok && len(latest) > 0 {
			orphans[m.HostID] = append(orphans[m.HostID], m.ID)
		}
	}
	for host, ids := range orphans {
		problems = append(problems, fmt.Sprintf("backups %v belong to host %d, which has no record", ids, host))
	}
	return problems, nil
}

// IDRange is the backup IDs from From to To, both included.
type IDRange struct{ From, To int }

// LostBackups returns the ranges of backup IDs whose manifest is gone
// although no deletion was recorded. IDs are taken one above the highest in
// use and a deletion writes deleted/<id> before it removes the manifest, so
// an ID below the highest with neither object was a backup whose manifest
// was lost. Its time and memory follow the objects there are, not the
// IDs between them: one planted manifest at a high ID is one range.
func (r *Repo) LostBackups(ctx context.Context) ([]IDRange, error) {
	lost, _, err := r.lostBackups(ctx)
	return lost, err
}

// lostBackups is LostBackups that also returns the deleted-ranges records
// it could not read, by name.
func (r *Repo) lostBackups(ctx context.Context) ([]IDRange, map[string]error, error) {
	live, err := r.listIDs(ctx, "backups")
	if err != nil {
		return nil, nil, err
	}
	gone, err := r.listIDs(ctx, "deleted")
	if err != nil {
		return nil, nil, err
	}
	// Deletions rolled up into deleted-ranges records count as their
	// markers did; a record that cannot be read leaves its IDs unknown,
	// reported as lost.
	rolled, damaged, err := r.readDeletedRanges(ctx)
	if err != nil {
		return nil, nil, err
	}
	used := make([]IDRange, 0, len(live)+len(gone))
	for id := range live {
		used = append(used, IDRange{id, id})
	}
	for id := range gone {
		used = append(used, IDRange{id, id})
	}
	for _, rec := range rolled {
		used = append(used, rec.ranges...)
	}
	var gaps []IDRange
	next := 1
	for _, g := range mergeRanges(used) {
		if g.From > next {
			gaps = append(gaps, IDRange{next, g.From - 1})
		}
		next = g.To + 1
	}
	lost, err := r.confirmLost(ctx, gaps)
	return lost, damaged, err
}

// confirmBudget bounds how many IDs LostBackups looks up by name.
const confirmBudget = 2000

// confirmLost asks, by name, whether the IDs of small gaps were deleted
// a moment ago, too recently for the listings to show: only those left are
// lost. A gap too large to look through is reported whole.
func (r *Repo) confirmLost(ctx context.Context, gaps []IDRange) ([]IDRange, error) {
	var lost []IDRange
	budget := confirmBudget
	for _, g := range gaps {
		if n := g.To - g.From + 1; n > budget {
			lost = append(lost, g)
			continue
		}
		for id := g.From; id <= g.To; id++ {
			budget--
			taken, err := r.takenElsewhere(ctx, []string{"deleted", "backups"}, id)
			if err != nil {
				return nil, err
			}
			switch {
			case taken:
			case len(lost) > 0 && lost[len(lost)-1].To == id-1:
				lost[len(lost)-1].To = id
			default:
				lost = append(lost, IDRange{id, id})
			}
		}
	}
	return lost, nil
}

// BackupLost reports whether the manifest of backup id is lost: see
// LostBackups.
func (r *Repo) BackupLost(ctx context.Context, id int) (bool, error) {
	lost, err := r.LostBackups(ctx)
	for _, g := range lost {
		if g.From <= id && id <= g.To {
			return true, err
		}
	}
	return false, err
}

// lostError describes a range of lost backups.
func lostError(g IDRange) error {
	if g.From == g.To {
		return errorf(ErrCorrupt, "backup %d is missing: its manifest is gone, and no deletion was recorded", g.From)
	}
	return errorf(ErrCorrupt, "backups %d to %d (%d backups) are missing: their manifests are gone, and no deletion was recorded",
		g.From, g.To, g.To-g.From+1)
}

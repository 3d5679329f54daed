package engine

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Old deleted/ markers are rolled up by gc into one deleted-ranges record,
// so that a repository whose retention deletes many backups a day does not
// list ever more of them. The record is written first and the markers go
// in a later gc, once every listing shows it; the highest deleted ID keeps
// its marker, so IDs are never given again; verify still tells deleted
// backups from lost ones.
func TestGCRollsUpOldDeletedMarkers(t *testing.T) {
	ctx := context.Background()
	r, st, clk := memRepo(t)
	src := filepath.Join(t.TempDir(), "src.img")
	makeDisk(t, src, 4*testChunk, region{0, testChunk, "random"})
	const n = minRolledIDs + 6
	var ids []int
	for range n {
		ids = append(ids, backup(t, r, src).ID)
	}
	// Delete all but the first and the last two; one of those deleted is
	// the highest deleted ID, n-2.
	for _, id := range ids[1 : n-2] {
		if err := r.DeleteBackup(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	deleted := len(ids[1 : n-2])
	noLoss := func(when string) {
		t.Helper()
		lost, err := r.LostBackups(ctx)
		if err != nil || len(lost) != 0 {
			t.Fatalf("%s: lost backups %v, %v; want none", when, lost, err)
		}
		if v, err := r.Verify(ctx, nil, nil); err != nil || v.Damaged() {
			t.Fatalf("%s: verify: %v %v", when, err, v.Problems)
		}
		ms, err := r.Manifests(ctx)
		if err != nil || len(ms) != 3 {
			t.Fatalf("%s: %d backups listed (%v), want 3", when, len(ms), err)
		}
	}

	clk.Advance(DefaultHistory + time.Hour)
	if _, err := r.GC(ctx, noMinAge); err != nil {
		t.Fatal(err)
	}
	if got := listNames(t, st, "deleted-ranges/"); len(got) != 1 {
		t.Fatalf("deleted-ranges records after gc: %v, want one", got)
	}
	if got := len(listNames(t, st, "deleted/")); got != deleted {
		t.Fatalf("%d deleted markers right after the record was written, want all %d kept until every listing shows it", got, deleted)
	}
	noLoss("after the record was written")

	clk.Advance(r.listLag() + clockSkew + time.Minute)
	res, err := r.GC(ctx, noMinAge)
	if err != nil {
		t.Fatal(err)
	}
	if got := listNames(t, st, "deleted/"); len(got) != 1 || got[0] != objectName("deleted", n-2) {
		t.Fatalf("deleted markers after the next gc: %v, want only the highest, %s", got, objectName("deleted", n-2))
	}
	if res.PrunedRecords < deleted-1 {
		t.Errorf("gc says it pruned %d records, want at least %d", res.PrunedRecords, deleted-1)
	}
	noLoss("after the markers went")

	// The next backup takes the ID after the highest in use, never one of
	// the rolled-up ones.
	if m := backup(t, r, src); m.ID != n+1 {
		t.Fatalf("the next backup got ID %d, want %d", m.ID, n+1)
	}

	// A record that does not read is named by verify, its IDs are no
	// longer known to be deleted (so reported lost), and gc keeps every
	// marker there is while it cannot read one.
	rec := listNames(t, st, "deleted-ranges/")[0]
	data, err := st.Get(ctx, rec, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 1
	if err := st.Delete(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := st.Put(ctx, rec, data); err != nil {
		t.Fatal(err)
	}
	v, err := r.Verify(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	named, lost := false, false
	for _, p := range v.Problems {
		named = named || strings.Contains(p, rec)
	}
	for _, b := range v.Backups {
		lost = lost || (b.ID == 2 && !b.OK)
	}
	if !named || !lost {
		t.Fatalf("verify with a damaged deleted-ranges record: problems %v, backups %+v; want the record named and backups 2 on reported lost", v.Problems, v.Backups)
	}
	if err := r.DeleteBackup(ctx, n+1); err != nil {
		t.Fatal(err)
	}
	clk.Advance(DefaultHistory + time.Hour)
	if _, err := r.GC(ctx, noMinAge); err != nil {
		t.Fatal(err)
	}
	if got := listNames(t, st, "deleted/"); len(got) != 2 {
		t.Fatalf("deleted markers after a gc beside a damaged record: %v, want both kept", got)
	}
}

func TestMergeRanges(t *testing.T) {
	got := mergeRanges([]IDRange{{9, 9}, {1, 3}, {4, 4}, {6, 8}, {2, 2}, {12, 20}, {15, 16}})
	want := []IDRange{{1, 4}, {6, 9}, {12, 20}}
	if len(got) != len(want) {
		t.Fatalf("mergeRanges: %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("mergeRanges: %v, want %v", got, want)
		}
	}
	if !covers(got, 6) || covers(got, 5) || covers(got, 11) || !covers(got, 20) || covers(got, 21) {
		t.Fatalf("covers is wrong on %v", got)
	}
}

package engine

import (
	"context"
	"path/filepath"
	"runtime/debug"
	"testing"
)

// A gc that finishes gives back all it reserved from the memory budget: in
// a long-lived process (the agent) the budget is shared by every command on
// the repository, and what gc keeps reserved is refused to the next one.
// The Go collector is stopped so that no finalizer gives back, by chance,
// what gc forgot.
func TestRedteamGCBudgetGivesBackEverythingItReserved(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	ctx := context.Background()
	r, _, _ := memRepo(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	makeDisk(t, src, 40*testChunk, region{0, 40 * testChunk, "random"})
	old := backup(t, r, src)
	makeDisk(t, src, 40*testChunk, region{0, 10 * testChunk, "random"}, region{10 * testChunk, 30 * testChunk, "text"})
	backup(t, r, src)
	if err := r.DeleteBackup(ctx, old.ID); err != nil {
		t.Fatal(err)
	}
	if v, err := r.Verify(ctx, nil, nil); err != nil || v.Damaged() {
		t.Fatalf("verify: %v", err)
	}
	if held := r.mem.Held() - r.mem.Kept(); held != 0 {
		t.Fatalf("verify left %d bytes reserved", held)
	}
	if _, err := r.GC(ctx, noMinAge); err != nil {
		t.Fatal(err)
	}
	if held := r.mem.Held() - r.mem.Kept(); held != 0 {
		t.Errorf("gc that finished left %d bytes reserved from the memory budget", held)
	}
}

// The agent keeps one repository open and runs gc again and again (a
// schedule): each run must find the budget as the last one left it. With
// the smallest budget that can be set and a repository of one small
// backup, which one gc, verify or restore fits many times over, the
// hundredth gc and the restore after it must still run. (The Go collector
// is stopped, so that only what gc gives back is given back.)
func TestRedteamGCBudgetRepeatedGCInOneProcessKeepsTheBudget(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	ctx := context.Background()
	_, st, clk := memRepo(t)
	r, err := Open(ctx, st, encrypt(InitOptions{Options: Options{Now: clk.Now, After: clk.After, MaxMemory: MinMaxMemory}}).Options)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	makeDisk(t, src, 40*testChunk, region{0, 40 * testChunk, "random"})
	m := backup(t, r, src)
	want := fileHash(t, src)
	for i := range 250 {
		if _, err := r.GC(ctx, noMinAge); err != nil {
			t.Fatalf("gc run %d in the same process, %d bytes held before it: %v", i+1, r.mem.Held(), err)
		}
	}
	t.Logf("held after 250 gcs: %d, peak %d", r.mem.Held(), r.mem.Peak())
	out := filepath.Join(dir, "out.img")
	if _, err := r.Restore(ctx, m, []RestoreTarget{{Path: out}}, nil); err != nil {
		t.Fatalf("restore after 250 gcs, %d bytes held: %v", r.mem.Held(), err)
	}
	if fileHash(t, out) != want {
		t.Fatal("restore after 250 gcs is not byte-identical")
	}
}

// Within one gc, the mark surveys the repository (the index and the set of
// the chunks the backups use), then the sweep of the mark, ripe at once
// here (no grace, no listing lag), surveys it again: the first survey's
// index, never given back, is still reserved when the second reserves its
// own and the set. A gc that deletes is then refused at a budget each
// survey fits: one survey's measured peak and half its index again.
func TestRedteamGCBudgetSweepThenMarkFitTheBudgetOfOneSurvey(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	ctx := context.Background()
	r, st, clk := memRepo(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	var ms []*Manifest
	for i := range 6 {
		makeDisk(t, src, 3000*testChunk, region{0, 3000 * testChunk, "random"})
		writeAt(t, src, 0, []byte{byte(i)})
		ms = append(ms, backup(t, r, src))
	}
	want := fileHash(t, src)
	for _, m := range ms[:5] {
		if err := r.DeleteBackup(ctx, m.ID); err != nil {
			t.Fatal(err)
		}
	}
	// What one survey of this repository holds at its peak.
	probe, err := Open(ctx, st, encrypt(InitOptions{Options: Options{Now: clk.Now, After: clk.After}}).Options)
	if err != nil {
		t.Fatal(err)
	}
	s, err := probe.survey(withoutCache(ctx))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("survey peak %d, index held %d, set held %d", probe.mem.Peak(), s.idx.mem.size(), s.mem.size())
	idxHeld := s.idx.mem.size()
	s.idx.release()
	s.mem.release()
	budget := probe.mem.Peak() + idxHeld/2
	if budget < MinMaxMemory {
		t.Fatalf("survey peak %d: the repository is too small for the smallest budget", probe.mem.Peak())
	}
	r2, err := Open(ctx, st, encrypt(InitOptions{Options: Options{Now: clk.Now, After: clk.After, MaxMemory: budget}}).Options)
	if err != nil {
		t.Fatal(err)
	}
	res, err := r2.GC(ctx, noMinAge)
	t.Logf("gc peak %d", r2.mem.Peak())
	if err != nil {
		t.Fatalf("gc under the %d bytes one survey takes at its peak and half its index again (budget %d): %v", probe.mem.Peak(), budget, err)
	}
	if res.DeletedPacks == 0 {
		t.Fatalf("gc deleted nothing: %+v", res)
	}
	out := filepath.Join(dir, "out.img")
	if _, err := r2.Restore(ctx, ms[5], []RestoreTarget{{Path: out}}, nil); err != nil {
		t.Fatal(err)
	}
	if fileHash(t, out) != want {
		t.Fatal("the kept backup does not restore byte-identical")
	}
}

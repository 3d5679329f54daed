package engine

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dropback/dropback/internal/fakeclock"
	"github.com/dropback/dropback/pkg/store"
	"github.com/dropback/dropback/pkg/store/mem"
)

// noMinAge condemns what is unneeded however young: for tests that make a
// backup and collect it at once.
var noMinAge = GCOptions{MinAge: -1}

func storedBytes(t *testing.T, st store.Store) int64 {
	t.Helper()
	var n int64
	if err := st.List(context.Background(), "packs/", func(i store.Info) error { n += i.Size; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// memRepo is a repository in memory whose objects and operations are timed
// by a fake clock, so that a test can age them.
func memRepo(t *testing.T) (*Repo, *mem.Store, *fakeclock.Clock) {
	t.Helper()
	clk := fakeclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	st := mem.New(clk.Now)
	r, err := Init(context.Background(), st, encrypt(InitOptions{ChunkSize: testChunk, Options: Options{Now: clk.Now, After: clk.After}}))
	if err != nil {
		t.Fatal(err)
	}
	return r, st, clk
}

func TestGCReclaimsDeletedBackupsAndKeepsTheRest(t *testing.T) {
	ctx := context.Background()
	r, st := newRepo(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	makeDisk(t, src, 40*testChunk, region{0, 40 * testChunk, "random"})
	old := backup(t, r, src)
	// Rewrite 30 of the 40 chunks: the first backup's pack becomes mostly
	// dead once it is deleted.
	makeDisk(t, src, 40*testChunk, region{0, 10 * testChunk, "random"}, region{10 * testChunk, 30 * testChunk, "text"})
	writeAt(t, src, 0, []byte("keep the first ten chunks as they were"))
	keep := backup(t, r, src)
	want := fileHash(t, src)

	before := storedBytes(t, st)
	if err := r.DeleteBackup(ctx, old.ID); err != nil {
		t.Fatal(err)
	}
	res, err := r.GC(ctx, noMinAge)
	if err != nil {
		t.Fatal(err)
	}
	after := storedBytes(t, st)
	if res.ReclaimedBytes == 0 || after >= before {
		t.Fatalf("gc reclaimed %d bytes; packs %d -> %d bytes", res.ReclaimedBytes, before, after)
	}
	if s, err := r.Stats(ctx); err != nil || s.ReclaimedBytes != res.ReclaimedBytes {
		t.Fatalf("stats show %+v, %v; gc said %d reclaimed", s, err, res.ReclaimedBytes)
	}
	out := filepath.Join(dir, "out.img")
	restoreTo(t, r, keep, false, out)
	if fileHash(t, out) != want {
		t.Fatal("the kept backup no longer restores byte-identical after gc")
	}
	if v, err := r.Verify(ctx, nil, nil); err != nil || v.Damaged() {
		t.Fatalf("verify after gc: %v %v", err, v.Problems)
	}
	// A second gc finds nothing more to do.
	res, err = r.GC(ctx, noMinAge)
	if err != nil || res.DeletedPacks != 0 || res.RewrittenPacks != 0 {
		t.Fatalf("second gc: %+v, %v", res, err)
	}
	if n := len(listNames(t, st, "running/")); n != 0 {
		t.Fatalf("%d operation markers left behind", n)
	}
}

// listNames returns the names of the objects under prefix.
func listNames(t *testing.T, st store.Store, prefix string) []string {
	t.Helper()
	var out []string
	if err := st.List(context.Background(), prefix, func(i store.Info) error { out = append(out, i.Name); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// A deleted backup's data outlives every operation that started before gc
// marked it, and the grace period; it is only condemned once older than the
// minimum age.
func TestGCWaitsForOperationsGraceAndMinAge(t *testing.T) {
	ctx := context.Background()
	r, st, clk := memRepo(t)
	src := filepath.Join(t.TempDir(), "src.img")
	makeDisk(t, src, 8*testChunk, region{0, 8 * testChunk, "random"})
	m := backup(t, r, src)
	if err := r.DeleteBackup(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	if res, err := r.GC(ctx, GCOptions{}); err != nil || res.CondemnedPacks != 0 {
		t.Fatalf("gc of data younger than the minimum age: %+v, %v; want nothing condemned", res, err)
	}
	clk.Advance(time.Hour)
	// A restore started since and still runs: gc marks, but keeps.
	op, err := r.Begin(ctx, OpRestore, 1)
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.GC(ctx, GCOptions{})
	if err != nil || res.CondemnedPacks != 1 || res.DeletedPacks != 0 || !strings.Contains(res.DeferredFor, "restore") {
		t.Fatalf("gc with a restore running: %+v, %v; want 1 condemned, deferred for the restore", res, err)
	}
	op.End()
	res, err = r.GC(ctx, GCOptions{Grace: time.Hour})
	if err != nil || res.DeletedPacks != 0 {
		t.Fatalf("gc inside the grace period: %+v, %v", res, err)
	}
	clk.Advance(2 * time.Hour)
	res, err = r.GC(ctx, GCOptions{Grace: time.Hour})
	if err != nil || res.DeletedPacks != 1 {
		t.Fatalf("gc after the grace period: %+v, %v", res, err)
	}
	_ = st
}

// plantMarker writes revision seq of an operation marker of another
// machine, refreshed at refreshed and written to the store then.
func plantMarker(t *testing.T, st sealedMem, op string, seq int, started, refreshed time.Time) {
	t.Helper()
	m := opMarker{Op: op, Kind: OpBackup, StartedAt: started, RefreshedAt: refreshed, Seq: seq,
		processID: processID{Hostname: "elsewhere", PID: 1, BootID: "b", PIDNS: "pid:[1]"}}
	data, _ := json.Marshal(m)
	name := opObject(op, seq)
	if seq == 0 {
		name = "running/" + op
	}
	st.Set(name, data, refreshed)
}

// Which markers hold gc back: one refreshed within StaleAfter does, however
// old its operation; one that went unrefreshed for longer does not; a marker
// of the first format (never refreshed) counts for 12 hours; one that cannot
// be parsed counts until its object is StaleAfter old.
func TestGCMarkerStaleness(t *testing.T) {
	cases := []struct {
		name  string
		plant func(st sealedMem, now time.Time)
		holds bool
	}{
		{"refreshed a minute ago, started 12 hours ago", func(st sealedMem, now time.Time) {
			plantMarker(t, st, "aaaa", 720, now.Add(-12*time.Hour), now.Add(-time.Minute))
		}, true},
		{"unrefreshed for 20 minutes", func(st sealedMem, now time.Time) {
			plantMarker(t, st, "aaaa", 3, now.Add(-30*time.Minute), now.Add(-20*time.Minute))
		}, false},
		{"first format, 11 hours old", func(st sealedMem, now time.Time) {
			plantMarker(t, st, "legacy", 0, now.Add(-11*time.Hour), now.Add(-11*time.Hour))
		}, true},
		{"first format, 13 hours old", func(st sealedMem, now time.Time) {
			plantMarker(t, st, "legacy", 0, now.Add(-13*time.Hour), now.Add(-13*time.Hour))
		}, false},
		{"unparseable, written 5 minutes ago", func(st sealedMem, now time.Time) {
			st.Set(opObject("bbbb", 1), []byte("{not json"), now.Add(-5*time.Minute))
		}, true},
		{"unparseable, written an hour ago", func(st sealedMem, now time.Time) {
			st.Set(opObject("bbbb", 1), []byte("{not json"), now.Add(-time.Hour))
		}, false},
		// In an encrypted repository, one that does not decrypt is one
		// that does not parse: it holds gc back until it is stale.
		{"undecryptable, written 5 minutes ago", func(st sealedMem, now time.Time) {
			st.Store.Set(opObject("bbbb", 1), []byte("DBENC001"+strings.Repeat("x", 100)), now.Add(-5*time.Minute))
		}, true},
		{"undecryptable, written an hour ago", func(st sealedMem, now time.Time) {
			st.Store.Set(opObject("bbbb", 1), []byte("DBENC001"+strings.Repeat("x", 100)), now.Add(-time.Hour))
		}, false},
		{"its clock says stale, the store's says fresh", func(st sealedMem, now time.Time) {
			m := opMarker{Op: "cccc", Kind: OpBackup, StartedAt: now.Add(-2 * time.Hour), RefreshedAt: now.Add(-time.Hour), Seq: 60,
				processID: processID{Hostname: "elsewhere", PID: 1}}
			data, _ := json.Marshal(m)
			st.Set(opObject("cccc", 60), data, now.Add(-time.Minute))
		}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			r, st, clk := memRepo(t)
			src := filepath.Join(t.TempDir(), "src.img")
			makeDisk(t, src, 4*testChunk, region{0, 4 * testChunk, "random"})
			m := backup(t, r, src)
			if err := r.DeleteBackup(ctx, m.ID); err != nil {
				t.Fatal(err)
			}
			clk.Advance(24 * time.Hour)
			tc.plant(sealedMem{st, r}, clk.Now())
			res, err := r.GC(ctx, GCOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if held := res.DeletedPacks == 0; held != tc.holds {
				t.Fatalf("gc deleted %d packs; want held back: %v (%+v)", res.DeletedPacks, tc.holds, res)
			}
		})
	}
}

func TestBackupAfterMarkStoresCondemnedChunksAgain(t *testing.T) {
	ctx := context.Background()
	r, _, clk := memRepo(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	makeDisk(t, src, 8*testChunk, region{0, 8 * testChunk, "random"})
	m := backup(t, r, src)
	if err := r.DeleteBackup(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	// Mark only, as a gc that found a verify running would.
	op, err := r.Begin(ctx, OpVerify, 0)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := r.GC(ctx, GCOptions{}); err != nil || res.CondemnedPacks != 1 || !res.Deferred {
		t.Fatalf("gc with a verify running: %+v, %v; want 1 pack condemned, the sweep deferred", res, err)
	}
	again := backup(t, r, src)
	if again.NewChunks != 8 {
		t.Fatalf("backup after the mark stored %d chunks, want all 8 again", again.NewChunks)
	}
	op.End()
	if _, err := r.GC(ctx, GCOptions{}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.img")
	restoreTo(t, r, again, false, out)
	if fileHash(t, out) != fileHash(t, src) {
		t.Fatal("restore after gc differs")
	}
}

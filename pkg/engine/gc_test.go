package engine

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/dropback/dropback/pkg/store"
)

func storedBytes(t *testing.T, st store.Store) int64 {
	t.Helper()
	var n int64
	if err := st.List(context.Background(), "packs/", func(i store.Info) error { n += i.Size; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
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
	res, err := r.GC(ctx, GCOptions{})
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
	res, err = r.GC(ctx, GCOptions{})
	if err != nil || res.DeletedPacks != 0 || res.RewrittenPacks != 0 {
		t.Fatalf("second gc: %+v, %v", res, err)
	}
}

func TestGCWaitsForRunningBackupsAndGrace(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r, st := newRepo(t)
	r.now = func() time.Time { return now }
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	makeDisk(t, src, 8*testChunk, region{0, 8 * testChunk, "random"})
	m := backup(t, r, src)
	if err := r.DeleteBackup(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	// A backup of another machine started before the gc and still runs.
	putMarker(t, st, "running/other", "2025-12-31T23:59:00Z")
	res, err := r.GC(ctx, GCOptions{})
	if err != nil || res.DeletedPacks != 0 || !res.Deferred {
		t.Fatalf("gc with a backup running: %+v, %v", res, err)
	}
	if err := st.Delete(ctx, "running/other"); err != nil {
		t.Fatal(err)
	}
	res, err = r.GC(ctx, GCOptions{Grace: time.Hour})
	if err != nil || res.DeletedPacks != 0 {
		t.Fatalf("gc inside the grace period: %+v, %v", res, err)
	}
	now = now.Add(2 * time.Hour)
	res, err = r.GC(ctx, GCOptions{Grace: time.Hour})
	if err != nil || res.DeletedPacks != 1 {
		t.Fatalf("gc after the grace period: %+v, %v", res, err)
	}
	// A stale marker of a crashed process does not block gc for ever.
	putMarker(t, st, "running/crashed", "2025-06-01T00:00:00Z")
	makeDisk(t, src, 8*testChunk, region{0, 8 * testChunk, "text"})
	m = backup(t, r, src)
	if err := r.DeleteBackup(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	res, err = r.GC(ctx, GCOptions{})
	if err != nil || res.DeletedPacks != 1 {
		t.Fatalf("gc with a stale marker: %+v, %v", res, err)
	}
}

func TestBackupAfterMarkStoresCondemnedChunksAgain(t *testing.T) {
	ctx := context.Background()
	r, st := newRepo(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	makeDisk(t, src, 8*testChunk, region{0, 8 * testChunk, "random"})
	m := backup(t, r, src)
	if err := r.DeleteBackup(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	// Mark only, as a gc that found a backup running would.
	putMarker(t, st, "running/other", "2025-12-31T23:59:00Z")
	r.now = func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }
	if res, err := r.GC(ctx, GCOptions{}); err != nil || res.CondemnedPacks != 1 || !res.Deferred {
		t.Fatalf("gc with a backup running: %+v, %v; want 1 pack condemned, the sweep deferred", res, err)
	}
	again := backup(t, r, src)
	if again.NewChunks != 8 {
		t.Fatalf("backup after the mark stored %d chunks, want all 8 again", again.NewChunks)
	}
	if err := st.Delete(ctx, "running/other"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.GC(ctx, GCOptions{}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.img")
	restoreTo(t, r, again, false, out)
	if fileHash(t, out) != fileHash(t, src) {
		t.Fatal("restore after gc differs")
	}
}

// putMarker writes the running/ marker of a backup of another machine
// that started at the RFC 3339 time started.
func putMarker(t *testing.T, st store.Store, name, started string) {
	t.Helper()
	data := []byte(`{"started_at":"` + started + `","hostname":"elsewhere","pid":1}`)
	if err := st.Put(context.Background(), name, data); err != nil {
		t.Fatal(err)
	}
}

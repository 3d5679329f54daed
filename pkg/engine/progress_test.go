package engine

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dropback/dropback/pkg/progress"
	"github.com/dropback/dropback/pkg/store"
)

// TestProgressCountsReadAndSkipped checks that every job ends complete, and
// that holes, zero chunks and chunks already in place count as skipped, not
// read, so that a progress bar's pace is that of the bytes really read.
func TestProgressCountsReadAndSkipped(t *testing.T) {
	const c = testChunk
	ctx := context.Background()
	r, st := newRepo(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	// 16 chunks: random data in chunk 2, written zeros in chunk 5, text in
	// chunk 9, holes elsewhere.
	makeDisk(t, src, 16*c, region{2 * c, c, "random"}, region{5 * c, c, "zero"}, region{9 * c, c, "text"})

	var prog progress.Counter
	m, err := r.Backup(ctx, BackupRequest{HostID: 1, HostName: "web-1",
		Disks: []DiskSource{{Name: "disk0", Path: src}}, Progress: &prog})
	if err != nil {
		t.Fatal(err)
	}
	// The zero chunk is data on the disk: it is read to learn it is zero.
	wantProgress(t, "backup", prog.Get(), progress.Snapshot{Job: 1, Phase: "backup", Total: 16 * c, Read: 3 * c, Skipped: 13 * c})

	dst := filepath.Join(dir, "dst.img")
	if _, err := r.Restore(ctx, m, []RestoreTarget{{Path: dst}}, &prog); err != nil {
		t.Fatal(err)
	}
	wantProgress(t, "restore to a new file", prog.Get(), progress.Snapshot{Job: 2, Phase: "restore", Total: 16 * c, Read: 2 * c, Skipped: 14 * c})

	writeAt(t, dst, 9*c, []byte("changed"))
	if _, err := r.Restore(ctx, m, []RestoreTarget{{Path: dst, InPlace: true}}, &prog); err != nil {
		t.Fatal(err)
	}
	wantProgress(t, "restore in place", prog.Get(), progress.Snapshot{Job: 3, Phase: "restore", Total: 16 * c, Read: c, Skipped: 15 * c})

	if _, err := r.Verify(ctx, nil, &prog); err != nil {
		t.Fatal(err)
	}
	s := prog.Get()
	if !s.Complete() || s.Phase != "verify" || s.Skipped != 0 || s.Total <= 0 {
		t.Fatalf("verify: %+v, want every stored byte read", s)
	}

	// A missing pack is not read, but its bytes are accounted for: the
	// job still ends complete.
	var packs []string
	if err := st.List(ctx, "packs/", func(i store.Info) error { packs = append(packs, i.Name); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(packs) == 0 || !strings.HasPrefix(packs[0], "packs/") {
		t.Fatalf("packs = %v", packs)
	}
	if err := st.Delete(ctx, packs[0]); err != nil {
		t.Fatal(err)
	}
	res, err := r.Verify(ctx, nil, &prog)
	if err != nil || !res.Damaged() {
		t.Fatalf("verify with a missing pack: %v, damaged %v", err, res != nil && res.Damaged())
	}
	if s := prog.Get(); !s.Complete() || s.Skipped == 0 || s.Job != 5 {
		t.Fatalf("verify with a missing pack: %+v, want complete with skipped bytes", s)
	}
}

func wantProgress(t *testing.T, what string, got, want progress.Snapshot) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: progress %+v, want %+v", what, got, want)
	}
	if !got.Complete() {
		t.Fatalf("%s: job not complete: %+v", what, got)
	}
}

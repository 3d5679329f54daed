package engine

// Findings of the second adversarial review of index compaction, history
// pruning, the idle hint and the local cache. Each test failed on the code
// it was written against, and shows what was lost.

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/dropback/dropback/pkg/store/faulty"
)

// A gc in a VM is paused inside compaction, after it read the segments of a
// batch and before it writes the merged one. Its marker goes stale; a
// second gc takes the lease, sweeps the first gc's mark, deletes the pack it
// condemned (whose live chunks it had rewritten into another pack) and
// drops that pack from the segment that listed it. The first gc resumes
// with its clocks frozen and writes the merged segment from what it read
// half an hour before: it lists the deleted pack again. Nothing checks the
// lease before a write, only before a delete, so the merged segment stays
// (the first gc stops at its first delete). Every reader's index then
// placed chunks in a pack that is gone, and verify called the repository
// damaged. Now a reader lists the packs with the segments and ranks a place
// in a pack the listing does not show below any other, and a whole verify
// checks the stored chunks of the packs that exist, besides every chunk a
// backup needs.
func TestRedteam2PausedCompactionListsADeletedPack(t *testing.T) {
	ctx := context.Background()
	r, st, clk := memRepo(t)
	src := filepath.Join(t.TempDir(), "src.img")
	makeDisk(t, src, 80*testChunk, region{0, 80 * testChunk, "random"})
	old := backup(t, r, src)
	// Rewrite 60 of the 80 chunks: the first pack is a quarter live once
	// the first backup is deleted, so gc rewrites it and condemns it.
	makeDisk(t, src, 80*testChunk, region{0, 20 * testChunk, "random"}, region{20 * testChunk, 60 * testChunk, "text"})
	writeAt(t, src, 0, []byte("keep the first twenty chunks as they were"))
	b := backup(t, r, src)
	if err := r.DeleteBackup(ctx, old.ID); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)

	fs := faulty.New(st)
	paused, _ := frozenGuest(fs, r, "gc-vm")
	var res2 *GCResult
	var err2 error
	// The first index segment gc writes is the one of its rewrite (mark);
	// the second is the merged one of compaction.
	fs.Set(faulty.Rule{Op: faulty.Put, Pattern: "index/*", After: 1, Times: 1, Hook: func() {
		clk.Advance(2 * time.Hour) // the VM is paused
		res2, err2 = r.GC(ctx, GCOptions{Grace: time.Hour, CompactFanout: 2})
	}})
	res1, err1 := paused.GC(ctx, GCOptions{Grace: time.Hour, CompactFanout: 2})
	t.Logf("paused gc: %+v, %v", res1, err1)
	if err2 != nil || res2 == nil || res2.DeletedPacks == 0 {
		t.Fatalf("setup: the second gc did not sweep: %+v, %v", res2, err2)
	}
	if res1 == nil || res1.RewrittenPacks == 0 {
		t.Fatalf("setup: the paused gc did not rewrite a pack: %+v", res1)
	}
	restoresIdentical(t, r, b, src, "after a paused gc's compaction")
	// And after gc runs again, as run --due would.
	clk.Advance(2 * time.Hour)
	if _, err := r.GC(ctx, GCOptions{}); err != nil {
		t.Fatalf("gc after: %v", err)
	}
	restoresIdentical(t, r, b, src, "after the next gc")
}

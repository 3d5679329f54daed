package engine

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// A damage record that does not parse stops every gc ("run `dropback
// backups verify`"), and verify reports it but neither replaces nor
// retires it, so gc never runs again until someone deletes the object by
// hand. docs/format.md says such a record is "reported by verify and
// otherwise ignored".
func TestRedteamUnreadableDamageRecordStopsGCForGood(t *testing.T) {
	ctx := context.Background()
	r, st, clk := memRepo(t)
	src := filepath.Join(t.TempDir(), "src.img")
	makeDisk(t, src, 4*testChunk, region{0, 4 * testChunk, "random"})
	backup(t, r, src)
	st.Set("damaged/00000000000000000001-0123456789abcdef", []byte("{not json"), time.Time{})
	clk.Advance(time.Hour)
	if _, err := r.GC(ctx, GCOptions{}); err != nil {
		t.Logf("gc: %v", err)
	}
	v, err := r.Verify(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("verify: %v", v.Problems)
	if _, err := r.GC(ctx, GCOptions{}); err != nil {
		t.Fatalf("gc after the verify it asked for: %v", err)
	}
}

package engine

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// A restore --to a place that takes no new file names the file asked for,
// not the hidden one it writes first (found by a walkthrough:
// "/proc/.x.img.dropback-…").
func TestRestoreToAPlaceThatTakesNoFileNamesTheTarget(t *testing.T) {
	r, _ := newRepo(t)
	src := filepath.Join(t.TempDir(), "src.img")
	makeDisk(t, src, 2*testChunk, region{0, 2 * testChunk, "random"})
	m := backup(t, r, src)
	target := "/proc/dropback-restore-test.img" // no file can be made in /proc
	_, err := r.Restore(context.Background(), m, []RestoreTarget{{Path: target}}, nil)
	if err == nil || !strings.Contains(err.Error(), "create "+target) || strings.Contains(err.Error(), ".dropback") {
		t.Fatalf("restore to %s: %v, want an error naming it and not a hidden file", target, err)
	}
}

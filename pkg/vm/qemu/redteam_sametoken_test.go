package qemu_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dropback/dropback/pkg/vm"
	"github.com/dropback/dropback/pkg/vm/qemu"
)

// Found by review (failed before the owner file was linked into place):
// holdScratch made its owner file under a temporary name and renamed it
// into place, and rename replaces whatever bears the name. A second
// dropback process whose token is the same (three random bytes) takes the
// name of the first's locked owner file without a word; the first's lock
// stays on an inode that no longer has the name. When the second ends
// (here at once, as a PointInTime that fails early does), it removes the
// owner file by name, and the first backup, still running, has none: the
// sweep of a third backup judges its files by time and QEMU's locks alone,
// which is what the owner file was made to stop. Guest A's backup is
// midway through prepare, as in
// TestRedteamSweepTakesAFleecingImageQEMUHasOpenWhenItsTimeIsBehind, on a
// scratch directory whose times run behind: its fleecing image, which its
// QEMU has open, is swept.
func TestRedteamSameTokenTakesTheOwnerFileOfARunningBackup(t *testing.T) {
	ctx := context.Background()
	scratch := t.TempDir()
	a, b := guest(t, false, "qcow2"), guest(t, false, "raw")
	img := filepath.Join(scratch, "dropback-a1b2c3-0.qcow2")
	owner := filepath.Join(scratch, "dropback-a1b2c3.lock")
	defer qemu.HoldScratch(scratch, "a1b2c3")() // guest A's backup
	createFileNode(t, a, img)
	behind := time.Now().Add(-time.Hour)
	if err := os.Chtimes(img, behind, behind); err != nil {
		t.Fatal(err)
	}
	if !vm.Owned(owner) {
		t.Fatal("guest A's backup does not hold its owner file")
	}

	// Another dropback process draws the same token, and its point in
	// time ends at once.
	qemu.HoldScratch(scratch, "a1b2c3")()
	if !vm.Owned(owner) {
		t.Errorf("guest A's backup runs on, and its owner file %s is gone or unlocked after another process of the same token ended", owner)
	}

	p, err := open(t, b, "").PointInTime(ctx, vm.Request{Scratch: scratch})
	if err != nil {
		t.Fatal(err)
	}
	defer p.End(ctx, false)
	if _, err := os.Stat(img); err != nil {
		t.Fatalf("the fleecing image guest A's QEMU has open was swept by guest B's backup (notices %q): %v", p.Notices(), err)
	}
}

package qemu_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dropback/dropback/internal/qemutest"
	"github.com/dropback/dropback/pkg/vm"
	"github.com/dropback/dropback/pkg/vm/qemu"
)

// The sweep judges "older than a minute" by the file's mtime against this
// machine's clock. On a scratch directory whose file server stamps times
// behind this clock (NFS, a clock stepped forward by NTP), a fleecing
// image another backup has just created is "old" at once, and until QEMU
// has a parent node on it, it carries none of QEMU's locks. Here guest A's
// backup is midway through prepare: QEMU created dropback-a1b2c3-0.qcow2
// and opened it as a file node (blockdev-create, blockdev-add), as it does
// before formatting it. A backup of guest B in the same scratch directory
// sweeps it: the file QEMU has open is unlinked under A's running backup,
// which the minute of grace was meant to prevent.
func TestRedteamSweepTakesAFleecingImageQEMUHasOpenWhenItsTimeIsBehind(t *testing.T) {
	ctx := context.Background()
	scratch := t.TempDir()
	a, b := guest(t, false, "qcow2"), guest(t, false, "raw")
	img := filepath.Join(scratch, "dropback-a1b2c3-0.qcow2")
	// Guest A's backup, as dropback runs it, holds its owner file from
	// before it creates the image until it ends.
	defer qemu.HoldScratch(scratch, "a1b2c3")()
	createFileNode(t, a, img)
	behind := time.Now().Add(-time.Hour) // as the file server stamps it
	if err := os.Chtimes(img, behind, behind); err != nil {
		t.Fatal(err)
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

// createFileNode has the guest's QEMU create the fleecing image img of
// token a1b2c3 and open it as a file node, as a backup's prepare does
// before it formats it: a file QEMU has open with none of its locks.
func createFileNode(t *testing.T, g *qemutest.VM, img string) {
	t.Helper()
	g.Run(t, "blockdev-create", map[string]any{"job-id": "dbk-c-a1b2c3-0", "options": map[string]any{"driver": "file", "filename": img, "size": 0}})
	for {
		var jobs []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		}
		if err := json.Unmarshal(g.Run(t, "query-jobs", nil), &jobs); err != nil {
			t.Fatal(err)
		}
		if len(jobs) == 0 || jobs[0].Status == "concluded" {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	g.Run(t, "job-dismiss", map[string]any{"id": "dbk-c-a1b2c3-0"})
	g.Run(t, "blockdev-add", map[string]any{"driver": "file", "node-name": "dbk-f-a1b2c3-0", "filename": img})
}

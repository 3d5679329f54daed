package local

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dropback/dropback/pkg/provider"
	"github.com/dropback/dropback/pkg/store/faulty"
	"github.com/dropback/dropback/pkg/store/mem"
)

// A scheduling pass reads every manifest when it starts, takes each host's
// backup (which may take hours), and then deletes what retention expires
// by that first reading. A backup converted to a snapshot meanwhile, which
// retention must never delete, is deleted with its snapshot marker: the
// convert said it succeeded, and the snapshot is gone.
func TestRedteamSnapshotConvertedDuringAPassIsExpired(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	fs := faulty.New(mem.New(clock))
	p, err := New(ctx, Options{Repo: "memory", Now: clock, Store: fs})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.InitRepo(ctx, provider.RepoInitOptions{}); err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(t.TempDir(), "web-1.img")
	if err := os.WriteFile(disk, []byte(strings.Repeat("a disk of some bytes\n", 50000)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := p.AddHost(ctx, provider.HostSpec{Name: "web-1", Disks: []string{disk}}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.EnableBackups(ctx, "web-1", provider.PolicyRequest{Plan: ptr("daily"), Hour: ptr(4)}); err != nil {
		t.Fatal(err)
	}
	for day := range 8 {
		now = time.Date(2026, 3, 1+day, 7, 59, 0, 0, time.UTC) // past any start point
		if _, err := p.RunDue(ctx, provider.RunOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	bs, err := p.ListBackups(ctx, "web-1")
	if err != nil {
		t.Fatal(err)
	}
	oldest := bs[0].ID
	now = now.Add(24 * time.Hour)
	var convErr error
	fs.Set(faulty.Rule{Op: faulty.Put, Pattern: "images/*", Times: 1, Hook: func() {
		// While the pass backs the host up, the user keeps its oldest
		// backup for good.
		_, convErr = p.ConvertBackup(ctx, oldest)
	}})
	rep, err := p.RunDue(ctx, provider.RunOptions{})
	if err != nil || convErr != nil {
		t.Fatalf("pass: %v; convert: %v", err, convErr)
	}
	t.Logf("the pass expired %v", rep.Expired)
	snaps, err := p.ListSnapshots(ctx, "web-1")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(snaps, func(b provider.Backup) bool { return b.ID == oldest }) {
		t.Fatalf("backup %d was converted to a snapshot during the pass, and the pass deleted it", oldest)
	}
}

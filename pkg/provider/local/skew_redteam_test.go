package local

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dropback/dropback/pkg/provider"
	"github.com/dropback/dropback/pkg/store/mem"
)

// One agent of several sharing a repository runs on a machine whose clock
// is a year ahead (a dead RTC battery, an NTP server gone wrong). Its pass
// takes the host's backup dated a year ahead. Retention counts back from
// the host's newest backup, so that pass expires every other backup of the
// host; and every window until then counts as backed up, so the agents with
// a right clock take no scheduled backup of the host for a year. Nothing
// compares the backup's date with the store's clock, as gc's checkClock
// does for gc.
func TestRedteamAgentWithAClockAheadEmptiesAHost(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	right := func() time.Time { return now }
	ahead := func() time.Time { return now.AddDate(1, 0, 0) }
	st := mem.New(right) // the store's clock is right
	p, err := New(ctx, Options{Repo: "memory", Now: right, Store: st})
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
	pass := func(p *Provider) *provider.RunReport {
		t.Helper()
		rep, err := p.RunDue(ctx, provider.RunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	count := func() int {
		t.Helper()
		bs, err := p.ListBackups(ctx, "web-1")
		if err != nil {
			t.Fatal(err)
		}
		return len(bs)
	}
	for day := range 9 {
		now = time.Date(2026, 3, 1+day, 7, 59, 0, 0, time.UTC) // past any start point
		pass(p)
	}
	before := count()
	if before < 7 {
		t.Fatalf("setup: %d backups after 9 days of daily passes", before)
	}

	skewed, err := New(ctx, Options{Repo: "memory", Now: ahead, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(24 * time.Hour)
	rep := pass(skewed)
	t.Logf("the pass of the agent a year ahead: took %d, expired %v", len(rep.Backups), rep.Expired)
	if after := count(); after < before-1 {
		t.Errorf("a pass on a machine whose clock is a year ahead left %d of the host's %d backups", after, before)
	}
	now = now.Add(24 * time.Hour)
	if rep := pass(p); len(rep.Backups) == 0 {
		t.Errorf("the next day's pass, on a machine with a right clock, takes no backup: %+v", rep.Skipped)
	}
}

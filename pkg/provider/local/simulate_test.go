package local

import (
	"context"
	"crypto/sha256"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/dropback/dropback/pkg/provider"
	"github.com/dropback/dropback/pkg/schedule"
	"github.com/dropback/dropback/pkg/store/mem"
)

func ptr[T any](v T) *T { return &v }

// churn overwrites one random MiB of the disk.
func churn(t *testing.T, path string, rng *rand.Rand, size int64) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(buf, rng.Int64N(size/(1<<20))<<20); err != nil {
		t.Fatal(err)
	}
}

func sum(t *testing.T, path string) [32]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(data)
}

// TestSimulate90Days runs the schedule for 90 days on a moved clock: a daily
// and a weekly host, churn between runs, a pass every 15 minutes.
func TestSimulate90Days(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 0, 7, 0, 0, time.UTC)
	dir := fastTempDir(t)
	// The store times its objects by the simulated clock, as a real one
	// does by the real clock.
	clock := func() time.Time { return now }
	p, err := New(ctx, Options{Repo: "memory", Now: clock, Store: mem.New(clock)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.InitRepo(ctx, provider.RepoInitOptions{}); err != nil {
		t.Fatal(err)
	}
	const size = 8 << 20
	rng := rand.New(rand.NewPCG(1, 2))
	hosts := []struct {
		name, plan, weekday string
		hour, keep          int
	}{
		{"daily-1", "daily", "", 20, 7},
		{"weekly-1", "weekly", "SAT", 4, 4},
	}
	policies := map[string]schedule.Policy{}
	for _, h := range hosts {
		disk := filepath.Join(dir, h.name+".img")
		if err := os.WriteFile(disk, make([]byte, size), 0o600); err != nil {
			t.Fatal(err)
		}
		for range 4 {
			churn(t, disk, rng, size)
		}
		if _, err := p.AddHost(ctx, provider.HostSpec{Name: h.name, Disks: []string{disk}}); err != nil {
			t.Fatal(err)
		}
		req := provider.PolicyRequest{Plan: ptr(h.plan), Hour: ptr(h.hour)}
		if h.weekday != "" {
			req.Weekday = ptr(h.weekday)
		}
		if _, err := p.EnableBackups(ctx, h.name, req); err != nil {
			t.Fatal(err)
		}
		policies[h.name], _ = schedule.New(schedule.Change{Plan: req.Plan, Weekday: req.Weekday, Hour: req.Hour})
	}

	want := map[int][32]byte{} // backup ID -> disk content when taken
	snapshots := map[int]bool{}
	perWindow := map[string]bool{}
	end := now.Add(90 * 24 * time.Hour)
	for ; now.Before(end); now = now.Add(15 * time.Minute) {
		if now.Minute() == 7 && now.Hour() == 12 { // a day of writes, away from the windows
			for _, h := range hosts {
				churn(t, filepath.Join(dir, h.name+".img"), rng, size)
			}
		}
		rep, err := p.RunDue(ctx, provider.RunOptions{})
		if err != nil || len(rep.Errors) > 0 {
			t.Fatalf("%s: run --due: %v %v", now, err, rep.Errors)
		}
		for _, b := range rep.Backups {
			pol := policies[b.HostName]
			w, inside := schedule.WindowAt(pol, b.CreatedAt)
			if !inside {
				t.Fatalf("%s: backup %d of %s taken outside its window", now, b.ID, b.HostName)
			}
			key := b.HostName + w.Start.String()
			if perWindow[key] {
				t.Fatalf("%s: second backup of %s in window %s", now, b.HostName, w)
			}
			perWindow[key] = true
			want[b.ID] = sum(t, filepath.Join(dir, b.HostName+".img"))
			if b.HostName == "daily-1" && len(want)%20 == 3 { // keep some as snapshots
				if _, err := p.ConvertBackup(ctx, b.ID); err != nil {
					t.Fatal(err)
				}
				snapshots[b.ID] = true
			}
		}
		if now.Sub(end.Add(-90*24*time.Hour)) < 29*24*time.Hour {
			continue // the weekly host reaches its count after four weeks
		}
		for _, h := range hosts {
			bs, err := p.ListBackups(ctx, h.name)
			if err != nil {
				t.Fatal(err)
			}
			ss, err := p.ListSnapshots(ctx, h.name)
			if err != nil {
				t.Fatal(err)
			}
			young := 0 // snapshots that still count among the kept windows
			pol := policies[h.name]
			for _, s := range ss {
				if len(bs) > 0 && bs[len(bs)-1].CreatedAt.Sub(s.CreatedAt) < pol.Retention()-pol.Period()/2 {
					young++
				}
			}
			if len(bs)+young != h.keep {
				t.Fatalf("%s: %s has %d backups and %d recent snapshots, want %d", now, h.name, len(bs), young, h.keep)
			}
		}
	}
	for _, h := range hosts {
		bs, err := p.ListBackups(ctx, h.name)
		if err != nil {
			t.Fatal(err)
		}
		if len(bs) > h.keep {
			t.Fatalf("%s keeps %d backups at the end, want at most %d", h.name, len(bs), h.keep)
		}
	}
	ss, err := p.ListSnapshots(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != len(snapshots) {
		t.Fatalf("%d snapshots exist, %d were made", len(ss), len(snapshots))
	}

	// After gc, every kept backup and snapshot restores byte-identical.
	if _, err := p.GC(ctx, provider.GCOptions{}); err != nil {
		t.Fatal(err)
	}
	stats, err := p.RepoStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if stats.ReclaimedBytes == 0 {
		t.Fatal("gc reclaimed nothing over 90 days of retention")
	}
	bs, err := p.ListBackups(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range append(bs, ss...) {
		out := filepath.Join(dir, "restore-"+strconv.Itoa(b.ID))
		if _, err := p.RestoreBackup(ctx, provider.RestoreRequest{Host: b.HostName, Backup: strconv.Itoa(b.ID), To: out}); err != nil {
			t.Fatal(err)
		}
		if sum(t, out) != want[b.ID] {
			t.Fatalf("backup %d of %s does not restore byte-identical", b.ID, b.HostName)
		}
		os.Remove(out)
	}
	rep, err := p.VerifyBackups(ctx, nil, provider.VerifyOptions{})
	if err != nil || len(rep.Problems) > 0 {
		t.Fatalf("verify: %v %v", err, rep.Problems)
	}
}

// fastTempDir is a temporary directory on tmpfs where there is one: the
// simulation makes a hundred backups, and fsync on a real disk would make
// the test slow without testing anything more.
func fastTempDir(t *testing.T) string {
	t.Helper()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		dir, err := os.MkdirTemp("/dev/shm", "dropback-test-")
		if err == nil {
			t.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

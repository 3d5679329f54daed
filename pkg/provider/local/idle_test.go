package local

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dropback/dropback/pkg/provider"
	"github.com/dropback/dropback/pkg/store"
	"github.com/dropback/dropback/pkg/store/mem"
)

// countingStore counts the calls made to a store.
type countingStore struct {
	store.Store
	n atomic.Int64
}

func (s *countingStore) Put(ctx context.Context, name string, data []byte) error {
	s.n.Add(1)
	return s.Store.Put(ctx, name, data)
}

func (s *countingStore) Get(ctx context.Context, name string, off, n int64) ([]byte, error) {
	s.n.Add(1)
	return s.Store.Get(ctx, name, off, n)
}

func (s *countingStore) Stat(ctx context.Context, name string) (store.Info, error) {
	s.n.Add(1)
	return s.Store.Stat(ctx, name)
}

func (s *countingStore) List(ctx context.Context, prefix string, fn func(store.Info) error) error {
	s.n.Add(1)
	return s.Store.List(ctx, prefix, fn)
}

func (s *countingStore) Delete(ctx context.Context, name string) error {
	s.n.Add(1)
	return s.Store.Delete(ctx, name)
}

func (s *countingStore) ListLag() time.Duration { return store.ListLagOf(s.Store) }

// fleet is hosts hosts backed up daily by the scheduler for days days, in
// a counted store.
type fleet struct {
	t   *testing.T
	ctx context.Context
	now time.Time
	st  *countingStore
	p   *Provider
}

func newFleet(t *testing.T, hosts, days int) *fleet {
	t.Helper()
	f := &fleet{t: t, ctx: context.Background(), now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	clock := func() time.Time { return f.now }
	f.st = &countingStore{Store: mem.New(clock)}
	p, err := New(f.ctx, Options{Repo: "memory", Now: clock, Store: f.st})
	if err != nil {
		t.Fatal(err)
	}
	f.p = p
	if _, err := p.InitRepo(f.ctx, provider.RepoInitOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for i := range hosts {
		name := "web-" + string(rune('a'+i))
		disk := filepath.Join(dir, name+".img")
		if err := os.WriteFile(disk, []byte(strings.Repeat(name+" is a disk of some bytes\n", 5000)), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := p.AddHost(f.ctx, provider.HostSpec{Name: name, Disks: []string{disk}}); err != nil {
			t.Fatal(err)
		}
		if _, err := p.EnableBackups(f.ctx, name, provider.PolicyRequest{Plan: ptr("daily"), Hour: ptr(4)}); err != nil {
			t.Fatal(err)
		}
	}
	for d := range days {
		f.now = time.Date(2026, 3, 2+d, 12, 0, 0, 0, time.UTC) // the 04:00 window was missed: made up
		if rep := f.pass(); len(rep.Backups) != hosts {
			t.Fatalf("day %d: %d backups taken, want %d: %+v", d, len(rep.Backups), hosts, rep)
		}
	}
	return f
}

func (f *fleet) pass() *provider.RunReport {
	f.t.Helper()
	rep, err := f.p.RunDue(f.ctx, provider.RunOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return rep
}

// countedPass is a pass and the store calls it made.
func (f *fleet) countedPass() (*provider.RunReport, int64) {
	f.t.Helper()
	f.p = must(New(f.ctx, Options{Repo: "memory", Now: f.p.opts.Now, Store: f.st})) // a new process
	before := f.st.n.Load()
	rep := f.pass()
	return rep, f.st.n.Load() - before
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// An idle pass (nothing due, nothing to expire) costs the same few
// requests whatever the number of hosts and backups, once a pass has found
// the repository idle; a change, or the time a host falls due, makes the
// next pass read everything again.
func TestIdlePassCostsConstantRequests(t *testing.T) {
	var costs []int64
	for _, size := range []struct{ hosts, days int }{{1, 2}, {6, 5}} {
		f := newFleet(t, size.hosts, size.days)
		f.now = f.now.Add(time.Hour)
		first, full := f.countedPass()
		f.now = f.now.Add(5 * time.Minute)
		rep, n := f.countedPass()
		if len(rep.Backups)+len(rep.Expired)+len(rep.Errors) != 0 || len(rep.Skipped) != size.hosts ||
			len(first.Skipped) != size.hosts || rep.Skipped[0] != first.Skipped[0] {
			t.Fatalf("%d hosts: idle pass reported %+v, after %+v", size.hosts, rep, first)
		}
		if n > 10 || n >= full {
			t.Errorf("%d hosts x %d backups: the idle pass made %d requests (the pass before it %d), want at most 10", size.hosts, size.days, n, full)
		}
		t.Logf("%d hosts x %d backups: the pass that found it idle made %d requests, the idle pass after it %d", size.hosts, size.days, full, n)
		costs = append(costs, n)

		// A change: a shorter retention for one host; the next pass reads
		// everything and applies it.
		if _, err := f.p.SetPolicy(f.ctx, "web-a", provider.PolicyRequest{RetentionDays: ptr(1)}); err != nil {
			t.Fatal(err)
		}
		if rep := f.pass(); len(rep.Expired) == 0 {
			t.Fatalf("%d hosts: the pass after a change of retention expired nothing (the hint was trusted over a change): %+v", size.hosts, rep)
		}
		f.pass() // idle again
		// Time: the next window's start point falls due without any change.
		f.now = time.Date(2026, 3, 2+size.days, 10, 0, 0, 0, time.UTC)
		if rep := f.pass(); len(rep.Backups) != size.hosts {
			t.Fatalf("%d hosts: the next day's pass took %d backups, want %d", size.hosts, len(rep.Backups), size.hosts)
		}
	}
	if costs[0] != costs[1] {
		t.Errorf("idle pass: %d requests for 1 host x 2 backups, %d for 6 x 5: want the same", costs[0], costs[1])
	}
}

// A page of actions reads the records of that page only: its cost does
// not grow with the actions the repository keeps.
func TestActionsPageReadsOnlyItsPage(t *testing.T) {
	var costs []int64
	for _, n := range []int{30, 90} {
		f := newFleet(t, 0, 0)
		r := must(f.p.open(f.ctx))
		for range n {
			a, err := r.StartAction(f.ctx, "backup", "host", 1)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.FinishAction(f.ctx, a, 0, nil); err != nil {
				t.Fatal(err)
			}
		}
		f.p = must(New(f.ctx, Options{Repo: "memory", Now: f.p.opts.Now, Store: f.st}))
		before := f.st.n.Load()
		as, total, err := f.p.ListActionsPage(f.ctx, 2, 10)
		if err != nil {
			t.Fatal(err)
		}
		costs = append(costs, f.st.n.Load()-before)
		if total != n || len(as) != 10 || as[0].ID != n-10 || as[9].ID != n-19 {
			t.Fatalf("%d actions: page 2 of 10 gave %d actions of %d, from %d", n, len(as), total, as[0].ID)
		}
	}
	if costs[0] != costs[1] {
		t.Errorf("page 2 of 10 actions: %d requests among 30 actions, %d among 90: want the same", costs[0], costs[1])
	}
}

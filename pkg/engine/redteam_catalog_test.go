package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/dropback/dropback/internal/fakeclock"
	"github.com/dropback/dropback/pkg/store"
)

// ghostStore is a store whose listings lag the other way round as well: an
// object deleted less than ListLag ago may still be listed, as it was
// (size and store time), while a Get or Stat of it sees the delete. That
// is within the premises of docs/format.md ("a listing may lag, but shows
// every object created at least ListLag before it started": nothing is
// promised of deleted ones), and is what eventually consistent S3 servers
// do.
type ghostStore struct {
	store.Store
	clk    *fakeclock.Clock
	mu     sync.Mutex
	ghosts map[string]ghost
}

type ghost struct {
	info store.Info
	at   time.Time
}

func (s *ghostStore) ListLag() time.Duration { return time.Minute }

func (s *ghostStore) Delete(ctx context.Context, name string) error {
	info, statErr := s.Store.Stat(ctx, name)
	if err := s.Store.Delete(ctx, name); err != nil {
		return err
	}
	if statErr == nil {
		s.mu.Lock()
		if s.ghosts == nil {
			s.ghosts = map[string]ghost{}
		}
		s.ghosts[name] = ghost{info, s.clk.Now()}
		s.mu.Unlock()
	}
	return nil
}

func (s *ghostStore) List(ctx context.Context, prefix string, fn func(store.Info) error) error {
	var all []store.Info
	seen := map[string]bool{}
	err := s.Store.List(ctx, prefix, func(info store.Info) error {
		all = append(all, info)
		seen[info.Name] = true
		return nil
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	for name, g := range s.ghosts {
		if !seen[name] && len(name) >= len(prefix) && name[:len(prefix)] == prefix && s.clk.Now().Sub(g.at) < s.ListLag() {
			all = append(all, g.info)
		}
	}
	s.mu.Unlock()
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	for _, info := range all {
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}

func manifestIDs(ms []*Manifest) []int {
	var out []int
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

// A backup deleted a moment ago, on a store whose listing still shows its
// manifest for a while (ListLag > 0, the default for S3 servers that do
// not promise list-after-write), is not listed without a catalog: its
// manifest is read from the store, which says it is gone. With a catalog
// written before the delete, the row matches the stale listing, and the
// deleted backup is listed as present — to `backups list`, to retention
// and to the scheduler (which takes it for this window's backup and skips
// the host) — although deleted/<id> says it is deleted and a Get says it
// is gone.
func TestRedteamCatalogDeletedBackupListedFromCatalogOnLaggingListing(t *testing.T) {
	for _, encrypted := range []bool{false, true} {
		t.Run(fmt.Sprintf("encrypted=%v", encrypted), func(t *testing.T) {
			ctx := context.Background()
			f := newCatalogFixture(t, encrypted)
			a := f.backup(1, "web-1")
			b := f.backup(1, "web-1")
			if res, err := f.gc(f.st); err != nil || res.Catalogs == 0 {
				t.Fatalf("gc: %+v %v; want a catalog", res, err)
			}
			ghosts := &ghostStore{Store: f.st, clk: f.clk}
			f.clk.Advance(time.Second)
			if err := f.open(ghosts, "").DeleteBackup(ctx, b.ID); err != nil {
				t.Fatal(err)
			}
			f.clk.Advance(time.Second)

			// Without a catalog (as on main, or with no gc yet) the
			// stale listing is corrected by the read of the manifest.
			plain, _, err := f.open(ghosts, "").readManifests(withoutCache(ctx))
			if err != nil {
				t.Fatal(err)
			}
			if ids := manifestIDs(plain); len(ids) != 1 || ids[0] != a.ID {
				t.Fatalf("without the catalog the list is %v; want only backup %d", ids, a.ID)
			}

			// Through the catalog, as backups list, retention and the
			// scheduler read.
			ms, err := f.open(ghosts, "").Manifests(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if ids := manifestIDs(ms); len(ids) != 1 || ids[0] != a.ID {
				t.Fatalf("backup %d was deleted (deleted/%010d is there, a Get finds no manifest), yet the list through the catalog is %v; want only backup %d",
					b.ID, b.ID, ids, a.ID)
			}
		})
	}
}

// staleHostsStore is a store that says its listings do not lag
// (ListLag 0, as DROPBACK_S3_LIST_LAG=0s says of an S3 server, or a local
// repository on a network filesystem whose directory listings are cached)
// but whose listing of hosts/ does not yet show revisions younger than
// lag; the rest it lists at once.
type staleHostsStore struct {
	store.Store
	clk *fakeclock.Clock
	lag time.Duration
}

func (s staleHostsStore) ListLag() time.Duration { return 0 }

func (s staleHostsStore) List(ctx context.Context, prefix string, fn func(store.Info) error) error {
	cutoff := s.clk.Now().Add(-s.lag)
	return s.Store.List(ctx, prefix, func(info store.Info) error {
		if len(info.Name) > 6 && info.Name[:6] == "hosts/" && info.ModTime.After(cutoff) {
			return nil
		}
		return fn(info)
	})
}

// A host removed a moment ago, on a store that says its listings do not
// lag but whose listing is stale anyway: on main, readHost asks for the
// next revision by name whatever the lag, and finds the removal; the
// branch skips that Stat when ListLag is 0 and serves the older revision
// (from the catalog, or the store), so `hosts list` and the scheduler see
// the removed host as present, with its old disks and policy. The backups
// of the same store are listed right (newerIDs asks by name whatever the
// lag): only host records go stale.
func TestRedteamCatalogRemovedHostServedWhenListingLagsAtLagZero(t *testing.T) {
	for _, encrypted := range []bool{false, true} {
		t.Run(fmt.Sprintf("encrypted=%v", encrypted), func(t *testing.T) {
			ctx := context.Background()
			f := newCatalogFixture(t, encrypted)
			r := f.open(f.st, "")
			h, err := r.AddHost(ctx, HostRecord{Name: "web-1", Disks: []DiskSource{{Name: "disk0", Path: f.src}},
				Policy: &PolicyRecord{Plan: "daily", Hour: 3, RetentionDays: 7}})
			if err != nil {
				t.Fatal(err)
			}
			f.backup(h.ID, "web-1")
			if res, err := f.gc(f.st); err != nil || res.Catalogs == 0 {
				t.Fatalf("gc: %+v %v; want a catalog", res, err)
			}
			f.clk.Advance(10 * time.Minute)
			h.Removed, h.Policy = true, nil
			if _, err := f.open(f.st, "").UpdateHost(ctx, h); err != nil {
				t.Fatal(err)
			}
			newest := f.backup(h.ID, "web-1")
			f.clk.Advance(time.Second)

			stale := staleHostsStore{Store: f.st, clk: f.clk, lag: time.Minute}
			rd := f.open(stale, "")
			ms, err := rd.Manifests(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if ids := manifestIDs(ms); len(ids) == 0 || ids[len(ids)-1] != newest.ID {
				t.Fatalf("backups listed %v; want the newest, %d, among them", ids, newest.ID)
			}
			hs, err := rd.Hosts(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, got := range hs {
				if got.ID == h.ID {
					t.Fatalf("host %d was removed (revision %d), yet hosts list shows it at revision %d with policy %+v",
						h.ID, h.Rev+1, got.Rev, got.Policy)
				}
			}
		})
	}
}

// The keep-the-last-backup guard of retention (ExpireUnlessLast →
// othersRemain) reads the manifests through the catalog. A host has
// backups a and b; b is deleted (`backups delete`); within the listing's
// lag, retention expires a. Without the catalog (main with a cold cache,
// another machine, --no-cache) the guard reads b's manifest from the
// store, finds it gone, and keeps a as the host's last backup. Through the
// catalog, b's row matches the stale listing, the guard counts b as
// remaining, and a — the host's last backup — is deleted.
func TestRedteamCatalogRetentionDeletesLastBackupCountingADeletedOne(t *testing.T) {
	for _, encrypted := range []bool{false, true} {
		t.Run(fmt.Sprintf("encrypted=%v", encrypted), func(t *testing.T) {
			ctx := context.Background()
			f := newCatalogFixture(t, encrypted)
			a := f.backup(1, "web-1")
			b := f.backup(1, "web-1")
			if res, err := f.gc(f.st); err != nil || res.Catalogs == 0 {
				t.Fatalf("gc: %+v %v; want a catalog", res, err)
			}
			ghosts := &ghostStore{Store: f.st, clk: f.clk}
			f.clk.Advance(time.Second)
			if err := f.open(ghosts, "").DeleteBackupUnlessLast(ctx, b.ID); err != nil {
				t.Fatal(err)
			}
			f.clk.Advance(5 * time.Second)
			err := f.open(ghosts, "").ExpireUnlessLast(ctx, a.ID)
			left, _, lerr := f.open(f.st, "").readManifests(withoutCache(ctx))
			if lerr != nil {
				t.Fatal(lerr)
			}
			if len(left) == 0 {
				t.Fatalf("retention expired backup %d (err %v) although backup %d had been deleted: host 1 has no backup left in the store", a.ID, err, b.ID)
			}
			if !errors.Is(err, ErrLastBackup) {
				t.Fatalf("ExpireUnlessLast(%d) = %v; want ErrLastBackup", a.ID, err)
			}
		})
	}
}

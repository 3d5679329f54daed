package engine

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/dropback/dropback/pkg/store"
)

// statHookStore runs hook once, right after the first Stat of name
// returns, or fails every Stat of name with fail when that is set.
type statHookStore struct {
	store.Store
	name string
	fail error
	once sync.Once
	hook func()
	ran  bool
}

func (s *statHookStore) Stat(ctx context.Context, name string) (store.Info, error) {
	if name == s.name && s.fail != nil {
		return store.Info{}, s.fail
	}
	info, err := s.Store.Stat(ctx, name)
	if name == s.name && s.hook != nil {
		s.once.Do(func() { s.ran = true; s.hook() })
	}
	return info, err
}

// left is the host's backups as the store holds them, past cache and
// catalogs.
func (f *catalogFixture) left(hostID int) []int {
	f.t.Helper()
	ms, _, err := f.open(f.st, "").readManifests(withoutCache(context.Background()))
	if err != nil {
		f.t.Fatal(err)
	}
	var ids []int
	for _, m := range ms {
		if m.HostID == hostID {
			ids = append(ids, m.ID)
		}
	}
	return ids
}

// Two deleters at once, with the new Stat of each other's manifest: A
// (expiring a) has just seen b's manifest in the store when B deletes b
// from start to end. B must see A's deleting/ marker and refuse.
func TestRedteamFinalTwoDeletersOneRefuses(t *testing.T) {
	ctx := context.Background()
	f := newCatalogFixture(t, false)
	a := f.backup(1, "web-1")
	b := f.backup(1, "web-1")
	var errB error
	hooked := &statHookStore{Store: f.st, name: objectName("backups", b.ID)}
	hooked.hook = func() { errB = f.open(f.st, "").DeleteBackupUnlessLast(ctx, b.ID) }
	errA := f.open(hooked, "").ExpireUnlessLast(ctx, a.ID)
	if !hooked.ran {
		t.Fatalf("A (%v) never asked the store for b's manifest", errA)
	}
	if got := f.left(1); len(got) == 0 {
		t.Fatalf("both deleters deleted (A: %v, B: %v): host 1 has no backup left", errA, errB)
	}
	if !errors.Is(errB, ErrLastBackup) || errA != nil {
		t.Fatalf("A = %v, B = %v; want A to delete and B to refuse with ErrLastBackup", errA, errB)
	}
}

// A Stat of the other backup's manifest that fails with a transient error
// must not count that backup: the guard keeps a.
func TestRedteamFinalTransientManifestStatFailsClosed(t *testing.T) {
	ctx := context.Background()
	f := newCatalogFixture(t, false)
	a := f.backup(1, "web-1")
	b := f.backup(1, "web-1")
	flaky := &statHookStore{Store: f.st, name: objectName("backups", b.ID), fail: errors.New("503 slow down")}
	err := f.open(flaky, "").ExpireUnlessLast(ctx, a.ID)
	if err == nil {
		t.Fatalf("ExpireUnlessLast(%d) deleted it although b's manifest could not be checked", a.ID)
	}
	if got := f.left(1); len(got) != 2 {
		t.Fatalf("after a refused expire host 1 has %v; want both backups", got)
	}
}

// A host has backup a and snapshot s. Retention expires a: the guard sees
// s's manifest in the store (the new Stat) and goes on. Right then the
// user deletes s (`snapshots delete` calls DeleteBackup, which announces
// nothing under deleting/). Retention deletes a: the host has no backup or
// snapshot left, though the user only asked to delete s.
func TestRedteamFinalSnapshotDeleteRacesRetention(t *testing.T) {
	ctx := context.Background()
	f := newCatalogFixture(t, false)
	a := f.backup(1, "web-1")
	s := f.backup(1, "web-1")
	if err := f.open(f.st, "").MarkSnapshot(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	var errS error
	hooked := &statHookStore{Store: f.st, name: objectName("backups", s.ID)}
	// What snapshots delete calls.
	hooked.hook = func() { errS = f.open(f.st, "").DeleteBackupAnnounced(ctx, s.ID) }
	errA := f.open(hooked, "").ExpireUnlessLast(ctx, a.ID)
	if !hooked.ran {
		t.Fatalf("retention (%v) never asked the store for s's manifest", errA)
	}
	if errS != nil && !errors.Is(errS, ErrLastBackup) {
		t.Fatal(errS)
	}
	if got := f.left(1); len(got) == 0 {
		t.Fatalf("retention expired backup %d (err %v) while snapshot %d was being deleted: host 1 has no backup or snapshot left", a.ID, errA, s.ID)
	}
}

// A snapshot that is its host's only backup is deleted when asked: the
// announcement refuses only while the host's other backups are being
// deleted.
func TestDeleteBackupAnnouncedDeletesAnOnlyBackup(t *testing.T) {
	ctx := context.Background()
	f := newCatalogFixture(t, false)
	s := f.backup(1, "web-1")
	if err := f.open(f.st, "").DeleteBackupAnnounced(ctx, s.ID); err != nil {
		t.Fatalf("delete the only backup of a host, announced: %v", err)
	}
	if got := f.left(1); len(got) != 0 {
		t.Fatalf("backups left: %v, want none", got)
	}
}

package engine

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dropback/dropback/pkg/store"
)

// pauseStore stops one caller before its first call of op on name, says
// so on arrived, and goes on once release is closed.
type pauseStore struct {
	store.Store
	op, name string
	arrived  chan struct{}
	release  chan struct{}
	once     sync.Once
}

func newPause(st store.Store, op, name string) *pauseStore {
	return &pauseStore{Store: st, op: op, name: name, arrived: make(chan struct{}), release: make(chan struct{})}
}

func (p *pauseStore) at(op, name string) {
	if op == p.op && name == p.name {
		p.once.Do(func() { close(p.arrived); <-p.release })
	}
}

func (p *pauseStore) Put(ctx context.Context, name string, data []byte) error {
	p.at("put", name)
	return p.Store.Put(ctx, name, data)
}

func (p *pauseStore) Stat(ctx context.Context, name string) (store.Info, error) {
	p.at("stat", name)
	return p.Store.Stat(ctx, name)
}

// Three deleters on a host with backups a and b: two retention passes (two
// machines, or a schedule and a manual prune) both expire a, and a user
// deletes b. The second expirer of a finds deleting/a already written
// (ErrExists) and goes on without a marker of its own, trusting the first
// to remove it. The first expirer then refuses (it sees b being deleted)
// and removes deleting/a while the second is still about to delete a. The
// user's delete of b now sees a unannounced and in the store, and deletes
// b; the second expirer deletes a. The host has no backup left, which the
// guard exists to prevent.
func TestRedteamWholeSharedDeletingMarkerRemovedByARefusingDeleter(t *testing.T) {
	ctx := context.Background()
	f := newCatalogFixture(t, false)
	a := f.backup(1, "web-1")
	b := f.backup(1, "web-1")
	run := func(err *error, fn func() error) chan struct{} {
		done := make(chan struct{})
		go func() { defer close(done); *err = fn() }()
		return done
	}
	// Z: the first expirer of a, stopped just before it checks b.
	pz := newPause(f.st, "stat", objectName("deleting", b.ID))
	var errZ, errX, errY error
	doneZ := run(&errZ, func() error { return f.open(pz, "").ExpireUnlessLast(ctx, a.ID) })
	<-pz.arrived
	// X: the second expirer of a: deleting/a is Z's; b is in the store
	// and unannounced, so X goes on; stopped before it deletes.
	px := newPause(f.st, "put", objectName("deleted", a.ID))
	doneX := run(&errX, func() error { return f.open(px, "").ExpireUnlessLast(ctx, a.ID) })
	select { // it stops there, or refuses before
	case <-px.arrived:
	case <-doneX:
	}
	// Y: the user's delete of b, stopped just before it checks a.
	py := newPause(f.st, "stat", objectName("deleting", a.ID))
	doneY := run(&errY, func() error { return f.open(py, "").DeleteBackupUnlessLast(ctx, b.ID) })
	<-py.arrived
	// Z sees deleting/b, refuses, and removes deleting/a.
	close(pz.release)
	<-doneZ
	// Y sees a unannounced and in the store, and deletes b.
	close(py.release)
	<-doneY
	// X deletes a.
	close(px.release)
	<-doneX
	t.Logf("first expirer of a: %v; second expirer of a: %v; delete of b: %v", errZ, errX, errY)
	if got := f.left(1); len(got) == 0 {
		t.Fatalf("host 1 has no backup or snapshot left: retention expired %d and the user's delete of %d went through (errors: %v, %v, %v)",
			a.ID, b.ID, errZ, errX, errY)
	}
}

// A backup b of a host whose only other backup is a is paused (a VM
// suspended) while its manifest is being written. Retention runs in that
// moment: the guard sees b's manifest in the store, unannounced, and
// expires a. The backup then finds it went unprotected and withdraws b
// (commit deletes a manifest written too late, unguarded). The host is
// left with no backup: retention expired what was its last.
func TestRedteamWholeRetentionCountsAManifestItsBackupWithdraws(t *testing.T) {
	ctx := context.Background()
	f := newCatalogFixture(t, false)
	a := f.backup(1, "web-1")
	var errA error
	hs := &hookStore{Store: f.st, at: objectName("backups", a.ID+1), hook: func() {
		f.clk.Advance(protectedFor + time.Minute) // the pause
		errA = f.open(f.st, "").ExpireUnlessLast(ctx, a.ID)
	}}
	f.clk.Advance(time.Second)
	_, errB := f.open(hs, "").Backup(ctx, BackupRequest{HostID: 1, HostName: "web-1",
		Disks: []DiskSource{{Name: "disk0", Path: f.src}}})
	if !hs.done {
		t.Fatalf("the backup (%v) never wrote its manifest", errB)
	}
	t.Logf("retention of %d: %v; backup: %v", a.ID, errA, errB)
	if got := f.left(1); len(got) == 0 {
		t.Fatalf("host 1 has no backup left: retention expired %d (err %v) counting backup %d, which its backup then withdrew (%v)",
			a.ID, errA, a.ID+1, errB)
	}
}

// failStore fails every call of op on a name under prefix.
type failStore struct {
	store.Store
	op, prefix string
}

var errInjected = errors.New("injected fault")

func (s *failStore) Put(ctx context.Context, name string, data []byte) error {
	if s.op == "put" && strings.HasPrefix(name, s.prefix) {
		return errInjected
	}
	return s.Store.Put(ctx, name, data)
}

func (s *failStore) Delete(ctx context.Context, name string) error {
	if s.op == "delete" && strings.HasPrefix(name, s.prefix) {
		return errInjected
	}
	return s.Store.Delete(ctx, name)
}

// Held: gc's catalog step failing midway (the new catalog not written, or
// the old one not deleted), after a backup was deleted since the old
// catalog was written, and a catalog deleted between a reader's listing of
// catalogs and its read: readers list what the store holds, and the
// deleted ID is never given out again.
func TestRedteamWholeCatalogStepFailingMidwayListsTheTruth(t *testing.T) {
	ctx := context.Background()
	for _, op := range []string{"put", "delete"} {
		t.Run(op, func(t *testing.T) {
			f := newCatalogFixture(t, true)
			a, b := f.backup(1, "web-1"), f.backup(1, "web-1")
			if _, err := f.gc(f.st); err != nil {
				t.Fatal(err)
			}
			if err := f.open(f.st, "").DeleteBackup(ctx, a.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := f.gc(&failStore{Store: f.st, op: op, prefix: "catalog/"}); !errors.Is(err, errInjected) {
				t.Fatalf("gc with every %s of a catalog failing: %v", op, err)
			}
			if got, want := f.listed(f.st, ""), f.truth(); got != want {
				t.Fatalf("listed through the catalogs:\n%s\nthe store holds:\n%s", got, want)
			}
			// A reader whose catalog is deleted as it reads it.
			ps := newPause(f.st, "stat", objectName("backups", b.ID+1))
			var got string
			done := make(chan struct{})
			go func() { defer close(done); got = f.listed(ps, "") }()
			<-ps.arrived
			for _, name := range catalogNames(t, f.st) {
				_ = f.st.Delete(ctx, name)
			}
			close(ps.release)
			<-done
			if want := f.truth(); got != want {
				t.Fatalf("listed with the catalog deleted meanwhile:\n%s\nthe store holds:\n%s", got, want)
			}
			c := f.backup(1, "web-1")
			if c.ID <= b.ID || c.ID == a.ID {
				t.Fatalf("a new backup took ID %d (a=%d deleted, b=%d)", c.ID, a.ID, b.ID)
			}
		})
	}
}

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

// gateStore stops its caller before the first call of an op on a name
// registered with stop, until that gate is released.
type gateStore struct {
	store.Store
	mu    sync.Mutex
	gates map[string]*gate
}

type gate struct {
	arrived, release chan struct{}
	once             sync.Once
}

func newGateStore(st store.Store) *gateStore {
	return &gateStore{Store: st, gates: map[string]*gate{}}
}

func (g *gateStore) stop(op, name string) *gate {
	g.mu.Lock()
	defer g.mu.Unlock()
	gt := &gate{arrived: make(chan struct{}), release: make(chan struct{})}
	g.gates[op+" "+name] = gt
	return gt
}

func (g *gateStore) at(op, name string) {
	g.mu.Lock()
	gt := g.gates[op+" "+name]
	g.mu.Unlock()
	if gt != nil {
		gt.once.Do(func() { close(gt.arrived); <-gt.release })
	}
}

func (g *gateStore) Put(ctx context.Context, name string, data []byte) error {
	g.at("put", name)
	return g.Store.Put(ctx, name, data)
}

func (g *gateStore) Stat(ctx context.Context, name string) (store.Info, error) {
	g.at("stat", name)
	return g.Store.Stat(ctx, name)
}

func (g *gateStore) Delete(ctx context.Context, name string) error {
	g.at("delete", name)
	return g.Store.Delete(ctx, name)
}

// goRun runs fn in the background; the channel closes when it returned.
func goRun(err *error, fn func() error) chan struct{} {
	done := make(chan struct{})
	go func() { defer close(done); *err = fn() }()
	return done
}

// waitFor waits until the gate is reached, or fn's run ended: refused as
// being deleted by another (the guard cut the interleaving short, and the
// test goes on to check what is left), or else the interleaving did not
// happen and the test says so.
func waitFor(t *testing.T, gt *gate, done chan struct{}, what string, err *error) {
	t.Helper()
	select {
	case <-gt.arrived:
	case <-done:
		if errors.Is(*err, ErrBeingDeleted) {
			return
		}
		t.Fatalf("%s ended before the point the test stops it at: %v", what, *err)
	case <-time.After(30 * time.Second):
		t.Fatalf("%s never reached the point the test stops it at", what)
	}
}

// A host has backups a and b. A deleter of a crashed long ago and left
// deleting/a. Two retention passes (two machines) now expire a at the same
// moment: both find the marker stale, both delete it and write it again,
// the second's delete removing the first's fresh marker, so both get nil
// from announceDelete and go on "under a marker of their own", which is
// one object. The first then refuses (a user's delete of b announced
// itself a moment before) and, ending, removes deleting/a: the marker of
// the second, which already checked and is about to delete a. The user's
// delete of b then finds a unannounced and in the store and deletes b; the
// second expirer deletes a. The host has no backup left.
func TestRedteamGuardTwoTakeOversOfAStaleMarkerBothGoOn(t *testing.T) {
	ctx := context.Background()
	f := newCatalogFixture(t, false)
	a := f.backup(1, "web-1")
	b := f.backup(1, "web-1")
	delA, delB := objectName("deleting", a.ID), objectName("deleting", b.ID)
	if err := f.st.Put(ctx, delA, []byte("{}\n")); err != nil { // a crashed deleter's
		t.Fatal(err)
	}
	f.clk.Advance(StaleAfter + clockSkew + time.Minute)

	var errB, errC, errE error
	// B: the first expirer of a; it found the marker stale.
	gB := newGateStore(f.st)
	bDel, bCheck := gB.stop("delete", delA), gB.stop("stat", delB)
	doneB := goRun(&errB, func() error { return f.open(gB, "").ExpireUnlessLast(ctx, a.ID) })
	waitFor(t, bDel, doneB, "expirer B", &errB)
	// C: the second expirer of a; it found the marker stale too.
	gC := newGateStore(f.st)
	cDel, cFate := gC.stop("delete", delA), gC.stop("put", objectName("fate", a.ID))
	doneC := goRun(&errC, func() error { return f.open(gC, "").ExpireUnlessLast(ctx, a.ID) })
	waitFor(t, cDel, doneC, "expirer C", &errC)
	// B deletes the stale marker and writes its own; stops before it checks b.
	close(bDel.release)
	waitFor(t, bCheck, doneB, "expirer B", &errB)
	// C deletes B's fresh marker, writes its own, sees b staying; stops
	// before it decides a's fate.
	close(cDel.release)
	waitFor(t, cFate, doneC, "expirer C", &errC)
	// E: a user's delete of b announces itself; stops before it checks a.
	gE := newGateStore(f.st)
	eCheck := gE.stop("stat", delA)
	doneE := goRun(&errE, func() error { return f.open(gE, "").DeleteBackupUnlessLast(ctx, b.ID) })
	waitFor(t, eCheck, doneE, "the delete of b", &errE)
	// B sees b being deleted, refuses, and removes deleting/a (C's).
	close(bCheck.release)
	<-doneB
	// E sees a unannounced, and deletes b.
	close(eCheck.release)
	<-doneE
	// C deletes a.
	close(cFate.release)
	<-doneC
	t.Logf("expirer B: %v; expirer C: %v; delete of b: %v", errB, errC, errE)
	if got := f.left(1); len(got) == 0 {
		t.Fatalf("host 1 has no backup left: two take-overs of the stale deleting/%d both went on (B: %v, C: %v), and the delete of %d (%v) went through",
			a.ID, errB, errC, b.ID, errE)
	}
}

// guardLoss runs the interleaving shared by the next tests: owner A holds
// deleting/a and is stopped before it checks b; taker C, opened with
// takerNow, takes the marker over, checks and stops before it decides a's
// fate; E, a user's delete of b, announces and stops before it checks a;
// then A (refusing: it sees deleting/b) ends and removes deleting/a, E
// goes on, and C goes on. pause runs while A is stopped. It returns the
// host's backups left and the three errors.
func guardLoss(t *testing.T, pause func(f *catalogFixture), takerNow func(clk func() time.Time) func() time.Time) (left []int, errA, errC, errE error) {
	t.Helper()
	ctx := context.Background()
	f := newCatalogFixture(t, false)
	a := f.backup(1, "web-1")
	b := f.backup(1, "web-1")
	delA, delB := objectName("deleting", a.ID), objectName("deleting", b.ID)
	gA := newGateStore(f.st)
	aCheck := gA.stop("stat", delB)
	doneA := goRun(&errA, func() error { return f.open(gA, "").ExpireUnlessLast(ctx, a.ID) })
	waitFor(t, aCheck, doneA, "expirer A", &errA)
	pause(f)
	gC := newGateStore(f.st)
	cFate := gC.stop("put", objectName("fate", a.ID))
	rC, err := Open(ctx, gC, Options{Now: takerNow(f.clk.Now), After: f.clk.After, Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}
	doneC := goRun(&errC, func() error { return rC.ExpireUnlessLast(ctx, a.ID) })
	waitFor(t, cFate, doneC, "expirer C", &errC)
	gE := newGateStore(f.st)
	eCheck := gE.stop("stat", delA)
	doneE := goRun(&errE, func() error { return f.open(gE, "").DeleteBackupUnlessLast(ctx, b.ID) })
	waitFor(t, eCheck, doneE, "the delete of b", &errE)
	close(aCheck.release)
	<-doneA
	close(eCheck.release)
	<-doneE
	close(cFate.release)
	<-doneC
	return f.left(1), errA, errC, errE
}

// A host has backups a and b. Retention on machine A expires a: it writes
// deleting/a and is then suspended (a VM paused, a laptop asleep) for
// longer than StaleAfter before it checks b; the marker is never
// refreshed. Retention on machine C expires a too: it takes the marker
// over, sees b staying and is about to delete a. A user deletes b: it
// announces deleting/b. A resumes, sees deleting/b, refuses, and its
// deferred Delete removes deleting/a, which is C's now. The user's delete
// of b finds a unannounced and deletes b; C deletes a. No backup left.
func TestRedteamGuardOwnerSuspendedPastStaleRemovesTheTakersMarker(t *testing.T) {
	left, errA, errC, errE := guardLoss(t,
		func(f *catalogFixture) { f.clk.Advance(StaleAfter + clockSkew + time.Minute) },
		func(clk func() time.Time) func() time.Time { return clk })
	t.Logf("expirer A: %v; expirer C: %v; delete of b: %v", errA, errC, errE)
	if len(left) == 0 {
		t.Fatalf("host 1 has no backup left: the suspended owner of deleting/a (%v) removed the marker of the expirer that took it over (%v), and the delete of b (%v) went through",
			errA, errC, errE)
	}
}

// The same with no pause at all: machine C's clock is 15 minutes ahead, so
// it takes A's marker, written a second ago, for stale. (Beyond the
// minute of skew allowed; but the age of the marker could be read by the
// store's clock alone, as the store wrote both times.)
func TestRedteamGuardClockAheadTakesOverALiveMarker(t *testing.T) {
	left, errA, errC, errE := guardLoss(t,
		func(f *catalogFixture) { f.clk.Advance(time.Second) },
		func(clk func() time.Time) func() time.Time {
			return func() time.Time { return clk().Add(15 * time.Minute) }
		})
	t.Logf("expirer A: %v; expirer C (clock 15m ahead): %v; delete of b: %v", errA, errC, errE)
	if len(left) == 0 {
		t.Fatalf("host 1 has no backup left: an expirer whose clock is ahead took over a live deleting/ marker (%v), its owner removed it (%v), and the delete of b (%v) went through",
			errC, errA, errE)
	}
}

// A deleter of a (a user's delete, retention) crashed after it wrote
// deleting/a, before it deleted: a stays, and so does the marker, for
// good: nothing removes it but another delete of a. A day later every
// guarded delete of the host's other backup b is refused as "the last
// backup of the host", and retention never expires b, though a stays.
func TestRedteamGuardCrashedDeletersMarkerBlocksTheOthersForGood(t *testing.T) {
	ctx := context.Background()
	f := newCatalogFixture(t, false)
	a := f.backup(1, "web-1")
	b := f.backup(1, "web-1")
	if err := f.st.Put(ctx, objectName("deleting", a.ID), []byte("{}\n")); err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(24 * time.Hour)
	// The day's gc removes what the deleter left.
	if _, err := f.open(f.st, "").GC(ctx, noMinAge); err != nil {
		t.Fatal(err)
	}
	if err := f.open(f.st, "").ExpireUnlessLast(ctx, b.ID); err != nil {
		t.Fatalf("a day after a deleter of %d crashed, with %d still there, retention's expire of %d: %v", a.ID, a.ID, b.ID, err)
	}
}

// Held: a List of running/ that fails makes the guard refuse, whatever
// the other backups; a snapshot delete (mayBeLast) refuses while the
// host's only other backup is being deleted.
func TestRedteamGuardFailsClosed(t *testing.T) {
	ctx := context.Background()
	f := newCatalogFixture(t, false)
	a := f.backup(1, "web-1")
	b := f.backup(1, "web-1")
	fs := &listFailStore{Store: f.st, prefix: "running/"}
	if err := f.open(fs, "").ExpireUnlessLast(ctx, a.ID); !errors.Is(err, errInjected) {
		t.Fatalf("expire with the list of running/ failing: %v", err)
	}
	if err := f.st.Put(ctx, objectName("deleting", b.ID), []byte("{}\n")); err != nil {
		t.Fatal(err)
	}
	if err := f.open(f.st, "").DeleteBackupAnnounced(ctx, a.ID); !errors.Is(err, ErrLastBackup) {
		t.Fatalf("snapshot delete of %d while %d is being deleted: %v", a.ID, b.ID, err)
	}
	if err := f.st.Delete(ctx, objectName("deleting", b.ID)); err != nil {
		t.Fatal(err)
	}
	if got := f.left(1); len(got) != 2 {
		t.Fatalf("left %v", got)
	}
}

type listFailStore struct {
	store.Store
	prefix string
}

func (s *listFailStore) List(ctx context.Context, prefix string, fn func(store.Info) error) error {
	if strings.HasPrefix(prefix, s.prefix) {
		return errInjected
	}
	return s.Store.List(ctx, prefix, fn)
}

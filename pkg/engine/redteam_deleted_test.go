package engine

// Red-team tests of the roll-up of deleted/ markers into deleted-ranges
// records (deletedranges.go): each takes what a user would notice (a backup
// that no longer opens or restores, an ID given twice, a verify that reports
// backups lost that were deleted) and fails while the change allows it.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dropback/dropback/internal/fakeclock"
	"github.com/dropback/dropback/pkg/store"
	"github.com/dropback/dropback/pkg/store/faulty"
	"github.com/dropback/dropback/pkg/store/mem"
)

// A plain repository whose one deleted-ranges record is damaged (a flipped
// byte: bit rot, or a write cut short by the disk) is upgraded. The upgrade
// copies every backup, swaps the encrypted objects in and deletes the plain
// packs, and only then reads the record to write its markers back: it
// fails there, and on every run again. The repository, half upgraded, no
// longer opens ("run `dropback repo upgrade` to finish it"), and nothing
// deletes a deleted-ranges record: no command gets the user past it, and
// no backup can be restored. (A damaged manifest stops an upgrade too, but
// before it swaps or deletes anything, and for a reason: going on would
// lose that backup. Here stopping keeps nothing: what the record held is
// unknown either way, and stays damage the encrypted repository can name.)
func TestRedteamUpgradeWithADamagedDeletedRangesRecordStrandsEveryBackup(t *testing.T) {
	ctx := context.Background()
	h := newPlainHistory(t)
	const rec = "deleted-ranges/00000000000000000001-0123456789abcdef"
	data, err := h.st.Get(ctx, rec, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	if !isPlain(data) {
		t.Fatal("setup: the record is not plain")
	}
	data[len(data)/2] ^= 1 // still plain, no longer sealed right
	info, err := h.st.Stat(ctx, rec)
	if err != nil {
		t.Fatal(err)
	}
	h.st.Set(rec, data, info.ModTime)

	var errs []error
	for range 2 {
		if _, err = upgrade(ctx, h.st); err == nil {
			break
		}
		errs = append(errs, err)
	}
	r, oerr := Open(ctx, h.st, Options{Password: testPassword})
	if err != nil {
		t.Fatalf("repo upgrade with a damaged deleted-ranges record fails on every run: %v; the repository: %v", errs, oerr)
	}
	if oerr != nil {
		t.Fatalf("open the upgraded repository: %v", oerr)
	}
	ms, damaged, err := r.ManifestsAndDamage(ctx)
	if err != nil || len(damaged) > 0 || len(ms) != len(h.disks) {
		t.Fatalf("after the upgrade: %d backups, damaged %v, %v; want %d", len(ms), damaged, err, len(h.disks))
	}
	for _, m := range ms {
		out := filepath.Join(t.TempDir(), "out.img")
		if _, err := r.Restore(ctx, m, []RestoreTarget{{Path: out}}, nil); err != nil {
			t.Fatalf("after the upgrade: restore backup %d: %v", m.ID, err)
		}
		if fileHash(t, out) != fileHash(t, h.disks[m.ID]) {
			t.Fatalf("after the upgrade: backup %d restores other bytes", m.ID)
		}
	}
}

// rollUpRun is one run of TestRedteamRollUpInterleavings: a world whose
// repository holds markers of backups deleted long ago, enough for gc to
// roll them up, and the IDs every backup ever had.
type rollUpRun struct {
	*world
	planted int          // deleted/ markers 1..planted, of long ago
	ever    map[int]bool // every ID a backup took, during the run or before
}

// backup backs up a host as interleave's actors do, and reports an ID
// given a second time: one of the deleted markers planted, or one a backup
// of this run had already.
func (u *rollUpRun) backup(a *actor, host int) {
	version := 1 + rand.New(rand.NewPCG(uint64(u.seed), uint64(a.id))).IntN(1000)
	name, path := u.disk(host, version)
	m, err := a.r.Backup(a.ctx, BackupRequest{HostID: host, HostName: name, Disks: []DiskSource{{Name: "vda", Path: path}}})
	if err != nil {
		u.logf("%s: backup of %s failed: %v", a.name, name, err)
		return
	}
	u.logf("%s: backup %d of %s", a.name, m.ID, name)
	u.mu.Lock()
	defer u.mu.Unlock()
	if m.ID <= u.planted || u.ever[m.ID] {
		u.bugs = append(u.bugs, fmt.Sprintf("backup %d of %s took an ID a backup had already", m.ID, name))
	}
	u.ever[m.ID] = true
	u.taken[m.ID] = name
}

// deleteNewest deletes the newest backup, as `backups delete` does: then
// the highest ID there was is a deleted one.
func (u *rollUpRun) deleteNewest(a *actor) {
	ms, err := a.r.Manifests(a.ctx)
	if err != nil || len(ms) == 0 {
		return
	}
	m := ms[len(ms)-1]
	u.mu.Lock()
	u.deleted[m.ID] = true
	u.mu.Unlock()
	err = a.r.DeleteBackup(a.ctx, m.ID)
	u.logf("%s: delete the newest backup, %d: %v", a.name, m.ID, err)
}

// The interleaving test's gc keeps 90 days of history and its runs last
// minutes: it never rolls a marker up. These runs do: 60 to 70 markers of
// backups deleted long ago, and gc keeping minutes of history, so that the
// markers of backups deleted during the run are old by the next gc, are
// rolled up and then deleted, while backups, deletions, restores and
// verifies run beside it, calls fail and processes die, and on some runs
// listings lag. What a user would ask is checked as the interleaving test
// does, and besides: no ID is given twice, no verify during the run
// reports damage without a fault, and after gc's in peace that roll every
// old marker up, no backup is reported lost and the next backup takes a
// new ID.
//
//	go test ./pkg/engine -run RedteamRollUpInterleavings -redteam.rollup.seeds 500
func TestRedteamRollUpInterleavings(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	var records, dropped int
	for seed := 1; seed <= *rollUpSeeds; seed++ {
		rec, drop, ok := rollUpInterleave(t, seed)
		if !ok {
			return
		}
		records += rec
		if drop {
			dropped++
		}
	}
	t.Logf("%d runs: %d deleted-ranges records written during them; markers deleted during %d", *rollUpSeeds, records, dropped)
	if records == 0 || dropped == 0 {
		t.Errorf("the runs wrote %d records and deleted markers in %d: the roll-up never ran among the other operations", records, dropped)
	}
}

var rollUpSeeds = flag.Int("redteam.rollup.seeds", 60, "seeds of TestRedteamRollUpInterleavings")

func rollUpInterleave(t *testing.T, seed int) (records int, dropped, ok bool) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(uint64(seed), 4711))
	clk := fakeclock.New(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	st := mem.New(clk.Now)
	w := &world{t: t, seed: seed, clk: clk, st: st, dir: t.TempDir(), chunk: testChunk, stats: &interleaveStats{},
		ended: map[string]bool{}, procs: map[int]processID{}, contents: map[string][32]byte{}, taken: map[int]string{}, deleted: map[int]bool{},
		parkOn: map[int]string{}, parked: map[int]bool{}}
	if _, err := Init(ctx, st, encrypt(InitOptions{ChunkSize: testChunk, Options: Options{Now: clk.Now}})); err != nil {
		t.Fatal(err)
	}
	u := &rollUpRun{world: w, planted: minRolledIDs + 1 + rng.IntN(10), ever: map[int]bool{}}
	longAgo := clk.Now().Add(-2 * DefaultHistory)
	for id := 1; id <= u.planted; id++ {
		st.Set(objectName("deleted", id), []byte("{}\n"), longAgo)
	}
	// Some backups first, in peace.
	w.gate = faulty.NewGate(st, 0, func([]faulty.Call) (int, faulty.Verdict) { return 0, faulty.Proceed })
	for i := range 6 {
		u.backup(w.newActor(100+i, thisMachine), []int{1, 2, 1, 2, 1, 2}[i])
		clk.Advance(30 * time.Minute)
		w.exit(100 + i)
	}
	w.gate.Close()

	history := []time.Duration{3 * time.Minute, 5 * time.Minute, 20 * time.Minute}[rng.IntN(3)]
	gcOpts := GCOptions{MinAge: -1, History: history, CompactFanout: 2}
	pool := []func() step{
		func() step { h := 1 + rng.IntN(2); return func(a *actor) { u.backup(a, h) } },
		func() step { h := 1 + rng.IntN(2); return func(a *actor) { a.prune(h) } },
		func() step { h := 1 + rng.IntN(2); return func(a *actor) { a.deleteOldest(h) } },
		func() step { return func(a *actor) { u.deleteNewest(a) } },
		func() step { k := rng.IntN(10); return func(a *actor) { a.restore(k) } },
		func() step { return func(a *actor) { a.verify() } },
		func() step { return func(a *actor) { a.gc(gcOpts) } },
		func() step { return func(a *actor) { a.gc(gcOpts) } },
		func() step {
			d := time.Duration(1+rng.IntN(5)) * time.Minute
			return func(a *actor) { clk.Advance(d) }
		},
	}
	scripts := make([][]step, 3+rng.IntN(3))
	for i := range scripts {
		for range 2 + rng.IntN(5) {
			scripts[i] = append(scripts[i], pool[rng.IntN(len(pool))]())
		}
	}
	sound := rng.IntN(3) == 0
	choose := faulty.NewRand(rng, 60, 400, nil)
	if sound {
		choose = faulty.NewRand(rng, 0, 0, nil)
	}
	var under store.Store = st
	if rng.IntN(2) == 0 {
		under = lagStore{st, clk.Now}
	}
	prio := pct(rng)
	gate := faulty.NewGate(under, 300*time.Microsecond, func(held []faulty.Call) (int, faulty.Verdict) {
		if rng.IntN(8) == 0 {
			clk.Advance(time.Duration(rng.Int64N(int64(60 * time.Second))))
		}
		j, v := choose(held)
		if rng.IntN(2) == 0 {
			j = prio(held)
		}
		return j, v
	})
	w.mu.Lock()
	w.gate = gate
	w.mu.Unlock()
	var wg sync.WaitGroup
	w.actors, w.running = len(scripts), len(scripts)
	for i, script := range scripts {
		a := w.newActor(i+1, rng.IntN(3))
		wg.Go(func() {
			for _, s := range script {
				s(a)
			}
			w.exit(a.id)
		})
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(3 * time.Minute):
		t.Fatalf("seed %d hangs:\n%s", seed, strings.Join(w.log, "\n"))
	}
	gate.Close()
	for id := range 10 {
		if gate.Dead(id) {
			w.ended[procKey(w.procs[id])] = true
		}
	}
	records = len(listNames(t, st, "deleted-ranges/"))
	if _, err := st.Stat(ctx, objectName("deleted", 1)); errors.Is(err, store.ErrNotFound) {
		dropped = true
	}

	// In peace, long after: two gc's with the run's history, which roll
	// every old marker up and delete them but the highest; then the
	// interleaving test's checks; then a new backup.
	clk.Advance(2 * StaleAfter)
	quiet := faulty.NewGate(st, 0, func([]faulty.Call) (int, faulty.Verdict) { return 0, faulty.Proceed })
	w.mu.Lock()
	w.gate = quiet
	w.mu.Unlock()
	final := w.newActor(998, thisMachine)
	u.deleteNewest(final) // the highest ID ever is a deleted one
	for range 3 {
		if _, err := final.r.GC(ctx, gcOpts); err != nil {
			w.bug("gc in peace with %v of history: %v", history, err)
		}
		clk.Advance(history + ListLag + clockSkew + time.Minute)
	}
	if lost, err := final.r.LostBackups(ctx); err != nil || len(lost) > 0 {
		w.bug("after the roll-up in peace: lost backups %v, %v", lost, err)
	}
	u.backup(final, 1)
	quiet.Close()
	return records, dropped, w.check() && len(w.bugs) == 0
}

// A deleted-ranges record is at most 10,000 IDs (maxRolledIDs, and
// docs/format.md: "of at most 10,000 of them"), but nothing checks that
// when one is read: a record planted in a plain repository (or rewritten
// by anyone with write access to the store) of one range, [10, MaxID], is
// taken as it is. repo upgrade then writes a deleted/ marker for each of
// its ten billion IDs, one Put at a time, before it can finish: the
// upgrade never ends and fills the store. LostBackups follows the objects
// there are, not the IDs between them ("one planted manifest at a high ID
// is one range"); the upgrade must as well, or refuse such a record as
// damage.
func TestRedteamUpgradeUnrollsAPlantedRecordIDByID(t *testing.T) {
	ctx := context.Background()
	h := newPlainHistory(t)
	planted, err := seal(deletedRanges{At: time.Now().UTC(), Ranges: [][2]int{{10, MaxID}}})
	if err != nil {
		t.Fatal(err)
	}
	h.st.Set("deleted-ranges/00000000000000000002-fedcba9876543210", planted, time.Now())
	const bound = 2 * maxRolledIDs // two records' worth: far more than the history holds
	fs := faulty.New(h.st, faulty.Rule{Op: faulty.Put, Pattern: "deleted/", After: bound,
		Err: errors.New("the test stops an upgrade that writes this many deleted/ markers")})
	_, err = upgrade(ctx, fs)
	if err != nil && strings.Contains(err.Error(), "the test stops") {
		t.Fatalf("repo upgrade wrote %d deleted/ markers for a record of one range, 10 to %d, and went on: %v", bound, MaxID, err)
	}
	if err != nil {
		t.Fatalf("repo upgrade with a planted deleted-ranges record: %v", err)
	}
	// The record, damaged (it claims more than a record may), stays as it
	// was: verify names it, and every backup is whole.
	r, err := Open(ctx, h.st, Options{Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}
	v, err := r.Verify(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	named := false
	for _, p := range v.Problems {
		named = named || strings.Contains(p, "deleted-ranges/00000000000000000002-fedcba9876543210")
	}
	for _, b := range v.Backups {
		if !b.OK && b.ID < 10 {
			t.Errorf("backup %d after the upgrade: %s", b.ID, b.Problem)
		}
	}
	if !named {
		t.Errorf("verify after the upgrade does not name the planted record: %v", v.Problems)
	}
}

// gc judges whether every listing shows a deleted-ranges record by this
// machine's clock (r.now) against the store's time of the record, and
// checks that clock against the store's only once, when it starts. A
// clock that steps forward during the run by less than the op's own check
// notices (three minutes here; five are caught), as NTP may correct a VM
// resumed from a pause, makes a record written seconds ago look settled: gc
// deletes the markers it covers while listings may not show it yet, and a
// verify in that window, on a machine whose clock is right, finds
// neither the markers nor the record: it reports every one of those
// backups lost ("its manifest is gone, and no deletion was recorded"),
// until the listings catch up. Without the step the same gc keeps them.
func TestRedteamClockStepDuringGCDropsMarkersBeforeListingsShowTheRecord(t *testing.T) {
	ctx := context.Background()
	clk := fakeclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	st := mem.New(clk.Now)
	under := lagStore{st, clk.Now}
	if _, err := Init(ctx, st, encrypt(InitOptions{ChunkSize: testChunk, Options: Options{Now: clk.Now, After: clk.After}})); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * ListLag) // the keys listed
	// Backups 1..n deleted long ago, and one kept.
	const n = minRolledIDs + 6
	longAgo := clk.Now().Add(-2 * DefaultHistory)
	for id := 1; id <= n; id++ {
		st.Set(objectName("deleted", id), []byte("{}\n"), longAgo)
	}
	right, err := Open(ctx, under, Options{Now: clk.Now, After: clk.After, Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "src.img")
	makeDisk(t, src, 2*testChunk, region{0, testChunk, "random"})
	if m := backup(t, right, src); m.ID != n+1 {
		t.Fatalf("setup: backup %d, want %d", m.ID, n+1)
	}
	clk.Advance(10 * time.Minute)
	if _, err := right.GC(ctx, noMinAge); err != nil {
		t.Fatal(err)
	}
	if got := listNames(t, st, "deleted-ranges/"); len(got) != 1 {
		t.Fatalf("setup: records %v, want one", got)
	}
	clk.Advance(10 * time.Second)

	// The next gc, seconds later, on a machine whose clock steps three
	// minutes ahead once the gc has checked it. Its listing happens to
	// show the young record already, as a listing may; the verify's does
	// not, as it may not.
	var step time.Duration
	fs := faulty.New(st, faulty.Rule{Op: faulty.List, Pattern: "deleted-ranges/", Hook: func() { step = 3 * time.Minute }})
	jumpy, err := Open(ctx, fs, Options{Now: func() time.Time { return clk.Now().Add(step) }, After: clk.After, Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jumpy.GC(ctx, noMinAge); err != nil {
		t.Logf("gc with the clock stepping: %v", err)
	}
	left := len(listNames(t, st, "deleted/"))

	clk.Advance(10 * time.Second) // still less than a listing's lag after the record
	lost, err := right.LostBackups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(lost) > 0 {
		t.Fatalf("gc with a clock stepping ahead mid-run deleted the deleted/ markers (%d of %d left) %s after writing the record that covers them; a verify within the listing lag reports backups %v lost", left, n, 20*time.Second, lost)
	}
}

// Two gc's that roll markers up, each write or delete failing in turn
// (the process dies there; the next gc runs in peace): no backup reads as
// lost, verify is clean, the next backup takes a new ID, and in the end
// only the highest deleted ID keeps its marker.
func TestRedteamRollUpCrashAtEveryWriteAndDelete(t *testing.T) {
	ctx := context.Background()
	const n = minRolledIDs + 6
	for _, op := range []faulty.Op{faulty.Put, faulty.Delete} {
		for after := 0; ; after++ {
			clk := fakeclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			st := mem.New(clk.Now)
			opts := Options{Now: clk.Now, After: clk.After, Password: testPassword, Machine: upgradeProcess{pid: 300002}}
			if _, err := Init(ctx, st, encrypt(InitOptions{ChunkSize: testChunk, Options: opts})); err != nil {
				t.Fatal(err)
			}
			for id := 1; id <= n; id++ {
				st.Set(objectName("deleted", id), []byte("{}\n"), clk.Now().Add(-2*DefaultHistory))
			}
			r, err := Open(ctx, st, opts)
			if err != nil {
				t.Fatal(err)
			}
			src := filepath.Join(t.TempDir(), "src.img")
			makeDisk(t, src, 2*testChunk, region{0, testChunk, "random"})
			backup(t, r, src)
			gone := backup(t, r, src)
			if err := r.DeleteBackup(ctx, gone.ID); err != nil {
				t.Fatal(err)
			}
			clk.Advance(DefaultHistory + time.Hour)

			fs := faulty.New(st, faulty.Rule{Op: op, After: after, Times: 0})
			dies := opts
			dies.Machine = upgradeProcess{pid: 300001} // ended, as r's machine sees it
			hurt, err := Open(ctx, fs, dies)
			if err != nil {
				t.Fatal(err)
			}
			var failed error
			for range 2 {
				if _, err := hurt.GC(ctx, noMinAge); err != nil {
					failed = err
					break
				}
				clk.Advance(ListLag + clockSkew + time.Minute)
			}
			clk.Advance(2 * StaleAfter)
			for range 2 {
				clk.Advance(ListLag + clockSkew + time.Minute)
				if _, err := r.GC(ctx, noMinAge); err != nil {
					t.Fatalf("%s %d failed (%v); gc in peace: %v", op, after, failed, err)
				}
			}
			if lost, err := r.LostBackups(ctx); err != nil || len(lost) > 0 {
				t.Fatalf("%s %d failed (%v); lost backups %v, %v", op, after, failed, lost, err)
			}
			if v, err := r.Verify(ctx, nil, nil); err != nil || v.Damaged() {
				t.Fatalf("%s %d failed (%v); verify: %v %v", op, after, failed, err, v.Problems)
			}
			if got := listNames(t, st, "deleted/"); len(got) != 1 || got[0] != objectName("deleted", gone.ID) {
				t.Fatalf("%s %d failed (%v); markers left %v, want only %s", op, after, failed, got, objectName("deleted", gone.ID))
			}
			if m := backup(t, r, src); m.ID != gone.ID+1 {
				t.Fatalf("%s %d failed (%v); the next backup took ID %d, want %d", op, after, failed, m.ID, gone.ID+1)
			}
			if failed == nil {
				t.Logf("%s: the two gc's went through once %d were let through", op, after)
				break
			}
		}
	}
}

// The same clock step, worse: the markers a record covers are the IDs below
// the highest deleted one, and readers count on that marker being listed.
// It is, when the record is settled by the store's clock: the gc that wrote
// the record listed it, before. With the step, the record may be seconds
// old, and the highest marker too: backup 71 of a host whose backups were
// all deleted is deleted in its turn; a gc lists its marker at once (as a
// listing may) and rolls 1..70 up; a gc seconds later, its clock stepped
// three minutes ahead, deletes markers 1..70. A listing in that minute
// need not show deleted/71: a backup then lists neither backups nor
// markers, and takes ID 1 again; a reader's Manifests, probing IDs from 1
// by name, stops at the first free one and does not see a backup 72 taken
// meanwhile.
func TestRedteamClockStepDuringGCLetsADeletedIDBeTakenAgain(t *testing.T) {
	ctx := context.Background()
	clk := fakeclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	st := mem.New(clk.Now)
	if _, err := Init(ctx, st, encrypt(InitOptions{ChunkSize: testChunk, Options: Options{Now: clk.Now, After: clk.After}})); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * ListLag) // the keys listed
	const n = minRolledIDs + 6
	for id := 1; id <= n; id++ {
		st.Set(objectName("deleted", id), []byte("{}\n"), clk.Now().Add(-2*DefaultHistory))
	}
	opts := Options{Now: clk.Now, After: clk.After, Password: testPassword}
	// exact lists every object there is, as a listing may; lagging leaves
	// out those younger than ListLag, as a listing may too.
	exact, err := Open(ctx, st, opts)
	if err != nil {
		t.Fatal(err)
	}
	lagging, err := Open(ctx, lagStore{st, clk.Now}, opts)
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "src.img")
	makeDisk(t, src, 2*testChunk, region{0, testChunk, "random"})
	last := backup(t, exact, src)
	if last.ID != n+1 {
		t.Fatalf("setup: backup %d, want %d", last.ID, n+1)
	}
	clk.Advance(time.Hour)
	if err := exact.DeleteBackup(ctx, last.ID); err != nil {
		t.Fatal(err)
	}
	clk.Advance(5 * time.Second)
	if _, err := exact.GC(ctx, noMinAge); err != nil {
		t.Fatal(err)
	}
	if got := listNames(t, st, "deleted-ranges/"); len(got) != 1 {
		t.Fatalf("setup: records %v, want one", got)
	}
	clk.Advance(10 * time.Second)
	var step time.Duration
	fs := faulty.New(st, faulty.Rule{Op: faulty.List, Pattern: "deleted-ranges/", Hook: func() { step = 3 * time.Minute }})
	jumpy, err := Open(ctx, fs, Options{Now: func() time.Time { return clk.Now().Add(step) }, After: clk.After, Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jumpy.GC(ctx, noMinAge); err != nil {
		t.Logf("gc with the clock stepping: %v", err)
	}
	left := listNames(t, st, "deleted/")

	clk.Advance(10 * time.Second) // deleted/71 is 25s old: a listing need not show it
	taken := backup(t, exact, src)
	ms, err := lagging.Manifests(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].ID != taken.ID {
		t.Errorf("backup %d was taken a moment ago; a reader lists %d backups, want it alone (markers left: %v)", taken.ID, len(ms), left)
	}
	next := backup(t, lagging, src)
	if next.ID <= taken.ID {
		t.Fatalf("backups 1 to %d were deleted (markers left: %v) and %d taken, and the next backup took ID %d again", last.ID, left, taken.ID, next.ID)
	}
}

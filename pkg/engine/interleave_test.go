package engine

// The interleaving test: several processes (actors) back up, prune,
// restore, verify and collect garbage on one repository, their store calls
// stepped one at a time in an order a seed chooses (faulty.Gate), with
// calls failing and processes dying at chosen points, while a simulated
// clock moves on. After each run a checker asks what a user would: is every
// backup that was taken and not deleted still listed, does every listed
// backup restore to exactly the disk it was taken of, is verify clean?
//
//	go test ./pkg/engine -run Interleav -seeds 2000

import (
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dropback/dropback/internal/fakeclock"
	"github.com/dropback/dropback/pkg/store"
	"github.com/dropback/dropback/pkg/store/faulty"
	"github.com/dropback/dropback/pkg/store/mem"
)

var (
	seeds     = flag.Int("seeds", 200, "seeds of the interleaving test")
	firstSeed = flag.Int("seed", 1, "first seed of the interleaving test")
	showLog   = flag.Bool("interleave.log", false, "log what happened in every seed, not only in those that fail")
	only      = flag.Int("scenario", -1, "run only this staged scenario of the interleaving test")
)

// world is what the actors of one run share, and what they did.
type world struct {
	t     *testing.T
	seed  int
	clk   *fakeclock.Clock
	st    *mem.Store
	gate  *faulty.Gate
	dir   string
	chunk int
	stats *interleaveStats

	mu       sync.Mutex
	ended    map[string]bool     // processes that ended, by boot ID and PID
	procs    map[int]processID   // what each actor runs as
	contents map[string][32]byte // "h<host>-v<version>" -> disk content
	taken    map[int]string      // backups that succeeded -> their name
	deleted  map[int]bool        // backups a prune asked to delete
	bugs     []string            // what the actors found wrong
	parkOn   map[int]string      // actor -> the call (name prefix) it stalls before
	parked   map[int]bool        // actors stalled until all others wait too
	awaiting int                 // actors waiting for another to stall
	stalled  bool                // an actor stalled while others awaited it
	actors   int                 // actors in the run
	exited   int                 // actors that ran their script to the end
	running  int                 // actors running a step, not waiting for others
	log      []string            // what happened, for a failing seed
}

// interleaveStats counts what the runs did, to show the test reaches the
// cases it is about.
type interleaveStats struct {
	mu                                                sync.Mutex
	runs, backups, failedBackups, restores, deaths    int
	gcDeleted, gcDeferred, gcLocked, restoredDuringGC int
	gcMerged                                          int
}

func (s *interleaveStats) add(f func(s *interleaveStats)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (w *world) logf(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.log = append(w.log, fmt.Sprintf("%v ", w.clk.Now().Format("15:04:05"))+fmt.Sprintf(format, args...))
}

func (w *world) bug(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.bugs = append(w.bugs, fmt.Sprintf(format, args...))
}

// simMachine is one simulated process: of this machine (host "sim", where
// a dead process is known dead) or of another (where only time tells).
type simMachine struct {
	w    *world
	self processID
}

func (m simMachine) Self() processID { return m.self }

func (m simMachine) Ended(p processID) bool {
	m.w.mu.Lock()
	defer m.w.mu.Unlock()
	// As the kernel would: the PID looked up among this machine's own
	// processes, whatever boot p names.
	key := fmt.Sprintf("%s/%d", m.self.BootID, p.PID)
	if m.w.ended[key] {
		return true
	}
	for id, q := range m.w.procs {
		if procKey(q) == key && m.w.gate.Dead(id) {
			return true
		}
	}
	return false
}

func procKey(p processID) string { return fmt.Sprintf("%s/%d", p.BootID, p.PID) }

// exit records that an actor's process ended.
func (w *world) exit(id int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ended[procKey(w.procs[id])] = true
}

// actor is one simulated process.
type actor struct {
	w    *world
	id   int
	r    *Repo
	ctx  context.Context
	name string
}

// Where an actor runs.
const (
	thisMachine = iota
	otherMachine
	// A clone of this machine: the same hostname, another boot, and PIDs
	// that ended here long ago.
	cloneMachine
)

func (w *world) newActor(id, where int) *actor {
	self := processID{Hostname: "sim", PID: id, BootID: "boot", PIDNS: "pid:[1]", Start: fmt.Sprint(id)}
	switch where {
	case otherMachine:
		self.Hostname = fmt.Sprintf("other-%d", id)
	case cloneMachine:
		self.BootID, self.PID = "clone", 100+id
		self.Start = fmt.Sprint(self.PID)
	}
	w.mu.Lock()
	w.procs[id] = self
	w.mu.Unlock()
	host := self.Hostname
	m := simMachine{w: w, self: self}
	// The process opened the repository before the run: its config is
	// read in peace.
	opts := Options{Now: w.clk.Now, After: w.clk.After, Machine: m, Password: testPassword}
	r0, err := Open(context.Background(), w.st, opts)
	if err != nil {
		w.t.Fatal(err)
	}
	r := openedRepo(w.gate.Actor(id), r0.cfg, r0.key, r0.sec, opts)
	return &actor{w: w, id: id, r: r, ctx: context.Background(), name: fmt.Sprintf("%s/%d/%s", host, self.PID, self.BootID)}
}

// alive reports whether the actor ran unhurt: not killed, no call failed.
func (a *actor) unhurt() bool { return !a.w.gate.Dead(a.id) && a.w.gate.Faults(a.id) == 0 }

// disk writes the content of a host's disk at a version: chunks drawn from
// a small pool, so that versions share chunks and packs go partly dead.
func (w *world) disk(host, version int) (string, string) {
	name := fmt.Sprintf("h%d-v%d", host, version)
	path := filepath.Join(w.dir, name+".img")
	rng := rand.New(rand.NewPCG(uint64(host), uint64(version)))
	n := 6 + rng.IntN(6)
	if host == 3 { // one chunk of its own: a backup of it again writes the same pack
		n = 1
	}
	data := make([]byte, n*w.chunk)
	for i := range n {
		c := data[i*w.chunk : (i+1)*w.chunk]
		var src *rand.Rand
		switch k := rng.IntN(10); {
		case host == 3:
			src = rand.New(rand.NewPCG(uint64(version), 3))
		case k == 0: // a zero chunk
			continue
		case k < 5: // one of 8 that the versions of a host share
			src = rand.New(rand.NewPCG(uint64(host*100+rng.IntN(8)), 7))
		default: // this version's own
			src = rand.New(rand.NewPCG(uint64(host*100000+version*100+i), 9))
		}
		for j := range c {
			c[j] = byte(src.Uint32())
		}
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		w.t.Fatal(err)
	}
	w.mu.Lock()
	w.contents[name] = sha256.Sum256(data)
	w.mu.Unlock()
	return name, path
}

func (a *actor) backup(host int) { a.backupAs(host, a.id) }

// backupAs backs up the disk of host as the actor of ID as would see it:
// two backups as the same actor are of the same bytes.
func (a *actor) backupAs(host, as int) {
	version := 1 + rand.New(rand.NewPCG(uint64(a.w.seed), uint64(as))).IntN(1000)
	name, path := a.w.disk(host, version)
	m, err := a.r.Backup(a.ctx, BackupRequest{HostID: host, HostName: name, Disks: []DiskSource{{Name: "vda", Path: path}}})
	if err != nil {
		a.w.logf("%s: backup of %s failed: %v", a.name, name, err)
		a.w.stats.add(func(s *interleaveStats) { s.failedBackups++ })
		return
	}
	a.w.stats.add(func(s *interleaveStats) { s.backups++ })
	a.w.logf("%s: backup %d of %s", a.name, m.ID, name)
	a.w.mu.Lock()
	a.w.taken[m.ID] = name
	a.w.mu.Unlock()
}

// deleteOldest deletes the oldest backup of a host, as `backups delete`
// does, even its last.
func (a *actor) deleteOldest(host int) {
	ms, err := a.r.Manifests(a.ctx)
	if err != nil {
		a.w.logf("%s: list backups: %v", a.name, err)
		return
	}
	for _, m := range ms {
		if m.HostID == host {
			a.w.mu.Lock()
			a.w.deleted[m.ID] = true
			a.w.mu.Unlock()
			err = a.r.DeleteBackup(a.ctx, m.ID)
			a.w.logf("%s: delete backup %d: %v", a.name, m.ID, err)
			return
		}
	}
}

// together runs scripts as new actors of this actor's machine, at once, and
// waits for them.
func (a *actor) together(scripts ...[]step) {
	var wg sync.WaitGroup
	a.w.addRunning(len(scripts) - 1) // this actor only waits for them
	for i, script := range scripts {
		b := a.w.newActor(a.id*10+i, thisMachine)
		wg.Go(func() {
			for _, s := range script {
				s(b)
			}
			a.w.exit(b.id)
			a.w.addRunning(-1)
		})
	}
	wg.Wait()
	a.w.addRunning(1)
}

func (w *world) addRunning(n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.running += n
}

// prune deletes a backup of a host that is not its newest, as retention
// does.
func (a *actor) prune(host int) {
	ms, err := a.r.Manifests(a.ctx)
	if err != nil {
		return
	}
	var mine []*Manifest
	for _, m := range ms {
		if m.HostID == host {
			mine = append(mine, m)
		}
	}
	if len(mine) < 2 {
		return
	}
	victim := mine[0]
	a.w.mu.Lock()
	a.w.deleted[victim.ID] = true
	a.w.mu.Unlock()
	err = a.r.DeleteBackup(a.ctx, victim.ID)
	a.w.logf("%s: delete backup %d: %v", a.name, victim.ID, err)
}

// restore restores a listed backup, as the provider does: announced before
// it reads the manifest.
func (a *actor) restore(pick int) {
	op, err := a.r.Begin(a.ctx, OpRestore, 0)
	if err != nil {
		return
	}
	defer op.End()
	ctx := WithOp(a.ctx, op)
	ms, err := a.r.Manifests(ctx)
	if err != nil || len(ms) == 0 {
		return
	}
	m := ms[pick%len(ms)]
	out := filepath.Join(a.w.dir, fmt.Sprintf("restore-%d-%d.img", a.id, pick))
	defer os.Remove(out)
	_, err = a.r.Restore(ctx, m, []RestoreTarget{{Path: out}}, nil)
	a.w.logf("%s: restore backup %d (%s): %v", a.name, m.ID, m.HostName, err)
	if err != nil {
		if a.unhurt() && !errors.Is(err, ErrLostProtection) {
			a.w.bug("restore of backup %d failed although nothing failed under it: %v", m.ID, err)
		}
		return
	}
	a.w.stats.add(func(s *interleaveStats) { s.restores++ })
	a.w.checkContent(m, out, "a restore during the run")
}

func (w *world) checkContent(m *Manifest, path, when string) {
	data, err := os.ReadFile(path)
	if err != nil {
		w.bug("%s: read the restored disk: %v", when, err)
		return
	}
	w.mu.Lock()
	want, ok := w.contents[m.HostName]
	w.mu.Unlock()
	if !ok || sha256.Sum256(data) != want {
		w.bug("%s: backup %d restored bytes that are not the disk %s it was taken of", when, m.ID, m.HostName)
	}
}

func (a *actor) verify() {
	res, err := a.r.Verify(a.ctx, nil, nil)
	a.w.logf("%s: verify: %v", a.name, err)
	if err == nil && res.Damaged() && a.unhurt() {
		a.w.bug("verify found damage with nothing failing under it: %v", res.Problems)
	}
}

func (a *actor) gc(opts GCOptions) {
	res, err := a.r.GC(a.ctx, opts)
	a.w.logf("%s: gc: %+v %v", a.name, res, err)
	a.w.stats.add(func(s *interleaveStats) {
		if res != nil {
			s.gcDeleted += res.DeletedPacks
			s.gcMerged += res.MergedSegments
			if res.Deferred {
				s.gcDeferred++
			}
		}
		if errors.Is(err, ErrLocked) {
			s.gcLocked++
		}
	})
}

// script is what one actor does: a list of steps.
type step func(a *actor)

// scenario is what the actors of one run do, and how the run treats them.
type scenario struct {
	// scripts are the steps of each actor; where says where each runs
	// (thisMachine, otherMachine, cloneMachine), or -1 for a random place.
	scripts [][]step
	where   []int
	// focus, when set, is the prefix of the calls ("get running/…") that
	// fail one in focusEvery times; all calls fail one in 60.
	focus      []string
	focusEvery int
	// calm moves the clock on slowly, so that a stalled process keeps its
	// protection and what it meets is gc's doing, not its own lapse.
	calm bool
	// sound fails no call and kills no process: the staged race alone.
	sound bool
	// lag runs on a store whose listings lag as much as the protocol
	// allows; gc then sweeps marks only minutes after it made them.
	lag bool
}

// scenarios picks a run. Nine runs in twenty are a mix of anything; the others
// stage a race that once lost data, one fixed bug each: scripts/mutants.sh
// puts each bug back and checks that some seed finds it.
func scenarios(rng *rand.Rand) scenario {
	// Every gc compacts the index as soon as two segments of a size are
	// there, so that merges run among everything else.
	gcOpts := []GCOptions{{MinAge: -1, CompactFanout: 2}, {CompactFanout: 2}, {MinAge: -1, Grace: 3 * time.Minute, CompactFanout: 2}}
	gc := func() step { o := gcOpts[rng.IntN(len(gcOpts))]; return func(a *actor) { a.gc(o) } }
	eager := func(a *actor) { a.gc(GCOptions{MinAge: -1, RewriteBelow: 0.95, CompactFanout: 2}) }
	backup := func(h int) step { return func(a *actor) { a.backup(h) } }
	prune := func(h int) step { return func(a *actor) { a.prune(h) } }
	restore := func(k int) step { return func(a *actor) { a.restore(k) } }
	verify := func(a *actor) { a.verify() }
	stall := func(prefix string) step { return func(a *actor) { a.stallBefore(prefix) } }
	await := func(a *actor) { a.awaitStall() }
	restoreWhileCollected := [][]step{{stall("get packs/"), restore(0), restore(0)}, {prune(1), eager, eager}, {eager, backup(2)}}
	pick := rng.IntN(20)
	if *only >= 0 {
		pick = *only
	}
	switch pick {
	case 0: // a restore of the oldest backup while it is deleted and collected
		return scenario{scripts: restoreWhileCollected}
	case 1: // the same, the restore on a clone of this machine whose PIDs
		// ended here: its marker must not be taken for one of a dead process
		return scenario{scripts: restoreWhileCollected, where: []int{cloneMachine, thisMachine, thisMachine}, calm: true, sound: true}
	case 2: // the same, reading markers failing often
		return scenario{scripts: restoreWhileCollected, focus: []string{"get running/"}, focusEvery: 2, calm: true, sound: true}
	case 3: // a verify and a backup while old backups go
		return scenario{scripts: [][]step{{stall("get packs/"), verify, verify}, {prune(1), prune(2), eager}, {backup(1), eager}}}
	case 4: // a gc stalled between writing a rewritten pack and its index,
		// while a second gc runs
		return scenario{scripts: [][]step{{prune(1), await, eager, eager}, {prune(2), stall("put index/"), eager, eager}, {backup(1), restore(1)}}, calm: true, sound: true}
	case 5: // a backup that met old data in the index, stalled while that data goes
		return scenario{scripts: [][]step{{stall("put packs/"), backup(1), backup(1)}, {prune(1), eager, eager}, {prune(2), eager}}}
	case 6: // the disk of a deleted backup backed up again, its packs and
		// image condemned but not yet swept, the sweep coming mid-backup
		markOnly := func(a *actor) { a.gc(GCOptions{MinAge: -1, Grace: 3 * time.Minute}) }
		later := func(a *actor) { a.w.clk.Advance(5 * time.Minute) }
		again := func(a *actor) { a.backupAs(3, 104) }
		both := func(a *actor) {
			a.together([]step{stall("put index/"), again}, []step{eager, eager})
		}
		return scenario{scripts: [][]step{{func(a *actor) { a.deleteOldest(3) }, markOnly, later, both}}, where: []int{thisMachine}, calm: true, sound: true}
	case 7: // the same disk backed up again and again while reads and
		// writes of its image fail often: the image exists already each
		// time, and the earlier backups need it
		same := backup(1 + rng.IntN(2))
		return scenario{scripts: [][]step{{same, same, same, same}, {same, same, same}, {eager, restore(0), eager}}, focus: []string{"get images/", "put images/", "delete images/"}, focusEvery: 3}
	case 8: // a backup stalled past the time a marker counts as stale,
		// while old data it met in the index goes: its heartbeat keeps it
		// protected, or it notices it is not before it commits
		later := func(a *actor) { a.w.clk.Advance(StaleAfter + 5*time.Minute) }
		return scenario{scripts: [][]step{{stall("put packs/"), backup(1)}, {prune(1), later, eager, eager}}, where: []int{thisMachine, otherMachine}, calm: true, sound: true}
	case 9: // a restore and a backup that listed the index, stalled while
		// gc merges the segments they listed and deletes them
		return scenario{scripts: [][]step{{stall("get index/"), restore(0), restore(1)}, {backup(1), backup(2), eager, eager}, {stall("get index/"), backup(1), restore(2)}}}
	case 10: // the same, reads of index-replaced/ markers failing often
		return scenario{scripts: [][]step{{stall("get index/"), restore(0), restore(1)}, {backup(1), backup(2), eager, eager}, {backup(2), verify}},
			focus: []string{"get index-replaced/", "get index/"}, focusEvery: 3}
	}
	pool := []func() step{
		func() step { return backup(1 + rng.IntN(2)) },
		func() step { return prune(1 + rng.IntN(2)) },
		func() step { return restore(rng.IntN(10)) },
		func() step { return verify },
		gc, gc,
	}
	out := make([][]step, 3+rng.IntN(3))
	for i := range out {
		for range 1 + rng.IntN(4) {
			out[i] = append(out[i], pool[rng.IntN(len(pool))]())
		}
	}
	return scenario{scripts: out, lag: rng.IntN(3) == 0}
}

func TestInterleavings(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	stats := &interleaveStats{}
	for seed := *firstSeed; seed < *firstSeed+*seeds; seed++ {
		if !interleave(t, seed, stats) {
			return
		}
	}
	t.Logf("%d runs: %d backups taken, %d failed; %d restores during the runs; %d processes killed; gc deleted %d packs, merged %d index segments, deferred %d times, found the lease held %d times",
		stats.runs, stats.backups, stats.failedBackups, stats.restores, stats.deaths, stats.gcDeleted, stats.gcMerged, stats.gcDeferred, stats.gcLocked)
	if *seeds >= 50 && stats.gcMerged == 0 {
		t.Errorf("no gc merged an index segment in %d runs: compaction never ran among the other operations", stats.runs)
	}
}

// interleave runs one seed and checks it; it reports whether it passed.
func interleave(t *testing.T, seed int, stats *interleaveStats) bool {
	rng := rand.New(rand.NewPCG(uint64(seed), 42))
	clk := fakeclock.New(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	st := mem.New(clk.Now)
	w := &world{t: t, seed: seed, clk: clk, st: st, dir: t.TempDir(), chunk: testChunk, stats: stats,
		ended: map[string]bool{}, procs: map[int]processID{}, contents: map[string][32]byte{}, taken: map[int]string{}, deleted: map[int]bool{},
		parkOn: map[int]string{}, parked: map[int]bool{}}
	if _, err := Init(context.Background(), st, encrypt(InitOptions{ChunkSize: testChunk, Options: Options{Now: clk.Now}})); err != nil {
		t.Fatal(err)
	}
	// Some history first, taken in peace and an hour old.
	w.gate = faulty.NewGate(st, 0, func(held []faulty.Call) (int, faulty.Verdict) { return 0, faulty.Proceed })
	for i := range 5 {
		w.newActor(100+i, thisMachine).backup([]int{1, 2, 1, 2, 3}[i])
		clk.Advance(30 * time.Minute)
		w.exit(100 + i)
	}
	w.gate.Close()

	// The run: actors stepped by the seed, failing and dying, the clock
	// moving on.
	sc := scenarios(rng)
	choose := faulty.NewRand(rng, 60, 400, nil)
	if sc.sound {
		choose = faulty.NewRand(rng, 0, 0, nil)
	}
	if len(sc.focus) > 0 { // some calls fail often, the rest seldom
		seldom := choose
		choose = func(held []faulty.Call) (int, faulty.Verdict) {
			i, v := seldom(held)
			call := string(held[i].Op) + " " + held[i].Name
			if slices.ContainsFunc(sc.focus, func(p string) bool { return strings.HasPrefix(call, p) }) && rng.IntN(sc.focusEvery) == 0 {
				v = faulty.Verdict(1 + rng.IntN(3)) // Fail, FailAfter or Die
				if held[i].Op == faulty.Get {
					v = faulty.Fail // a read that fails, in a process that goes on
				}
			}
			return i, v
		}
	}
	step := 90 * time.Second
	if sc.calm {
		step = 10 * time.Second
	}
	prio := pct(rng)
	// Some runs on a store whose listings lag as the protocol allows, the
	// rest on one that lists at once.
	var under store.Store = st
	if sc.lag {
		under = lagStore{st, clk.Now}
	}
	gate := faulty.NewGate(under, 300*time.Microsecond, func(held []faulty.Call) (int, faulty.Verdict) {
		if rng.IntN(8) == 0 {
			clk.Advance(time.Duration(rng.Int64N(int64(step))))
		}
		free := w.unparked(held)
		if len(free) == 0 {
			return -1, faulty.Proceed // an actor awaits a stall: let it come
		}
		calls := make([]faulty.Call, len(free))
		for j, i := range free {
			calls[j] = held[i]
		}
		j, v := choose(calls)
		if rng.IntN(2) == 0 {
			j = prio(calls)
		}
		return free[j], v
	})
	w.mu.Lock()
	w.gate = gate
	w.mu.Unlock()
	var wg sync.WaitGroup
	w.actors = len(sc.scripts)
	w.running = len(sc.scripts)
	for i, script := range sc.scripts {
		where := rng.IntN(3)
		if i < len(sc.where) {
			where = sc.where[i]
		}
		a := w.newActor(i+1, where)
		wg.Go(func() {
			for _, s := range script {
				s(a)
			}
			w.exit(a.id)
			w.mu.Lock()
			w.exited++
			w.running--
			w.mu.Unlock()
		})
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(3 * time.Minute):
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Fatalf("seed %d hangs; its goroutines:\n%s\nwhat happened:\n%s", seed, buf, strings.Join(w.log, "\n"))
	}
	w.gate.Close()
	w.mu.Lock()
	for id := range 10 {
		if w.gate.Dead(id) {
			stats.add(func(s *interleaveStats) { s.deaths++ })
		}
		if w.gate.Dead(id) {
			w.ended[procKey(w.procs[id])] = true
		}
	}
	w.mu.Unlock()
	stats.add(func(s *interleaveStats) { s.runs++ })
	return w.check()
}

// stallBefore makes the actor stall before its next call whose operation
// and object name ("put index/…") start with prefix, until every other
// actor waits too: the slowest a process can be, at the worst moment.
func (a *actor) stallBefore(prefix string) {
	a.w.mu.Lock()
	defer a.w.mu.Unlock()
	a.w.parkOn[a.id] = prefix
}

// awaitStall waits until another actor has stalled (stallBefore), so that
// what this one does next happens while that one is stuck, or until every
// other actor ended without stalling. It waits on the run's own progress,
// never on the wall clock: a loaded machine runs the same race.
func (a *actor) awaitStall() {
	w := a.w
	w.mu.Lock()
	w.awaiting++
	w.running--
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.awaiting--
		w.running++
		w.mu.Unlock()
	}()
	for {
		w.mu.Lock()
		done := w.stalled || w.exited >= w.actors-1
		w.mu.Unlock()
		if done {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// unparked returns the indexes of the held calls that may go: those of
// actors not stalled, or all of them when every running actor is stalled
// (the others ended or wait for them), which ends the stalls.
func (w *world) unparked(held []faulty.Call) []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	var free []int
	for _, c := range held {
		if p, ok := w.parkOn[c.Actor]; ok && strings.HasPrefix(string(c.Op)+" "+c.Name, p) {
			w.parked[c.Actor] = true
			delete(w.parkOn, c.Actor)
		}
	}
	for i, c := range held {
		if !w.parked[c.Actor] {
			free = append(free, i)
		}
	}
	if len(free) > 0 {
		return free
	}
	if w.awaiting > 0 {
		w.stalled = true // the awaited stall came: its awaiters go on
		return nil
	}
	if len(w.parked) < w.running {
		return nil // an actor between two calls: the stall lasts until it waits too
	}
	clear(w.parked)
	for i := range held {
		free = append(free, i)
	}
	return free
}

// pct picks calls as probabilistic concurrency testing does: each actor has
// a random priority, the call of the highest goes first, and now and then
// the actor that went is put last. An actor may so stall for long stretches
// while others run, which uniform picking almost never does.
func pct(rng *rand.Rand) func([]faulty.Call) int {
	prio := map[int]float64{}
	return func(held []faulty.Call) int {
		best := 0
		for i, c := range held {
			if _, ok := prio[c.Actor]; !ok {
				prio[c.Actor] = rng.Float64()
			}
			if prio[c.Actor] > prio[held[best].Actor] {
				best = i
			}
		}
		if rng.IntN(15) == 0 {
			prio[held[best].Actor] = -rng.Float64()
		}
		return best
	}
}

// check collects garbage in peace, long after every process has ended, and
// then asks the user's questions.
func (w *world) check() bool {
	t, ctx := w.t, context.Background()
	w.clk.Advance(2 * StaleAfter)
	gate := faulty.NewGate(w.st, 0, func([]faulty.Call) (int, faulty.Verdict) { return 0, faulty.Proceed })
	w.mu.Lock()
	w.gate = gate
	w.mu.Unlock()
	defer gate.Close()
	final := w.newActor(999, thisMachine)
	for range 2 {
		if _, err := final.r.GC(ctx, GCOptions{MinAge: -1}); err != nil {
			w.bug("gc in peace: %v", err)
		}
		w.clk.Advance(time.Minute)
	}
	ms, damaged, err := final.r.ManifestsAndDamage(ctx)
	if err != nil || len(damaged) > 0 {
		w.bug("list backups: %v %v", err, damaged)
	}
	listed := map[int]bool{}
	for _, m := range ms {
		listed[m.ID] = true
		out := filepath.Join(w.dir, "final.img")
		if _, err := final.r.Restore(ctx, m, []RestoreTarget{{Path: out}}, nil); err != nil {
			w.bug("backup %d (%s) is listed but does not restore: %v", m.ID, m.HostName, err)
			continue
		}
		w.checkContent(m, out, "after the run")
		os.Remove(out)
	}
	for id, name := range w.taken {
		if !listed[id] && !w.deleted[id] {
			w.bug("backup %d (%s) was taken and never deleted, but is gone", id, name)
		}
	}
	if res, err := final.r.Verify(ctx, nil, nil); err != nil || res.Damaged() {
		w.bug("verify after the run: %v %v", err, res.Problems)
	}
	if *showLog {
		t.Logf("seed %d:\n%s", w.seed, strings.Join(w.log, "\n"))
	}
	if len(w.bugs) == 0 {
		return true
	}
	sort.Strings(w.bugs)
	t.Errorf("seed %d (rerun with -run Interleav -seed %d -seeds 1):\n%s\nwhat happened:\n%s",
		w.seed, w.seed, strings.Join(w.bugs, "\n"), strings.Join(w.log, "\n"))
	return false
}

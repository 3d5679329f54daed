package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dropback/dropback/pkg/store"
)

// Operations announce themselves with markers, so that gc never deletes
// what a running backup, restore, verify or export may use. The rule is
// written out in docs/format.md, "Who may delete what"; this file is its
// half about markers, lease.go and gc.go the rest.

const (
	// Heartbeat is how often an operation refreshes its marker.
	Heartbeat = time.Minute
	// StaleAfter is how long a marker may go unrefreshed before its
	// operation no longer counts as running.
	StaleAfter = 10 * time.Minute
	// protectedFor is how long an operation goes on without a successful
	// refresh: half of StaleAfter, so that it stops well before anyone may
	// count it as gone.
	protectedFor = StaleAfter / 2
	// legacyStaleAfter is the age after which a marker of the first format
	// (running/<rand>, never refreshed) no longer counts.
	legacyStaleAfter = 12 * time.Hour
	// ListLag is how long after its creation an object may still be
	// missing from a listing of a store that does not say
	// (store.DefaultListLag); a store that does says, with store.Lagger.
	ListLag = store.DefaultListLag
	// clockSkew is the margin allowed between the clocks of two machines.
	clockSkew = time.Minute
)

// listLag is how long the repository's listings may lag.
func (r *Repo) listLag() time.Duration { return store.ListLagOf(r.st) }

// opMargin is how much later than an object or mark an operation may start
// and still have missed it: clock skew, and a listing that lags.
func (r *Repo) opMargin() time.Duration { return clockSkew + r.listLag() }

// minRipe is the least age of a gc mark before its sweep: an operation that
// started up to opMargin after the mark, and so may use what it condemns,
// has a marker every listing shows by then.
func (r *Repo) minRipe() time.Duration {
	if lag := r.listLag(); lag > 0 {
		return r.opMargin() + lag
	}
	return 0
}

// ErrLostProtection means an operation could not refresh its marker for so
// long that gc may count it as gone; it stopped rather than rely on data gc
// may have deleted.
var ErrLostProtection = errors.New("lost the protection of the running marker")

// Operation kinds.
const (
	OpBackup  = "backup"
	OpRestore = "restore"
	OpVerify  = "verify"
	OpExport  = "export"
	OpGC      = "gc"
)

// opMarker is the content of running/<op>-<seq>.
type opMarker struct {
	Op          string    `json:"op"`
	Kind        string    `json:"kind"`
	HostID      int       `json:"host_id,omitempty"`
	StartedAt   time.Time `json:"started_at"`
	RefreshedAt time.Time `json:"refreshed_at"`
	Seq         int       `json:"seq"`
	processID
}

func opObject(op string, seq int) string { return fmt.Sprintf("running/%s-%010d", op, seq) }

// Op is a running operation: its marker, refreshed in the background. Its
// context is cancelled, with ErrLostProtection as the cause, when the marker
// could not be refreshed for protectedFor.
type Op struct {
	r      *Repo
	ctx    context.Context
	cancel context.CancelCauseFunc
	stop   chan struct{}
	done   chan struct{}

	refreshing sync.Mutex // one refresh at a time: the heartbeat's, or CheckNow's

	mu        sync.Mutex
	m         opMarker
	lastWall  time.Time // when the last successful refresh began, by r.now
	lastMono  time.Time // the same, by the monotonic clock
	lastStore time.Time // the store's time of the newest revision written
	lapsed    string    // set for good once two revisions were too far apart by the store's clock
	none      bool      // no marker could be written: nothing protects it
}

// Begin announces an operation of the given kind and starts refreshing its
// marker. The caller runs the operation under op.Context() and calls End.
func (r *Repo) Begin(ctx context.Context, kind string, hostID int) (*Op, error) {
	o := r.newOp(ctx, kind, hostID)
	if err := r.st.Put(ctx, opObject(o.m.Op, o.m.Seq), o.marker()); err != nil {
		o.cancel(nil)
		return nil, fmt.Errorf("announce the %s to gc: %w", kind, err)
	}
	o.noteStoreTime(opObject(o.m.Op, o.m.Seq))
	go o.heartbeat()
	if kind != upgradeOp {
		// After the marker: an upgrade that begins meanwhile sees this
		// operation, or this operation sees the upgrade.
		if err := r.sameConfig(o.ctx); err != nil {
			o.End()
			return nil, err
		}
	}
	return o, nil
}

// sameConfig fails with ErrLocked when the repository is being upgraded or
// its config is no longer the one this Repo was opened with (an upgrade
// ran since, or the config was changed): a long-lived process, an agent,
// would otherwise write in plain into an encrypted repository, or write
// what the repository's readers cannot open.
func (r *Repo) sameConfig(ctx context.Context) error {
	if _, err := r.raw.Stat(ctx, upgradeConfigName); err == nil {
		return errorf(ErrLocked, "%s is being upgraded to an encrypted repository: every operation waits for the upgrade to end; then open it again (restart a running agent)",
			r.raw.Location())
	} else if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("look for an upgrade at %s: %w", r.raw.Location(), err)
	}
	cfg, err := readConfig(ctx, r.raw)
	if err != nil {
		return fmt.Errorf("read the config of %s again: %w", r.raw.Location(), err)
	}
	if !cfg.sameAs(r.cfg) {
		return errorf(ErrLocked, "the config of %s changed since this process opened it (an upgrade ran, or it was replaced): open the repository again (restart a running agent)",
			r.raw.Location())
	}
	return nil
}

// BeginReader announces an operation that only reads. Where no marker can be
// written (a read-only or full repository) it goes on unannounced and says
// so in notice: gc elsewhere may then make it fail, never read wrong bytes,
// since every chunk read is checked against its hash. It fails as Begin
// does when the repository is being upgraded or its config changed
// (ErrLocked): a reader of the config it opened would take what an upgrade
// writes for damage, and a verify would repair it away.
func (r *Repo) BeginReader(ctx context.Context, kind string, hostID int) (op *Op, notice string, err error) {
	o, err := r.Begin(ctx, kind, hostID)
	if err == nil {
		return o, "", nil
	}
	if errors.Is(err, ErrLocked) {
		return nil, "", err
	}
	o = r.newOp(ctx, kind, hostID)
	o.none = true
	close(o.done)
	return o, fmt.Sprintf("the %s goes on unannounced (%v): a gc running elsewhere meanwhile may make it fail", kind, err), nil
}

func (r *Repo) newOp(ctx context.Context, kind string, hostID int) *Op {
	now := r.now().UTC()
	o := &Op{r: r, stop: make(chan struct{}), done: make(chan struct{}), lastWall: now, lastMono: time.Now()}
	o.ctx, o.cancel = context.WithCancelCause(ctx)
	o.m = opMarker{Op: randomName(), Kind: kind, HostID: hostID, StartedAt: now, RefreshedAt: now, Seq: 1, processID: r.machine.Self()}
	return o
}

func (o *Op) marker() []byte {
	data, _ := json.Marshal(o.m)
	return data
}

// ID names the operation, as gc leases and claims refer to it.
func (o *Op) ID() string { return o.m.Op }

// Context is cancelled when the operation loses its protection.
func (o *Op) Context() context.Context { return o.ctx }

// heartbeat refreshes the marker every Heartbeat until End, and cancels the
// operation once it went protectedFor without a successful refresh.
func (o *Op) heartbeat() {
	defer close(o.done)
	for {
		select {
		case <-o.stop:
			return
		case <-o.ctx.Done():
			return
		case <-o.r.after(Heartbeat):
		}
		o.refresh()
		if err := o.Check(); err != nil {
			o.cancel(err)
			return
		}
	}
}

// refresh writes the marker's next revision, then deletes the one before the
// previous: the previous stays, so a listing always shows one of them. A
// revision that failed is written again next time, under the same number.
func (o *Op) refresh() {
	o.refreshing.Lock()
	defer o.refreshing.Unlock()
	o.mu.Lock()
	o.m.Seq++
	o.m.RefreshedAt = o.r.now().UTC()
	wall, mono := o.m.RefreshedAt, time.Now()
	data, seq, op := o.marker(), o.m.Seq, o.m.Op
	o.mu.Unlock()
	err := o.r.st.Put(o.ctx, opObject(op, seq), data)
	if err != nil && !errors.Is(err, store.ErrExists) {
		o.mu.Lock()
		o.m.Seq--
		o.mu.Unlock()
		return
	}
	o.noteStoreTime(opObject(op, seq))
	o.mu.Lock()
	o.lastWall, o.lastMono = wall, mono
	o.mu.Unlock()
	if seq > 2 {
		_ = o.r.st.Delete(o.ctx, opObject(op, seq-2))
	}
}

// noteStoreTime reads the store's time of the revision just written. Two
// revisions further apart than protectedFor by the store's clock mean the
// operation went unprotected in between, whatever its own clocks say: a
// process whose clocks stood still (a VM paused and resumed) does not
// notice otherwise.
func (o *Op) noteStoreTime(name string) {
	info, err := o.r.st.Stat(o.ctx, name)
	if err != nil {
		return
	}
	o.noteTime(info.ModTime)
}

func (o *Op) noteTime(t time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.lastStore.IsZero() && t.Sub(o.lastStore) > protectedFor && o.lapsed == "" {
		o.lapsed = fmt.Sprintf("%s passed by the repository's clock between two of its refreshes",
			t.Sub(o.lastStore).Round(time.Second))
	}
	if t.After(o.lastStore) {
		o.lastStore = t
	}
}

// CheckNow refreshes the marker at once, then checks as Check does: for a
// step gc could undo, such as a backup's manifest, which must not be written
// by a process that was paused unawares.
func (o *Op) CheckNow() error {
	if o.none {
		return nil
	}
	o.refresh()
	return o.Check()
}

// Check returns an error wrapping ErrLostProtection when the operation went
// protectedFor without refreshing its marker, by the wall clock or the
// monotonic one, whichever says longer (a suspended machine stops the
// monotonic clock; a clock set back stops the wall one). An operation checks
// before each step that gc could have undone.
func (o *Op) Check() error {
	if o.none {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.lapsed != "" {
		return fmt.Errorf("%w: %s (gc may count it as gone after %s); run it again", ErrLostProtection, o.lapsed, StaleAfter)
	}
	since := max(o.r.now().Sub(o.lastWall), time.Since(o.lastMono))
	if since < protectedFor {
		return nil
	}
	return fmt.Errorf("%w: the %s could not refresh its marker for %s (gc may count it as gone after %s); run it again",
		ErrLostProtection, o.m.Kind, since.Round(time.Second), StaleAfter)
}

// End stops the heartbeat and deletes the marker. It is safe to call more
// than once.
func (o *Op) End() {
	o.mu.Lock()
	select {
	case <-o.stop:
		o.mu.Unlock()
		return
	default:
	}
	close(o.stop)
	o.mu.Unlock()
	<-o.done
	o.cancel(nil)
	if o.none {
		return
	}
	ctx := context.WithoutCancel(o.ctx)
	o.mu.Lock()
	seq, op := o.m.Seq, o.m.Op
	o.mu.Unlock()
	for s := seq + 1; s >= max(1, seq-2); s-- {
		_ = o.r.st.Delete(ctx, opObject(op, s))
	}
}

// opState is what a reader makes of one operation's marker.
type opState struct {
	op    string
	name  string // the newest revision seen
	m     opMarker
	start time.Time // the earliest the operation may have started; zero: unknown, so any time
	why   string    // for people: what it is, or why it counts although it could not be read
}

// runningOps returns the operations that count as running, by the rule in
// docs/format.md, and deletes the markers of those known to have ended here.
func (r *Repo) runningOps(ctx context.Context) (map[string]opState, error) {
	newest := map[string]store.Info{}
	seqs := map[string]int{}
	err := r.st.List(ctx, "running/", func(info store.Info) error {
		base := strings.TrimPrefix(info.Name, "running/")
		op, seq := base, 0
		if i := strings.LastIndexByte(base, '-'); i > 0 {
			if n, err := strconv.Atoi(base[i+1:]); err == nil && n > 0 {
				op, seq = base[:i], n
			}
		}
		if _, ok := newest[op]; !ok || seq > seqs[op] {
			newest[op], seqs[op] = info, seq
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list running operations: %w", err)
	}
	out := map[string]opState{}
	for op, info := range newest {
		st, alive, err := r.opState(ctx, op, seqs[op], info)
		if err != nil {
			return nil, err
		}
		if alive {
			out[op] = st
		}
	}
	return out, nil
}

// opState reads the newest revision of one operation's marker and decides
// whether it counts as running. Every doubt counts as running.
func (r *Repo) opState(ctx context.Context, op string, seq int, info store.Info) (opState, bool, error) {
	st := opState{op: op, name: info.Name}
	data, err := r.st.Get(ctx, info.Name, 0, maxMarker)
	if errors.Is(err, store.ErrNotFound) && seq > 0 {
		// Refreshed meanwhile (the next revision exists) or ended.
		st.name = opObject(op, seq+1)
		next, serr := r.st.Stat(ctx, st.name)
		if errors.Is(serr, store.ErrNotFound) {
			return st, false, nil
		}
		if serr != nil {
			st.why = fmt.Sprintf("marker %s cannot be read: %v", st.name, serr)
			return st, true, nil
		}
		info = next
		data, err = r.st.Get(ctx, st.name, 0, maxMarker)
	}
	if errors.Is(err, store.ErrNotFound) {
		return st, false, nil // ended
	}
	if err != nil {
		if ctx.Err() != nil {
			return st, false, ctx.Err()
		}
		st.why = fmt.Sprintf("marker %s cannot be read: %v", st.name, err)
		return st, true, nil
	}
	now := r.now()
	if err := json.Unmarshal(data, &st.m); err != nil || st.m.StartedAt.IsZero() {
		st.why = fmt.Sprintf("marker %s is unreadable", st.name)
		return st, now.Sub(info.ModTime) <= StaleAfter+clockSkew, nil
	}
	if ended(r.machine, st.m.processID) {
		r.deleteMarker(ctx, op, seq)
		return st, false, nil
	}
	stale, last := StaleAfter, st.m.RefreshedAt
	if seq == 0 { // the first format: never refreshed
		stale, last = legacyStaleAfter, st.m.StartedAt
	}
	if info.ModTime.After(last) {
		last = info.ModTime
	}
	if now.Sub(last) > stale+clockSkew {
		return st, false, nil
	}
	// The start by the store's clock: the newest revision's time less how
	// long the operation had run when it wrote it.
	st.start = st.m.StartedAt
	if byStore := info.ModTime.Add(-st.m.RefreshedAt.Sub(st.m.StartedAt)); seq > 0 && byStore.Before(st.start) {
		st.start = byStore
	}
	st.why = fmt.Sprintf("%s by %s (PID %d) since %s", st.m.Kind, st.m.Hostname, st.m.PID, st.m.StartedAt.UTC().Format(time.RFC3339))
	return st, true, nil
}

// deleteMarker deletes the revisions of an operation that ended here.
func (r *Repo) deleteMarker(ctx context.Context, op string, seq int) {
	if seq == 0 {
		_ = r.st.Delete(ctx, "running/"+op)
		return
	}
	for s := max(1, seq-2); s <= seq+1; s++ {
		_ = r.st.Delete(ctx, opObject(op, s))
	}
}

// oldestStart returns the earliest start of the given operations, leaving
// out the one named self; zero time when one of them may have started at
// any time; ok false when there are none.
func oldestStart(ops map[string]opState, self string) (oldest time.Time, who string, ok bool) {
	names := make([]string, 0, len(ops))
	for op := range ops {
		names = append(names, op)
	}
	sort.Strings(names)
	for _, op := range names {
		st := ops[op]
		if op == self {
			continue
		}
		if !ok || st.start.Before(oldest) {
			oldest, who, ok = st.start, st.why, true
		}
	}
	return oldest, who, ok
}

// maxMarker bounds what is read of a marker, lease or claim: each is a few
// hundred bytes.
const maxMarker = 64 << 10

type opKey struct{}

// WithOp returns a context that carries op, so that the engine calls made
// under it (Restore, Verify) run as that operation instead of beginning
// their own: a caller begins the operation before it reads the manifest it
// acts on, so that gc cannot delete that backup's data in between.
func WithOp(ctx context.Context, op *Op) context.Context {
	return context.WithValue(op.Context(), opKey{}, op)
}

// readerOp returns the operation ctx carries, or begins one of the given
// kind; end ends the one it began, if any. notice is BeginReader's.
func (r *Repo) readerOp(ctx context.Context, kind string, hostID int) (op *Op, end func(), notice string, err error) {
	if op, ok := ctx.Value(opKey{}).(*Op); ok {
		return op, func() {}, "", nil
	}
	if op, notice, err = r.BeginReader(ctx, kind, hostID); err != nil {
		return nil, nil, "", err
	}
	return op, op.End, notice, nil
}

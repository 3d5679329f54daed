package faulty

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/dropback/dropback/pkg/store"
)

// A Gate holds every call that actors make to a store until a seeded
// scheduler lets it through, one at a time, so that a test steps several
// processes (actors) through their store operations in an order the seed
// chooses, and can fail calls or end actors at chosen points.
//
// Determinism is as good as the actors': an actor that computes between two
// calls gets a short quiet period to make its next call before the gate
// picks one.

// Verdict is what the gate does with one call.
type Verdict int

// The verdicts.
const (
	// Proceed lets the call through.
	Proceed Verdict = iota
	// Fail fails the call without doing it.
	Fail
	// FailAfter does the call, then fails it (a Put whose acknowledgement
	// was lost; for other calls, as Fail).
	FailAfter
	// Die fails the call and every later call of the actor: its process
	// was killed.
	Die
)

// ErrDead is returned by every call of an actor the gate killed.
var ErrDead = errors.New("the process was killed")

// Call is one held call, as the chooser sees it.
type Call struct {
	Actor int
	Op    Op
	Name  string
}

// Gate is a store decorator shared by actors. It is safe for concurrent use.
type Gate struct {
	inner store.Store
	// Choose picks the next call among those held (a non-empty slice)
	// and its verdict, or -1 to wait for another call first; it is called
	// from the scheduler alone.
	choose func(held []Call) (int, Verdict)
	quiet  time.Duration

	mu      sync.Mutex
	held    []*heldCall
	arrived chan struct{}
	dead    map[int]bool
	faults  map[int]int // actor -> calls failed
	stop    chan struct{}
	done    chan struct{}
}

type heldCall struct {
	Call
	verdict  chan Verdict
	finished chan struct{}
}

// NewGate wraps inner; choose decides the order and the faults; quiet is
// how long no new call may arrive before the gate picks one.
func NewGate(inner store.Store, quiet time.Duration, choose func(held []Call) (int, Verdict)) *Gate {
	g := &Gate{inner: inner, choose: choose, quiet: quiet, arrived: make(chan struct{}, 1),
		dead: map[int]bool{}, faults: map[int]int{}, stop: make(chan struct{}), done: make(chan struct{})}
	go g.run()
	return g
}

// NewRand returns a chooser that picks calls at random from rng and fails
// one in failEvery (never when 0) and kills the actor in one in dieEvery
// (never when 0), except for the actors in immortal.
func NewRand(rng *rand.Rand, failEvery, dieEvery int, immortal map[int]bool) func([]Call) (int, Verdict) {
	return func(held []Call) (int, Verdict) {
		i := rng.IntN(len(held))
		switch {
		case dieEvery > 0 && !immortal[held[i].Actor] && rng.IntN(dieEvery) == 0:
			return i, Die
		case failEvery > 0 && rng.IntN(failEvery) == 0:
			return i, Verdict(1 + rng.IntN(2)) // Fail or FailAfter
		}
		return i, Proceed
	}
}

// Close lets every held and later call through, unjudged, and stops the
// scheduler.
func (g *Gate) Close() {
	close(g.stop)
	<-g.done
}

// Dead reports whether the gate killed the actor.
func (g *Gate) Dead(actor int) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.dead[actor]
}

// Faults is how many calls of the actor the gate failed.
func (g *Gate) Faults(actor int) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.faults[actor]
}

// Actor returns the store an actor uses.
func (g *Gate) Actor(id int) store.Store { return &actorStore{g: g, id: id} }

func (g *Gate) run() {
	defer close(g.done)
	for {
		g.mu.Lock()
		n := len(g.held)
		g.mu.Unlock()
		if n == 0 {
			select {
			case <-g.stop:
				g.release()
				return
			case <-g.arrived:
				continue
			}
		}
		// Wait for the actors to fall quiet.
		select {
		case <-g.stop:
			g.release()
			return
		case <-g.arrived:
			continue
		case <-time.After(g.quiet):
		}
		g.mu.Lock()
		calls := make([]Call, len(g.held))
		for i, c := range g.held {
			calls[i] = c.Call
		}
		// Choose without the lock: the chooser may ask the gate things.
		// Only this goroutine removes held calls, so the indexes stay.
		g.mu.Unlock()
		i, v := g.choose(calls)
		if i < 0 {
			// The chooser waits for a call yet to come.
			select {
			case <-g.stop:
				g.release()
				return
			case <-g.arrived:
			case <-time.After(g.quiet):
			}
			continue
		}
		g.mu.Lock()
		c := g.held[i]
		g.held = append(g.held[:i], g.held[i+1:]...)
		if g.dead[c.Actor] {
			v = Die // a call its process made before it was killed
		}
		if v == Die {
			g.dead[c.Actor] = true
		}
		if v != Proceed {
			g.faults[c.Actor]++
		}
		g.mu.Unlock()
		c.verdict <- v
		<-c.finished
	}
}

// release lets every held call through.
func (g *Gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range g.held {
		c.verdict <- Proceed
	}
	g.held = nil
}

// enter holds a call until the scheduler judges it; it returns the verdict
// and a function to call when the call is done.
func (g *Gate) enter(actor int, op Op, name string) (Verdict, func()) {
	g.mu.Lock()
	if g.dead[actor] {
		g.mu.Unlock()
		return Die, func() {}
	}
	select {
	case <-g.stop:
		g.mu.Unlock()
		return Proceed, func() {}
	default:
	}
	c := &heldCall{Call: Call{Actor: actor, Op: op, Name: name}, verdict: make(chan Verdict, 1), finished: make(chan struct{})}
	g.held = append(g.held, c)
	g.mu.Unlock()
	select {
	case g.arrived <- struct{}{}:
	default:
	}
	v := <-c.verdict
	return v, func() { close(c.finished) }
}

type actorStore struct {
	g  *Gate
	id int
}

func (s *actorStore) fail(v Verdict, op Op, name string) error {
	if v == Die {
		return fmt.Errorf("%s %s: %w", op, name, ErrDead)
	}
	return fmt.Errorf("%s %s: %w", op, name, ErrInjected)
}

func (s *actorStore) Put(ctx context.Context, name string, data []byte) error {
	v, done := s.g.enter(s.id, Put, name)
	defer done()
	switch v {
	case Proceed:
		return s.g.inner.Put(ctx, name, data)
	case FailAfter:
		if err := s.g.inner.Put(ctx, name, data); err != nil {
			return err
		}
	}
	return s.fail(v, Put, name)
}

func (s *actorStore) Get(ctx context.Context, name string, off, length int64) ([]byte, error) {
	v, done := s.g.enter(s.id, Get, name)
	defer done()
	if v != Proceed {
		return nil, s.fail(v, Get, name)
	}
	return s.g.inner.Get(ctx, name, off, length)
}

func (s *actorStore) ReadAt(ctx context.Context, name string, p []byte, off int64) (int, error) {
	v, done := s.g.enter(s.id, Get, name)
	defer done()
	if v != Proceed {
		return 0, s.fail(v, Get, name)
	}
	return store.ReadAt(ctx, s.g.inner, name, p, off)
}

func (s *actorStore) Stat(ctx context.Context, name string) (store.Info, error) {
	v, done := s.g.enter(s.id, Stat, name)
	defer done()
	if v != Proceed {
		return store.Info{}, s.fail(v, Stat, name)
	}
	return s.g.inner.Stat(ctx, name)
}

func (s *actorStore) List(ctx context.Context, prefix string, fn func(store.Info) error) error {
	v, done := s.g.enter(s.id, List, prefix)
	if v != Proceed {
		done()
		return s.fail(v, List, prefix)
	}
	// Collect first, so that the scheduler is not held while fn runs
	// (fn may make calls of its own).
	var infos []store.Info
	err := s.g.inner.List(ctx, prefix, func(i store.Info) error { infos = append(infos, i); return nil })
	done()
	if err != nil {
		return err
	}
	for _, i := range infos {
		if err := fn(i); err != nil {
			return err
		}
	}
	return nil
}

func (s *actorStore) Delete(ctx context.Context, name string) error {
	v, done := s.g.enter(s.id, Delete, name)
	defer done()
	switch v {
	case Proceed:
		return s.g.inner.Delete(ctx, name)
	case FailAfter:
		if err := s.g.inner.Delete(ctx, name); err != nil {
			return err
		}
	}
	return s.fail(v, Delete, name)
}

func (s *actorStore) Location() string { return s.g.inner.Location() }

func (s *actorStore) ListLag() time.Duration { return store.ListLagOf(s.g.inner) }

var (
	_ store.Store    = (*actorStore)(nil)
	_ store.ReaderAt = (*actorStore)(nil)
)

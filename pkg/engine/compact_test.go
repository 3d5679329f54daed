package engine

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dropback/dropback/internal/fakeclock"
	"github.com/dropback/dropback/pkg/store"
)

// crashStore is a process that dies after its first `left` writes and
// deletes: every call from then on fails, as none would be made.
type crashStore struct {
	store.Store
	mu   sync.Mutex
	left int
	dead bool
	at   string // the call it died before
}

var errCrashed = errors.New("the process was killed")

func (s *crashStore) alive(write bool, what string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.dead && write {
		if s.left == 0 {
			s.dead, s.at = true, what
		}
		s.left--
	}
	if s.dead {
		return errCrashed
	}
	return nil
}

func (s *crashStore) Put(ctx context.Context, name string, data []byte) error {
	if err := s.alive(true, "put "+name); err != nil {
		return err
	}
	return s.Store.Put(ctx, name, data)
}

func (s *crashStore) Delete(ctx context.Context, name string) error {
	if err := s.alive(true, "delete "+name); err != nil {
		return err
	}
	return s.Store.Delete(ctx, name)
}

func (s *crashStore) Get(ctx context.Context, name string, off, n int64) ([]byte, error) {
	if err := s.alive(false, ""); err != nil {
		return nil, err
	}
	return s.Store.Get(ctx, name, off, n)
}

func (s *crashStore) Stat(ctx context.Context, name string) (store.Info, error) {
	if err := s.alive(false, ""); err != nil {
		return store.Info{}, err
	}
	return s.Store.Stat(ctx, name)
}

func (s *crashStore) List(ctx context.Context, prefix string, fn func(store.Info) error) error {
	if err := s.alive(false, ""); err != nil {
		return err
	}
	return s.Store.List(ctx, prefix, fn)
}

func (s *crashStore) ListLag() time.Duration { return 0 }

func countObjects(t *testing.T, st store.Store, prefix string) int {
	t.Helper()
	n := 0
	if err := st.List(context.Background(), prefix, func(store.Info) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// Compaction killed before each of its writes and deletes in turn loses
// nothing: after every crash each backup restores to its disk's bytes and
// verify is clean, and the gc after it leaves few segments; every backup
// still restores after that one too.
func TestCompactionKilledAtEveryStep(t *testing.T) {
	ctx := context.Background()
	opts := GCOptions{MinAge: -1, CompactFanout: 2}
	crashes := 0
	for left := 0; ; left++ {
		f := newCompactFixture(t)
		cs := &crashStore{Store: f.st, left: left}
		res, err := f.open(cs).GC(ctx, opts)
		if err == nil {
			if res.MergedSegments != 8 {
				t.Fatalf("a gc that ran to its end merged %d segments, want 8", res.MergedSegments)
			}
			f.check(f.open(f.st), "after a whole gc")
			break
		}
		if !cs.dead {
			t.Fatalf("gc failed without a crash: %v", err)
		}
		crashes++
		// A new process, on what the dead one left, once the dead one's
		// marker and lease went stale.
		f.clk.Advance(StaleAfter + clockSkew + time.Minute)
		when := fmt.Sprintf("gc killed before %s", cs.at)
		f.check(f.open(f.st), when)
		if res, err := f.open(f.st).GC(ctx, opts); err != nil {
			t.Fatalf("%s: the gc after it: %v", when, err)
		} else if testing.Verbose() {
			t.Logf("%s: %+v", when, res)
		}
		if false {
			t.Fatalf("%s: the gc after it: %v", when, err)
		}
		f.check(f.open(f.st), when+", and another gc")
		// What a crash left unmerged is merged with the next small
		// segments: at most fanout² of the lowest tier wait for them.
		if n := countObjects(t, f.st, "index/"); n > 2*2+1 {
			t.Fatalf("%s: %d index segments after another gc, want at most 5 (fanout 2)", when, n)
		}
		if left > 500 {
			t.Fatal("gc never ends")
		}
	}
	if crashes < 17 {
		t.Fatalf("only %d crash points: the merge of 8 segments alone has 17", crashes)
	}
}

// compactFixture is a repository of 8 backups, each of which wrote one
// index segment, on a clock the test moves.
type compactFixture struct {
	t       *testing.T
	st      store.Store
	clk     *fakeclock.Clock
	backups []*Manifest
	sums    [][32]byte
}

func newCompactFixture(t *testing.T) *compactFixture {
	t.Helper()
	r, st, clk := memRepo(t)
	f := &compactFixture{t: t, st: st, clk: clk}
	src := filepath.Join(t.TempDir(), "src.img")
	makeDisk(t, src, 8*testChunk)
	rng := mrand.New(mrand.NewPCG(1, 2))
	buf := make([]byte, 8*testChunk)
	for range 8 {
		for i := range buf {
			buf[i] = byte(rng.Uint32())
		}
		writeAt(t, src, 0, buf)
		f.backups = append(f.backups, backup(t, r, src))
		f.sums = append(f.sums, fileHash(t, src))
	}
	if n := countObjects(t, st, "index/"); n != 8 {
		t.Fatalf("test setup: %d index segments, want one a backup", n)
	}
	return f
}

func (f *compactFixture) open(st store.Store) *Repo {
	f.t.Helper()
	r, err := Open(context.Background(), st, Options{Now: f.clk.Now, After: f.clk.After, Password: testPassword})
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

// check fails the test unless every backup restores to its disk's bytes
// and verify is clean.
func (f *compactFixture) check(r *Repo, when string) {
	t := f.t
	t.Helper()
	ctx := context.Background()
	for i, m := range f.backups {
		out := filepath.Join(t.TempDir(), "out.img")
		if _, err := r.Restore(ctx, m, []RestoreTarget{{Path: out}}, nil); err != nil {
			t.Fatalf("%s: backup %d does not restore: %v", when, m.ID, err)
		}
		if fileHash(t, out) != f.sums[i] {
			t.Fatalf("%s: backup %d restores other bytes than its disk", when, m.ID)
		}
	}
	if v, err := r.Verify(ctx, nil, nil); err != nil || v.Damaged() {
		t.Fatalf("%s: verify: %v %v", when, err, v.Problems)
	}
}

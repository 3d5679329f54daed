package storetest

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/dropback/dropback/pkg/store"
)

// Strange is a kind of thing that anyone who can write to a store can
// plant at a name, and that is no object (store.ErrNotObject).
type Strange string

// The strange things a Planter may plant.
const (
	// FIFO is a named pipe: opening it to read waits for a writer.
	FIFO Strange = "fifo"
	// Socket is a Unix domain socket.
	Socket Strange = "socket"
	// SymlinkOut is a symbolic link to a file outside the store.
	SymlinkOut Strange = "symlink-out"
	// SymlinkIn is a symbolic link to an object of the store.
	SymlinkIn Strange = "symlink-in"
	// DirSymlinkOut makes the directory on the way to the name a symbolic
	// link to a directory outside the store, which holds a file of that
	// name.
	DirSymlinkOut Strange = "dir-symlink-out"
)

var strangeKinds = []Strange{FIFO, Socket, SymlinkOut, SymlinkIn, DirSymlinkOut}

// Planter plants a thing of the given kind at name in s, behind the
// store's back. What it points to, if anything, holds secret; target reads
// it back (nil for a thing that points nowhere). It returns planted false
// when s cannot hold such a thing.
type Planter func(t *testing.T, s store.Store, name string, kind Strange, secret []byte) (planted bool, target func() []byte)

// Option tunes Run.
type Option func(*options)

type options struct {
	plant Planter
}

// WithPlanter runs the Strange tests with p.
func WithPlanter(p Planter) Option { return func(o *options) { o.plant = p } }

// hangAfter is how long a call on a strange thing may take before the test
// calls it blocked: not a measure of speed, a guard against a FIFO that
// would hang the suite.
const hangAfter = 30 * time.Second

// runStrange plants each kind of strange thing and checks that no method
// blocks on it, reads it, reports it or writes through it.
func runStrange(t *testing.T, open func(t *testing.T) store.Store, plant Planter) {
	for _, kind := range strangeKinds {
		t.Run("Strange/"+string(kind), func(t *testing.T) {
			s := open(t)
			put(t, s, "strange/ok", []byte("ok"))
			name := "strange/x"
			if kind == DirSymlinkOut {
				name = "strange/dir/x"
			}
			secret := []byte("a secret outside the store's objects")
			planted, target := plant(t, s, name, kind, secret)
			if !planted {
				t.Skipf("%s cannot hold a %s", s.Location(), kind)
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				checkStrange(t, s, name, secret)
			}()
			select {
			case <-done:
			case <-time.After(hangAfter):
				t.Fatalf("a call on a %s at %s blocked", kind, name)
			}
			if target != nil {
				if got := target(); !bytes.Equal(got, secret) {
					t.Errorf("what the %s points to was changed: it holds %q", kind, got)
				}
			}
		})
	}
}

func checkStrange(t *testing.T, s store.Store, name string, secret []byte) {
	ctx := context.Background()
	notObject := func(what string, data []byte, err error) {
		if !errors.Is(err, store.ErrNotObject) {
			t.Errorf("%s: got %v, want an error wrapping ErrNotObject", what, err)
		}
		if bytes.Contains(data, secret) {
			t.Errorf("%s read what lies outside the objects", what)
		}
	}
	for _, length := range []int64{-1, 0, 10, 1 << 30} {
		data, err := s.Get(ctx, name, 0, length)
		notObject("Get of "+name, data, err)
	}
	buf := make([]byte, 64)
	n, err := store.ReadAt(ctx, s, name, buf, 0)
	notObject("ReadAt of "+name, buf[:max(n, 0)], err)
	_, err = s.Stat(ctx, name)
	notObject("Stat of "+name, nil, err)
	// What is there is listed, so that its damage can be named; what
	// lies through a link is not.
	got := names(t, s, "strange/")
	if through := name == "strange/dir/x"; through == slices.Contains(got, name) {
		t.Errorf("List of strange/ gives %q", got)
	}
	if err := s.Put(ctx, name, []byte("written through")); err == nil {
		t.Errorf("Put over %s succeeded", name)
	}
	_ = s.Delete(ctx, name)
	if got := get(t, s, "strange/ok", 0, -1); string(got) != "ok" {
		t.Errorf("the object beside it holds %q", got)
	}
}

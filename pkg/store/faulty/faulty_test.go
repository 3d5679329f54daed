package faulty

import (
	"context"
	"errors"
	"syscall"
	"testing"

	"github.com/dropback/dropback/pkg/store"
	"github.com/dropback/dropback/pkg/store/local"
	"github.com/dropback/dropback/pkg/store/storetest"
)

func newLocal(t *testing.T) store.Store {
	t.Helper()
	s, err := local.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Without rules the wrapper is a store like any other.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return New(newLocal(t)) })
}

func TestRules(t *testing.T) {
	ctx := context.Background()
	data := []byte("x")
	cases := []struct {
		name string
		rule Rule
		call func(s *Store, name string) error
		// which of five calls on "packs/ab/abc" fail
		want [5]bool
	}{
		{"every put", Rule{Op: Put, Pattern: "packs/*/*"},
			func(s *Store, n string) error { return s.Put(ctx, n, data) }, [5]bool{true, true, true, true, true}},
		{"the second and third put", Rule{Op: Put, Pattern: "packs/", After: 1, Times: 2},
			func(s *Store, n string) error { return s.Put(ctx, n, data) }, [5]bool{false, true, true, false, false}},
		{"another pattern", Rule{Op: Put, Pattern: "index/*"},
			func(s *Store, n string) error { return s.Put(ctx, n, data) }, [5]bool{}},
		{"another op", Rule{Op: Delete, Pattern: "packs/"},
			func(s *Store, n string) error { return s.Put(ctx, n, data) }, [5]bool{}},
		{"one get", Rule{Op: Get, Times: 1},
			func(s *Store, n string) error { _, err := s.Get(ctx, n, 0, -1); return err }, [5]bool{true}},
		{"stat", Rule{Op: Stat, After: 4},
			func(s *Store, n string) error { _, err := s.Stat(ctx, n); return err }, [5]bool{false, false, false, false, true}},
		{"delete", Rule{Op: Delete, Times: 1},
			func(s *Store, n string) error { return s.Delete(ctx, n) }, [5]bool{true}},
		{"list", Rule{Op: List, Pattern: "packs/", Times: 1},
			func(s *Store, n string) error { return s.List(ctx, "packs/", func(store.Info) error { return nil }) }, [5]bool{true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := New(newLocal(t), tc.rule)
			if err := s.Inner().Put(ctx, "packs/ab/abc", data); err != nil {
				t.Fatal(err)
			}
			for i, want := range tc.want {
				name := "packs/ab/abc"
				if tc.rule.Op == Put {
					name = "packs/ab/new" + string(rune('0'+i))
				}
				err := tc.call(s, name)
				if got := errors.Is(err, ErrInjected); got != want {
					t.Fatalf("call %d: injected = %v (%v), want %v", i, got, err, want)
				}
			}
			n := 0
			for _, w := range tc.want {
				if w {
					n++
				}
			}
			if got := len(s.Injected()); got != n {
				t.Fatalf("Injected() has %d calls, want %d", got, n)
			}
		})
	}
}

func TestPutWrittenAndENOSPC(t *testing.T) {
	ctx := context.Background()
	s := New(newLocal(t),
		Rule{Op: Put, Pattern: "backups/*", Written: true, Err: EIO},
		Rule{Op: Put, Pattern: "packs/", Err: ENOSPC})
	err := s.Put(ctx, "backups/0000000001", []byte("m"))
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("put: %v, want EIO", err)
	}
	if got, err := s.Get(ctx, "backups/0000000001", 0, -1); err != nil || string(got) != "m" {
		t.Fatalf("a put that failed after writing left %q, %v", got, err)
	}
	err = s.Put(ctx, "packs/ab/abc", []byte("p"))
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("put: %v, want ENOSPC", err)
	}
	if _, err := s.Stat(ctx, "packs/ab/abc"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a put that failed before writing left an object: %v", err)
	}
	s.Set()
	if err := s.Put(ctx, "packs/ab/abc", []byte("p")); err != nil {
		t.Fatalf("healed store: %v", err)
	}
}

func TestListFailsPartWay(t *testing.T) {
	ctx := context.Background()
	s := New(newLocal(t), Rule{Op: List, Pattern: "index/", ListAfter: 2})
	for _, n := range []string{"index/a", "index/b", "index/c", "index/d"} {
		if err := s.Put(ctx, n, []byte(n)); err != nil {
			t.Fatal(err)
		}
	}
	seen := 0
	err := s.List(ctx, "index/", func(store.Info) error { seen++; return nil })
	if !errors.Is(err, ErrInjected) || seen != 2 {
		t.Fatalf("list saw %d objects and returned %v; want 2 and an injected fault", seen, err)
	}
}

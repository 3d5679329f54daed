// Package faulty wraps a store.Store and makes chosen calls fail, for tests
// that show how dropback behaves when its storage misbehaves.
//
// A Store is a decorator in the manner of kopia's fault-injecting storage:
// every call goes to the wrapped store unless a Rule matches it. A rule names
// an operation, a pattern of object names, which of the matching calls fail
// and how: with a plain error, with one wrapping ENOSPC, or — for Put — after
// the object was written (a write whose fsync or acknowledgement failed, so
// the caller sees an error although the object exists).
package faulty

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dropback/dropback/pkg/store"
)

// Op names a store operation.
type Op string

// The operations a rule can fail.
const (
	Put    Op = "put"
	Get    Op = "get"
	Stat   Op = "stat"
	List   Op = "list"
	Delete Op = "delete"
)

// ErrInjected is wrapped by every error a Rule without its own Err returns.
var ErrInjected = errors.New("injected fault")

// Errors a rule can return, as a filesystem gives them.
var (
	// ENOSPC is a write to a full filesystem.
	ENOSPC error = &os.PathError{Op: "write", Path: "temporary file", Err: syscall.ENOSPC}
	// EIO is an fsync that failed.
	EIO error = &os.PathError{Op: "fsync", Path: "temporary file", Err: syscall.EIO}
)

// Rule makes some calls of one operation fail.
type Rule struct {
	// Op is the operation that fails.
	Op Op
	// Pattern selects object names (List: the prefix listed). It is a
	// path.Match pattern ("packs/*/*", "backups/*"), or a prefix when it
	// ends in "/" ("index/"). Empty matches every name.
	Pattern string
	// After lets the first After matching calls through.
	After int
	// Times is how many matching calls fail after those; 0 means every one.
	Times int
	// Err is the error returned, wrapped in one naming the call; nil means
	// ErrInjected.
	Err error
	// Written, for Put, writes the object to the wrapped store before
	// failing: the write happened but was not acknowledged.
	Written bool
	// ListAfter, for List, fails after this many objects were listed.
	ListAfter int
	// Hook, if set, runs when the rule selects a call, before it. A rule
	// with a Hook and no Err then lets the call through: a test uses it to
	// do something at an exact point of an operation.
	Hook func()
}

// matches reports whether the rule selects a call of op on name.
func (r *Rule) matches(op Op, name string) bool {
	if r.Op != op {
		return false
	}
	if r.Pattern == "" {
		return true
	}
	if strings.HasSuffix(r.Pattern, "/") {
		return strings.HasPrefix(name, r.Pattern)
	}
	ok, err := path.Match(r.Pattern, name)
	return err == nil && ok
}

func (r *Rule) err() error {
	if r.Err != nil {
		return r.Err
	}
	return ErrInjected
}

// Store is a store.Store that fails the calls its rules select. It is safe
// for concurrent use.
type Store struct {
	inner store.Store

	mu       sync.Mutex
	rules    []*ruleState
	injected []string // "op name" of every failed call
}

type ruleState struct {
	Rule
	seen, failed int
}

var _ store.Store = (*Store)(nil)

// New wraps inner. With no rules the Store passes every call through.
func New(inner store.Store, rules ...Rule) *Store {
	s := &Store{inner: inner}
	s.Set(rules...)
	return s
}

// Set replaces the rules; Set() with none heals the store.
func (s *Store) Set(rules ...Rule) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = nil
	for _, r := range rules {
		s.rules = append(s.rules, &ruleState{Rule: r})
	}
}

// Injected returns the calls that failed, as "op name", in order.
func (s *Store) Injected() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.injected...)
}

// Inner returns the wrapped store.
func (s *Store) Inner() store.Store { return s.inner }

// fault returns the rule that fails this call, or nil.
func (s *Store) fault(op Op, name string) *Rule {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.rules {
		if !r.matches(op, name) {
			continue
		}
		r.seen++
		if r.seen <= r.After || (r.Times > 0 && r.failed >= r.Times) {
			continue
		}
		r.failed++
		rule := r.Rule
		if rule.Hook != nil {
			s.mu.Unlock()
			rule.Hook()
			s.mu.Lock()
			if rule.Err == nil {
				return nil
			}
		}
		s.injected = append(s.injected, string(op)+" "+name)
		return &rule
	}
	return nil
}

// Put implements store.Store.
func (s *Store) Put(ctx context.Context, name string, data []byte) error {
	r := s.fault(Put, name)
	if r == nil {
		return s.inner.Put(ctx, name, data)
	}
	if r.Written {
		if err := s.inner.Put(ctx, name, data); err != nil {
			return err
		}
	}
	return fmt.Errorf("put %s: %w", name, r.err())
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, name string, off, length int64) ([]byte, error) {
	if r := s.fault(Get, name); r != nil {
		return nil, fmt.Errorf("get %s: %w", name, r.err())
	}
	return s.inner.Get(ctx, name, off, length)
}

// Stat implements store.Store.
func (s *Store) Stat(ctx context.Context, name string) (store.Info, error) {
	if r := s.fault(Stat, name); r != nil {
		return store.Info{}, fmt.Errorf("stat %s: %w", name, r.err())
	}
	return s.inner.Stat(ctx, name)
}

// List implements store.Store.
func (s *Store) List(ctx context.Context, prefix string, fn func(store.Info) error) error {
	r := s.fault(List, prefix)
	if r == nil {
		return s.inner.List(ctx, prefix, fn)
	}
	if r.ListAfter == 0 {
		return fmt.Errorf("list %q: %w", prefix, r.err())
	}
	n := 0
	stop := errors.New("stop")
	err := s.inner.List(ctx, prefix, func(info store.Info) error {
		if n == r.ListAfter {
			return stop
		}
		n++
		return fn(info)
	})
	if err != nil && !errors.Is(err, stop) {
		return err
	}
	return fmt.Errorf("list %q: %w", prefix, r.err())
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, name string) error {
	if r := s.fault(Delete, name); r != nil {
		return fmt.Errorf("delete %s: %w", name, r.err())
	}
	return s.inner.Delete(ctx, name)
}

// Location implements store.Store.
func (s *Store) Location() string { return s.inner.Location() }

// ListLag implements store.Lagger as the wrapped store does.
func (s *Store) ListLag() time.Duration { return store.ListLagOf(s.inner) }

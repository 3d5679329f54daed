// Package mem is a store.Store held in memory, for tests: fast, with a clock
// the test controls, so that the times it gives objects agree with the
// engine's simulated clock.
package mem

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dropback/dropback/pkg/store"
)

// Store is an in-memory store. It is safe for concurrent use.
type Store struct {
	now func() time.Time

	mu   sync.Mutex
	objs map[string]object
}

type object struct {
	data []byte
	mod  time.Time
}

var (
	_ store.Store    = (*Store)(nil)
	_ store.ReaderAt = (*Store)(nil)
)

// New returns an empty store whose objects are timed by now (nil:
// time.Now).
func New(now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{now: now, objs: map[string]object{}}
}

func check(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return store.CheckName(name)
}

// Put implements store.Store.
func (s *Store) Put(ctx context.Context, name string, data []byte) error {
	if err := check(ctx, name); err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.objs[name]; ok {
		return fmt.Errorf("put %s: %w", name, store.ErrExists)
	}
	s.objs[name] = object{data: bytes.Clone(data), mod: s.now()}
	return nil
}

// Set writes an object whether or not it exists, at the given time (zero:
// now): for a test that plants or damages objects.
func (s *Store) Set(name string, data []byte, mod time.Time) {
	if mod.IsZero() {
		mod = s.now()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.objs[name] = object{data: bytes.Clone(data), mod: mod}
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, name string, off, length int64) ([]byte, error) {
	if err := check(ctx, name); err != nil {
		return nil, fmt.Errorf("get %s: %w", name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.objs[name]
	if !ok {
		return nil, fmt.Errorf("get %s: %w", name, store.ErrNotFound)
	}
	data := o.data[min(max(off, 0), int64(len(o.data))):]
	if length >= 0 && length < int64(len(data)) {
		data = data[:length]
	}
	return bytes.Clone(data), nil
}

// ReadAt implements store.ReaderAt.
func (s *Store) ReadAt(ctx context.Context, name string, p []byte, off int64) (int, error) {
	data, err := s.Get(ctx, name, off, int64(len(p)))
	return copy(p, data), err
}

// Stat implements store.Store.
func (s *Store) Stat(ctx context.Context, name string) (store.Info, error) {
	if err := check(ctx, name); err != nil {
		return store.Info{}, fmt.Errorf("stat %s: %w", name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.objs[name]
	if !ok {
		return store.Info{}, fmt.Errorf("stat %s: %w", name, store.ErrNotFound)
	}
	return store.Info{Name: name, Size: int64(len(o.data)), ModTime: o.mod}, nil
}

// List implements store.Store, in name order.
func (s *Store) List(ctx context.Context, prefix string, fn func(store.Info) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := store.CheckPrefix(prefix); err != nil {
		return err
	}
	s.mu.Lock()
	var infos []store.Info
	for name, o := range s.objs {
		if strings.HasPrefix(name, prefix) {
			infos = append(infos, store.Info{Name: name, Size: int64(len(o.data)), ModTime: o.mod})
		}
	}
	s.mu.Unlock()
	sort.Slice(infos, func(i, j int) bool { return infos[i].Name < infos[j].Name })
	for _, info := range infos {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, name string) error {
	if err := check(ctx, name); err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.objs, name)
	return nil
}

// Location implements store.Store.
func (s *Store) Location() string { return "memory" }

// ListLag implements store.Lagger: a listing shows every object written.
func (s *Store) ListLag() time.Duration { return 0 }

package engine

import (
	"context"
	"errors"
	"time"

	"github.com/dropback/dropback/pkg/store"
)

// damageStore is the store a Repo reads through: what the store finds at a
// name that is no object (store.ErrNotObject: a FIFO, a link) is damage to
// the repository, ErrCorrupt, wherever the engine meets it.
type damageStore struct{ store.Store }

var (
	_ store.Store    = damageStore{}
	_ store.ReaderAt = damageStore{}
)

// notObjectError matches both store.ErrNotObject, with its message, and
// ErrCorrupt.
type notObjectError struct{ err error }

func (e notObjectError) Error() string   { return e.err.Error() }
func (e notObjectError) Unwrap() []error { return []error{e.err, ErrCorrupt} }

func asDamage(err error) error {
	if err != nil && errors.Is(err, store.ErrNotObject) && !errors.Is(err, ErrCorrupt) {
		return notObjectError{err}
	}
	return err
}

func (s damageStore) Get(ctx context.Context, name string, off, length int64) ([]byte, error) {
	data, err := s.Store.Get(ctx, name, off, length)
	return data, asDamage(err)
}

func (s damageStore) ReadAt(ctx context.Context, name string, p []byte, off int64) (int, error) {
	n, err := store.ReadAt(ctx, s.Store, name, p, off)
	return n, asDamage(err)
}

func (s damageStore) Stat(ctx context.Context, name string) (store.Info, error) {
	info, err := s.Store.Stat(ctx, name)
	return info, asDamage(err)
}

func (s damageStore) Put(ctx context.Context, name string, data []byte) error {
	return asDamage(s.Store.Put(ctx, name, data))
}

// ListLag implements store.Lagger as the store beneath does.
func (s damageStore) ListLag() time.Duration { return store.ListLagOf(s.Store) }

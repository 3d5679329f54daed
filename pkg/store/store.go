// Package store defines the object store that holds a dropback repository, and
// its implementations.
//
// A store is a flat namespace of immutable objects named by slash-separated
// keys ("packs/ab/abcdef…", "backups/0000000042"). The engine relies on
// nothing more than what this interface promises, so the same repository
// format runs on a local filesystem and on S3-compatible object storage.
package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors. Implementations wrap them, so callers test with errors.Is.
var (
	// ErrNotFound means the object does not exist.
	ErrNotFound = errors.New("object not found")
	// ErrExists means Put found an object of that name already there.
	ErrExists = errors.New("object already exists")
	// ErrNotObject means something is at the name that no Put made and that
	// is not an object: on a filesystem a FIFO, socket or device, or a
	// symbolic link, also as a directory on the way to the name.
	ErrNotObject = errors.New("not an object")
)

// Info describes one stored object.
type Info struct {
	Name    string
	Size    int64
	ModTime time.Time
}

// Store is an object store with create-once semantics.
//
// All methods are safe for concurrent use by many goroutines and by many
// processes (or machines) sharing the same store. Names are non-empty,
// slash-separated, with no "." or ".." element and no leading slash.
//
// A store may hold what no Put made: anyone who can write to it can plant
// things. Whatever is at a name that is not an object (see ErrNotObject)
// makes Get, ReadAt and Stat fail at once with ErrNotObject, never block
// and never read what lies outside the store. List reports its name, so
// that a caller can name the damage, but nothing that lies through a link.
// Put neither writes through it nor replaces it; Delete never removes what
// it points to.
type Store interface {
	// Put creates the object name holding data. It is atomic: a reader sees
	// either no object or the whole of data, never a part. It is durable: when
	// Put returns nil the object survives a crash of the process or machine.
	// It is create-once: if name already exists, Put leaves it unchanged and
	// returns an error wrapping ErrExists. A Put that fails with another error
	// may or may not have created the object; calling it again is safe, and a
	// caller that writes content-addressed objects treats ErrExists as success.
	Put(ctx context.Context, name string, data []byte) error

	// Get returns length bytes of the object starting at offset off. A length
	// of -1 reads to the end. Reading past the end returns the bytes there are,
	// which may be fewer than length. A missing object gives ErrNotFound.
	Get(ctx context.Context, name string, off, length int64) ([]byte, error)

	// Stat returns the object's size and modification time, or ErrNotFound.
	Stat(ctx context.Context, name string) (Info, error)

	// List calls fn for every object whose name starts with prefix, in no
	// particular order. It may miss objects created or deleted while it runs,
	// and on some stores it may miss objects created shortly before: callers
	// never rely on a listing being complete for correctness. An error from fn
	// stops the listing and is returned.
	List(ctx context.Context, prefix string, fn func(Info) error) error

	// Delete removes the object. Deleting a missing object is not an error,
	// so Delete is idempotent.
	Delete(ctx context.Context, name string) error

	// Location names the store for people, as "/var/lib/dropback/repo" or
	// "s3://bucket/prefix".
	Location() string
}

// ReaderAt is implemented by stores that can read into a buffer the caller
// owns, sparing an allocation per read on hot paths. ReadAt reads up to
// len(p) bytes of the object from offset off and returns how many it read:
// fewer only at the object's end. A missing object gives ErrNotFound.
type ReaderAt interface {
	ReadAt(ctx context.Context, name string, p []byte, off int64) (int, error)
}

// ReadAt reads into p through st's ReaderAt when it has one, else through
// Get.
func ReadAt(ctx context.Context, st Store, name string, p []byte, off int64) (int, error) {
	if ra, ok := st.(ReaderAt); ok {
		return ra.ReadAt(ctx, name, p, off)
	}
	data, err := st.Get(ctx, name, off, int64(len(p)))
	return copy(p, data), err
}

// Lagger is implemented by a store that says how long after its creation
// an object may still be missing from a listing. The engine's deletion
// rule waits that long before it trusts a listing to show what others
// wrote (docs/format.md, "Who may delete what").
type Lagger interface {
	ListLag() time.Duration
}

// DefaultListLag is what a store that does not say is taken to lag.
const DefaultListLag = time.Minute

// ListLagOf returns how long st's listings may lag.
func ListLagOf(st Store) time.Duration {
	if l, ok := st.(Lagger); ok {
		return l.ListLag()
	}
	return DefaultListLag
}

// Paralleler is implemented by a store that says how many reads a caller
// may usefully have in flight at once: a local filesystem gains little
// past a few, an object store over a network hides its latency behind
// many.
type Paralleler interface {
	ReadParallelism() int
}

// DefaultReadParallelism is what a store that does not say is given.
const DefaultReadParallelism = 8

// ReadParallelismOf returns how many reads of st may be in flight at once.
func ReadParallelismOf(st Store) int {
	if p, ok := st.(Paralleler); ok && p.ReadParallelism() > 0 {
		return p.ReadParallelism()
	}
	return DefaultReadParallelism
}

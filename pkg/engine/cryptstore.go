package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dropback/dropback/pkg/crypt"
	"github.com/dropback/dropback/pkg/store"
)

// cryptStore is the store an encrypted repository reads and writes through:
// a store of plaintext objects over a store of encrypted ones. Every object
// a Put makes is sealed under its name (crypt.SealObject), and opened again
// by Get, except those whose content is no secret or is encrypted by the
// engine itself (objectClass). Stat and List give an encrypted object's
// plaintext size, so that size limits apply to what a reader gets.
//
// An encrypted object that does not open is handled by its class: data
// gives an error that wraps ErrCorrupt and errUndecryptable; a record of the
// deletion-safety protocol (a marker, lease, claim, gc mark or gc record)
// reads as an empty object, one that does not parse, which each of them
// already treats by the rule of docs/format.md ("Who may delete what"): a
// marker counts as running until it is stale, a mark condemns nothing.
type cryptStore struct {
	store.Store
	c *crypt.Cipher
}

var (
	_ store.Store    = cryptStore{}
	_ store.ReaderAt = cryptStore{}
)

// errUndecryptable is an encrypted object that does not open with the
// repository's key: damaged, moved from another name, or not written by it.
var errUndecryptable = errors.New("does not decrypt with the repository's key")

// errTooLong is an encrypted object whose plaintext is longer than a Get
// asked for: it cannot be opened in part.
var errTooLong = errors.New("longer than asked for")

// objectClass says how an object is stored in an encrypted repository.
type objectClass int

const (
	// classPlain objects are stored as they are: the config and key
	// objects, which are read before the key is known; packs, whose blobs
	// and trailer the engine encrypts itself; and markers whose content is
	// empty or "{}" and whose name is all they say (deleted/, snapshots/,
	// a released gc lease).
	classPlain objectClass = iota
	// classData objects are encrypted; one that does not open is damage.
	classData
	// classProtocol objects are encrypted; one that does not open reads
	// as an empty object. A backup's fate/ is one: a fate that cannot be
	// read decides nothing, and the backup is kept.
	classProtocol
)

// dataPrefixes are those of classData; index-replaced/ markers name the
// segment that replaced theirs, and one that does not open is damage;
// image-repaired/ markers name an image, and one that does not open is
// not followed.
var dataPrefixes = []string{"backups/", "hosts/", "actions/", "images/", "index/", "index-replaced/", "image-repaired/", "damaged/", "deleted-ranges/", "catalog/"}

// schedule/idle/ hints name hosts; one that does not open is no hint, and
// the pass reads everything.
var protocolPrefixes = []string{"running/", "gc/lease/", "claims/", "gc/condemned/", "gc/done/", "fate/", "schedule/idle/"}

func classOf(name string) objectClass {
	for _, p := range dataPrefixes {
		if strings.HasPrefix(name, p) {
			return classData
		}
	}
	if strings.HasSuffix(name, ".released") {
		return classPlain
	}
	for _, p := range protocolPrefixes {
		if strings.HasPrefix(name, p) {
			return classProtocol
		}
	}
	return classPlain
}

// Put seals data under name, unless it is stored plain.
func (s cryptStore) Put(ctx context.Context, name string, data []byte) error {
	if classOf(name) != classPlain {
		data = s.c.SealObject(name, data)
	}
	return s.Store.Put(ctx, name, data)
}

// Get returns the plaintext of the object. An encrypted object is read
// whole and opened: off must be 0, and one whose plaintext is longer than
// length fails with errTooLong (data) or reads as empty (protocol).
func (s cryptStore) Get(ctx context.Context, name string, off, length int64) ([]byte, error) {
	class := classOf(name)
	if class == classPlain {
		return s.Store.Get(ctx, name, off, length)
	}
	if off != 0 {
		return nil, fmt.Errorf("read %s: an encrypted object is read whole, not from offset %d", name, off)
	}
	want := int64(-1)
	if length >= 0 {
		want = length + int64(crypt.ObjectOverhead) + 1
	}
	stored, err := s.Store.Get(ctx, name, 0, want)
	if err != nil {
		return nil, err
	}
	if length >= 0 && int64(len(stored)) > length+int64(crypt.ObjectOverhead) {
		if class == classProtocol {
			return nil, nil
		}
		return nil, fmt.Errorf("%w: %s is %w", ErrCorrupt, name, errTooLong)
	}
	plain, err := s.c.OpenObject(name, stored)
	if err != nil {
		if class == classProtocol {
			return nil, nil
		}
		return nil, fmt.Errorf("%w: %s %w (%s)", ErrCorrupt, name, errUndecryptable, undecryptableWhy(stored))
	}
	return plain, nil
}

// undecryptableWhy says for people what an object that does not open looks
// like.
func undecryptableWhy(stored []byte) string {
	if !crypt.IsObject(stored) {
		return "it is not encrypted: written without encryption, or planted"
	}
	return "damaged, moved from another name, or written with another key"
}

// ReadAt reads plain objects (packs) in part; an encrypted one cannot be.
func (s cryptStore) ReadAt(ctx context.Context, name string, p []byte, off int64) (int, error) {
	if classOf(name) != classPlain {
		return 0, fmt.Errorf("read %s: an encrypted object is read whole", name)
	}
	return store.ReadAt(ctx, s.Store, name, p, off)
}

// Stat gives the plaintext size of an encrypted object.
func (s cryptStore) Stat(ctx context.Context, name string) (store.Info, error) {
	info, err := s.Store.Stat(ctx, name)
	if err == nil {
		info = plainInfo(info)
	}
	return info, err
}

// List gives the plaintext size of each encrypted object.
func (s cryptStore) List(ctx context.Context, prefix string, fn func(store.Info) error) error {
	return s.Store.List(ctx, prefix, func(info store.Info) error { return fn(plainInfo(info)) })
}

func plainInfo(info store.Info) store.Info {
	if classOf(info.Name) != classPlain {
		info.Size = max(0, info.Size-int64(crypt.ObjectOverhead))
	}
	return info
}

// ListLag implements store.Lagger as the store beneath does.
func (s cryptStore) ListLag() time.Duration { return store.ListLagOf(s.Store) }

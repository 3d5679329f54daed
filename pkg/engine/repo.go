// Package engine is dropback's block-image backup engine: fixed-size chunks of
// disk images, keyed BLAKE3 chunk IDs, zstd blobs in immutable packs, index
// segments, one fixed index per image, and manifests written last.
//
// The engine knows nothing of commands, terminals or DigitalOcean. It stores
// everything through a store.Store and relies only on that interface's
// contract; docs/format.md describes the bytes.
package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/dropback/dropback/pkg/crypt"
	"github.com/dropback/dropback/pkg/key"
	"github.com/dropback/dropback/pkg/store"
)

// FormatName and FormatVersion identify the repository format.
const (
	FormatName    = "dropback-repository"
	FormatVersion = 2
	// manifestVersion is the version of the manifests a backup writes:
	// their layout did not change with the repository's version 2.
	manifestVersion = 1

	// DefaultChunkSize is the chunk size of a new repository.
	DefaultChunkSize = 1 << 20
	// MinChunkSize and MaxChunkSize bound the chunk size.
	MinChunkSize = 64 << 10
	MaxChunkSize = 16 << 20
)

// Sentinel errors.
var (
	ErrNotInitialised = errors.New("repository not initialised")
	ErrInitialised    = errors.New("repository already initialised")
	ErrFormat         = errors.New("unsupported repository format")
	ErrCorrupt        = errors.New("repository damaged")
	ErrNotFound       = errors.New("not found")
	ErrInvalid        = errors.New("invalid argument")
	// ErrPassword means an encrypted repository could not be opened: no
	// password was given, or no key of it opens with the one given.
	ErrPassword = errors.New("wrong password")
)

// EncryptionNone is the encryption of a repository that is not encrypted.
const EncryptionNone = "none"

// Config is the repository's `config` object.
type Config struct {
	Format      string    `json:"format"`
	Version     int       `json:"version"`
	ID          string    `json:"id"`
	CreatedAt   time.Time `json:"created_at"`
	ChunkSize   int       `json:"chunk_size"`
	ChunkHash   string    `json:"chunk_hash"`
	ChunkKey    string    `json:"chunk_key,omitempty"`
	Compression string    `json:"compression"`
	Encryption  string    `json:"encryption"`
}

// sameAs reports whether c and o describe the same repository the same way.
func (c Config) sameAs(o Config) bool {
	return c.Format == o.Format && c.Version == o.Version && c.ID == o.ID && c.CreatedAt.Equal(o.CreatedAt) &&
		c.ChunkSize == o.ChunkSize && c.ChunkHash == o.ChunkHash && c.ChunkKey == o.ChunkKey &&
		c.Compression == o.Compression && c.Encryption == o.Encryption
}

// Repo is an open repository. It is safe for concurrent use.
type Repo struct {
	st      store.Store // raw, through cryptStore when encrypted, through damageStore
	raw     store.Store
	cfg     Config
	key     [32]byte // of chunk IDs
	sec     *secrets // nil when not encrypted
	now     func() time.Time
	after   func(time.Duration) <-chan time.Time
	machine Machine
	// parallel is how many reads are in flight at once (forEach).
	parallel int
	// cache holds objects that never change, or is nil (cache.go).
	cache *objectCache
	// mem is the memory budget of what is held in proportion to the
	// repository (budget.go).
	mem *memBudget
}

// Options tune an open repository.
type Options struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// After waits on the clock, as time.After does (nil); a test with a
	// fake clock gives its own, to drive heartbeats.
	After func(time.Duration) <-chan time.Time
	// Machine names this process and tells whether others of this machine
	// have ended; nil means the real machine.
	Machine Machine
	// Password gives the password of an encrypted repository; it is
	// called only when the repository is encrypted. nil means none.
	Password func(ctx context.Context) ([]byte, error)
	// ReadParallelism is how many objects the repository reads at once
	// where it reads many (manifests, host records, actions, index
	// segments, images); 0 means what the store says suits it
	// (store.ReadParallelismOf).
	ReadParallelism int
	// CacheDir, when set, holds a local cache of the manifests and index
	// segments of each repository, in a folder named by its ID (cache.go);
	// CacheLimit bounds each, 0 meaning DefaultCacheLimit.
	CacheDir   string
	CacheLimit int64
	// MaxMemory bounds the memory the repository's structures take at
	// once: image indexes, the index of chunks, listings (budget.go); 0
	// means DefaultMaxMemory.
	MaxMemory int64
}

// openedRepo returns a Repo on st with the clock and machine of opts; sec,
// when not nil, are the keys of an encrypted repository.
func openedRepo(st store.Store, cfg Config, key [32]byte, sec *secrets, opts Options) *Repo {
	r := &Repo{st: damageStore{st}, raw: st, cfg: cfg, key: key, sec: sec, now: clock(opts.Now), after: opts.After, machine: opts.Machine,
		parallel: opts.ReadParallelism, mem: newMemBudget(opts.MaxMemory)}
	if r.parallel <= 0 {
		r.parallel = store.ReadParallelismOf(st)
	}
	if sec != nil {
		r.st = damageStore{cryptStore{Store: st, c: sec.cipher}}
		r.key = sec.sub.Chunk
	}
	if opts.CacheDir != "" && len(cfg.ID) == 32 && isLowerHex(cfg.ID) {
		limit := opts.CacheLimit
		if limit <= 0 {
			limit = DefaultCacheLimit
		}
		r.cache = &objectCache{dir: filepath.Join(opts.CacheDir, cfg.ID), limit: limit}
	}
	if r.after == nil {
		r.after = time.After
	}
	if r.machine == nil {
		r.machine = hostMachine{}
	}
	return r
}

// InitOptions are the settings of a new repository.
type InitOptions struct {
	ChunkSize int // 0 means DefaultChunkSize
	// Password, when not nil, makes an encrypted repository whose first
	// key opens with it; nil makes one that is not encrypted.
	Password []byte
	// KDF are the Argon2id parameters of the first key; zero means
	// key.DefaultParams.
	KDF key.Params
	// Cipher is the AEAD an encrypted repository seals with (a crypt
	// name); "" means crypt.Default.
	Cipher string
	Options
}

// CheckEncryption reports whether name is an encryption a new repository
// can be made with ("" for the default).
func CheckEncryption(name string) error {
	_, err := aeadOf(name)
	return err
}

// aeadOf returns the AEAD a new repository seals with, given the name
// asked for ("" for the default).
func aeadOf(name string) (string, error) {
	if name == "" {
		return crypt.Default, nil
	}
	if !crypt.Known(name) {
		return "", errorf(ErrInvalid, "unknown encryption %q: dropback seals with %s (the default) or %s",
			name, crypt.XAES256GCM, crypt.XChaCha20Poly1305)
	}
	return name, nil
}

// Init creates a repository in st. It fails with ErrInitialised if st holds
// one already.
func Init(ctx context.Context, st store.Store, opts InitOptions) (*Repo, error) {
	cs := opts.ChunkSize
	if cs == 0 {
		cs = DefaultChunkSize
	}
	if cs < MinChunkSize || cs > MaxChunkSize || cs%4096 != 0 {
		return nil, errorf(ErrInvalid, "chunk size %d: must be a multiple of 4096 from %d to %d",
			cs, MinChunkSize, MaxChunkSize)
	}
	aead, err := aeadOf(opts.Cipher)
	if err != nil {
		return nil, err
	}
	var key [32]byte
	var id [16]byte
	if _, err := rand.Read(key[:]); err != nil {
		return nil, err
	}
	if _, err := rand.Read(id[:]); err != nil {
		return nil, err
	}
	now := clock(opts.Now)
	cfg := Config{
		Format: FormatName, Version: FormatVersion, ID: hex.EncodeToString(id[:]),
		CreatedAt: now().UTC().Truncate(time.Second), ChunkSize: cs,
		ChunkHash: "blake3-keyed", ChunkKey: hex.EncodeToString(key[:]),
		Compression: "zstd", Encryption: EncryptionNone,
	}
	var sec *secrets
	if opts.Password != nil {
		cfg.ChunkKey, cfg.Encryption = "", aead
	}
	data, err := seal(cfg)
	if err != nil {
		return nil, err
	}
	if _, err := st.Stat(ctx, "config"); errors.Is(err, store.ErrNotFound) {
		// Key objects alone are what an init that died left: each is
		// bound to that init's repository ID, so none opens this one.
		if other, err := anyObject(ctx, st, "keys/"); err != nil || other != "" {
			if err != nil {
				return nil, fmt.Errorf("look for objects at %s: %w", st.Location(), err)
			}
			return nil, errorf(ErrInvalid, "%s is not empty (%s): a new repository goes in an empty place, and one whose config was lost needs that config back",
				st.Location(), other)
		}
		if opts.Password != nil {
			// The first key goes before the config, which makes the
			// repository.
			if sec, err = firstKey(ctx, st, cfg, opts); err != nil {
				return nil, err
			}
		}
	}
	if err := st.Put(ctx, "config", data); err != nil {
		if errors.Is(err, store.ErrExists) {
			return nil, fmt.Errorf("%w at %s", ErrInitialised, st.Location())
		}
		return nil, fmt.Errorf("write repository config: %w", err)
	}
	return openedRepo(st, cfg, key, sec, opts.Options), nil
}

// Open opens the repository in st.
func Open(ctx context.Context, st store.Store, opts Options) (*Repo, error) {
	data, err := readBounded(ctx, st, "config", "repository config", maxConfigSize, -1)
	if errors.Is(err, store.ErrNotFound) {
		return nil, noConfig(ctx, st)
	}
	if err != nil {
		return nil, fmt.Errorf("open the repository at %s: %w", st.Location(), err)
	}
	var cfg Config
	if err := unseal(data, &cfg); errors.Is(err, errNotSealed) {
		return nil, errorf(ErrFormat, "%s/config is not sealed: dropback seals every config it writes, so this one was written before records were sealed, or changed since; this dropback does not read it",
			st.Location())
	} else if err != nil {
		return nil, errorf(ErrFormat, "%s/config is damaged or not a dropback repository config", st.Location())
	}
	if cfg.Format != FormatName {
		return nil, errorf(ErrFormat, "%s is not a dropback repository (format %q)", st.Location(), cfg.Format)
	}
	if cfg.Version > FormatVersion {
		return nil, errorf(ErrFormat, "repository format version %d is newer than this dropback supports (%d); upgrade dropback",
			cfg.Version, FormatVersion)
	}
	encrypted := crypt.Known(cfg.Encryption) && cfg.Version >= 2
	if cfg.Version >= 2 && cfg.Encryption != EncryptionNone && !encrypted && cfg.Encryption != "" {
		return nil, errorf(ErrFormat, "%s is encrypted with %q, which this dropback does not know; upgrade dropback",
			st.Location(), cfg.Encryption)
	}
	if cfg.Version < 1 || cfg.ChunkSize < MinChunkSize || cfg.ChunkSize > MaxChunkSize ||
		(cfg.Encryption != EncryptionNone && !encrypted) || cfg.ChunkHash != "blake3-keyed" {
		return nil, fmt.Errorf("%w: %s/config has invalid settings", ErrCorrupt, st.Location())
	}
	if encrypted {
		if cfg.ChunkKey != "" {
			return nil, fmt.Errorf("%w: %s/config is encrypted but holds a chunk key", ErrCorrupt, st.Location())
		}
		sec, err := unlock(ctx, st, cfg, opts)
		if err != nil {
			return nil, err
		}
		return openedRepo(st, cfg, [32]byte{}, sec, opts), nil
	}
	if err := checkPlain(ctx, st, cfg); err != nil {
		return nil, err
	}
	key, err := hex.DecodeString(cfg.ChunkKey)
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("%w: %s/config has an invalid chunk key", ErrCorrupt, st.Location())
	}
	var k [32]byte
	copy(k[:], key)
	return openedRepo(st, cfg, k, nil, opts), nil
}

// IsRepository reports whether st holds a dropback repository's config:
// for `repo init`, which must not make a repository inside another. Only
// a config that reads as one is: an error reading it says nothing.
func IsRepository(ctx context.Context, st store.Store) bool {
	data, err := readBounded(ctx, st, "config", "repository config", maxConfigSize, -1)
	if err != nil {
		return false
	}
	var cfg Config
	return unseal(data, &cfg) == nil && cfg.Format == FormatName
}

// Encrypted reports whether the repository is encrypted.
func (r *Repo) Encrypted() bool { return r.sec != nil }

// Config returns the repository settings.
func (r *Repo) Config() Config { return r.cfg }

// Store returns the store the repository lives in, as it is: encrypted
// objects are not opened.
func (r *Repo) Store() store.Store { return r.raw }

// ChunkSize is the repository's chunk size in bytes.
func (r *Repo) ChunkSize() int { return r.cfg.ChunkSize }

// noConfig explains a store without a config: a repository whose config
// is lost (it holds objects only a repository has), some other place that
// is no repository, or an empty one that was never initialised.
func noConfig(ctx context.Context, st store.Store) error {
	if _, err := st.Stat(ctx, upgradeConfigName); err == nil {
		return errorf(ErrLocked, "%s is being upgraded to an encrypted repository, or an upgrade was cut short: run `dropback repo upgrade` to finish it", st.Location())
	}
	if obj, err := repoObject(ctx, st); err == nil && obj != "" {
		// `repo init` here would orphan every backup: say so instead.
		return errorf(ErrCorrupt, "%s has no config but holds repository objects (%s): the config is lost; put back a copy of it, and do not run `repo init` here",
			st.Location(), obj)
	}
	if other, err := anyObject(ctx, st, "keys/"); err == nil && other != "" {
		return errorf(ErrFormat, "%s is not a dropback repository: it has no config, and holds other files (%s)", st.Location(), other)
	}
	return fmt.Errorf("%w at %s", ErrNotInitialised, st.Location())
}

// repoObjects are the prefixes of objects only a repository holds, each
// with a test of the rest of a name.
var repoObjects = []struct {
	prefix string
	ok     func(rest string) bool
}{
	{"backups/", isDigits},
	{"hosts/", isRevision},
	{"index/", isHexID},
	{"images/", isHexID},
	{"packs/", func(rest string) bool { return len(rest) == 67 && rest[2] == '/' && isHexID(rest[3:]) }},
	{"snapshots/", isDigits},
	{"deleted/", isDigits},
	{"actions/", isRevision},
}

func isLowerHex(s string) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func isDigits(s string) bool { _, ok := parseDigits(s); return ok }

func isHexID(s string) bool { _, err := ParseID(s); return err == nil && len(s) == 64 }

func isRevision(s string) bool {
	id, rev, ok := strings.Cut(s, "/")
	return ok && isDigits(id) && isDigits(rev)
}

// repoObject returns the name of an object that only a repository holds,
// or "" when st has none.
func repoObject(ctx context.Context, st store.Store) (string, error) {
	found := ""
	stop := errors.New("found")
	for _, k := range repoObjects {
		err := st.List(ctx, k.prefix, func(info store.Info) error {
			if k.ok(strings.TrimPrefix(info.Name, k.prefix)) {
				found = info.Name
				return stop
			}
			return nil
		})
		if errors.Is(err, stop) {
			return found, nil
		}
		if err != nil {
			return "", err
		}
	}
	return "", nil
}

// anyObject returns the name of some object in st, but those under the
// prefixes except, or "" when st has none.
func anyObject(ctx context.Context, st store.Store, except ...string) (string, error) {
	found := ""
	stop := errors.New("found")
	err := st.List(ctx, "", func(info store.Info) error {
		for _, p := range except {
			if strings.HasPrefix(info.Name, p) {
				return nil
			}
		}
		found = info.Name
		return stop
	})
	if err != nil && !errors.Is(err, stop) {
		return "", err
	}
	return found, nil
}

func clock(now func() time.Time) func() time.Time {
	if now == nil {
		return time.Now
	}
	return now
}

// errorf formats an error that reads as its message alone and matches
// sentinel with errors.Is.
func errorf(sentinel error, format string, args ...any) error {
	return &sentinelError{msg: fmt.Sprintf(format, args...), sentinel: sentinel}
}

type sentinelError struct {
	msg      string
	sentinel error
}

func (e *sentinelError) Error() string { return e.msg }
func (e *sentinelError) Unwrap() error { return e.sentinel }

// Package local implements dropback's engine context on the embedded
// block-image engine: every capability of pkg/provider but those only
// DigitalOcean has (TagPolicies, SnapshotTaker, Account).
package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dropback/dropback/pkg/engine"
	"github.com/dropback/dropback/pkg/provider"
	"github.com/dropback/dropback/pkg/store"
	localstore "github.com/dropback/dropback/pkg/store/local"
	s3store "github.com/dropback/dropback/pkg/store/s3"
)

// Options configure the engine-backed provider.
type Options struct {
	// Repo is the repository: a path, or s3://bucket/prefix.
	Repo string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// After waits on the clock (nil: time.After), for tests whose clock
	// drives the heartbeats of operations.
	After func(time.Duration) <-chan time.Time
	// Store, when set, is the store the repository is in, and Repo only
	// names it: for tests whose store keeps a simulated time.
	Store store.Store
	// Password gives the password of an encrypted repository; it is
	// called only when the repository is encrypted, at most once.
	Password func(ctx context.Context) ([]byte, error)
	// CacheDir holds the local cache of immutable objects; "" for none.
	CacheDir string
}

// Provider drives the embedded engine.
type Provider struct {
	opts Options
	st   store.Store

	mu   sync.Mutex
	repo *engine.Repo
}

// The capabilities of the engine context.
var (
	_ provider.Provider     = (*Provider)(nil)
	_ provider.Hosts        = (*Provider)(nil)
	_ provider.HostRegistry = (*Provider)(nil)
	_ provider.Backups      = (*Provider)(nil)
	_ provider.BackupTaker  = (*Provider)(nil)
	_ provider.Verifier     = (*Provider)(nil)
	_ provider.Pruner       = (*Provider)(nil)
	_ provider.Policies     = (*Provider)(nil)
	_ provider.BackupKeeper = (*Provider)(nil)
	_ provider.Snapshots    = (*Provider)(nil)
	_ provider.Actions      = (*Provider)(nil)
	_ provider.ActionPager  = (*Provider)(nil)
	_ provider.Repository   = (*Provider)(nil)
	_ provider.Scheduler    = (*Provider)(nil)
	_ provider.KeyManager   = (*Provider)(nil)
	_ provider.Upgrader     = (*Provider)(nil)
)

// New returns a provider for the repository in opts. It does not touch the
// repository: a missing one is reported by the first verb that needs it, so
// that `repo init` can create it.
func New(ctx context.Context, opts Options) (*Provider, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	st := opts.Store
	if st == nil {
		var err error
		if st, err = openStore(ctx, opts.Repo); err != nil {
			return nil, err
		}
	}
	return &Provider{opts: opts, st: st}, nil
}

// ---- S3 repositories -------------------------------------------------------

// singleWriterEnv lifts the need for conditional writes on an S3 server
// that ignores them, for a user who vouches that one dropback writes at a
// time.
const singleWriterEnv = "DROPBACK_S3_SINGLE_WRITER"

// openStore opens the repository's store: s3://bucket/prefix, with the
// endpoint and credentials of the AWS_* variables, or a local path. Any
// verb may write and other hosts may write at the same time, so an S3
// server must honour conditional writes unless singleWriterEnv is 1.
func openStore(ctx context.Context, repo string) (store.Store, error) {
	if repo == "" {
		return nil, fmt.Errorf("%w: no repository given", provider.ErrInvalid)
	}
	if strings.HasPrefix(repo, "s3://") {
		st, err := s3store.Open(ctx, repo, s3store.Options{RequireConditional: os.Getenv(singleWriterEnv) != "1"})
		switch {
		case err == nil:
			return st, nil
		case errors.Is(err, s3store.ErrAccessDenied) || errors.Is(err, s3store.ErrNoCredentials):
			return nil, wrapAs(err, provider.ErrAuth)
		case errors.Is(err, s3store.ErrInvalidURL) || errors.Is(err, s3store.ErrInvalidSetting):
			return nil, wrapAs(err, provider.ErrInvalid)
		case errors.Is(err, s3store.ErrUnconditional):
			return nil, fmt.Errorf("%w; set %s=1 only if a single dropback ever writes to this repository at a time", err, singleWriterEnv)
		}
		return nil, err
	}
	if strings.Contains(repo, "://") {
		return nil, fmt.Errorf("%w: repository %s: only local paths and s3://bucket/prefix are supported", provider.ErrInvalid, repo)
	}
	st, err := localstore.Open(repo)
	if err != nil {
		return nil, fmt.Errorf("%w: repository %s: %v", provider.ErrInvalid, repo, err)
	}
	return st, nil
}

// createBucket creates the bucket of an S3 repository, for
// `repo init --create-bucket`.
func (p *Provider) createBucket(ctx context.Context, create bool) error {
	if !create {
		return nil
	}
	st, ok := p.st.(*s3store.Store)
	if !ok {
		return fmt.Errorf("%w: --create-bucket needs an s3://bucket/prefix repository, not %s", provider.ErrInvalid, p.st.Location())
	}
	if err := st.CreateBucket(ctx); err != nil {
		if errors.Is(err, s3store.ErrAccessDenied) {
			return wrapAs(err, provider.ErrAuth)
		}
		return err
	}
	return nil
}

// ---- end of S3 repositories -----------------------------------------------

// Context implements provider.Provider.
func (p *Provider) Context() string { return provider.ContextLocal }

// open returns the opened repository, opening it on first use.
func (p *Provider) open(ctx context.Context) (*engine.Repo, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.repo != nil {
		return p.repo, nil
	}
	opts, err := p.engineOptions()
	if err != nil {
		return nil, err
	}
	r, err := engine.Open(ctx, p.st, opts)
	if err != nil {
		return nil, mapErr(err)
	}
	p.repo = r
	return r, nil
}

// engineOptions are the settings every command opens, makes or upgrades a
// repository with: the provider's clock and password, and the environment's
// parallelism and memory budget.
func (p *Provider) engineOptions() (engine.Options, error) {
	par, err := readParallelism(os.Getenv)
	if err != nil {
		return engine.Options{}, err
	}
	mem, err := maxMemory(os.Getenv)
	if err != nil {
		return engine.Options{}, err
	}
	return engine.Options{Now: p.opts.Now, After: p.opts.After, Password: p.opts.Password,
		ReadParallelism: par, CacheDir: p.opts.CacheDir, MaxMemory: mem}, nil
}

// readParallelismEnv sets how many objects a command reads at once where
// it reads many; unset, the store decides (8 on a filesystem, 32 on S3).
const readParallelismEnv = "DROPBACK_READ_PARALLELISM"

func readParallelism(getenv func(string) string) (int, error) {
	v := getenv(readParallelismEnv)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1024 {
		return 0, fmt.Errorf("%w: %s=%q: give a number of reads from 1 to 1024", provider.ErrInvalid, readParallelismEnv, v)
	}
	return n, nil
}

// MaxMemoryEnv bounds the memory a command takes in proportion to the
// repository (engine.Options.MaxMemory): image indexes, the index, the
// listings. Unset, a quarter of the machine's memory, from 256 MiB to 2 GiB.
const MaxMemoryEnv = "DROPBACK_MAX_MEMORY"

func maxMemory(getenv func(string) string) (int64, error) {
	v := getenv(MaxMemoryEnv)
	if v == "" {
		return 0, nil
	}
	n, err := engine.ParseMemory(v)
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %v", provider.ErrInvalid, MaxMemoryEnv, err)
	}
	return n, nil
}

// mapErr translates engine errors into provider sentinels, keeping the
// message.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	var target error
	var mem *engine.MemoryError
	switch {
	case errors.As(err, &mem):
		return fmt.Errorf("%w; to allow it, set %s above %s", err, MaxMemoryEnv, engine.MemText(mem.Need+mem.Held))
	case errors.Is(err, engine.ErrNotInitialised):
		return fmt.Errorf("%w; create one with `dropback repo init`", wrapAs(err, provider.ErrNoRepo))
	case errors.Is(err, engine.ErrInvalid):
		target = provider.ErrInvalid
	case errors.Is(err, engine.ErrNotFound):
		target = provider.ErrNotFound
	case errors.Is(err, engine.ErrCorrupt):
		target = provider.ErrCorrupt
	case errors.Is(err, engine.ErrFormat):
		target = provider.ErrFormat
	case errors.Is(err, engine.ErrLocked):
		target = provider.ErrLocked
	case errors.Is(err, engine.ErrInUse):
		target = provider.ErrInUse
	case errors.Is(err, engine.ErrInitialised):
		target = provider.ErrExists
	case errors.Is(err, engine.ErrPassword):
		target = provider.ErrPassword
	case errors.Is(err, s3store.ErrAccessDenied) || errors.Is(err, s3store.ErrNoCredentials):
		target = provider.ErrAuth
	case errors.Is(err, s3store.ErrNoBucket):
		target = provider.ErrNoRepo
	case errors.Is(err, s3store.ErrUnconditional):
		return fmt.Errorf("%w; set %s=1 only if a single dropback ever writes to this repository at a time", err, singleWriterEnv)
	default:
		return err
	}
	return wrapAs(err, target)
}

// wrapAs keeps err's message and makes errors.Is match both err and target.
func wrapAs(err, target error) error { return provider.Errorf(target, "%w", err) }

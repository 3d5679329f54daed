// Package local implements provider.Provider on dropback's embedded
// block-image engine.
package local

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/dropback/dropback/pkg/engine"
	"github.com/dropback/dropback/pkg/provider"
	"github.com/dropback/dropback/pkg/store"
	localstore "github.com/dropback/dropback/pkg/store/local"
)

// Options configure the engine-backed provider.
type Options struct {
	// Repo is the repository: a path, or s3://bucket/prefix.
	Repo string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Provider drives the embedded engine.
type Provider struct {
	opts Options
	st   store.Store

	mu   sync.Mutex
	repo *engine.Repo
}

var _ provider.Provider = (*Provider)(nil)

// New returns a provider for the repository in opts. It does not touch the
// repository: a missing one is reported by the first verb that needs it, so
// that `repo init` can create it.
func New(ctx context.Context, opts Options) (*Provider, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	st, err := openStore(opts.Repo)
	if err != nil {
		return nil, err
	}
	return &Provider{opts: opts, st: st}, nil
}

func openStore(repo string) (store.Store, error) {
	if repo == "" {
		return nil, provider.Errorf(provider.ErrInvalid, "no repository given")
	}
	if strings.Contains(repo, "://") {
		return nil, provider.Errorf(provider.ErrInvalid, "repository %s: only local paths are supported", repo)
	}
	st, err := localstore.Open(repo)
	if err != nil {
		return nil, provider.Errorf(provider.ErrInvalid, "repository %s: %v", repo, err)
	}
	return st, nil
}

// Context implements provider.Provider.
func (p *Provider) Context() string { return provider.ContextLocal }

// open returns the opened repository, opening it on first use.
func (p *Provider) open(ctx context.Context) (*engine.Repo, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.repo != nil {
		return p.repo, nil
	}
	r, err := engine.Open(ctx, p.st, engine.Options{Now: p.opts.Now})
	if err != nil {
		return nil, mapErr(err)
	}
	p.repo = r
	return r, nil
}

// mapErr translates engine errors into provider sentinels, keeping the
// message.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	var target error
	switch {
	case errors.Is(err, engine.ErrNotInitialised):
		return fmt.Errorf("%w; create one with `dropback repo init`", wrapAs(err, provider.ErrNoRepo))
	case errors.Is(err, engine.ErrInvalid):
		target = provider.ErrInvalid
	case errors.Is(err, engine.ErrNotFound):
		target = provider.ErrNotFound
	case errors.Is(err, engine.ErrCorrupt):
		target = provider.ErrCorrupt
	case errors.Is(err, engine.ErrFormat):
		target = provider.ErrInvalid
	case errors.Is(err, engine.ErrInitialised):
		target = provider.ErrExists
	default:
		return err
	}
	return wrapAs(err, target)
}

// wrapAs keeps err's message and makes errors.Is match both err and target.
func wrapAs(err, target error) error { return &sentinelError{err: err, target: target} }

type sentinelError struct{ err, target error }

func (e *sentinelError) Error() string   { return e.err.Error() }
func (e *sentinelError) Unwrap() []error { return []error{e.err, e.target} }

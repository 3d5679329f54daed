// Package local implements provider.Provider on dropback's embedded
// block-image engine.
package local

import (
	"context"
	"errors"
	"time"

	"github.com/dropback/dropback/pkg/provider"
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
}

// New returns a provider for the repository in opts. It does not touch the
// repository: a missing one is reported by the first verb that needs it, so
// that `repo init` can create it.
func New(ctx context.Context, opts Options) (*Provider, error) {
	return nil, errors.New("local provider: not built yet")
}

var _ = provider.ContextLocal

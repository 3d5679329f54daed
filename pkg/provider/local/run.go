package local

import (
	"context"
	"errors"

	"github.com/dropback/dropback/pkg/provider"
)

// GC implements provider.Provider.
func (p *Provider) GC(ctx context.Context, opts provider.GCOptions) (*provider.GCResult, error) {
	return nil, errors.New("repo gc: not available yet")
}

// RunDue implements provider.Provider.
func (p *Provider) RunDue(ctx context.Context, opts provider.RunOptions) (*provider.RunReport, error) {
	return nil, errors.New("run --due: not available yet")
}

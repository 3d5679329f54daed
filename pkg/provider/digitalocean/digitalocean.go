// Package digitalocean implements provider.Provider on the DigitalOcean API
// through godo.
package digitalocean

import (
	"context"
	"errors"
	"io"
	"net/http"
)

// Options configure the DigitalOcean provider.
type Options struct {
	Context   string // context name, for messages
	Token     string
	APIURL    string // "" means https://api.digitalocean.com/
	UserAgent string
	// Trace, when set, receives every request and response with the token
	// redacted.
	Trace      io.Writer
	HTTPClient *http.Client
}

// Provider drives DigitalOcean Droplet Backups.
type Provider struct {
	opts Options
}

// New returns a provider for the account in opts.
func New(ctx context.Context, opts Options) (*Provider, error) {
	return nil, errors.New("digitalocean provider: not built yet")
}

package root

import (
	"errors"

	"github.com/dropback/dropback/commands/cmdutil"
	"github.com/dropback/dropback/pkg/provider"
)

// withContextHint adds to err, when the local context found no repository
// but a DigitalOcean token is at hand, how to select the DigitalOcean
// context: that is most likely what was meant.
func withContextHint(f *cmdutil.Factory, err error) error {
	if !errors.Is(err, provider.ErrNoRepo) {
		return err
	}
	name, cerr := f.Context()
	if cerr != nil || name != provider.ContextLocal {
		return err
	}
	if !f.HasDigitalOceanToken() {
		return err
	}
	return &hinted{err: err, hint: "a DigitalOcean token is set: for Droplet backups, pass --context " +
		provider.ContextDigitalOcean + " (or make it the current context with `dropback auth switch " + provider.ContextDigitalOcean + "`)"}
}

// hinted is err with a hint after its message.
type hinted struct {
	err  error
	hint string
}

func (h *hinted) Error() string { return h.err.Error() + "; " + h.hint }
func (h *hinted) Unwrap() error { return h.err }

package fakeprovider

import (
	"context"

	"github.com/dropback/dropback/pkg/provider"
)

// DigitalOcean returns f as a DigitalOcean context named name: it has the
// capabilities DigitalOcean has and none of the engine's, and every call
// goes to f.
func (f *Fake) DigitalOcean(name string) provider.Provider {
	f.Name = name
	return &cloud{Provider: f, Hosts: f, Backups: f, Policies: f, Snapshots: f, Actions: f}
}

// cloud is a Fake seen as a DigitalOcean context.
type cloud struct {
	provider.Provider
	provider.Hosts
	provider.Backups
	provider.Policies
	provider.Snapshots
	provider.Actions
}

// CheckAccount answers for the account dev@example.com, or fails as
// Errs["CheckAccount"] says.
func (c *cloud) CheckAccount(ctx context.Context) (string, error) {
	f := c.Provider.(*Fake)
	if err := f.call("CheckAccount", ""); err != nil {
		return "", err
	}
	return "dev@example.com", nil
}

var (
	_ provider.Account   = (*cloud)(nil)
	_ provider.Hosts     = (*cloud)(nil)
	_ provider.Backups   = (*cloud)(nil)
	_ provider.Policies  = (*cloud)(nil)
	_ provider.Snapshots = (*cloud)(nil)
	_ provider.Actions   = (*cloud)(nil)
)

package fakeprovider

import "github.com/dropback/dropback/pkg/provider"

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

var (
	_ provider.Hosts     = (*cloud)(nil)
	_ provider.Backups   = (*cloud)(nil)
	_ provider.Policies  = (*cloud)(nil)
	_ provider.Snapshots = (*cloud)(nil)
	_ provider.Actions   = (*cloud)(nil)
)

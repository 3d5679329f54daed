package fakeprovider

import (
	"context"
	"fmt"

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
	_ provider.Account       = (*cloud)(nil)
	_ provider.SnapshotTaker = (*cloud)(nil)
	_ provider.TagPolicies   = (*cloud)(nil)
	_ provider.Hosts         = (*cloud)(nil)
	_ provider.Backups       = (*cloud)(nil)
	_ provider.Policies      = (*cloud)(nil)
	_ provider.Snapshots     = (*cloud)(nil)
	_ provider.Actions       = (*cloud)(nil)
)

// TakeSnapshot snapshots a host: a snapshot at once, and its action.
func (c *cloud) TakeSnapshot(ctx context.Context, host, name string) (*provider.Action, error) {
	f := c.Provider.(*Fake)
	if err := f.call("TakeSnapshot", "%s %s", host, name); err != nil {
		return nil, err
	}
	h, err := f.host(host)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	f.Backups = append(f.Backups, provider.Backup{ID: f.nextID, Name: name, Type: provider.TypeSnapshot, Status: "available",
		CreatedAt: Epoch, HostID: h.ID, HostName: h.Name})
	return f.newAction("snapshot", "droplet", h.ID), nil
}

// EnableBackupsByTag enables backups of the hosts named by tag (the fake's
// hosts have no tags: "all" is every host).
func (c *cloud) EnableBackupsByTag(ctx context.Context, tag string) ([]provider.Action, error) {
	return c.byTag("EnableBackupsByTag", tag, provider.DisableOptions{DeleteBackups: true}, true)
}

// DisableBackupsByTag disables backups of the hosts named by tag; hosts
// with backups need opts.DeleteBackups.
func (c *cloud) DisableBackupsByTag(ctx context.Context, tag string, opts provider.DisableOptions) ([]provider.Action, error) {
	return c.byTag("DisableBackupsByTag", tag, opts, false)
}

func (c *cloud) byTag(name, tag string, opts provider.DisableOptions, enable bool) ([]provider.Action, error) {
	f := c.Provider.(*Fake)
	if err := f.call(name, "%s delete=%v", tag, opts.DeleteBackups); err != nil {
		return nil, err
	}
	if tag != "all" {
		return nil, fmt.Errorf("tag %s: %w: no Droplet has it", tag, provider.ErrNotFound)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !enable && !opts.DeleteBackups && len(f.Backups) > 0 {
		return nil, fmt.Errorf("%w: the tagged Droplets have backups; pass --force", provider.ErrConfirm)
	}
	var out []provider.Action
	for i := range f.Hosts {
		f.Hosts[i].BackupEnabled = enable
		typ := "disable_backups"
		if enable {
			typ = "enable_backups"
		}
		out = append(out, *f.newAction(typ, "droplet", f.Hosts[i].ID))
	}
	return out, nil
}

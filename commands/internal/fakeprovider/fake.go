// Package fakeprovider is an in-memory context for command tests. It is a
// test double for the command wiring, not a model of either real provider:
// it keeps hosts, backups, snapshots and actions in slices, records what
// commands asked for, and can be told to fail or to keep actions in
// progress. A Fake has the engine's capabilities; DigitalOcean returns a
// view of it with DigitalOcean's.
package fakeprovider

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/dropback/dropback/pkg/provider"
)

// Epoch is the fake's clock: every time it reports derives from it.
var Epoch = time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)

// Fake is the in-memory provider. Set its fields before use; read the
// recorded fields after.
type Fake struct {
	mu sync.Mutex

	Name      string
	Hosts     []provider.Host
	Backups   []provider.Backup // backups and snapshots, by Type
	Actions   []provider.Action
	Supported []provider.SupportedPolicy
	Stats     provider.RepoStats
	Verify    *provider.VerifyReport // nil: every backup checked is ok
	RunReport provider.RunReport

	// ActionPolls is how many GetAction calls an action of an asynchronous
	// verb stays in progress: 0 completes it at once, a negative value never.
	ActionPolls int
	// ActionError makes asynchronous actions end errored with this message.
	ActionError string
	// Existing names the paths a restore --to finds taken.
	Existing map[string]bool
	// Errs makes the named method (e.g. "ListHosts") fail with the error.
	Errs map[string]error
	// OnCall, if set, is called with the method's name after each call is
	// recorded, without the lock: a test ends a loop after so many calls.
	OnCall func(name string)

	// Recorded calls.
	Calls       []string
	LastRestore *provider.RestoreRequest
	LastPolicy  *provider.PolicyRequest
	LastDisable *provider.DisableOptions
	Polls       int

	polls  map[int]int
	nextID int
}

// The capabilities of a Fake: the engine's.
var (
	_ provider.Provider       = (*Fake)(nil)
	_ provider.Hosts          = (*Fake)(nil)
	_ provider.HostRegistry   = (*Fake)(nil)
	_ provider.Backups        = (*Fake)(nil)
	_ provider.BackupTaker    = (*Fake)(nil)
	_ provider.Verifier       = (*Fake)(nil)
	_ provider.Pruner         = (*Fake)(nil)
	_ provider.Policies       = (*Fake)(nil)
	_ provider.BackupKeeper   = (*Fake)(nil)
	_ provider.Snapshots      = (*Fake)(nil)
	_ provider.Actions        = (*Fake)(nil)
	_ provider.Repository     = (*Fake)(nil)
	_ provider.Scheduler      = (*Fake)(nil)
	_ provider.RestorePlanner = (*Fake)(nil)
	_ provider.BackupDeleter  = (*Fake)(nil)
)

// New returns a fake with two hosts, three backups, a snapshot and some
// actions.
func New() *Fake {
	f := Empty()
	f.Hosts = sampleHosts()
	f.Backups = sampleBackups()
	f.Actions = sampleActions()
	f.Stats = sampleStats()
	return f
}

// Empty returns a fake with nothing in it but the supported plans.
func Empty() *Fake {
	return &Fake{
		Name:      provider.ContextLocal,
		Supported: sampleSupported(),
		Stats:     provider.RepoStats{Location: "/repo", FormatVersion: 2, Encryption: "xaes-256-gcm", ChunkSize: 1 << 20},
		polls:     map[int]int{},
		nextID:    5000,
	}
}

// Context is the context name.
func (f *Fake) Context() string { return f.Name }

func (f *Fake) call(name, format string, args ...any) error {
	f.mu.Lock()
	f.Calls = append(f.Calls, name+" "+fmt.Sprintf(format, args...))
	err, onCall := f.Errs[name], f.OnCall
	f.mu.Unlock()
	if onCall != nil {
		onCall(name)
	}
	return err
}

// host finds a host by name or ID. Callers hold no lock.
func (f *Fake) host(ref string) (*provider.Host, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id, idErr := strconv.Atoi(ref)
	var found []*provider.Host
	for i := range f.Hosts {
		h := &f.Hosts[i]
		if (idErr == nil && h.ID == id) || h.Name == ref {
			found = append(found, h)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("host %s: %w", ref, provider.ErrNotFound)
	case 1:
		return found[0], nil
	}
	return nil, fmt.Errorf("host %s matches %d hosts: %w", ref, len(found), provider.ErrAmbiguous)
}

// ListHosts lists hosts.
func (f *Fake) ListHosts(ctx context.Context) ([]provider.Host, error) {
	if err := f.call("ListHosts", ""); err != nil {
		return nil, err
	}
	return append([]provider.Host(nil), f.Hosts...), nil
}

// GetHost finds a host.
func (f *Fake) GetHost(ctx context.Context, host string) (*provider.Host, error) {
	if err := f.call("GetHost", "%s", host); err != nil {
		return nil, err
	}
	h, err := f.host(host)
	if err != nil {
		return nil, err
	}
	c := *h
	return &c, nil
}

// AddHost registers a host; each disk gets 1 GiB.
func (f *Fake) AddHost(ctx context.Context, spec provider.HostSpec) (*provider.Host, error) {
	if err := f.call("AddHost", "%s %v", spec.Name, spec.Disks); err != nil {
		return nil, err
	}
	if _, err := f.host(spec.Name); err == nil {
		return nil, fmt.Errorf("host %s: %w", spec.Name, provider.ErrExists)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	h := provider.Host{ID: len(f.Hosts) + 1, Name: spec.Name, Status: "active", CreatedAt: Epoch, Disks: []provider.Disk{}}
	for i, d := range spec.Disks {
		h.Disks = append(h.Disks, provider.Disk{Name: fmt.Sprintf("disk%d", i), Path: d, SizeBytes: provider.Bytes(1 << 30)})
	}
	f.Hosts = append(f.Hosts, h)
	return &h, nil
}

// RemoveHost unregisters a host.
func (f *Fake) RemoveHost(ctx context.Context, host string, opts provider.DisableOptions) error {
	if err := f.call("RemoveHost", "%s keep=%v delete=%v", host, opts.KeepBackups, opts.DeleteBackups); err != nil {
		return err
	}
	h, err := f.host(host)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.LastDisable = &opts
	for i := range f.Hosts {
		if f.Hosts[i].ID == h.ID {
			f.Hosts = append(f.Hosts[:i], f.Hosts[i+1:]...)
			break
		}
	}
	return nil
}

func (f *Fake) images(typ, host string) ([]provider.Backup, error) {
	var hostID int
	if host != "" {
		h, err := f.host(host)
		if err != nil {
			return nil, err
		}
		hostID = h.ID
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []provider.Backup{}
	for _, b := range f.Backups {
		if b.Type == typ && (hostID == 0 || b.HostID == hostID) {
			out = append(out, b)
		}
	}
	return out, nil
}

// ListBackups lists backups.
func (f *Fake) ListBackups(ctx context.Context, host string) ([]provider.Backup, error) {
	if err := f.call("ListBackups", "%s", host); err != nil {
		return nil, err
	}
	return f.images(provider.TypeBackup, host)
}

// ListSnapshots lists snapshots.
func (f *Fake) ListSnapshots(ctx context.Context, host string) ([]provider.Backup, error) {
	if err := f.call("ListSnapshots", "%s", host); err != nil {
		return nil, err
	}
	return f.images(provider.TypeSnapshot, host)
}

// GetBackup finds a backup or snapshot.
func (f *Fake) GetBackup(ctx context.Context, id int) (*provider.Backup, error) {
	if err := f.call("GetBackup", "%d", id); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range f.Backups {
		if b.ID == id {
			return &b, nil
		}
	}
	return nil, fmt.Errorf("backup %d: %w", id, provider.ErrNotFound)
}

// FindBackup resolves a host's backup ID or latest (its newest backup or
// snapshot), or a bare ID.
func (f *Fake) FindBackup(ctx context.Context, host, ref string) (*provider.Backup, error) {
	if err := f.call("FindBackup", "%s %s", host, ref); err != nil {
		return nil, err
	}
	if host == "" {
		id, err := strconv.Atoi(ref)
		if err != nil {
			return nil, fmt.Errorf("backup %q: %w", ref, provider.ErrInvalid)
		}
		return f.backup(id)
	}
	h, err := f.host(host)
	if err != nil {
		return nil, err
	}
	if ref == "latest" {
		f.mu.Lock()
		defer f.mu.Unlock()
		var newest *provider.Backup
		for i := range f.Backups {
			if b := &f.Backups[i]; b.HostID == h.ID && (newest == nil || b.CreatedAt.After(newest.CreatedAt)) {
				newest = b
			}
		}
		if newest == nil {
			return nil, fmt.Errorf("host %s has no backups: %w", h.Name, provider.ErrNotFound)
		}
		c := *newest
		return &c, nil
	}
	id, err := strconv.Atoi(ref)
	if err != nil {
		return nil, fmt.Errorf("backup %q: %w", ref, provider.ErrInvalid)
	}
	b, err := f.backup(id)
	if err != nil {
		return nil, err
	}
	if b.HostID != h.ID {
		return nil, fmt.Errorf("backup %d is of host %s, not of host %s: %w", id, b.HostName, h.Name, provider.ErrInvalid)
	}
	return b, nil
}

func (f *Fake) backup(id int) (*provider.Backup, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range f.Backups {
		if b.ID == id {
			return &b, nil
		}
	}
	return nil, fmt.Errorf("backup %d: %w", id, provider.ErrNotFound)
}

// DeleteSnapshot deletes a snapshot.
func (f *Fake) DeleteSnapshot(ctx context.Context, id int) error {
	if err := f.call("DeleteSnapshot", "%d", id); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, b := range f.Backups {
		if b.ID == id && b.Type == provider.TypeSnapshot {
			f.Backups = append(f.Backups[:i], f.Backups[i+1:]...)
			return nil
		}
	}
	return fmt.Errorf("snapshot %d: %w", id, provider.ErrNotFound)
}

package fakeprovider

import (
	"context"
	"fmt"

	"github.com/dropback/dropback/pkg/provider"
)

func (f *Fake) policyCall(name, host string, req *provider.PolicyRequest) (*provider.Host, error) {
	if err := f.call(name, "%s %s", host, describe(req)); err != nil {
		return nil, err
	}
	h, err := f.host(host)
	if err != nil {
		return nil, err
	}
	if req != nil && req.Hour != nil && *req.Hour%4 != 0 {
		return nil, fmt.Errorf("hour %d: %w: valid hours are 0, 4, 8, 12, 16, 20", *req.Hour, provider.ErrInvalid)
	}
	return h, nil
}

func describe(req *provider.PolicyRequest) string {
	if req == nil {
		return ""
	}
	s := ""
	if req.Plan != nil {
		s += " plan=" + *req.Plan
	}
	if req.Weekday != nil {
		s += " weekday=" + *req.Weekday
	}
	if req.Hour != nil {
		s += fmt.Sprintf(" hour=%d", *req.Hour)
	}
	if req.RetentionDays != nil {
		s += fmt.Sprintf(" retention=%d", *req.RetentionDays)
	}
	return s
}

// EnableBackups turns on backups of a host.
func (f *Fake) EnableBackups(ctx context.Context, host string, req provider.PolicyRequest) (*provider.Action, error) {
	h, err := f.policyCall("EnableBackups", host, &req)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.LastPolicy = &req
	h.BackupEnabled = true
	return f.newAction("enable_backups", "host", h.ID), nil
}

// DisableBackups turns off backups of a host.
func (f *Fake) DisableBackups(ctx context.Context, host string, opts provider.DisableOptions) (*provider.Action, error) {
	h, err := f.policyCall("DisableBackups", host, nil)
	if err != nil {
		return nil, err
	}
	if !opts.KeepBackups && !opts.DeleteBackups {
		return nil, fmt.Errorf("disable backups: %w", provider.ErrConfirm)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.LastDisable = &opts
	h.BackupEnabled = false
	return f.newAction("disable_backups", "host", h.ID), nil
}

// DisableKeepingBackups turns off backups of a host and keeps them.
func (f *Fake) DisableKeepingBackups(ctx context.Context, host string) (*provider.Action, error) {
	return f.DisableBackups(ctx, host, provider.DisableOptions{KeepBackups: true})
}

// SetPolicy changes a host's policy.
func (f *Fake) SetPolicy(ctx context.Context, host string, req provider.PolicyRequest) (*provider.Action, error) {
	h, err := f.policyCall("SetPolicy", host, &req)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.LastPolicy = &req
	return f.newAction("change_backup_policy", "host", h.ID), nil
}

func hostPolicy(h provider.Host) provider.HostPolicy {
	return provider.HostPolicy{HostID: h.ID, HostName: h.Name, BackupEnabled: h.BackupEnabled,
		BackupPolicy: h.BackupPolicy, NextBackupWindow: h.NextBackupWindow}
}

// GetPolicy returns a host's policy.
func (f *Fake) GetPolicy(ctx context.Context, host string) (*provider.HostPolicy, error) {
	h, err := f.policyCall("GetPolicy", host, nil)
	if err != nil {
		return nil, err
	}
	p := hostPolicy(*h)
	return &p, nil
}

// ListPolicies returns every host's policy.
func (f *Fake) ListPolicies(ctx context.Context) ([]provider.HostPolicy, error) {
	if err := f.call("ListPolicies", ""); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []provider.HostPolicy{}
	for _, h := range f.Hosts {
		out = append(out, hostPolicy(h))
	}
	return out, nil
}

// SupportedPolicies returns the plans on offer.
func (f *Fake) SupportedPolicies(ctx context.Context) ([]provider.SupportedPolicy, error) {
	if err := f.call("SupportedPolicies", ""); err != nil {
		return nil, err
	}
	return f.Supported, nil
}

// ConvertBackup turns a backup into a snapshot.
func (f *Fake) ConvertBackup(ctx context.Context, id int) (*provider.Action, error) {
	if err := f.call("ConvertBackup", "%d", id); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.Backups {
		if f.Backups[i].ID == id {
			f.Backups[i].Type = provider.TypeSnapshot
			return f.newAction("convert", "backup", id), nil
		}
	}
	return nil, fmt.Errorf("backup %d: %w", id, provider.ErrNotFound)
}

// InitRepo initialises the repository.
func (f *Fake) InitRepo(ctx context.Context, opts provider.RepoInitOptions) (*provider.RepoStats, error) {
	if err := f.call("InitRepo", "chunk=%d", opts.ChunkSize); err != nil {
		return nil, err
	}
	s := provider.RepoStats{Location: f.Stats.Location, FormatVersion: 2, Encryption: "none", ChunkSize: 1 << 20}
	if opts.Password != nil {
		s.Encryption = "xaes-256-gcm"
	}
	if opts.ChunkSize > 0 {
		s.ChunkSize = opts.ChunkSize
	}
	return &s, nil
}

// RepoStats returns Stats.
func (f *Fake) RepoStats(ctx context.Context) (*provider.RepoStats, error) {
	if err := f.call("RepoStats", ""); err != nil {
		return nil, err
	}
	s := f.Stats
	return &s, nil
}

// PruneBackups returns the oldest backup of the host as pruned.
func (f *Fake) PruneBackups(ctx context.Context, host string, opts provider.PruneOptions) ([]provider.Backup, error) {
	if err := f.call("PruneBackups", "host=%s daily=%d weekly=%d dry=%v", host, opts.KeepDaily, opts.KeepWeekly, opts.DryRun); err != nil {
		return nil, err
	}
	bs, err := f.ListBackups(ctx, host)
	if err != nil || len(bs) == 0 {
		return []provider.Backup{}, err
	}
	return bs[:1], nil
}

// GC pretends to collect garbage.
func (f *Fake) GC(ctx context.Context, opts provider.GCOptions) (*provider.GCResult, error) {
	if err := f.call("GC", "grace=%s", opts.Grace); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.newAction("gc", "repository", 0)
	return &provider.GCResult{Action: *a, DeletedPacks: 3, RewrittenPacks: 1, ReclaimedBytes: 96 << 20}, nil
}

// RunDue returns RunReport, or stops at once when ctx is done.
func (f *Fake) RunDue(ctx context.Context, opts provider.RunOptions) (*provider.RunReport, error) {
	if err := f.call("RunDue", ""); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r := f.RunReport
	return &r, nil
}

package local

import (
	"context"
	"fmt"
	"time"

	"github.com/dropback/dropback/pkg/engine"
	"github.com/dropback/dropback/pkg/provider"
	"github.com/dropback/dropback/pkg/schedule"
)

// GC implements provider.Provider.
func (p *Provider) GC(ctx context.Context, opts provider.GCOptions) (*provider.GCResult, error) {
	r, err := p.open(ctx)
	if err != nil {
		return nil, err
	}
	return p.gc(ctx, r, opts)
}

func (p *Provider) gc(ctx context.Context, r *engine.Repo, opts provider.GCOptions) (*provider.GCResult, error) {
	act, err := r.StartAction(ctx, "gc", "repository", 0)
	if err != nil {
		return nil, mapErr(err)
	}
	res, err := r.GC(ctx, engine.GCOptions{Grace: opts.Grace})
	_ = r.FinishAction(context.WithoutCancel(ctx), act, 0, err)
	if err != nil {
		return nil, fmt.Errorf("repo gc: %w", mapErr(err))
	}
	return &provider.GCResult{Action: actionView(*act), DeletedPacks: res.DeletedPacks,
		RewrittenPacks: res.RewrittenPacks, ReclaimedBytes: res.ReclaimedBytes}, nil
}

// RunDue implements provider.Provider: one pass of the schedule. It backs up
// every enabled host whose window is due, applies retention, and collects
// garbage when retention deleted something. A host that fails is reported in
// the report and does not stop the others.
func (p *Provider) RunDue(ctx context.Context, opts provider.RunOptions) (*provider.RunReport, error) {
	r, hosts, err := p.hosts(ctx)
	if err != nil {
		return nil, err
	}
	all, err := r.Manifests(ctx)
	if err != nil {
		return nil, mapErr(err)
	}
	rep := &provider.RunReport{Backups: []provider.Backup{}, Expired: []int{}, Errors: []string{}}
	for _, h := range hosts {
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
		if !h.BackupEnabled || h.Policy == nil {
			continue
		}
		if err := p.runHost(ctx, r, h, all, opts, rep); err != nil {
			rep.Errors = append(rep.Errors, err.Error())
		}
	}
	if len(rep.Expired) > 0 {
		res, err := p.gc(ctx, r, provider.GCOptions{})
		if err != nil {
			rep.Errors = append(rep.Errors, err.Error())
		}
		rep.GC = res
	}
	if err := r.PruneClaims(ctx, p.opts.Now().Add(-30*24*time.Hour)); err != nil {
		rep.Errors = append(rep.Errors, err.Error())
	}
	return rep, nil
}

// runHost takes a host's due backup, then applies its retention.
func (p *Provider) runHost(ctx context.Context, r *engine.Repo, h engine.HostRecord, all []*engine.Manifest, opts provider.RunOptions, rep *provider.RunReport) error {
	pol := toSchedule(h.Policy)
	items, last := retentionItems(all, h.ID)
	d := schedule.Due(pol, schedule.HostKey(h.ID, h.Name), last, h.EnabledAt, p.opts.Now())
	if d.Due {
		mine, err := r.Claim(ctx, h.ID, d.Window.Start)
		if err != nil {
			return err
		}
		if mine {
			res, err := p.backupHost(ctx, r, h, provider.CreateOptions{Progress: opts.Progress})
			if err != nil {
				return fmt.Errorf("back up host %s: %w", h.Name, err)
			}
			rep.Backups = append(rep.Backups, res.Backup)
			items = append(items, schedule.Item{ID: res.Backup.ID, Time: res.Backup.CreatedAt})
		}
	}
	for _, id := range schedule.Expired(pol, items, p.opts.Now()) {
		if err := r.DeleteBackup(ctx, id); err != nil {
			return fmt.Errorf("expire backup %d of host %s: %w", id, h.Name, mapErr(err))
		}
		rep.Expired = append(rep.Expired, id)
	}
	return nil
}

// retentionItems returns a host's backups and snapshots as retention sees
// them, and the time of the newest.
func retentionItems(all []*engine.Manifest, hostID int) ([]schedule.Item, time.Time) {
	var items []schedule.Item
	var last time.Time
	for _, m := range all {
		if m.HostID != hostID {
			continue
		}
		items = append(items, schedule.Item{ID: m.ID, Time: m.CreatedAt, Snapshot: m.Snapshot})
		if m.CreatedAt.After(last) {
			last = m.CreatedAt
		}
	}
	return items, last
}

package local

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dropback/dropback/pkg/engine"
	"github.com/dropback/dropback/pkg/provider"
	"github.com/dropback/dropback/pkg/schedule"
)

func toSchedule(p *engine.PolicyRecord) schedule.Policy {
	return schedule.Policy{Plan: schedule.CanonicalPlan(p.Plan), Weekday: p.Weekday, Hour: p.Hour, RetentionDays: p.RetentionDays}
}

func toRecord(p schedule.Policy) *engine.PolicyRecord {
	return &engine.PolicyRecord{Plan: p.Plan, Weekday: p.Weekday, Hour: p.Hour, RetentionDays: p.RetentionDays}
}

func toChange(req provider.PolicyRequest) schedule.Change {
	return schedule.Change{Plan: req.Plan, Weekday: req.Weekday, Hour: req.Hour, RetentionDays: req.RetentionDays}
}

func policyView(p schedule.Policy) *provider.Policy {
	return &provider.Policy{Plan: p.Plan, Weekday: p.Weekday, Hour: p.Hour,
		WindowLengthHours: int(p.WindowLength() / time.Hour), RetentionPeriodDays: p.RetentionDays}
}

// addPolicy fills in a host view's policy and next window.
func (p *Provider) addPolicy(v *provider.Host, h engine.HostRecord) {
	if h.Policy == nil {
		return
	}
	sp := toSchedule(h.Policy)
	v.BackupPolicy = policyView(sp)
	if h.BackupEnabled {
		w := schedule.NextWindow(sp, p.opts.Now())
		v.NextBackupWindow = &provider.Window{Start: w.Start, End: w.End}
	}
}

// hostPolicy is a host's policy view. It reads no disk, unlike hostView.
func (p *Provider) hostPolicy(h engine.HostRecord) provider.HostPolicy {
	var v provider.Host
	p.addPolicy(&v, h)
	return provider.HostPolicy{HostID: h.ID, HostName: h.Name, BackupEnabled: h.BackupEnabled,
		BackupPolicy: v.BackupPolicy, NextBackupWindow: v.NextBackupWindow}
}

// updateHost applies change to the host's latest record and writes it,
// retrying when another writer changed the host first.
func (p *Provider) updateHost(ctx context.Context, ref, typ string, change func(*engine.HostRecord) error) (*provider.Action, error) {
	r, err := p.open(ctx)
	if err != nil {
		return nil, err
	}
	for range 10 {
		h, err := p.findHost(ctx, ref)
		if err != nil {
			return nil, err
		}
		if err := change(&h); err != nil {
			return nil, err
		}
		act, err := r.StartAction(ctx, typ, "host", h.ID)
		if err != nil {
			return nil, mapErr(err)
		}
		_, err = r.UpdateHost(ctx, h)
		_ = r.FinishAction(context.WithoutCancel(ctx), act, 0, err)
		if errors.Is(err, engine.ErrConflict) {
			continue
		}
		if err != nil {
			return nil, mapErr(err)
		}
		v := actionView(*act)
		return &v, nil
	}
	return nil, fmt.Errorf("update host %s: it keeps changing under us; try again", printable(ref))
}

// applyPolicy sets h's policy to its current one with change applied, or,
// when it has none or fresh is set, to the defaults of the plan in change
// with change applied.
func applyPolicy(h *engine.HostRecord, change schedule.Change, fresh bool) error {
	var sp schedule.Policy
	var err error
	if h.Policy == nil || fresh {
		sp, err = schedule.New(change)
	} else {
		sp, err = toSchedule(h.Policy).Apply(change)
	}
	if errors.Is(err, schedule.ErrInvalid) {
		return wrapAs(err, provider.ErrInvalid)
	}
	if err != nil {
		return err
	}
	h.Policy = toRecord(sp)
	return nil
}

// EnableBackups implements provider.Policies.
func (p *Provider) EnableBackups(ctx context.Context, ref string, req provider.PolicyRequest) (*provider.Action, error) {
	// A plan given starts from that plan's defaults; else the host's
	// policy, if it has one, is kept with the other flags applied.
	return p.updateHost(ctx, ref, "enable_backups", func(h *engine.HostRecord) error {
		if err := applyPolicy(h, toChange(req), req.Plan != nil); err != nil {
			return err
		}
		if !h.BackupEnabled {
			h.BackupEnabled, h.EnabledAt = true, p.opts.Now().UTC()
		}
		return nil
	})
}

// DisableBackups implements provider.Policies.
func (p *Provider) DisableBackups(ctx context.Context, ref string, opts provider.DisableOptions) (*provider.Action, error) {
	if opts.KeepBackups == opts.DeleteBackups {
		return nil, provider.Errorf(provider.ErrConfirm, "say what to do with the existing backups: --keep-backups or --force (delete them)")
	}
	var hostID int
	act, err := p.updateHost(ctx, ref, "disable_backups", func(h *engine.HostRecord) error {
		h.BackupEnabled, hostID = false, h.ID
		return nil
	})
	if err != nil || !opts.DeleteBackups {
		return act, err
	}
	r, err := p.open(ctx)
	if err != nil {
		return nil, err
	}
	return act, p.deleteBackups(ctx, r, hostID)
}

// DisableKeepingBackups implements provider.BackupKeeper.
func (p *Provider) DisableKeepingBackups(ctx context.Context, ref string) (*provider.Action, error) {
	return p.DisableBackups(ctx, ref, provider.DisableOptions{KeepBackups: true})
}

// SetPolicy implements provider.Policies.
func (p *Provider) SetPolicy(ctx context.Context, ref string, req provider.PolicyRequest) (*provider.Action, error) {
	change := toChange(req)
	if change.Empty() {
		return nil, provider.Errorf(provider.ErrInvalid, "nothing to change: give --plan, --weekday, --hour or --retention-days")
	}
	return p.updateHost(ctx, ref, "change_backup_policy", func(h *engine.HostRecord) error {
		return applyPolicy(h, change, false)
	})
}

// GetPolicy implements provider.Policies.
func (p *Provider) GetPolicy(ctx context.Context, ref string) (*provider.HostPolicy, error) {
	h, err := p.findHost(ctx, ref)
	if err != nil {
		return nil, err
	}
	v := p.hostPolicy(h)
	if r, err := p.open(ctx); err == nil {
		p.skipDoneWindows(ctx, r, []int{v.HostID}, []*provider.Policy{v.BackupPolicy}, []*provider.Window{v.NextBackupWindow})
	}
	return &v, nil
}

// ListPolicies implements provider.Policies.
func (p *Provider) ListPolicies(ctx context.Context) ([]provider.HostPolicy, error) {
	r, hosts, damaged, err := p.hostsAndDamage(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]provider.HostPolicy, 0, len(hosts))
	for _, h := range hosts {
		out = append(out, p.hostPolicy(h))
	}
	ids, pols, wins := make([]int, len(out)), make([]*provider.Policy, len(out)), make([]*provider.Window, len(out))
	for i := range out {
		ids[i], pols[i], wins[i] = out[i].HostID, out[i].BackupPolicy, out[i].NextBackupWindow
	}
	p.skipDoneWindows(ctx, r, ids, pols, wins)
	return out, damagedHosts(damaged)
}

// SupportedPolicies implements provider.Policies.
func (p *Provider) SupportedPolicies(ctx context.Context) ([]provider.SupportedPolicy, error) {
	var out []provider.SupportedPolicy
	for _, s := range schedule.Supported() {
		out = append(out, provider.SupportedPolicy(s))
	}
	return out, nil
}

// ConvertBackup implements provider.Snapshots.
func (p *Provider) ConvertBackup(ctx context.Context, id int) (*provider.Action, error) {
	r, err := p.open(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := r.Manifest(ctx, id); err != nil {
		return nil, mapErr(err) // refused before anything is recorded
	}
	act, err := r.StartAction(ctx, "convert", "backup", id)
	if err != nil {
		return nil, mapErr(err)
	}
	err = r.MarkSnapshot(ctx, id)
	_ = r.FinishAction(context.WithoutCancel(ctx), act, 0, err)
	if err != nil {
		return nil, mapErr(err) // the command says which backup
	}
	v := actionView(*act)
	return &v, nil
}

// DeleteSnapshot implements provider.Snapshots.
func (p *Provider) DeleteSnapshot(ctx context.Context, id int) error {
	r, err := p.open(ctx)
	if err != nil {
		return err
	}
	m, err := r.Manifest(ctx, id)
	if errors.Is(err, engine.ErrCorrupt) {
		// A damaged manifest belongs to no schedule and stops gc: this is
		// the way to remove it.
		return mapErr(r.DeleteBackup(ctx, id))
	}
	if errors.Is(err, engine.ErrNotFound) {
		if lost, lerr := r.BackupLost(ctx, id); lerr == nil && lost {
			return mapErr(r.DeleteBackup(ctx, id)) // acknowledge a lost manifest
		}
	}
	if err != nil {
		return mapErr(err)
	}
	if !m.Snapshot {
		return provider.Errorf(provider.ErrInvalid, "%d is a backup, not a snapshot; retention deletes backups", id)
	}
	// Announced, so that retention deleting the host's other backups at
	// this moment cannot count this one as the backup the host keeps.
	return mapErr(r.DeleteBackupAnnounced(ctx, id))
}

// skipDoneWindows moves each next_backup_window that a backup already
// satisfied (one taken since the window started) to the window after it:
// the window shown is the one still to come. policies are the hosts'
// policies, each with the window to adjust; a repository whose backups
// cannot all be read leaves the windows as they are.
func (p *Provider) skipDoneWindows(ctx context.Context, r *engine.Repo, hostIDs []int, policies []*provider.Policy, windows []*provider.Window) {
	now := p.opts.Now()
	open := func(i int) bool {
		w, pol := windows[i], policies[i]
		return w != nil && pol != nil && (schedule.Window{Start: w.Start, End: w.End}).Contains(now)
	}
	// The backups are read only when some host's window is open now:
	// listing hosts should not cost a listing of every backup.
	anyOpen := false
	for i := range hostIDs {
		anyOpen = anyOpen || open(i)
	}
	if !anyOpen {
		return
	}
	all, err := r.Manifests(ctx)
	if err != nil {
		return
	}
	for i, id := range hostIDs {
		if !open(i) {
			continue
		}
		w, pol := windows[i], policies[i]
		if _, last := retentionItems(all, id, now); last.IsZero() || last.Before(w.Start) {
			continue
		}
		sp := schedule.Policy{Plan: schedule.CanonicalPlan(pol.Plan), Weekday: pol.Weekday, Hour: pol.Hour, RetentionDays: pol.RetentionPeriodDays}
		next := schedule.FollowingWindow(sp, schedule.Window{Start: w.Start, End: w.End})
		w.Start, w.End = next.Start, next.End
	}
}

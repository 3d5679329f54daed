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

// runGrace is how long a scheduling pass keeps what gc condemned before it
// deletes it.
const runGrace = time.Hour

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
	res, err := r.GC(ctx, engine.GCOptions{Grace: opts.Grace, MinAge: opts.MinAge, WaitLock: opts.WaitLock, History: opts.History})
	_ = r.FinishAction(context.WithoutCancel(ctx), act, 0, err)
	if err != nil {
		return nil, fmt.Errorf("repo gc: %w", mapErr(err))
	}
	return &provider.GCResult{Action: actionView(*act), DeletedPacks: res.DeletedPacks,
		RewrittenPacks: res.RewrittenPacks, ReclaimedBytes: res.ReclaimedBytes, DeferredFor: res.DeferredFor}, nil
}

// RunDue implements provider.Provider: one pass of the schedule. It backs up
// every enabled host whose window is due, applies retention, and collects
// garbage when retention deleted something or a gc mark is ripe. A host that
// fails is reported in the report and does not stop the others.
//
// A pass that finds nothing to do leaves a hint (engine.IdleHint) that lets
// the passes after it skip reading every host and manifest while nothing
// changed and nothing falls due: they cost a constant number of requests.
func (p *Provider) RunDue(ctx context.Context, opts provider.RunOptions) (*provider.RunReport, error) {
	r, err := p.open(ctx)
	if err != nil {
		return nil, err
	}
	rep := &provider.RunReport{Backups: []provider.Backup{}, Expired: []int{}, Skipped: []provider.Skipped{}, Errors: []string{}}
	if hint, err := r.Idle(ctx); err != nil {
		return nil, mapErr(err)
	} else if hint != nil {
		for _, s := range hint.Skipped {
			rep.Skipped = append(rep.Skipped, provider.Skipped{HostID: s.HostID, HostName: s.HostName, Reason: s.Reason})
		}
		p.runGC(ctx, r, rep)
		return rep, nil
	}
	token, err := r.Changes(ctx)
	if err != nil {
		return nil, mapErr(err)
	}
	r, hosts, damaged, err := p.hostsAndDamage(ctx)
	if err != nil {
		return nil, err
	}
	all, err := r.Manifests(ctx)
	if err != nil {
		return nil, mapErr(err)
	}
	idle := engine.IdleHint{Until: p.opts.Now().Add(engine.IdleHintFor)}
	// A host whose record cannot be read cannot be scheduled: it is an
	// error of the pass, and the others go on.
	for _, id := range sortedIDs(damaged) {
		rep.Fail(fmt.Errorf("host %d: %w", id, mapErr(damaged[id])))
	}
	for _, h := range hosts {
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
		if !h.BackupEnabled || h.Policy == nil {
			continue
		}
		if err := p.runHost(ctx, r, h, all, opts, rep, &idle); err != nil {
			rep.Fail(err) // mapped where it arose
		}
	}
	p.runGC(ctx, r, rep)
	if err := r.PruneClaims(ctx, p.opts.Now().Add(-30*24*time.Hour)); err != nil {
		rep.Fail(mapErr(err))
	}
	if len(rep.Backups) == 0 && len(rep.Expired) == 0 && len(rep.Errors) == 0 && rep.GC == nil &&
		len(idle.Skipped) == len(rep.Skipped) {
		// Nothing to do but wait: the passes until idle.Until may trust that.
		if err := r.PutIdle(ctx, token, idle); err != nil {
			rep.Fail(mapErr(err))
		}
	}
	return rep, nil
}

// runGC collects garbage when the pass expired backups or a gc mark is
// ripe. Another gc holding the lease is no error: it does the work.
func (p *Provider) runGC(ctx context.Context, r *engine.Repo, rep *provider.RunReport) {
	ripe, err := r.RipeMarks(ctx, runGrace)
	if err != nil {
		rep.Fail(mapErr(err))
		return
	}
	if len(rep.Expired) == 0 && !ripe {
		return
	}
	res, err := p.gc(ctx, r, provider.GCOptions{Grace: runGrace})
	var locked *engine.LockedError
	switch {
	case errors.As(err, &locked):
		rep.Skipped = append(rep.Skipped, provider.Skipped{Reason: "gc: " + locked.Error()})
	case err != nil:
		rep.Fail(err) // mapped by gc
	default:
		rep.GC = res
	}
}

// runHost takes a host's due backup, then applies its retention.
//
// A host that is simply not due yet goes into idle, with the time it falls
// due.
func (p *Provider) runHost(ctx context.Context, r *engine.Repo, h engine.HostRecord, all []*engine.Manifest, opts provider.RunOptions, rep *provider.RunReport, idle *engine.IdleHint) error {
	pol := toSchedule(h.Policy)
	now := p.opts.Now()
	items, last := retentionItems(all, h.ID, now)
	d := schedule.Due(pol, schedule.HostKey(h.ID, h.Name), last, h.EnabledAt, now)
	skip := func(reason string) {
		rep.Skipped = append(rep.Skipped, provider.Skipped{HostID: h.ID, HostName: h.Name, Reason: reason})
	}
	for _, it := range items {
		if it.Time.After(now.Add(time.Minute)) {
			skip(fmt.Sprintf("backup %d is dated %s, in the future: the clock of the machine that took it was wrong; schedules and retention leave it out",
				it.ID, it.Time.UTC().Format(time.RFC3339)))
		}
	}
	if !d.Due {
		reason := notDueReason(pol, d, items, now)
		skip(reason)
		idle.Skipped = append(idle.Skipped, engine.IdleSkipped{HostID: h.ID, HostName: h.Name, Reason: reason})
		if d.At.Before(idle.Until) {
			idle.Until = d.At
		}
	} else {
		m, wait, err := p.scheduledBackup(ctx, r, h, d, opts)
		switch {
		case err != nil:
			return fmt.Errorf("back up host %s: %w", h.Name, err)
		case wait != nil && wait.Failed:
			// A host that keeps failing is an error of every pass until
			// it is backed up, not only of the pass that tried.
			return fmt.Errorf("back up host %s: %s", h.Name, wait.Reason)
		case wait != nil:
			skip(wait.Reason)
		default:
			rep.Backups = append(rep.Backups, *m)
			items = append(items, schedule.Item{ID: m.ID, Time: m.CreatedAt})
		}
	}
	for _, id := range schedule.Expired(pol, items, now.Add(time.Minute)) {
		// Retention keeps the newest backup it read; a backups delete of
		// that one meanwhile must not leave the host with none.
		err := r.ExpireUnlessLast(ctx, id)
		if errors.Is(err, engine.ErrKept) || errors.Is(err, engine.ErrLastBackup) || errors.Is(err, engine.ErrBeingDeleted) || errors.Is(err, engine.ErrNotFound) {
			continue // converted to a snapshot, kept as the last, or deleted since the pass read it
		}
		if err != nil {
			return fmt.Errorf("expire backup %d of host %s: %w", id, h.Name, mapErr(err))
		}
		rep.Expired = append(rep.Expired, id)
	}
	return nil
}

// scheduledBackup claims and takes the backup of h that d says is due. It
// returns the backup, or why this pass did not take it.
func (p *Provider) scheduledBackup(ctx context.Context, r *engine.Repo, h engine.HostRecord, d schedule.Decision, opts provider.RunOptions) (*provider.Backup, *engine.Wait, error) {
	op, err := r.Begin(ctx, engine.OpBackup, h.ID)
	if err != nil {
		return nil, nil, mapErr(err)
	}
	defer op.End()
	claim, wait, err := r.ClaimBackup(ctx, op, h.ID, d.Window.Start)
	if err != nil || claim == nil {
		return nil, wait, mapErr(err)
	}
	res, err := p.backupHost(ctx, r, h, provider.CreateOptions{Progress: opts.Progress}, op)
	id := 0
	if res != nil {
		id = res.Backup.ID
	}
	if ferr := r.Finish(context.WithoutCancel(ctx), claim, id, err); ferr != nil && err == nil {
		err = ferr
	}
	if err != nil {
		return nil, nil, err
	}
	return &res.Backup, nil, nil
}

// retentionItems returns a host's backups and snapshots as retention sees
// them, and the time of the newest not dated after now (a minute of clock
// skew allowed): one taken on a machine whose clock was ahead does not make
// the schedule think every window until then is done.
func retentionItems(all []*engine.Manifest, hostID int, now time.Time) ([]schedule.Item, time.Time) {
	var items []schedule.Item
	var last time.Time
	for _, m := range all {
		if m.HostID != hostID {
			continue
		}
		items = append(items, schedule.Item{ID: m.ID, Time: m.CreatedAt, Snapshot: m.Snapshot})
		if m.CreatedAt.After(last) && !m.CreatedAt.After(now.Add(time.Minute)) {
			last = m.CreatedAt
		}
	}
	return items, last
}

// addLastErrors sets the last error of each host whose latest scheduled
// backup failed and that has no backup taken since.
func addLastErrors(ctx context.Context, r *engine.Repo, hosts []provider.Host, now time.Time) error {
	errs, err := r.ScheduleErrors(ctx)
	if err != nil || len(errs) == 0 {
		return mapErr(err)
	}
	all, err := r.Manifests(ctx)
	if err != nil {
		return mapErr(err)
	}
	for i := range hosts {
		e, ok := errs[hosts[i].ID]
		if !ok {
			continue
		}
		if _, last := retentionItems(all, hosts[i].ID, now); last.After(e.At) {
			continue
		}
		at := e.At
		hosts[i].LastError, hosts[i].LastErrorAt = e.Error, &at
	}
	return nil
}

// notDueReason says why a host's backup is not due, naming the backup that
// satisfied the latest window when one did ("the window ... already has
// backup 12"), and when the next one is due.
func notDueReason(pol schedule.Policy, d schedule.Decision, items []schedule.Item, now time.Time) string {
	w := schedule.LatestWindow(pol, now)
	newest := -1
	for i, it := range items {
		if newest < 0 || it.Time.After(items[newest].Time) {
			newest = i
		}
	}
	if newest < 0 || items[newest].Time.Before(w.Start) {
		return d.Reason
	}
	return fmt.Sprintf("the window %s already has backup %d; the next backup is due from %s",
		w, items[newest].ID, d.At.UTC().Format(time.RFC3339))
}

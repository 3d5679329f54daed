package fakeprovider

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/dropback/dropback/pkg/progress"
	"github.com/dropback/dropback/pkg/provider"
)

// newAction records an action of an asynchronous verb, in progress unless
// ActionPolls is 0. The caller holds f.mu.
func (f *Fake) newAction(typ, resourceType string, resourceID int) *provider.Action {
	f.nextID++
	a := provider.Action{
		ID: f.nextID, Type: typ, Status: provider.StatusInProgress,
		StartedAt: Epoch.Add(time.Hour), ResourceID: resourceID, ResourceType: resourceType,
	}
	if f.ActionPolls == 0 {
		f.finish(&a)
	}
	f.Actions = append(f.Actions, a)
	return &a
}

func (f *Fake) finish(a *provider.Action) {
	done := Epoch.Add(time.Hour + time.Minute)
	a.CompletedAt = &done
	a.Status = provider.StatusCompleted
	if f.ActionError != "" {
		a.Status, a.Error = provider.StatusErrored, f.ActionError
	}
}

// GetAction returns an action, moving it on as ActionPolls says.
func (f *Fake) GetAction(ctx context.Context, id int) (*provider.Action, error) {
	if err := f.call("GetAction", "%d", id); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Polls++
	for i := range f.Actions {
		a := &f.Actions[i]
		if a.ID != id {
			continue
		}
		f.polls[id]++
		if a.Status == provider.StatusInProgress && f.ActionPolls >= 0 && f.polls[id] >= f.ActionPolls {
			f.finish(a)
		}
		c := *a
		return &c, nil
	}
	return nil, fmt.Errorf("action %d: %w", id, provider.ErrNotFound)
}

// ListActions lists actions.
func (f *Fake) ListActions(ctx context.Context) ([]provider.Action, error) {
	if err := f.call("ListActions", ""); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]provider.Action{}, f.Actions...), nil
}

// ListHostActions lists the actions on one host.
func (f *Fake) ListHostActions(ctx context.Context, host string) ([]provider.Action, error) {
	if err := f.call("ListHostActions", "%s", host); err != nil {
		return nil, err
	}
	h, err := f.host(host)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []provider.Action{}
	for _, a := range f.Actions {
		if a.ResourceType == "host" && a.ResourceID == h.ID {
			out = append(out, a)
		}
	}
	return out, nil
}

// count counts a job of total bytes in c, a quarter skipped and the rest
// read from four goroutines at once, as the engine's workers do.
func count(c *progress.Counter, phase string, total int64) {
	c.Start(phase, total)
	c.AddSkipped(total / 4)
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.AddRead(total / 4)
		}()
	}
	wg.Wait()
}

// CreateBackup takes a backup of a host.
func (f *Fake) CreateBackup(ctx context.Context, host string, opts provider.CreateOptions) (*provider.CreateResult, error) {
	if err := f.call("CreateBackup", "%s", host); err != nil {
		return nil, err
	}
	h, err := f.host(host)
	if err != nil {
		return nil, err
	}
	count(opts.Progress, "backup", 1<<30)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	b := provider.Backup{ID: f.nextID, Name: h.Name + "-manual", Type: provider.TypeBackup, Status: "available",
		CreatedAt: Epoch.Add(time.Hour), SizeGigabytes: 1, MinDiskSize: 1, HostID: h.ID, HostName: h.Name}
	f.Backups = append(f.Backups, b)
	f.nextID++
	done := Epoch.Add(time.Hour + time.Minute)
	a := provider.Action{ID: f.nextID, Type: "backup", Status: provider.StatusCompleted, StartedAt: Epoch.Add(time.Hour),
		CompletedAt: &done, ResourceID: b.ID, ResourceType: "backup"}
	f.Actions = append(f.Actions, a)
	sum := &provider.BackupSummary{ReadBytes: 768 << 20, NewBytes: 60 << 20, StoredBytes: 21 << 20, Seconds: 2, BytesPerSecond: 384 << 20}
	return &provider.CreateResult{Backup: b, Action: a, Summary: sum}, nil
}

// RestoreBackup restores a backup.
func (f *Fake) RestoreBackup(ctx context.Context, req provider.RestoreRequest) (*provider.RestoreResult, error) {
	if err := f.call("RestoreBackup", "%s %s to=%q to_new=%q force=%v", req.Host, req.Backup, req.To, req.ToNew, req.Force); err != nil {
		return nil, err
	}
	h, err := f.host(req.Host)
	if err != nil {
		return nil, err
	}
	if req.To == "" && req.ToNew == "" && !req.Force {
		return nil, fmt.Errorf("restore in place: %w", provider.ErrConfirm)
	}
	count(req.Progress, "restore", 1<<30)
	f.mu.Lock()
	defer f.mu.Unlock()
	backupID, _ := strconv.Atoi(req.Backup)
	if req.Backup == "latest" {
		for _, b := range f.Backups {
			if b.HostID == h.ID && b.Type == provider.TypeBackup {
				backupID = b.ID
			}
		}
	}
	r := req
	r.Progress = nil
	f.LastRestore = &r
	a := f.newAction("restore", "host", h.ID)
	return &provider.RestoreResult{Action: *a, BackupID: backupID, HostID: h.ID, BytesWritten: 64 << 20}, nil
}

// VerifyBackups reports Verify, or every listed backup as ok.
func (f *Fake) VerifyBackups(ctx context.Context, ids []int, opts provider.VerifyOptions) (*provider.VerifyReport, error) {
	if err := f.call("VerifyBackups", "%v", ids); err != nil {
		return nil, err
	}
	count(opts.Progress, "verify", 1<<30)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Verify != nil {
		return f.Verify, nil
	}
	r := &provider.VerifyReport{Backups: []provider.VerifiedBackup{}, Problems: []string{}}
	for _, b := range f.Backups {
		r.Backups = append(r.Backups, provider.VerifiedBackup{ID: b.ID, HostName: b.HostName, Status: "ok"})
		r.Chunks += 100
		r.Bytes += 100 << 20
	}
	return r, nil
}

// PlanRestore plans an in-place restore onto the host's disks, or one to
// req.To, where nothing exists unless Existing names it.
func (f *Fake) PlanRestore(ctx context.Context, req provider.RestoreRequest) (*provider.RestorePlan, error) {
	if err := f.call("PlanRestore", "%s %s to=%q", req.Host, req.Backup, req.To); err != nil {
		return nil, err
	}
	b, err := f.FindBackup(ctx, req.Host, req.Backup)
	if err != nil {
		return nil, err
	}
	h, err := f.host(req.Host)
	if err != nil {
		return nil, err
	}
	plan := &provider.RestorePlan{Backup: *b}
	if req.To != "" {
		plan.Targets = append(plan.Targets, provider.RestoreTarget{Disk: "vda", Path: req.To, Exists: f.Existing[req.To]})
		return plan, nil
	}
	for _, d := range h.Disks {
		plan.Targets = append(plan.Targets, provider.RestoreTarget{Disk: d.Name, Path: d.Path, InPlace: true, Exists: true})
	}
	return plan, nil
}

// DeleteBackups deletes backups; a host's last needs opts.AllowLast.
func (f *Fake) DeleteBackups(ctx context.Context, ids []int, opts provider.DeleteOptions) ([]provider.Backup, error) {
	if err := f.call("DeleteBackups", "%v last=%v", ids, opts.AllowLast); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	deleted := []provider.Backup{}
	for _, id := range ids {
		i := slices.IndexFunc(f.Backups, func(b provider.Backup) bool { return b.ID == id })
		if i < 0 {
			return deleted, fmt.Errorf("backup %d: %w", id, provider.ErrNotFound)
		}
		b := f.Backups[i]
		others := slices.ContainsFunc(f.Backups, func(o provider.Backup) bool { return o.HostID == b.HostID && o.ID != id })
		if !others && !opts.AllowLast {
			return deleted, fmt.Errorf("backup %d is the last of host %s: %w", id, b.HostName, provider.ErrConfirm)
		}
		f.Backups = slices.Delete(f.Backups, i, i+1)
		deleted = append(deleted, b)
	}
	return deleted, nil
}

// ListOrphaned lists the backups whose host is not in Hosts.
func (f *Fake) ListOrphaned(ctx context.Context) ([]provider.Backup, error) {
	if err := f.call("ListOrphaned", ""); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []provider.Backup{}
	for _, b := range f.Backups {
		if !slices.ContainsFunc(f.Hosts, func(h provider.Host) bool { return h.ID == b.HostID }) {
			out = append(out, b)
		}
	}
	return out, nil
}

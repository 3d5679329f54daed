package local

import (
	"context"
	"errors"
	"sort"

	"github.com/dropback/dropback/pkg/engine"
	"github.com/dropback/dropback/pkg/provider"
)

var _ provider.BackupDeleter = (*Provider)(nil)

// DeleteBackups implements provider.BackupDeleter. Each delete goes through
// engine.Repo.DeleteBackup, which removes the manifest only (see "Who may
// delete what" in docs/format.md); whether the backup is its host's last is
// decided by engine.Repo.DeleteBackupUnlessLast right before that delete,
// not from what the user was shown when asked, and holds against other
// deleters at the same moment.
func (p *Provider) DeleteBackups(ctx context.Context, ids []int, opts provider.DeleteOptions) ([]provider.Backup, error) {
	r, err := p.open(ctx)
	if err != nil {
		return nil, err
	}
	deleted := []provider.Backup{}
	for _, id := range ids {
		m, err := r.Manifest(ctx, id)
		if err != nil {
			return deleted, mapErr(err)
		}
		if m.Snapshot {
			return deleted, provider.Errorf(provider.ErrInvalid, "%d is a snapshot, which backups delete leaves alone; delete it with `dropback snapshots delete %d`", id, id)
		}
		del := r.DeleteBackup
		if !opts.AllowLast {
			del = r.DeleteBackupUnlessLast
		}
		if err := del(ctx, id); err != nil {
			if errors.Is(err, engine.ErrLastBackup) {
				return deleted, provider.Errorf(provider.ErrConfirm, "%v; to delete it anyway, confirm that it is the last (--last)", err)
			}
			return deleted, mapErr(err)
		}
		deleted = append(deleted, backupView(m))
	}
	return deleted, nil
}

// ListOrphaned implements provider.BackupDeleter: the backups and
// snapshots of hosts that were removed, or whose record is gone.
func (p *Provider) ListOrphaned(ctx context.Context) ([]provider.Backup, error) {
	r, err := p.open(ctx)
	if err != nil {
		return nil, err
	}
	hosts, hostDamage, err := r.HostsAndDamage(ctx)
	if err != nil {
		return nil, mapErr(err)
	}
	live := map[int]bool{}
	for _, h := range hosts {
		if !h.Removed {
			live[h.ID] = true
		}
	}
	all, damaged, err := r.ManifestsAndDamage(ctx)
	if err != nil {
		return nil, mapErr(err)
	}
	out := []provider.Backup{}
	for _, m := range all {
		_, unknown := hostDamage[m.HostID] // a host that cannot be read may be live
		if !live[m.HostID] && !unknown {
			out = append(out, backupView(m))
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, damagedError(damaged)
}

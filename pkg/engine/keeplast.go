package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dropback/dropback/pkg/store"
)

// ErrLastBackup means a delete was refused because the backup is, or may
// be, its host's last: the host would have no backup or snapshot left.
var ErrLastBackup = errors.New("the host's last backup")

// ErrBeingDeleted means a guarded delete was refused because another
// deleter announced a delete of the same backup: that one decides; a
// retention pass leaves the backup for its next pass.
var ErrBeingDeleted = errors.New("being deleted by another command")

// DeleteBackupUnlessLast deletes backup id, as DeleteBackup does, unless its
// host would then have no backup or snapshot left, or might: then it
// deletes nothing and returns an error wrapping ErrLastBackup.
//
// Two deleters that each delete one of a host's last two backups at the
// same moment would each see the other's backup still there and leave the
// host with none. So each first announces its delete with the marker
// deleting/<id> (create-once), and only then reads the host's other backups;
// one whose own deleting/ marker exists counts as gone. Of two such
// deleters at least one sees the other's marker (a Stat sees every
// completed Put), so at most one of them deletes. A marker that cannot be
// checked counts as there, and a manifest that cannot be read as the
// host's: every doubt refuses. The marker is removed when the call ends; one
// a crashed deleter left only makes later deletes of that host's other
// backups more careful.
func (r *Repo) DeleteBackupUnlessLast(ctx context.Context, id int) error {
	return r.unlessLast(ctx, id, "delete", r.DeleteBackup)
}

// ExpireUnlessLast is Expire for retention (a scheduling pass, or prune):
// it deletes backup id unless it became a snapshot (ErrKept), and, as
// DeleteBackupUnlessLast does, unless its host would then have no backup or
// snapshot left (ErrLastBackup). Retention keeps the newest backup it read,
// but a user may delete that one meanwhile. The host's other backups are
// checked before the fate is decided, so a backup kept as the last has no
// fate yet and can still be converted.
func (r *Repo) ExpireUnlessLast(ctx context.Context, id int) error {
	return r.unlessLast(ctx, id, "expire", r.Expire)
}

// DeleteBackupAnnounced deletes backup id even when it is its host's last
// (a snapshot a user deletes by name), but announces the delete as
// DeleteBackupUnlessLast does, so that a guarded deleter of the host's
// other backups does not count this one; and it refuses, wrapping
// ErrLastBackup, when every other backup of the host is being deleted at
// this moment, since the two deletes together would leave the host none.
func (r *Repo) DeleteBackupAnnounced(ctx context.Context, id int) error {
	return r.announced(ctx, id, "delete", true, r.DeleteBackup)
}

// unlessLast announces a delete of backup id with deleting/<id>, checks
// that the host keeps another backup, then calls del.
func (r *Repo) unlessLast(ctx context.Context, id int, verb string, del func(context.Context, int) error) error {
	return r.announced(ctx, id, verb, false, del)
}

// announced is unlessLast; with mayBeLast, a backup that is its host's
// only one is deleted too.
func (r *Repo) announced(ctx context.Context, id int, verb string, mayBeLast bool, del func(context.Context, int) error) error {
	m, err := r.Manifest(ctx, id)
	if err != nil {
		return err
	}
	intent := objectName("deleting", id)
	if err := r.announceDelete(ctx, intent); err != nil {
		return fmt.Errorf("%s backup %d: %w", verb, id, err)
	}
	defer r.st.Delete(context.WithoutCancel(ctx), intent) //nolint:errcheck // a marker left behind only adds care
	if err := r.othersRemain(ctx, m, mayBeLast); err != nil {
		return err
	}
	return del(ctx, id)
}

// announceDelete writes the marker of a guarded delete. A deleter goes on
// only under a marker it created: one that found another's and relied on it
// could see it removed by its owner (who refused, say) while it still
// deletes, and a third deleter would then count the backup as staying. So
// a marker that exists refuses the delete with ErrBeingDeleted, however
// old: taking over an old one could take a live one from a deleter that
// was paused or whose clock runs apart. gc removes the markers of
// deleters that died (dropStaleDeleting).
func (r *Repo) announceDelete(ctx context.Context, name string) error {
	err := r.st.Put(ctx, name, []byte("{}\n"))
	if errors.Is(err, store.ErrExists) {
		return fmt.Errorf("%w (%s; if no delete runs, the next repo gc removes it once it is %s old)", ErrBeingDeleted, name, StaleAfter+clockSkew)
	}
	return err
}

// dropStaleDeleting is gc's step that deletes the deleting/ markers of
// guarded deletes that died: a guarded delete takes seconds, and a marker
// it left refuses every later delete of that backup and keeps it from
// counting as its host's. A marker counts as left once the store's time,
// which this gc's lease took, is past the marker's by StaleAfter and the
// clocks' skew; a deleter paused that long loses it (docs/reliability.md,
// "Known gaps").
func (g *gcRun) dropStaleDeleting(ctx context.Context) error {
	r := g.r
	lease, err := r.st.Stat(ctx, leaseObject(g.gen))
	if err != nil {
		return fmt.Errorf("gc: read the lease: %w", err)
	}
	stale := lease.ModTime.Add(-(StaleAfter + clockSkew))
	var names []string
	err = r.st.List(ctx, "deleting/", func(info store.Info) error {
		if info.ModTime.Before(stale) {
			names = append(names, info.Name)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("gc: list deleting: %w", err)
	}
	for _, name := range names {
		if err := g.delete(ctx, name, stale); err != nil {
			return err
		}
	}
	return nil
}

// mayBeWithdrawn reports whether a manifest the store wrote at written may
// belong to a backup of host hostID that is still running: one that
// started before then (by the store's clock, with the clocks' skew), or
// whose marker cannot be read.
func mayBeWithdrawn(ops map[string]opState, hostID int, written time.Time) bool {
	for _, st := range ops {
		unknown := st.m.Kind == ""
		if (unknown || st.m.Kind == OpBackup && st.m.HostID == hostID) &&
			(st.start.IsZero() || !st.start.After(written.Add(clockSkew))) {
			return true
		}
	}
	return false
}

// othersRemain returns nil when m's host has another backup or snapshot
// that no deleter has announced it is deleting; with mayBeLast, also when
// it has no other at all.
func (r *Repo) othersRemain(ctx context.Context, m *Manifest, mayBeLast bool) error {
	all, damaged, err := r.readManifests(ctx)
	if err != nil {
		return err
	}
	others := 0
	var ops map[string]opState
	for _, o := range all {
		if o.HostID != m.HostID || o.ID == m.ID {
			continue
		}
		others++
		_, err := r.st.Stat(ctx, objectName("deleting", o.ID))
		if !errors.Is(err, store.ErrNotFound) {
			continue
		}
		// A listing may still show a manifest deleted a moment ago, and
		// the cache or a catalog then serve it: it counts only if the
		// store has it now.
		info, err := r.st.Stat(ctx, objectName("backups", o.ID))
		if err != nil {
			continue
		}
		// A manifest whose backup is still running is not yet final: a
		// backup that finds it lost its protection while it wrote the
		// manifest deletes it again, unguarded.
		if ops == nil {
			if ops, err = r.runningOps(ctx); err != nil {
				return err
			}
		}
		if !mayBeWithdrawn(ops, m.HostID, info.ModTime) {
			return nil
		}
	}
	if mayBeLast && others == 0 && len(damaged) == 0 {
		return nil
	}
	if len(damaged) > 0 {
		return fmt.Errorf("backup %d may be the last backup of host %s: %d other %s cannot be read: %w",
			m.ID, m.HostName, len(damaged), plural(len(damaged), "backup", "backups"), ErrLastBackup)
	}
	if mayBeLast {
		return fmt.Errorf("the other backups of host %s are being deleted at this moment, and backup %d would be its last; try again once that ends: %w",
			m.HostName, m.ID, ErrLastBackup)
	}
	return fmt.Errorf("backup %d is the last backup of host %s: %w", m.ID, m.HostName, ErrLastBackup)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

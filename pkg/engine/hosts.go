package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/dropback/dropback/pkg/store"
)

// ErrConflict means another writer changed a host record first; read it
// again and retry.
var ErrConflict = errors.New("changed by another writer")

// HostRecord is a registered host, stored as hosts/<id>/<rev>. Every change
// writes the whole record under the next revision; the highest wins.
type HostRecord struct {
	ID            int           `json:"id"`
	Rev           int           `json:"rev"`
	Name          string        `json:"name"`
	Disks         []DiskSource  `json:"disks"`
	CreatedAt     time.Time     `json:"created_at"`
	Removed       bool          `json:"removed,omitempty"`
	BackupEnabled bool          `json:"backup_enabled"`
	EnabledAt     time.Time     `json:"enabled_at,omitzero"`
	Policy        *PolicyRecord `json:"policy,omitempty"`
}

// PolicyRecord is a host's stored backup policy. The engine keeps it; the
// schedule package gives it meaning.
type PolicyRecord struct {
	Plan          string `json:"plan"`
	Weekday       string `json:"weekday,omitempty"`
	Hour          int    `json:"hour"`
	RetentionDays int    `json:"retention_days"`
}

func hostObject(id, rev int) string { return fmt.Sprintf("hosts/%010d/%010d", id, rev) }

// Hosts returns the latest record of every host that is not removed, by ID.
func (r *Repo) Hosts(ctx context.Context) ([]HostRecord, error) {
	all, err := r.AllHosts(ctx)
	if err != nil {
		return nil, err
	}
	var out []HostRecord
	for _, h := range all {
		if !h.Removed {
			out = append(out, h)
		}
	}
	return out, nil
}

// AllHosts returns the latest record of every host, removed ones too.
func (r *Repo) AllHosts(ctx context.Context) ([]HostRecord, error) {
	latest, err := r.latestRevisions(ctx, "hosts")
	if err != nil {
		return nil, err
	}
	out := make([]HostRecord, 0, len(latest))
	for id, rev := range latest {
		h, err := r.readHost(ctx, id, rev)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// readHost returns the record of host id at its latest revision, rev or a
// later one the listing missed. The object's name, not its content, says
// which revision it is. A latest revision that is damaged gives way to the
// newest readable one before it (verify reports the damage), carrying the
// latest revision number so that the next update goes above it.
func (r *Repo) readHost(ctx context.Context, id, rev int) (HostRecord, error) {
	for {
		_, err := r.st.Stat(ctx, hostObject(id, rev+1))
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		if err != nil {
			return HostRecord{}, fmt.Errorf("read host %d: %w", id, err)
		}
		rev++
	}
	for older := rev; older >= max(1, rev-hostFallback); older-- {
		h, err := r.readHostRev(ctx, id, older)
		if errors.Is(err, ErrCorrupt) || errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return HostRecord{}, err
		}
		h.Rev = rev
		return h, nil
	}
	return HostRecord{}, fmt.Errorf("%w: record of host %d is unreadable", ErrCorrupt, id)
}

// hostFallback is how many revisions before a damaged one readHost tries.
const hostFallback = 64

// readHostRev reads one revision of a host record.
func (r *Repo) readHostRev(ctx context.Context, id, rev int) (HostRecord, error) {
	data, err := r.st.Get(ctx, hostObject(id, rev), 0, -1)
	if err != nil {
		return HostRecord{}, fmt.Errorf("read host %d: %w", id, err)
	}
	var h HostRecord
	if err := unseal(data, &h); err != nil || h.ID != id {
		return HostRecord{}, fmt.Errorf("%w: record of host %d (revision %d) is unreadable", ErrCorrupt, id, rev)
	}
	return h, nil
}

// AddHost registers a new host and returns it with its ID. Names must be
// unique among hosts that are not removed.
func (r *Repo) AddHost(ctx context.Context, h HostRecord) (HostRecord, error) {
	hosts, err := r.Hosts(ctx)
	if err != nil {
		return HostRecord{}, err
	}
	for _, o := range hosts {
		if o.Name == h.Name {
			return HostRecord{}, errorf(ErrInvalid, "a host named %q exists already (ID %d)", h.Name, o.ID)
		}
	}
	h.Rev = 1
	if h.CreatedAt.IsZero() {
		h.CreatedAt = r.now().UTC().Truncate(time.Second)
	}
	id, err := r.allocate(ctx, []string{"hosts"},
		func(id int) string { return hostObject(id, 1) },
		func(id int) ([]byte, error) {
			h.ID = id
			return seal(h)
		})
	if err != nil {
		return HostRecord{}, err
	}
	h.ID = id
	return h, nil
}

// UpdateHost writes h as the next revision after h.Rev. If another writer
// wrote that revision first it returns ErrConflict and changes nothing.
func (r *Repo) UpdateHost(ctx context.Context, h HostRecord) (HostRecord, error) {
	h.Rev++
	data, err := seal(h)
	if err != nil {
		return HostRecord{}, err
	}
	if err := r.st.Put(ctx, hostObject(h.ID, h.Rev), data); err != nil {
		if errors.Is(err, store.ErrExists) {
			return HostRecord{}, fmt.Errorf("update host %s: %w", h.Name, ErrConflict)
		}
		return HostRecord{}, fmt.Errorf("update host %s: %w", h.Name, err)
	}
	return h, nil
}

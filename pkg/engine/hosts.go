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
	// VM is set for a running guest: how to reach its hypervisor. Its
	// Disks are then the guest's, named by device (vmhost.go).
	VM *VMRecord `json:"vm,omitempty"`
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
// A host whose record cannot be read is left out (HostsAndDamage names it),
// so that one damaged record affects only its host.
func (r *Repo) Hosts(ctx context.Context) ([]HostRecord, error) {
	all, _, err := r.HostsAndDamage(ctx)
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

// AllHosts returns the latest record of every host, removed ones too, and
// leaves out those whose record cannot be read.
func (r *Repo) AllHosts(ctx context.Context) ([]HostRecord, error) {
	all, _, err := r.HostsAndDamage(ctx)
	return all, err
}

// HostsAndDamage returns the latest record of every host, removed ones
// too, by ID, and the errors of the hosts whose record cannot be read, by
// ID. The error is for failing to list the records at all.
func (r *Repo) HostsAndDamage(ctx context.Context) ([]HostRecord, map[int]error, error) {
	// The listing and the records read are reserved from the memory
	// budget as they come, and the records kept until the next list of
	// hosts (see readManifests).
	r.mem.listAgain("hosts")
	hold, err := r.mem.reserve(0, "")
	if err != nil {
		return nil, nil, err
	}
	defer hold.release()
	catalogs := r.startCatalogs(ctx)
	defer func() { catalogs().release() }()
	revs, infos, err := r.revisions(ctx, "hosts", &listCounter{hold: hold, what: "the listing of host records"})
	if err != nil {
		return nil, nil, err
	}
	cat := catalogs()
	order := make([]int, 0, len(revs))
	for id := range revs {
		order = append(order, id)
	}
	sort.Ints(order)
	read := make([]HostRecord, len(order))
	errs := make([]error, len(order))
	err = r.forEach(ctx, len(order), func(ctx context.Context, i int) error {
		h, err := r.readHostVia(ctx, order[i], revs[order[i]], infos, cat)
		if err != nil && !errors.Is(err, ErrCorrupt) {
			return err
		}
		read[i], errs[i] = h, err
		return hold.grow(hostMemory(h), fmt.Sprintf("the records of %d hosts", len(order)))
	})
	if err != nil {
		return nil, nil, err
	}
	out := make([]HostRecord, 0, len(order))
	damaged := map[int]error{}
	var kept int64
	for i, h := range read {
		if errs[i] != nil {
			damaged[order[i]] = errs[i]
			continue
		}
		out = append(out, h)
		kept += hostMemory(h)
	}
	r.mem.keep("hosts", hold, kept)
	return out, damaged, nil
}

// hostMemory estimates what a decoded host record holds.
func hostMemory(h HostRecord) int64 {
	n := 1024 + len(h.Name)
	for _, d := range h.Disks {
		n += 256 + len(d.Name) + len(d.Path)
	}
	return int64(n)
}

// readHost returns the record of host id at its latest revision: the
// highest of the listed revisions, or a later one the listing missed. The
// object's name, not its content, says which revision it is. A latest
// revision that is damaged gives way to the newest readable one before it
// (verify reports the damage), carrying the latest revision number so that
// the next update goes above it.
func (r *Repo) readHost(ctx context.Context, id int, listed []int) (HostRecord, error) {
	return r.readHostVia(ctx, id, listed, nil, nil)
}

// readHostVia is readHost with what the listing showed of each revision
// (infos, by name; nil for none): a revision it shows is read from a
// catalog row that matches it, else through the cache.
func (r *Repo) readHostVia(ctx context.Context, id int, listed []int, infos map[string]store.Info, cat *catalogSet) (HostRecord, error) {
	revs := listed
	rev := revs[len(revs)-1]
	// A listing may miss the newest revisions: ask for the next by name,
	// whatever lag the store claims (a store said not to lag may lag
	// anyway: a setting that is wrong for it, a network filesystem), as
	// for the newest backups. A stale record could apply an old policy,
	// whose retention may delete backups the new one keeps.
	for rev < MaxID {
		_, err := r.st.Stat(ctx, hostObject(id, rev+1))
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		if err != nil && !errors.Is(err, ErrCorrupt) {
			return HostRecord{}, fmt.Errorf("read host %d: %w", id, err)
		}
		rev++
		revs = append(revs, rev)
	}
	var last error
	for i := len(revs) - 1; i >= max(0, len(revs)-1-hostFallback); i-- {
		var h HostRecord
		var err error
		if info, ok := infos[hostObject(id, revs[i])]; ok {
			h, err = r.readListedHostRev(ctx, id, revs[i], info, cat)
		} else {
			h, err = r.readHostRev(ctx, id, revs[i])
		}
		if errors.Is(err, ErrCorrupt) || errors.Is(err, store.ErrNotFound) {
			if last == nil && errors.Is(err, ErrCorrupt) {
				last = err
			}
			continue
		}
		if err != nil {
			return HostRecord{}, err
		}
		h.Rev = rev
		return h, nil
	}
	if last == nil {
		last = fmt.Errorf("%w: record of host %d is unreadable: no revision of it is there", ErrCorrupt, id)
	}
	return HostRecord{}, last
}

// hostFallback is how many revisions before a damaged one readHost tries:
// the revisions there are, whatever their numbers.
const hostFallback = 64

// readHostRev reads one revision of a host record.
func (r *Repo) readHostRev(ctx context.Context, id, rev int) (HostRecord, error) {
	data, err := r.readObject(ctx, hostObject(id, rev), "host record", maxHostSize, -1)
	if err != nil {
		return HostRecord{}, fmt.Errorf("read host %d: %w", id, err)
	}
	return r.parseHostRev(id, rev, data)
}

// readListedHostRev reads one revision of a host record that a listing
// showed a moment ago as info: from a catalog row that matches it, else
// through the cache (revisions are create-once).
func (r *Repo) readListedHostRev(ctx context.Context, id, rev int, info store.Info, cat *catalogSet) (HostRecord, error) {
	if b, ok := cat.lookup(info); ok {
		if h, err := r.parseHostRev(id, rev, b); err == nil {
			return h, nil
		}
	}
	var h HostRecord
	var good bool
	data, err := r.readListed(ctx, info, "host record", maxHostSize, func(b []byte) bool {
		var err error
		h, err = r.parseHostRev(id, rev, b)
		good = err == nil
		return good
	})
	if err != nil {
		return HostRecord{}, fmt.Errorf("read host %d: %w", id, err)
	}
	if good {
		return h, nil
	}
	return r.parseHostRev(id, rev, data)
}

// parseHostRev checks and decodes revision rev of host id's record.
func (r *Repo) parseHostRev(id, rev int, data []byte) (HostRecord, error) {
	var h HostRecord
	switch err := unseal(data, &h); {
	case err != nil:
		return HostRecord{}, fmt.Errorf("%w: record of host %d (revision %d) is unreadable: %s", ErrCorrupt, id, rev, sealProblem(err))
	case h.ID != id:
		return HostRecord{}, fmt.Errorf("%w: record of host %d (revision %d) is unreadable: it names host %d", ErrCorrupt, id, rev, h.ID)
	}
	if err := checkDisks(hostDisks(h.Disks), r.cfg.ChunkSize); err != nil {
		return HostRecord{}, fmt.Errorf("%w: record of host %d (revision %d) is unreadable: %v", ErrCorrupt, id, rev, err)
	}
	return h, nil
}

func hostDisks(ds []DiskSource) []diskInfo {
	out := make([]diskInfo, len(ds))
	for i, d := range ds {
		out[i] = diskInfo{name: d.Name}
	}
	return out
}

// checkHost refuses a host record that readers would call damaged.
func (r *Repo) checkHost(h HostRecord) error {
	if err := checkDisks(hostDisks(h.Disks), r.cfg.ChunkSize); err != nil {
		return errorf(ErrInvalid, "host %s: %v", h.Name, err)
	}
	return nil
}

// AddHost registers a new host and returns it with its ID. Names must be
// unique among hosts that are not removed.
func (r *Repo) AddHost(ctx context.Context, h HostRecord) (HostRecord, error) {
	if err := r.checkHost(h); err != nil {
		return HostRecord{}, err
	}
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
	r.NoteChange(ctx)
	return h, nil
}

// UpdateHost writes h as the next revision after h.Rev. If another writer
// wrote that revision first it returns ErrConflict and changes nothing.
func (r *Repo) UpdateHost(ctx context.Context, h HostRecord) (HostRecord, error) {
	if err := r.checkHost(h); err != nil {
		return HostRecord{}, err
	}
	if h.Rev >= MaxID {
		return HostRecord{}, noIDLeft("revision of host "+h.Name, "its revision")
	}
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
	r.NoteChange(ctx)
	return h, nil
}

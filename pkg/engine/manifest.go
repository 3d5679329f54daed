package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dropback/dropback/pkg/store"
)

// Manifest describes one backup. Its presence under backups/ makes the
// backup visible; it is written last.
type Manifest struct {
	Version       int            `json:"version"`
	ID            int            `json:"id"`
	HostID        int            `json:"host_id"`
	HostName      string         `json:"host_name"`
	CreatedAt     time.Time      `json:"created_at"`
	CompletedAt   time.Time      `json:"completed_at"`
	Disks         []ManifestDisk `json:"disks"`
	IndexSegments []string       `json:"index_segments"`
	NewBytes      int64          `json:"new_bytes"`
	NewChunks     int64          `json:"new_chunks"`
	// Consistency is set for a backup of a running guest (live.go):
	// ConsistencyApplication or ConsistencyCrash.
	Consistency string `json:"consistency,omitempty"`
	// Snapshot is set when a snapshots/ marker exists; it is not stored in
	// the manifest itself.
	Snapshot bool `json:"-"`
}

// ManifestDisk is one disk of a backup.
type ManifestDisk struct {
	Name      string `json:"name"`
	Path      string `json:"path"`
	SizeBytes int64  `json:"size_bytes"`
	DataBytes int64  `json:"data_bytes"`
	Image     string `json:"image"`
	// Bitmap, Since and ReadBytes are set for a disk of a running guest
	// (live.go): the dirty bitmap started at the instant of this backup,
	// the backup and bitmap an incremental read is relative to, and the
	// bytes read from the disk.
	Bitmap    string     `json:"bitmap,omitempty"`
	Since     *DiskSince `json:"since,omitempty"`
	ReadBytes int64      `json:"read_bytes,omitempty"`
}

func objectName(prefix string, id int) string {
	return fmt.Sprintf("%s/%010d", prefix, id)
}

// parseObjectID returns the ID of an object named prefix/<ten digits>, or
// of a directory of such objects; a name of other digits is none of
// dropback's.
func parseObjectID(name, prefix string) (int, bool) {
	rest, ok := strings.CutPrefix(name, prefix+"/")
	if !ok {
		return 0, false
	}
	rest, _, _ = strings.Cut(rest, "/")
	return parseDigits(rest)
}

// listIDs returns the integer IDs of the objects under prefix.
func (r *Repo) listIDs(ctx context.Context, prefix string) (map[int]bool, error) {
	ids := map[int]bool{}
	err := r.st.List(ctx, prefix+"/", func(info store.Info) error {
		if id, ok := parseObjectID(info.Name, prefix); ok {
			ids[id] = true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	return ids, nil
}

// latestRevisions lists objects named prefix/<id>/<rev> and returns the
// highest revision of each ID; listing, when not nil, reserves each ID's
// entry from the memory budget.
func (r *Repo) latestRevisions(ctx context.Context, prefix string, listing *listCounter) (map[int]int, error) {
	latest := map[int]int{}
	err := r.st.List(ctx, prefix+"/", func(info store.Info) error {
		parts := strings.Split(info.Name, "/")
		if len(parts) != 3 {
			return nil
		}
		id, ok1 := parseDigits(parts[1])
		rev, ok2 := parseDigits(parts[2])
		if !ok1 || !ok2 {
			return nil
		}
		old, seen := latest[id]
		if rev > old {
			latest[id] = rev
		}
		if !seen {
			return listing.add()
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	return latest, nil
}

// revisions lists objects named prefix/<id>/<rev> and returns the
// revisions of each ID, lowest first, and what the listing showed of each
// object, by name; listing, when not nil, reserves each name from the
// memory budget.
func (r *Repo) revisions(ctx context.Context, prefix string, listing *listCounter) (map[int][]int, map[string]store.Info, error) {
	out := map[int][]int{}
	infos := map[string]store.Info{}
	err := r.st.List(ctx, prefix+"/", func(info store.Info) error {
		parts := strings.Split(info.Name, "/")
		if len(parts) != 3 {
			return nil
		}
		id, ok1 := parseDigits(parts[1])
		rev, ok2 := parseDigits(parts[2])
		if !ok1 || !ok2 {
			return nil
		}
		out[id] = append(out[id], rev)
		infos[info.Name] = info
		return listing.add()
	})
	if err != nil {
		return nil, nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	for _, revs := range out {
		sort.Ints(revs)
	}
	return out, infos, nil
}

// allocate writes the object name(id) with the lowest ID above every ID it
// can see under the given prefixes, retrying with the next ID when another
// writer took one first. It returns the ID used. Past MaxID it fails: an
// ID never overflows or grows an eleventh digit.
func (r *Repo) allocate(ctx context.Context, prefixes []string, name func(id int) string, data func(id int) ([]byte, error)) (int, error) {
	top := 0
	for _, p := range prefixes {
		ids, err := r.listIDs(ctx, p)
		if err != nil {
			return 0, err
		}
		for id := range ids {
			top = max(top, id)
		}
	}
	for id := top + 1; ; id++ {
		if id > MaxID {
			kind := strings.TrimSuffix(prefixes[0], "s")
			return 0, noIDLeft(kind, kind)
		}
		// A listing may lag: an ID another prefix took (deleted/ of a
		// backup deleted a moment ago) is asked for by name.
		taken, err := r.takenElsewhere(ctx, prefixes[1:], id)
		if err != nil {
			return 0, err
		}
		if taken {
			continue
		}
		b, err := data(id)
		if err != nil {
			return 0, err
		}
		err = r.st.Put(ctx, name(id), b)
		if err == nil {
			return id, nil
		}
		if !errors.Is(err, store.ErrExists) {
			return 0, fmt.Errorf("write %s: %w", name(id), err)
		}
	}
}

// takenElsewhere reports whether id exists under any of prefixes.
func (r *Repo) takenElsewhere(ctx context.Context, prefixes []string, id int) (bool, error) {
	for _, p := range prefixes {
		_, err := r.st.Stat(ctx, objectName(p, id))
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return false, fmt.Errorf("look up %s: %w", objectName(p, id), err)
		}
	}
	return false, nil
}

// newerIDs returns the IDs above top that exist under prefix but that a
// listing made less than a ListLag ago may not show: it asks for top+1,
// top+2, … by name, under prefix and under the others (deleted/ of a backup
// deleted meanwhile), until neither has one.
func (r *Repo) newerIDs(ctx context.Context, prefix string, others []string, top int) ([]int, error) {
	var out []int
	for id := top + 1; id <= MaxID; id++ {
		_, err := r.st.Stat(ctx, objectName(prefix, id))
		switch {
		case err == nil:
			out = append(out, id)
			continue
		case !errors.Is(err, store.ErrNotFound):
			return nil, fmt.Errorf("look up %s: %w", objectName(prefix, id), err)
		}
		taken, err := r.takenElsewhere(ctx, others, id)
		if err != nil {
			return nil, err
		}
		if !taken {
			return out, nil
		}
	}
	return out, nil
}

// noIDLeft says that no number is left for a new what past MaxID, which
// held already has.
func noIDLeft(what, held string) error {
	return errorf(ErrCorrupt, "cannot number a new %s: the repository already holds %s %d, the highest ten digits can write (damaged, or planted?)",
		what, held, MaxID)
}

// Manifests lists every backup and snapshot, oldest first. A backup whose
// manifest is damaged is left out, so that one damaged manifest does not hide
// every other backup; verify reports it, and gc stops for it.
func (r *Repo) Manifests(ctx context.Context) ([]*Manifest, error) {
	out, _, err := r.readManifests(ctx)
	return out, err
}

// ManifestsAndDamage lists every backup and snapshot, oldest first, and
// the errors of those whose manifest is damaged, by ID.
func (r *Repo) ManifestsAndDamage(ctx context.Context) ([]*Manifest, map[int]error, error) {
	return r.readManifests(ctx)
}

// readManifests lists every backup and snapshot, oldest first, and the
// errors of those whose manifest is damaged, by ID.
//
// Where the context allows the cache (not gc, not verify), a manifest the
// listing shows is taken from a catalog row that matches the listing, if
// there is one (catalog.go).
func (r *Repo) readManifests(ctx context.Context) ([]*Manifest, map[int]error, error) {
	// The listing and the manifests read are reserved from the memory
	// budget as they come, so that a repository planted with millions of
	// manifests stops a command at the budget. What the caller keeps, the
	// manifests, stays reserved until the next list of manifests; the
	// listing's share ends with the call.
	r.mem.listAgain("manifests")
	hold, err := r.mem.reserve(0, "")
	if err != nil {
		return nil, nil, err
	}
	defer hold.release()
	listing := &listCounter{hold: hold, what: "the listing of backups"}
	catalogs := r.startCatalogs(ctx)
	defer func() { catalogs().release() }()
	// deleted/ and snapshots/ are listed while backups/ is: on a store
	// far away each listing is a round trip or more.
	var deleted, snaps map[int]bool
	var delErr, snapErr error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); deleted, delErr = r.listIDs(ctx, "deleted") }()
	go func() { defer wg.Done(); snaps, snapErr = r.listIDs(ctx, "snapshots") }()
	listed := map[int]store.Info{}
	ids := map[int]bool{}
	err = r.st.List(ctx, "backups/", func(info store.Info) error {
		if id, ok := parseObjectID(info.Name, "backups"); ok {
			ids[id] = true
			listed[id] = info
			return listing.add()
		}
		return nil
	})
	wg.Wait()
	if err != nil {
		return nil, nil, fmt.Errorf("list backups: %w", err)
	}
	if err := cmp.Or(delErr, snapErr); err != nil {
		return nil, nil, err
	}
	top := 0
	for _, set := range []map[int]bool{ids, deleted} {
		for id := range set {
			top = max(top, id)
		}
	}
	// The newest manifests may be too young for the listing: a gc that
	// missed one would take its data for garbage.
	newer, err := r.newerIDs(ctx, "backups", []string{"deleted"}, top)
	if err != nil {
		return nil, nil, err
	}
	for _, id := range newer {
		ids[id] = true
	}
	order := make([]int, 0, len(ids))
	for id := range ids {
		order = append(order, id)
	}
	sort.Ints(order)
	cat := catalogs()
	read := make([]*Manifest, len(order))
	errs := make([]error, len(order))
	err = r.forEach(ctx, len(order), func(ctx context.Context, i int) error {
		var m *Manifest
		var err error
		if info, ok := listed[order[i]]; ok {
			m, err = r.readListedManifest(ctx, order[i], info, cat)
		} else {
			m, err = r.readManifest(ctx, order[i])
		}
		switch {
		case errors.Is(err, ErrNotFound):
			// deleted since the listing
		case errors.Is(err, ErrCorrupt):
			errs[i] = err
		case err != nil:
			return err
		default:
			read[i] = m
			return hold.grow(manifestMemory(m), fmt.Sprintf("the manifests of %d backups", len(order)))
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	out := make([]*Manifest, 0, len(order))
	damaged := map[int]error{}
	var kept int64
	for i, m := range read {
		if errs[i] != nil {
			damaged[order[i]] = errs[i]
		}
		if m != nil {
			m.Snapshot = snaps[m.ID]
			out = append(out, m)
			kept += manifestMemory(m)
		}
	}
	r.mem.keep("manifests", hold, kept)
	return out, damaged, nil
}

// manifestMemory estimates what a decoded manifest holds: the record and
// its strings, each disk and each index segment named.
func manifestMemory(m *Manifest) int64 {
	n := 512 + len(m.HostName) + 96*len(m.IndexSegments)
	for _, d := range m.Disks {
		n += 256 + len(d.Name) + len(d.Path) + len(d.Image) + len(d.Bitmap)
	}
	return int64(n)
}

// Manifest reads one backup's manifest and whether it is a snapshot.
func (r *Repo) Manifest(ctx context.Context, id int) (*Manifest, error) {
	m, err := r.readManifest(ctx, id)
	if err != nil {
		return nil, err
	}
	if _, err := r.st.Stat(ctx, objectName("snapshots", id)); err == nil {
		m.Snapshot = true
	}
	return m, nil
}

// readManifest reads a manifest object alone; a listing of snapshots/ says
// which are snapshots.
func (r *Repo) readManifest(ctx context.Context, id int) (*Manifest, error) {
	data, err := r.readObject(ctx, objectName("backups", id), "manifest", maxManifestSize, -1)
	return r.parseManifest(id, data, err)
}

// readListedManifest reads a manifest a listing showed a moment ago: from
// a catalog row that matches the listing, else through the cache.
func (r *Repo) readListedManifest(ctx context.Context, id int, info store.Info, cat *catalogSet) (*Manifest, error) {
	// A listing that may lag may also still show a manifest deleted a
	// moment ago, as it was: only the store itself can tell that it is
	// gone, so neither a catalog row nor the cache may stand in for it.
	if r.listLag() > 0 {
		return r.readManifest(ctx, id)
	}
	if b, ok := cat.lookup(info); ok {
		if m, err := r.parseManifest(id, b, nil); err == nil {
			return m, nil
		}
	}
	var m *Manifest
	data, err := r.readListed(ctx, info, "manifest", maxManifestSize, func(b []byte) bool {
		m, _ = r.parseManifest(id, b, nil)
		return m != nil
	})
	if err == nil && m != nil {
		return m, nil
	}
	return r.parseManifest(id, data, err)
}

// parseManifest checks and decodes the manifest of backup id, read with
// err.
func (r *Repo) parseManifest(id int, data []byte, err error) (*Manifest, error) {
	if errors.Is(err, store.ErrNotFound) {
		return nil, errorf(ErrNotFound, "no backup with ID %d", id)
	}
	if err != nil {
		return nil, fmt.Errorf("read backup %d: %w", id, err)
	}
	var m Manifest
	if err := unseal(data, &m); err != nil {
		return nil, fmt.Errorf("%w: manifest of backup %d is unreadable: %v", ErrCorrupt, id, sealProblem(err))
	}
	if m.ID != id {
		return nil, fmt.Errorf("%w: manifest of backup %d is unreadable: it names backup %d", ErrCorrupt, id, m.ID)
	}
	if m.Version > manifestVersion {
		return nil, errorf(ErrFormat, "backup %d has manifest version %d; upgrade dropback", id, m.Version)
	}
	if err := checkDisks(manifestDisks(m.Disks), r.cfg.ChunkSize); err != nil {
		return nil, fmt.Errorf("%w: manifest of backup %d is unreadable: %v", ErrCorrupt, id, err)
	}
	return &m, nil
}

// diskInfo is what checkDisks needs of a disk of a manifest or host record.
type diskInfo struct {
	name string
	size int64
}

func manifestDisks(ds []ManifestDisk) []diskInfo {
	out := make([]diskInfo, len(ds))
	for i, d := range ds {
		out[i] = diskInfo{d.Name, d.SizeBytes}
	}
	return out
}

// checkDisks checks the disks of a manifest or host record: at most
// MaxDisks, each named, no name twice, no size below zero or larger than an
// image index can describe in chunks of chunkSize.
func checkDisks(disks []diskInfo, chunkSize int) error {
	if len(disks) > MaxDisks {
		return fmt.Errorf("%d disks, more than the %d a host can have", len(disks), MaxDisks)
	}
	seen := make(map[string]bool, len(disks))
	for _, d := range disks {
		switch {
		case d.name == "":
			return errors.New("a disk has no name")
		case seen[d.name]:
			return fmt.Errorf("two disks are named %q", d.name)
		case d.size < 0 || d.size/int64(chunkSize) >= maxImageChunks:
			return fmt.Errorf("disk %q has a size of %d bytes", d.name, d.size)
		}
		seen[d.name] = true
	}
	return nil
}

// Images returns the image IDs of a manifest's disks.
func (m *Manifest) Images() ([]ID, error) {
	ids := make([]ID, len(m.Disks))
	for i, d := range m.Disks {
		id, err := ParseID(d.Image)
		if err != nil {
			return nil, fmt.Errorf("%w: backup %d disk %s: %v", ErrCorrupt, m.ID, d.Name, err)
		}
		ids[i] = id
	}
	return ids, nil
}

// segmentIDs returns the index segments a manifest names.
func (m *Manifest) segmentIDs() []ID {
	var ids []ID
	for _, s := range m.IndexSegments {
		if id, err := ParseID(s); err == nil {
			ids = append(ids, id)
		}
	}
	return ids
}

// DeleteBackup deletes a backup or snapshot: only its manifest (and marker);
// gc reclaims the data no other backup uses. The ID is marked as used first,
// so it is never given to another backup.
func (r *Repo) DeleteBackup(ctx context.Context, id int) error {
	err := r.st.Put(ctx, objectName("deleted", id), []byte("{}\n"))
	if err != nil && !errors.Is(err, store.ErrExists) {
		return fmt.Errorf("delete backup %d: %w", id, err)
	}
	if err := r.st.Delete(ctx, objectName("backups", id)); err != nil {
		return fmt.Errorf("delete backup %d: %w", id, err)
	}
	if err := r.st.Delete(ctx, objectName("snapshots", id)); err != nil {
		return fmt.Errorf("delete backup %d: %w", id, err)
	}
	r.NoteChange(ctx)
	return nil
}

// MarkSnapshot turns a backup into a snapshot, exempt from retention.
//
// It decides against retention through the backup's fate object: see
// Expire.
func (r *Repo) MarkSnapshot(ctx context.Context, id int) error {
	if _, err := r.Manifest(ctx, id); err != nil {
		return err
	}
	fate, err := r.decideFate(ctx, id, fateSnapshot)
	if err != nil {
		return fmt.Errorf("convert backup %d: %w", id, err)
	}
	if fate == fateExpired {
		return errorf(ErrNotFound, "backup %d is being deleted by retention and cannot become a snapshot", id)
	}
	err = r.st.Put(ctx, objectName("snapshots", id), []byte("{}\n"))
	if err != nil && !errors.Is(err, store.ErrExists) {
		return fmt.Errorf("convert backup %d: %w", id, err)
	}
	r.NoteChange(ctx)
	return nil
}

// ErrKept means retention left a backup alone: it became a snapshot.
var ErrKept = errors.New("kept as a snapshot")

// Backup fates, decided once per backup by whoever writes fate/<id> first.
const (
	fateExpired  = "expired"
	fateSnapshot = "snapshot"
)

// Expire deletes a backup that retention (a schedule, or prune) no longer
// keeps, unless it became a snapshot, which retention never deletes: then
// it returns ErrKept. Retention decides on a reading of the manifests that
// may be hours old, and a user may convert the backup meanwhile; the two
// race through one create-once object, fate/<id>, and the first to write
// it decides.
func (r *Repo) Expire(ctx context.Context, id int) error {
	fate, err := r.decideFate(ctx, id, fateExpired)
	if err != nil {
		return fmt.Errorf("expire backup %d: %w", id, err)
	}
	if fate == fateSnapshot {
		return ErrKept
	}
	// A snapshot of before fates were written has only its marker.
	if _, err := r.st.Stat(ctx, objectName("snapshots", id)); err == nil {
		return ErrKept
	} else if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("expire backup %d: %w", id, err)
	}
	return r.DeleteBackup(ctx, id)
}

// decideFate writes fate/<id> as want unless it exists, and returns the
// fate that stands.
func (r *Repo) decideFate(ctx context.Context, id int, want string) (string, error) {
	name := objectName("fate", id)
	err := r.st.Put(ctx, name, []byte(want+"\n"))
	if err == nil {
		return want, nil
	}
	if !errors.Is(err, store.ErrExists) {
		return "", err
	}
	data, err := r.st.Get(ctx, name, 0, 64)
	if err != nil {
		return "", err
	}
	switch got := strings.TrimSpace(string(data)); got {
	case fateExpired, fateSnapshot:
		return got, nil
	default:
		// A damaged fate decides nothing: keep the backup.
		return fateSnapshot, nil
	}
}

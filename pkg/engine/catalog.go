package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/dropback/dropback/pkg/store"
)

// The catalog (docs/format.md, "catalog/"): gc writes copies of every
// manifest and of each host's latest record, each with the size and store
// time the listing showed for it, into a few content-named objects, so
// that a listing of thousands of backups reads a few objects instead of
// one a backup. It is an accelerator only: a reader takes an object's bytes
// from a row only when the listing it just made shows that name with the
// row's size and time, and checks them as if read from the store; anything
// else is read from the store as if there were no catalog.

const (
	catalogMagic = "DBCAT001"
	// catalogTarget is the size of rows past which gc starts another
	// catalog; maxCatalogSize is the most a reader reads of one.
	catalogTarget  = 4 << 20
	maxCatalogSize = 64 << 20
	// catalogRowHead is a row's fixed part: name length, size, time and
	// length of the bytes.
	catalogRowHead = 2 + 8 + 8 + 4
)

// catalogRow is one object as gc listed and read it.
type catalogRow struct {
	name  string
	size  int64
	mtime int64 // the store's time, in ns
	data  []byte
}

// catalogKey is what a listing must show of an object for its row to
// serve.
type catalogKey struct {
	name        string
	size, mtime int64
}

func keyOf(info store.Info) catalogKey {
	return catalogKey{info.Name, info.Size, info.ModTime.UnixNano()}
}

// catalogLimit is the most a row of the named object may hold, or 0 for a
// name no catalog may hold.
func catalogLimit(name string) int64 {
	if id, ok := parseObjectID(name, "backups"); ok && name == objectName("backups", id) {
		return maxManifestSize
	}
	if rest, ok := strings.CutPrefix(name, "hosts/"); ok && isRevision(rest) && len(rest) == 21 {
		return maxHostSize
	}
	return 0
}

// encodeCatalog serialises rows, sorted by name.
func encodeCatalog(rows []catalogRow) []byte {
	n := len(catalogMagic) + 4
	for _, row := range rows {
		n += catalogRowHead + len(row.name) + len(row.data)
	}
	out := make([]byte, 0, n)
	out = append(out, catalogMagic...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(rows)))
	for _, row := range rows {
		out = binary.LittleEndian.AppendUint16(out, uint16(len(row.name)))
		out = append(out, row.name...)
		out = binary.LittleEndian.AppendUint64(out, uint64(row.size))
		out = binary.LittleEndian.AppendUint64(out, uint64(row.mtime))
		out = binary.LittleEndian.AppendUint32(out, uint32(len(row.data)))
		out = append(out, row.data...)
	}
	return out
}

// decodeCatalog decodes a catalog, refusing anything the format does not
// allow: a row's bytes alias b.
func decodeCatalog(b []byte) ([]catalogRow, error) {
	if !bytes.HasPrefix(b, []byte(catalogMagic)) || len(b) < len(catalogMagic)+4 {
		return nil, errors.New("it is not a catalog")
	}
	p := b[len(catalogMagic):]
	count := int(binary.LittleEndian.Uint32(p))
	p = p[4:]
	if count > len(p)/catalogRowHead {
		return nil, fmt.Errorf("it claims %d rows in %d bytes", count, len(b))
	}
	rows := make([]catalogRow, 0, count)
	prev := ""
	for i := range count {
		if len(p) < 2 {
			return nil, fmt.Errorf("row %d is cut short", i)
		}
		nl := int(binary.LittleEndian.Uint16(p))
		if len(p) < 2+nl+8+8+4 {
			return nil, fmt.Errorf("row %d is cut short", i)
		}
		name := string(p[2 : 2+nl])
		p = p[2+nl:]
		size := int64(binary.LittleEndian.Uint64(p))
		mtime := int64(binary.LittleEndian.Uint64(p[8:]))
		dl := int64(binary.LittleEndian.Uint32(p[16:]))
		p = p[20:]
		limit := catalogLimit(name)
		switch {
		case limit == 0:
			return nil, fmt.Errorf("row %d names %q, which no catalog holds", i, name)
		case name <= prev:
			return nil, fmt.Errorf("row %d (%s) is out of order", i, name)
		case dl > limit || dl > int64(len(p)):
			return nil, fmt.Errorf("row %d (%s) is cut short or too long", i, name)
		case size != dl:
			return nil, fmt.Errorf("row %d (%s) holds %d bytes of an object of %d", i, name, dl, size)
		}
		rows = append(rows, catalogRow{name: name, size: size, mtime: mtime, data: p[:dl:dl]})
		p = p[dl:]
		prev = name
	}
	if len(p) != 0 {
		return nil, fmt.Errorf("%d bytes follow its last row", len(p))
	}
	return rows, nil
}

// catalogGroups splits rows into catalogs of about catalogTarget bytes;
// a row is never split.
func catalogGroups(rows []catalogRow) [][]catalogRow {
	return groupsOf(rows, 0, catalogTarget, func(row catalogRow) int { return catalogRowHead + len(row.name) + len(row.data) })
}

// catalogSet is the rows of the catalogs a reader listed, by what a
// listing must show of their object.
type catalogSet struct {
	rows  map[catalogKey][]byte
	holds []*memHold
}

// release gives back to the memory budget what the catalogs held.
func (c *catalogSet) release() {
	if c == nil {
		return
	}
	for _, h := range c.holds {
		h.release()
	}
	c.rows, c.holds = nil, nil
}

// lookup returns the bytes of the object a listing showed as info, if a
// catalog holds them.
func (c *catalogSet) lookup(info store.Info) ([]byte, bool) {
	if c == nil {
		return nil, false
	}
	b, ok := c.rows[keyOf(info)]
	return b, ok
}

// startCatalogs starts reading the catalogs and returns a function that
// waits for them, and gives the same set each time it is called. It gives
// nil (no catalog) where reads must go to the store (withoutCache: gc,
// verify); a catalog that cannot be read only makes the listing slower,
// and is left out. The caller releases the set, also when it returns
// before it needed it: `defer func() { catalogs().release() }()`.
func (r *Repo) startCatalogs(ctx context.Context) func() *catalogSet {
	if ctx.Value(noCacheKey{}) != nil {
		return func() *catalogSet { return nil }
	}
	ch := make(chan *catalogSet, 1)
	go func() { ch <- r.loadCatalogs(ctx) }()
	var once sync.Once
	var set *catalogSet
	return func() *catalogSet {
		once.Do(func() { set = <-ch })
		return set
	}
}

func (r *Repo) loadCatalogs(ctx context.Context) *catalogSet {
	infos, err := r.listCatalogs(ctx)
	if err != nil || len(infos) == 0 {
		return nil
	}
	read := make([][]catalogRow, len(infos))
	holds := make([]*memHold, len(infos))
	_ = r.forEach(ctx, len(infos), func(ctx context.Context, i int) error {
		// The stored bytes and the plaintext, within the memory budget:
		// a catalog that does not fit is not read, which costs only
		// speed.
		hold, err := r.mem.reserve(2*min(infos[i].Size, maxCatalogSize), "a catalog")
		if err != nil {
			return nil
		}
		holds[i] = hold
		read[i], _ = r.readCatalog(ctx, infos[i], true)
		return nil
	})
	set := &catalogSet{rows: map[catalogKey][]byte{}}
	for _, h := range holds {
		if h != nil {
			set.holds = append(set.holds, h)
		}
	}
	for _, rows := range read {
		for _, row := range rows {
			set.rows[catalogKey{row.name, row.size, row.mtime}] = row.data
		}
	}
	return set
}

// listCatalogs lists the objects under catalog/ that are named as a
// catalog is.
func (r *Repo) listCatalogs(ctx context.Context) ([]store.Info, error) {
	var out []store.Info
	err := r.st.List(ctx, "catalog/", func(info store.Info) error {
		if isHexID(strings.TrimPrefix(info.Name, "catalog/")) {
			out = append(out, info)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list catalogs: %w", err)
	}
	return out, nil
}

// readCatalog reads and checks the catalog a listing showed as info:
// through the cache when cached is set (a catalog never changes), else
// from the store. A catalog that does not match its name or does not
// decode is ErrCorrupt.
func (r *Repo) readCatalog(ctx context.Context, info store.Info, cached bool) ([]catalogRow, error) {
	id, err := ParseID(strings.TrimPrefix(info.Name, "catalog/"))
	if err != nil {
		return nil, err
	}
	var rows []catalogRow
	var data []byte
	if cached {
		data, err = r.readListed(ctx, info, "catalog", maxCatalogSize, func(b []byte) bool {
			rows = nil
			if r.contentID(b) != id {
				return false
			}
			var err error
			rows, err = decodeCatalog(b)
			return err == nil
		})
	} else {
		data, err = r.readObject(ctx, info.Name, "catalog", maxCatalogSize, info.Size)
	}
	if err != nil {
		return nil, err
	}
	if rows != nil {
		return rows, nil
	}
	if r.contentID(data) != id {
		return nil, fmt.Errorf("%w: catalog %s does not match its name", ErrCorrupt, id)
	}
	rows, err = decodeCatalog(data)
	if err != nil {
		return nil, fmt.Errorf("%w: catalog %s is damaged: %v", ErrCorrupt, id, err)
	}
	return rows, nil
}

// catalogRows lists backups/ and hosts/ and reads, from the store, every
// manifest and each host's record at its highest listed revision, as rows
// of a catalog, sorted by name. An object that is gone or damaged is left
// out: a reader reads it from the store, and verify reports it.
//
// What the rows hold is reserved in hold, twice (the rows and the
// catalogs encoded from them); past the memory budget it fails with
// ErrMemory.
func (r *Repo) catalogRows(ctx context.Context, hold *memHold) ([]catalogRow, error) {
	var infos []store.Info
	err := r.st.List(ctx, "backups/", func(info store.Info) error {
		if catalogLimit(info.Name) != 0 {
			infos = append(infos, info)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list backups: %w", err)
	}
	latest := map[int]store.Info{}
	err = r.st.List(ctx, "hosts/", func(info store.Info) error {
		if catalogLimit(info.Name) == 0 {
			return nil
		}
		id, _ := parseObjectID(info.Name, "hosts")
		if old, ok := latest[id]; !ok || info.Name > old.Name {
			latest[id] = info
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list hosts: %w", err)
	}
	for _, info := range latest {
		infos = append(infos, info)
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].Name < infos[j].Name })
	rows := make([]catalogRow, len(infos))
	err = r.forEach(ctx, len(infos), func(ctx context.Context, i int) error {
		info := infos[i]
		limit := catalogLimit(info.Name)
		if err := hold.grow(2*min(info.Size, limit), "the catalog"); err != nil {
			return err
		}
		data, err := r.readObject(ctx, info.Name, "catalog row", limit, info.Size)
		switch {
		case errors.Is(err, store.ErrNotFound) || errors.Is(err, ErrCorrupt):
			return nil
		case err != nil:
			return err
		case int64(len(data)) != info.Size || !r.rowChecks(info.Name, data):
			return nil
		}
		rows[i] = catalogRow{name: info.Name, size: info.Size, mtime: info.ModTime.UnixNano(), data: data}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := rows[:0]
	for _, row := range rows {
		if row.name != "" {
			out = append(out, row)
		}
	}
	return out, nil
}

// rowChecks reports whether data is a readable object of the name, as a
// reader would check it.
func (r *Repo) rowChecks(name string, data []byte) bool {
	if id, ok := parseObjectID(name, "backups"); ok {
		_, err := r.parseManifest(id, data, nil)
		return err == nil
	}
	parts := strings.Split(name, "/")
	id, _ := parseDigits(parts[1])
	rev, _ := parseDigits(parts[2])
	_, err := r.parseHostRev(id, rev, data)
	return err == nil
}

// writeCatalog is gc's last step but one: it writes catalogs of every
// manifest and latest host record, read from the store, then deletes the
// catalogs it listed before that are not among them. It returns how many
// catalogs it wrote.
func (g *gcRun) writeCatalog(ctx context.Context) (int, error) {
	r := g.r
	listed := r.now()
	old, err := r.listCatalogs(ctx)
	if err != nil {
		return 0, fmt.Errorf("gc: %w", err)
	}
	had := map[string]bool{}
	for _, info := range old {
		had[info.Name] = true
	}
	hold, err := r.mem.reserve(0, "")
	if err != nil {
		return 0, err
	}
	defer hold.release()
	rows, err := r.catalogRows(ctx, hold)
	if errors.Is(err, ErrMemory) {
		// Too large for the memory budget: the catalogs stay as they
		// are, which costs only speed.
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("gc: write the catalog: %w", err)
	}
	keep := map[string]bool{}
	written := 0
	for _, group := range catalogGroups(rows) {
		data := encodeCatalog(group)
		name := "catalog/" + r.contentID(data).String()
		keep[name] = true
		if had[name] {
			continue // the same rows: the same object
		}
		err := r.putObject(ctx, name, data)
		if errors.Is(err, errNameDamaged) {
			// A damaged object holds the name: leave every catalog as
			// it is, for verify to report.
			return written, nil
		}
		if err != nil {
			return written, fmt.Errorf("gc: write the catalog: %w", err)
		}
		written++
	}
	for _, info := range old {
		if keep[info.Name] {
			continue
		}
		if err := g.delete(ctx, info.Name, listed); err != nil {
			return written, err
		}
	}
	return written, nil
}

// catalogProblems reads every catalog from the store and names the damaged
// ones: a catalog that does not open, match its name or decode, or a row
// whose object the listing shows with the row's size and time but that
// holds other bytes than the object (a forged row: readers would serve
// it).
func (r *Repo) catalogProblems(ctx context.Context) ([]string, error) {
	infos, err := r.listCatalogs(ctx)
	if err != nil || len(infos) == 0 {
		return nil, err
	}
	listed := map[catalogKey]bool{}
	for _, prefix := range []string{"backups/", "hosts/"} {
		err := r.st.List(ctx, prefix, func(info store.Info) error {
			listed[keyOf(info)] = true
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", prefix, err)
		}
	}
	var mu sync.Mutex
	var problems []string
	add := func(format string, args ...any) {
		mu.Lock()
		problems = append(problems, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	for _, info := range infos {
		if err := r.checkCatalog(ctx, info, listed, add); err != nil {
			return nil, err
		}
	}
	sort.Strings(problems)
	return problems, nil
}

// checkCatalog reads one catalog from the store and names its damage by
// add: see catalogProblems. The error is for failing to check it at all.
func (r *Repo) checkCatalog(ctx context.Context, info store.Info, listed map[catalogKey]bool, add func(string, ...any)) error {
	const fix = "a catalog only speeds up listings; `dropback repo gc` writes a new one and deletes this"
	hold, err := r.mem.reserve(2*min(info.Size, maxCatalogSize), "a catalog")
	if err != nil {
		return err
	}
	defer hold.release()
	rows, err := r.readCatalog(ctx, info, false)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil
	case errors.Is(err, ErrCorrupt):
		add("%s: %v (%s)", info.Name, err, fix)
		return nil
	case err != nil:
		return err
	}
	return r.forEach(ctx, len(rows), func(ctx context.Context, i int) error {
		row := rows[i]
		if !listed[catalogKey{row.name, row.size, row.mtime}] {
			return nil // gone or changed since: no reader takes it
		}
		data, err := r.readObject(ctx, row.name, "catalog row", catalogLimit(row.name), row.size)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return nil
		case err != nil && !errors.Is(err, ErrCorrupt):
			return err
		case err == nil && bytes.Equal(data, row.data):
			return nil
		}
		add("%s: its row of %s holds other bytes than the object (%s)", info.Name, row.name, fix)
		return nil
	})
}

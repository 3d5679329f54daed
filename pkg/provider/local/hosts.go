package local

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/dropback/dropback/pkg/engine"
	"github.com/dropback/dropback/pkg/provider"
	"github.com/dropback/dropback/pkg/qcow2"
)

var hostNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// checkHostName accepts names a DNS label or a Droplet name would accept.
func checkHostName(name string) error {
	if !hostNameRE.MatchString(name) {
		return provider.Errorf(provider.ErrInvalid, "invalid host name %q: use 1 to 63 letters, digits, '.', '-' or '_', starting with a letter or digit",
			printable(name))
	}
	if _, err := strconv.Atoi(name); err == nil {
		return provider.Errorf(provider.ErrInvalid, "invalid host name %q: a name cannot be all digits, as hosts are also named by ID", name)
	}
	return nil
}

// printable shortens and escapes a user-given string for a one-line message.
func printable(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strings.Trim(strconv.Quote(s), `"`)
}

// hosts opens the repository and reads its registered (not removed) hosts,
// but those whose record cannot be read.
func (p *Provider) hosts(ctx context.Context) (*engine.Repo, []engine.HostRecord, error) {
	r, recs, _, err := p.hostsAndDamage(ctx)
	return r, recs, err
}

// hostsAndDamage is hosts, and the errors of the hosts whose record cannot
// be read, by ID.
func (p *Provider) hostsAndDamage(ctx context.Context) (*engine.Repo, []engine.HostRecord, map[int]error, error) {
	r, err := p.open(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	all, damaged, err := r.HostsAndDamage(ctx)
	if err != nil {
		return nil, nil, nil, mapErr(err)
	}
	var recs []engine.HostRecord
	for _, h := range all {
		if !h.Removed {
			recs = append(recs, h)
		}
	}
	return r, recs, damaged, nil
}

// damagedHosts says which hosts cannot be read, so that a list never
// silently leaves one out; nil when none.
func damagedHosts(damaged map[int]error) error {
	if len(damaged) == 0 {
		return nil
	}
	ids := sortedIDs(damaged)
	return provider.Errorf(provider.ErrCorrupt, "the record of %s %s cannot be read, so it is not listed (%v); run `dropback backups verify`",
		plural(len(ids), "host", "hosts"), joinIDs(ids), damaged[ids[0]])
}

// ListHosts implements provider.Hosts. When some host records cannot be
// read it returns the hosts it could read and an error naming the rest.
func (p *Provider) ListHosts(ctx context.Context) ([]provider.Host, error) {
	r, recs, damaged, err := p.hostsAndDamage(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]provider.Host, 0, len(recs))
	for _, h := range recs {
		out = append(out, p.hostView(h))
	}
	if err := addLastErrors(ctx, r, out, p.opts.Now()); err != nil {
		return nil, err
	}
	p.skipHostWindows(ctx, r, out)
	return out, damagedHosts(damaged)
}

// GetHost implements provider.Hosts.
func (p *Provider) GetHost(ctx context.Context, ref string) (*provider.Host, error) {
	h, err := p.findHost(ctx, ref)
	if err != nil {
		return nil, err
	}
	r, err := p.open(ctx)
	if err != nil {
		return nil, err
	}
	v := []provider.Host{p.hostView(h)}
	p.skipHostWindows(ctx, r, v)
	return &v[0], addLastErrors(ctx, r, v, p.opts.Now())
}

// findHost resolves a host by ID or name.
func (p *Provider) findHost(ctx context.Context, ref string) (engine.HostRecord, error) {
	return p.lookupHost(ctx, ref, false)
}

// lookupHost resolves a host by ID or name, among removed hosts too when
// removed is set (their snapshots outlive them).
func (p *Provider) lookupHost(ctx context.Context, ref string, removed bool) (engine.HostRecord, error) {
	r, err := p.open(ctx)
	if err != nil {
		return engine.HostRecord{}, err
	}
	recs, damaged, err := r.HostsAndDamage(ctx)
	if err != nil {
		return engine.HostRecord{}, mapErr(err)
	}
	if id, err := strconv.Atoi(ref); err == nil {
		for _, h := range recs {
			if h.ID == id && (removed || !h.Removed) {
				return h, nil
			}
		}
		if derr, ok := damaged[id]; ok {
			return engine.HostRecord{}, mapErr(fmt.Errorf("host %d: %w", id, derr))
		}
		return engine.HostRecord{}, provider.Errorf(provider.ErrNotFound, "no host with ID %d", id)
	}
	var gone *engine.HostRecord // a removed host of that name, if no live one
	for _, h := range recs {
		if h.Name == ref && !h.Removed {
			return h, nil
		}
		if h.Name == ref {
			gone = &h
		}
	}
	if gone != nil && removed {
		return *gone, nil
	}
	if len(damaged) > 0 {
		// It may be one whose record cannot be read: say so, not that
		// it does not exist.
		ids := sortedIDs(damaged)
		return engine.HostRecord{}, provider.Errorf(provider.ErrCorrupt, "no host named %q among those whose record can be read; the record of %s %s cannot be read (%v); run `dropback backups verify`",
			printable(ref), plural(len(ids), "host", "hosts"), joinIDs(ids), damaged[ids[0]])
	}
	return engine.HostRecord{}, provider.Errorf(provider.ErrNotFound, "no host named %q; see `dropback hosts list`", printable(ref))
}

// sortedIDs returns the keys of m, lowest first.
func sortedIDs(m map[int]error) []int {
	ids := make([]int, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	return ids
}

// joinIDs writes IDs as "1, 2, 3", at most ten of them.
func joinIDs(ids []int) string {
	var b strings.Builder
	for i, id := range ids {
		if i == 10 {
			fmt.Fprintf(&b, " and %d more", len(ids)-i)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(id))
	}
	return b.String()
}

func (p *Provider) hostView(h engine.HostRecord) provider.Host {
	v := provider.Host{ID: h.ID, Name: h.Name, Kind: "disk", Status: "active", BackupEnabled: h.BackupEnabled, CreatedAt: h.CreatedAt, Disks: []provider.Disk{}}
	if h.VM != nil {
		v.Kind = h.VM.Kind
	}
	for _, d := range h.Disks {
		v.Disks = append(v.Disks, provider.Disk{Name: d.Name, Path: d.Path, SizeBytes: diskSize(d)})
	}
	p.addPolicy(&v, h)
	return v
}

// diskSize is the size the guest sees of a disk, read from the image: the
// file's size for a raw image, the device's for a block device, the
// virtual size in the header of a qcow2 image; nil when it cannot be read
// (the image is gone, or of another format).
func diskSize(d engine.DiskSource) *int64 {
	switch d.Format {
	case "", "raw":
		fi, err := os.Stat(d.Path)
		if err != nil {
			return nil
		}
		if fi.Mode().IsRegular() {
			return provider.Bytes(fi.Size())
		}
		f, size, err := engine.OpenDisk(d.Path)
		if err != nil {
			return nil
		}
		f.Close()
		return &size
	case "qcow2":
		f, err := os.Open(d.Path)
		if err != nil {
			return nil
		}
		defer f.Close()
		size, err := qcow2.VirtualSize(f)
		if err != nil {
			return nil
		}
		return &size
	}
	return nil
}

// AddHost implements provider.HostRegistry.
func (p *Provider) AddHost(ctx context.Context, spec provider.HostSpec) (*provider.Host, error) {
	if err := checkHostName(spec.Name); err != nil {
		return nil, err
	}
	vmRec, err := vmRecord(spec)
	if err != nil {
		return nil, err
	}
	r, others, err := p.hosts(ctx)
	if err != nil {
		return nil, err
	}
	if vmRec != nil {
		return p.addVMHost(ctx, r, others, spec.Name, vmRec)
	}
	rec := engine.HostRecord{Name: spec.Name}
	used := map[string]bool{}
	var notices []string
	for _, path := range spec.Disks {
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, provider.Errorf(provider.ErrInvalid, "disk %s: %v", printable(path), err)
		}
		f, _, err := engine.OpenDisk(abs)
		if err != nil {
			return nil, mapErr(err)
		}
		notices = append(notices, formatNotice(f, abs)...)
		f.Close()
		if owner := diskOwner(others, abs); owner != "" {
			return nil, provider.Errorf(provider.ErrInvalid, "disk %s is already a disk of host %s", abs, owner)
		}
		name := diskName(abs, used)
		if used[abs] {
			return nil, provider.Errorf(provider.ErrInvalid, "disk %s is given twice", abs)
		}
		used[abs], used[name] = true, true
		rec.Disks = append(rec.Disks, engine.DiskSource{Name: name, Path: abs})
	}
	rec, err = r.AddHost(ctx, rec)
	if err != nil {
		return nil, mapErr(err)
	}
	v := p.hostView(rec)
	v.Notices = notices
	return &v, nil
}

// qcow2Magic begins every qcow2 image.
var qcow2Magic = []byte{'Q', 'F', 'I', 0xfb}

// formatNotice says, for a disk that is a qcow2 image, that dropback backs
// up the image's file and not the disk the guest sees.
func formatNotice(f *os.File, path string) []string {
	head := make([]byte, len(qcow2Magic))
	if _, err := f.ReadAt(head, 0); err != nil || !bytes.Equal(head, qcow2Magic) {
		return nil
	}
	return []string{fmt.Sprintf("disk %s is a qcow2 image: dropback backs up and restores the file's bytes as they are, "+
		"not the disk the guest sees; to back up the guest's disk, convert it to raw (qemu-img convert -O raw) or add its block device", printable(path))}
}

// diskName names a disk after its file, unique within the host.
func diskName(path string, used map[string]bool) string {
	base := filepath.Base(path)
	name := base
	for i := 2; used[name]; i++ {
		name = fmt.Sprintf("%s-%d", base, i)
	}
	return name
}

// diskOwner returns the name of the host that has path as a disk, or "".
func diskOwner(hosts []engine.HostRecord, path string) string {
	for _, h := range hosts {
		for _, d := range h.Disks {
			if sameFile(d.Path, path) {
				return h.Name
			}
		}
	}
	return ""
}

func sameFile(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	if errA == nil || errB == nil {
		return errA == nil && errB == nil && os.SameFile(fa, fb)
	}
	// Both gone (a deleted image, and a path to where it was): the same
	// name in the same directory, however each path reaches it.
	if filepath.Base(a) != filepath.Base(b) {
		return false
	}
	da, errA := os.Stat(filepath.Dir(a))
	db, errB := os.Stat(filepath.Dir(b))
	return errA == nil && errB == nil && os.SameFile(da, db)
}

// RemoveHost implements provider.HostRegistry.
func (p *Provider) RemoveHost(ctx context.Context, ref string, opts provider.DisableOptions) error {
	r, err := p.open(ctx)
	if err != nil {
		return err
	}
	h, err := p.findHost(ctx, ref)
	if err != nil {
		return err
	}
	if opts.DeleteBackups {
		if err := p.deleteBackups(ctx, r, h.ID); err != nil {
			return err
		}
	}
	h.Removed, h.BackupEnabled = true, false
	if _, err := r.UpdateHost(ctx, h); err != nil {
		return fmt.Errorf("remove host %s: %w", h.Name, mapErr(err))
	}
	return nil
}

// skipHostWindows is skipDoneWindows for host views.
func (p *Provider) skipHostWindows(ctx context.Context, r *engine.Repo, hosts []provider.Host) {
	ids, pols, wins := make([]int, len(hosts)), make([]*provider.Policy, len(hosts)), make([]*provider.Window, len(hosts))
	for i := range hosts {
		ids[i], pols[i], wins[i] = hosts[i].ID, hosts[i].BackupPolicy, hosts[i].NextBackupWindow
	}
	p.skipDoneWindows(ctx, r, ids, pols, wins)
}

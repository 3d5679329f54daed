package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dropback/dropback/pkg/engine"
	"github.com/dropback/dropback/pkg/provider"
	"github.com/dropback/dropback/pkg/schedule"
)

func backupView(m *engine.Manifest) provider.Backup {
	newBytes := m.NewBytes
	b := provider.Backup{
		ID: m.ID, Type: provider.TypeBackup, Status: "available", CreatedAt: m.CreatedAt,
		HostID: m.HostID, HostName: m.HostName, NewBytes: &newBytes,
		// The ID makes the name unique: two backups may share a second.
		Name:       fmt.Sprintf("%s %s #%d", m.HostName, m.CreatedAt.UTC().Format("2006-01-02 15:04:05"), m.ID),
		ResourceID: strconv.Itoa(m.HostID), ResourceType: "host",
	}
	if m.Snapshot {
		b.Type = provider.TypeSnapshot
	}
	var data, size int64
	for _, d := range m.Disks {
		b.Disks = append(b.Disks, provider.BackupDisk{Name: d.Name, Path: d.Path, SizeBytes: d.SizeBytes, DataBytes: d.DataBytes})
		data += d.DataBytes
		size = max(size, d.SizeBytes)
	}
	b.SizeBytes = &data
	b.SizeGigabytes = gigabytes(data)
	b.Consistency = m.Consistency
	for i, d := range m.Disks {
		b.Disks[i].ReadBytes, b.Disks[i].Bitmap = d.ReadBytes, d.Bitmap
		if d.Since != nil {
			b.Disks[i].Since = &provider.BackupSince{BackupID: d.Since.Backup, Bitmap: d.Since.Bitmap}
		}
	}
	b.MinDiskSize = int((size + 1<<30 - 1) >> 30)
	return b
}

// gigabytes is n bytes in the API's size_gigabytes: binary gigabytes (GiB),
// to two places, and never 0 for a backup that holds data.
func gigabytes(n int64) float64 {
	g := math.Round(float64(n)/(1<<30)*100) / 100
	if g == 0 && n > 0 {
		g = 0.01
	}
	return g
}

// manifests returns the backups (snapshots false) or snapshots (true) of a
// host, or of every host when ref is "", oldest first.
func (p *Provider) manifests(ctx context.Context, ref string, snapshots bool) ([]*engine.Manifest, error) {
	r, err := p.open(ctx)
	if err != nil {
		return nil, err
	}
	// The host is looked up while the manifests are read: each costs
	// round trips to a store far away.
	var all []*engine.Manifest
	var damaged map[int]error
	done := make(chan error, 1)
	go func() {
		var err error
		all, damaged, err = r.ManifestsAndDamage(ctx)
		done <- err
	}()
	hostID := 0
	if ref != "" {
		h, err := p.findHost(ctx, ref)
		if err != nil {
			<-done
			return nil, err
		}
		hostID = h.ID
	}
	if err := <-done; err != nil {
		return nil, mapErr(err)
	}
	var out []*engine.Manifest
	for _, m := range all {
		if m.Snapshot == snapshots && (hostID == 0 || m.HostID == hostID) {
			out = append(out, m)
		}
	}
	return out, damagedError(damaged)
}

// damagedError says which backups cannot be read, so that a list never
// silently leaves one out; nil when none.
func damagedError(damaged map[int]error) error {
	if len(damaged) == 0 {
		return nil
	}
	ids := make([]int, 0, len(damaged))
	for id := range damaged {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	names := make([]string, len(ids))
	for i, id := range ids {
		names[i] = strconv.Itoa(id)
	}
	return provider.Errorf(provider.ErrCorrupt, "the manifest of %s %s cannot be read, so it is not listed (%v); run `dropback backups verify`",
		plural(len(ids), "backup", "backups"), strings.Join(names, ", "), damaged[ids[0]])
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// views are the backups of ms, oldest first: by the time each was taken,
// which --time may set earlier than a backup taken before it, then by ID.
// The last is the host's latest.
func views(ms []*engine.Manifest) []provider.Backup {
	out := make([]provider.Backup, 0, len(ms))
	for _, m := range ms {
		out = append(out, backupView(m))
	}
	sort.Slice(out, func(i, j int) bool { return takenBefore(out[i].CreatedAt, out[i].ID, out[j].CreatedAt, out[j].ID) })
	return out
}

// takenBefore orders backups as they were taken: by time, then by ID.
func takenBefore(t1 time.Time, id1 int, t2 time.Time, id2 int) bool {
	if !t1.Equal(t2) {
		return t1.Before(t2)
	}
	return id1 < id2
}

// ListBackups implements provider.Provider. When some manifests cannot be
// read it returns the backups it could read and an error naming the rest.
func (p *Provider) ListBackups(ctx context.Context, host string) ([]provider.Backup, error) {
	return p.list(ctx, host, false)
}

// ListSnapshots implements provider.Provider, as ListBackups.
func (p *Provider) ListSnapshots(ctx context.Context, host string) ([]provider.Backup, error) {
	return p.list(ctx, host, true)
}

func (p *Provider) list(ctx context.Context, host string, snapshots bool) ([]provider.Backup, error) {
	ms, err := p.manifests(ctx, host, snapshots)
	if err != nil && ms == nil {
		return nil, err
	}
	return views(ms), err
}

// GetBackup implements provider.Provider.
func (p *Provider) GetBackup(ctx context.Context, id int) (*provider.Backup, error) {
	r, err := p.open(ctx)
	if err != nil {
		return nil, err
	}
	m, err := r.Manifest(ctx, id)
	if err != nil {
		return nil, mapErr(err)
	}
	b := backupView(m)
	return &b, nil
}

// FindBackup implements provider.Backups. A removed host is found by its
// name or ID too, for the backups and snapshots it left.
func (p *Provider) FindBackup(ctx context.Context, host, ref string) (*provider.Backup, error) {
	r, err := p.open(ctx)
	if err != nil {
		return nil, err
	}
	if host == "" {
		id, err := strconv.Atoi(ref)
		if err != nil || id <= 0 {
			return nil, provider.Errorf(provider.ErrInvalid, "invalid backup %q: give a backup ID, or a host and an ID or latest", printable(ref))
		}
		m, err := r.Manifest(ctx, id)
		if err != nil {
			return nil, mapErr(err)
		}
		b := backupView(m)
		return &b, nil
	}
	h, err := p.lookupHost(ctx, host, true)
	if err != nil {
		return nil, err
	}
	m, err := p.findBackup(ctx, r, h, ref)
	if err != nil {
		return nil, err
	}
	if err := ofHost(m, h); err != nil {
		return nil, err
	}
	b := backupView(m)
	return &b, nil
}

// ofHost refuses a backup that is not of host h, naming whose it is.
func ofHost(m *engine.Manifest, h engine.HostRecord) error {
	if m.HostID == h.ID {
		return nil
	}
	if m.HostName == h.Name {
		return provider.Errorf(provider.ErrInvalid, "backup %d is of an earlier host %s (ID %d), not of host %s (ID %d); name it by its ID alone: %d",
			m.ID, m.HostName, m.HostID, h.Name, h.ID, m.ID)
	}
	return provider.Errorf(provider.ErrInvalid, "backup %d is of host %s, not of host %s", m.ID, m.HostName, h.Name)
}

// CreateBackup implements provider.Provider.
func (p *Provider) CreateBackup(ctx context.Context, ref string, opts provider.CreateOptions) (*provider.CreateResult, error) {
	// A backup dated in the future would be the newest for years, and
	// retention, which counts back from the newest, would expire the rest.
	if now := p.opts.Now(); opts.Time.After(now.Add(time.Minute)) {
		return nil, provider.Errorf(provider.ErrInvalid, "--time %s is in the future (now is %s)",
			opts.Time.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	r, err := p.open(ctx)
	if err != nil {
		return nil, err
	}
	h, err := p.findHost(ctx, ref)
	if err != nil {
		return nil, err
	}
	return p.backupHost(ctx, r, h, opts, nil)
}

// backupHost backs up h as the operation op, or as one of its own when op
// is nil.
func (p *Provider) backupHost(ctx context.Context, r *engine.Repo, h engine.HostRecord, opts provider.CreateOptions, op *engine.Op) (*provider.CreateResult, error) {
	if h.VM != nil {
		return p.backupVM(ctx, r, h, opts, op)
	}
	if err := checkDisks(ctx, r, h, opts.AcceptResize); err != nil {
		return nil, err
	}
	if err := checkNotLive(h, opts.AllowLive); err != nil {
		return nil, err
	}
	act, err := r.StartAction(ctx, "backup", "host", h.ID)
	if err != nil {
		return nil, mapErr(err)
	}
	stats := &engine.BackupStats{}
	start := time.Now()
	m, err := r.Backup(ctx, engine.BackupRequest{
		HostID: h.ID, HostName: h.Name, Disks: h.Disks, Time: opts.Time, Progress: opts.Progress, Op: op, Stats: stats,
	})
	if err != nil {
		// The caller says which host; the action record says it itself.
		err = mapErr(err)
		_ = r.FinishAction(context.WithoutCancel(ctx), act, 0, fmt.Errorf("back up host %s: %w", h.Name, err))
		if n := stats.Stored.Load(); n > 0 {
			err = &provider.AbandonedError{Err: err, StoredBytes: n}
		}
		return nil, err
	}
	if err := r.FinishAction(ctx, act, 0, nil); err != nil {
		return nil, err
	}
	return &provider.CreateResult{Backup: backupView(m), Action: actionView(*act), Summary: summary(stats, time.Since(start))}, nil
}

// summary is what a backup's stats say, over the time it took.
func summary(s *engine.BackupStats, took time.Duration) *provider.BackupSummary {
	sum := &provider.BackupSummary{
		ReadBytes: s.Read.Load(), NewBytes: s.New.Load(), StoredBytes: s.Stored.Load(),
		Seconds: math.Round(took.Seconds()*1000) / 1000,
	}
	if took > 0 {
		sum.BytesPerSecond = int64(float64(sum.ReadBytes) / took.Seconds())
	}
	return sum
}

// checkDisks refuses, before anything is written, as bad input is: a disk
// that is gone or is no disk, a block device of 0 bytes (detached, or its
// medium gone), and, unless acceptResize, a disk whose size differs from
// the host's last backup of it. A disk swapped, truncated or detached
// behind the host's back would otherwise become its newest backup, and
// retention would then count it as one.
func checkDisks(ctx context.Context, r *engine.Repo, h engine.HostRecord, acceptResize bool) error {
	sizes := make([]int64, len(h.Disks))
	names := make([]string, len(h.Disks))
	for i, d := range h.Disks {
		f, size, err := engine.OpenDisk(d.Path)
		if err != nil {
			return mapErr(err)
		}
		f.Close()
		sizes[i], names[i] = size, d.Name
	}
	if acceptResize {
		return nil
	}
	prev, err := r.PreviousDisks(ctx, h.ID, names)
	if err != nil {
		return mapErr(err)
	}
	for i, d := range h.Disks {
		if last, ok := prev[d.Name]; ok && last.SizeBytes != sizes[i] {
			return provider.Errorf(provider.ErrConfirm, "disk %s is %d bytes, but was %d bytes in backup %d; if it was resized on purpose, back it up with `dropback backups create %s --accept-resize`",
				printable(d.Name), sizes[i], last.SizeBytes, last.BackupID, h.Name)
		}
	}
	return nil
}

// findBackup resolves "latest" or an ID for a host. Latest is the newest
// backup or snapshot of the host; when a backup newer than it cannot be
// read, it may be this host's newest, so latest is refused rather than
// silently older.
func (p *Provider) findBackup(ctx context.Context, r *engine.Repo, h engine.HostRecord, ref string) (*engine.Manifest, error) {
	if ref == "latest" {
		all, damaged, err := r.ManifestsAndDamage(ctx)
		if err != nil {
			return nil, mapErr(err)
		}
		var mine []*engine.Manifest
		for _, m := range all {
			if m.HostID == h.ID {
				mine = append(mine, m)
			}
		}
		sort.Slice(mine, func(i, j int) bool {
			return takenBefore(mine[i].CreatedAt, mine[i].ID, mine[j].CreatedAt, mine[j].ID)
		})
		newest := 0
		if len(mine) > 0 {
			newest = mine[len(mine)-1].ID
		}
		if id := newerDamaged(damaged, newest); id != 0 {
			return nil, provider.Errorf(provider.ErrCorrupt, "backup %d cannot be read (%v) and may be the latest of host %s; name a backup ID to restore an older one, and run `dropback backups verify`",
				id, damaged[id], h.Name)
		}
		if len(mine) == 0 {
			return nil, provider.Errorf(provider.ErrNotFound, "host %s has no backups", h.Name)
		}
		return mine[len(mine)-1], nil
	}
	id, err := strconv.Atoi(ref)
	if err != nil || id <= 0 {
		return nil, provider.Errorf(provider.ErrInvalid, "invalid backup %q: give a backup ID or \"latest\"", printable(ref))
	}
	m, err := r.Manifest(ctx, id)
	if err != nil {
		return nil, mapErr(err)
	}
	return m, nil
}

// newerDamaged returns the lowest ID above id among the damaged manifests,
// or 0.
func newerDamaged(damaged map[int]error, id int) int {
	found := 0
	for d := range damaged {
		if d > id && (found == 0 || d < found) {
			found = d
		}
	}
	return found
}

// RestoreBackup implements provider.Provider. The restore announces itself
// to gc before it reads the backup's manifest, so that nothing it reads is
// deleted under it. On a repository it cannot write (read-only, full), it
// goes on unannounced and unrecorded, and says so.
func (p *Provider) RestoreBackup(ctx context.Context, req provider.RestoreRequest) (*provider.RestoreResult, error) {
	if req.ToNew != "" {
		return nil, &provider.UnsupportedError{Verb: "backups restore --to-new", Context: provider.ContextLocal,
			Alternative: "restore to a path with --to, then register it with `dropback hosts add`"}
	}
	r, err := p.open(ctx)
	if err != nil {
		return nil, err
	}
	op, notice, err := r.BeginReader(ctx, engine.OpRestore, 0)
	if err != nil {
		return nil, mapErr(err)
	}
	defer op.End()
	ctx = engine.WithOp(ctx, op)
	res := &provider.RestoreResult{}
	if notice != "" {
		res.Notices = append(res.Notices, notice)
	}
	h, m, targets, err := p.resolveRestore(ctx, r, req, true)
	if err != nil {
		return nil, err
	}
	act, err := r.StartAction(ctx, "restore", "host", h.ID)
	if err != nil {
		res.Notices = append(res.Notices, fmt.Sprintf("the restore is not recorded as an action: %v", err))
		act = &engine.ActionRecord{Type: "restore", Status: engine.ActionInProgress, StartedAt: time.Now().UTC().Truncate(time.Second), ResourceType: "host", ResourceID: h.ID}
	}
	stats, err := r.Restore(ctx, m, targets, req.Progress)
	if err != nil {
		err = targetErr(err) // the command says which backup
		if act.ID != 0 {
			_ = r.FinishAction(context.WithoutCancel(ctx), act, 0, fmt.Errorf("restore backup %d of host %s: %w", m.ID, h.Name, err))
		}
		return nil, err
	}
	if act.ID != 0 {
		if err := r.FinishAction(ctx, act, 0, nil); err != nil {
			res.Notices = append(res.Notices, fmt.Sprintf("the end of the restore is not recorded: %v", err))
		}
	} else {
		now := time.Now().UTC().Truncate(time.Second)
		act.Status, act.CompletedAt = engine.ActionCompleted, &now
	}
	res.Action, res.BackupID, res.HostID = actionView(*act), m.ID, m.HostID
	for i, d := range m.Disks {
		res.Disks = append(res.Disks, provider.RestoreDisk{Name: d.Name, Path: targets[i].Path, SizeBytes: d.SizeBytes, BytesWritten: stats[i].BytesWritten})
		res.BytesWritten += stats[i].BytesWritten
	}
	return res, nil
}

// resolveRestore finds the host, the backup and the targets of req; create
// makes the directory a multi-disk --to names.
func (p *Provider) resolveRestore(ctx context.Context, r *engine.Repo, req provider.RestoreRequest, create bool) (engine.HostRecord, *engine.Manifest, []engine.RestoreTarget, error) {
	// A removed host's backups can still be restored elsewhere.
	h, err := p.lookupHost(ctx, req.Host, req.To != "")
	if err != nil {
		return h, nil, nil, err
	}
	m, err := p.findBackup(ctx, r, h, req.Backup)
	if err != nil {
		return h, nil, nil, err
	}
	if err := ofHost(m, h); err != nil {
		return h, nil, nil, err
	}
	targets, err := p.restoreTargets(ctx, r, h, m, req, create)
	return h, m, targets, err
}

// PlanRestore implements provider.RestorePlanner: it resolves req as
// RestoreBackup would, checks every target, and writes nothing. It plans
// as if forced: what is at a target is reported (Exists), not refused.
func (p *Provider) PlanRestore(ctx context.Context, req provider.RestoreRequest) (*provider.RestorePlan, error) {
	if req.ToNew != "" {
		return nil, &provider.UnsupportedError{Verb: "backups restore --to-new", Context: provider.ContextLocal,
			Alternative: "restore to a path with --to, then register it with `dropback hosts add`"}
	}
	r, err := p.open(ctx)
	if err != nil {
		return nil, err
	}
	req.Force = true
	_, m, targets, err := p.resolveRestore(ctx, r, req, false)
	if err != nil {
		return nil, err
	}
	plan := &provider.RestorePlan{Backup: backupView(m)}
	for i, t := range targets {
		_, serr := os.Lstat(t.Path)
		plan.Targets = append(plan.Targets, provider.RestoreTarget{Disk: m.Disks[i].Name, Path: t.Path, InPlace: t.InPlace, Exists: serr == nil})
	}
	return plan, nil
}

// restoreTargets decides where each disk of m goes, onto the host's own
// disks or under req.To, and checks that each target can take its disk
// now (engine.CheckTarget), so that a restore that cannot succeed is
// refused before it is recorded or writes anything.
func (p *Provider) restoreTargets(ctx context.Context, r *engine.Repo, h engine.HostRecord, m *engine.Manifest, req provider.RestoreRequest, create bool) ([]engine.RestoreTarget, error) {
	targets, err := p.targetsOf(ctx, r, h, m, req, create)
	if err != nil {
		return nil, err
	}
	if err := checkRestoreTargets(ctx, h, targets, req.To == ""); err != nil {
		return nil, err
	}
	for i, t := range targets {
		if _, err := os.Stat(filepath.Dir(t.Path)); err != nil && !create {
			continue // a directory --to would make: the files are new
		}
		if err := engine.CheckTarget(t, m.Disks[i].SizeBytes); err != nil {
			return nil, targetErr(err)
		}
	}
	return targets, nil
}

func (p *Provider) targetsOf(ctx context.Context, r *engine.Repo, h engine.HostRecord, m *engine.Manifest, req provider.RestoreRequest, create bool) ([]engine.RestoreTarget, error) {
	if req.To == "" {
		if m.HostID != h.ID {
			return nil, provider.Errorf(provider.ErrInvalid, "backup %d is of host %s, not %s; restore it elsewhere with --to", m.ID, m.HostName, h.Name)
		}
		if !req.Force {
			return nil, provider.Errorf(provider.ErrConfirm, "restoring backup %d in place overwrites the disks of host %s; pass --force", m.ID, h.Name)
		}
		var targets []engine.RestoreTarget
		for _, d := range m.Disks {
			i := slices.IndexFunc(h.Disks, func(hd engine.DiskSource) bool { return hd.Name == d.Name })
			if i < 0 {
				return nil, provider.Errorf(provider.ErrInvalid, "host %s has no disk %s any more; restore it with --to", h.Name, d.Name)
			}
			if _, err := os.Lstat(h.Disks[i].Path); errors.Is(err, fs.ErrNotExist) {
				return nil, goneDisk(ctx, h, m, h.Disks[i])
			}
			targets = append(targets, engine.RestoreTarget{Path: h.Disks[i].Path, InPlace: true})
		}
		return targets, nil
	}
	hosts, err := r.Hosts(ctx)
	if err != nil {
		return nil, mapErr(err)
	}
	paths, err := targetPaths(req.To, m, create)
	if err != nil {
		return nil, err
	}
	targets := make([]engine.RestoreTarget, len(paths))
	for i, path := range paths {
		if owner := diskOwner(hosts, path); owner != "" {
			own := owner == h.Name && m.HostID == h.ID
			_, err := os.Lstat(path)
			switch {
			case own && errors.Is(err, fs.ErrNotExist) && rawDisk(h, path):
				// The host's own raw disk, gone: it is restored there as
				// a new file, which nothing else can be, unless its guest
				// runs on, writing to the deleted image.
				if err := notRunning(ctx, h); err != nil {
					return nil, err
				}
			case own && errors.Is(err, fs.ErrNotExist):
				i := slices.IndexFunc(h.Disks, func(hd engine.DiskSource) bool { return sameFile(hd.Path, path) })
				return nil, goneDisk(ctx, h, m, h.Disks[i])
			case own:
				return nil, provider.Errorf(provider.ErrInvalid, "%s is a disk of host %s; restore in place with `dropback backups restore %s %d`", path, owner, owner, m.ID)
			default:
				return nil, provider.Errorf(provider.ErrInvalid, "%s is a disk of host %s, and backup %d is of host %s: restore it to another path", path, owner, m.ID, m.HostName)
			}
		}
		targets[i] = engine.RestoreTarget{Path: path, Overwrite: req.Force}
	}
	return targets, nil
}

// goneDisk is the refusal of a restore over disk d of host h, which is
// gone: a raw image is restored to its path as a new file with --to; an
// image of another format holds other bytes than the guest sees, which
// are what a backup holds, so it is restored elsewhere and converted.
func goneDisk(ctx context.Context, h engine.HostRecord, m *engine.Manifest, d engine.DiskSource) error {
	if err := notRunning(ctx, h); err != nil {
		return err // first: the guest runs on the deleted image
	}
	if d.Format != "" && d.Format != "raw" {
		return provider.Errorf(provider.ErrInvalid, "disk %s of host %s is gone, and was a %s image, while a backup holds the bytes the guest sees: restore it with `dropback backups restore %s %d --to FILE`, then `qemu-img convert -f raw -O %s FILE %s`",
			printable(d.Path), h.Name, d.Format, h.Name, m.ID, d.Format, shellWord(d.Path))
	}
	return provider.Errorf(provider.ErrInvalid, "disk %s of host %s is gone; restore it there as a new file with `dropback backups restore %s %d --to %s`",
		printable(d.Path), h.Name, h.Name, m.ID, shellWord(d.Path))
}

// rawDisk reports whether path is a disk of h that is a raw image or a
// block device, whose bytes are the guest's.
func rawDisk(h engine.HostRecord, path string) bool {
	for _, d := range h.Disks {
		if sameFile(d.Path, path) {
			return d.Format == "" || d.Format == "raw"
		}
	}
	return false
}

// shellWord writes path so that a command suggested with it runs when
// pasted into a shell: whole, quoted where it needs to be; shortened only
// where it holds characters a terminal would act on.
func shellWord(path string) string {
	if strings.ContainsFunc(path, func(c rune) bool { return c < ' ' || c == 0x7f }) {
		return printable(path)
	}
	if strings.Trim(path, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./-+:@%=,") == "" {
		return path
	}
	return "'" + strings.ReplaceAll(path, "'", `'\''`) + "'"
}

// targetErr maps a restore's error to the provider's: something at a --to
// path that only --force may replace asks for it.
func targetErr(err error) error {
	if errors.Is(err, engine.ErrTargetExists) {
		return provider.Errorf(provider.ErrConfirm, "%v; pass --force to overwrite it", err)
	}
	return mapErr(err)
}

// targetPaths maps --to onto one path per disk: the path itself for one
// disk (or a file named after the disk inside it, when it is a directory),
// files named after the disks inside it for several, made when create is
// set.
func targetPaths(to string, m *engine.Manifest, create bool) ([]string, error) {
	names := make([]string, len(m.Disks))
	for i, d := range m.Disks {
		names[i] = filepath.Base(d.Name)
	}
	return targetPathsOf(to, names, create)
}

// targetPathsOf maps --to onto one path per file name: the path itself
// for one name, unless it is a directory, else the names inside it, a
// directory made when create is set.
func targetPathsOf(to string, names []string, create bool) ([]string, error) {
	abs, err := filepath.Abs(to)
	if err != nil {
		return nil, provider.Errorf(provider.ErrInvalid, "--to %s: %v", printable(to), err)
	}
	fi, statErr := os.Stat(abs)
	isDir := statErr == nil && fi.IsDir()
	if len(names) == 1 && !isDir {
		if _, err := os.Stat(filepath.Dir(abs)); err != nil {
			return nil, provider.Errorf(provider.ErrInvalid, "--to %s: the directory does not exist", abs)
		}
		return []string{abs}, nil
	}
	if statErr != nil {
		if !errors.Is(statErr, os.ErrNotExist) {
			return nil, provider.Errorf(provider.ErrInvalid, "--to %s: %v", abs, statErr)
		}
		if create {
			if err := os.MkdirAll(abs, 0o755); err != nil {
				return nil, fmt.Errorf("create %s: %w", abs, err)
			}
		}
	}
	var out []string
	for _, name := range names {
		out = append(out, filepath.Join(abs, name))
	}
	return out, nil
}

// VerifyBackups implements provider.Provider.
func (p *Provider) VerifyBackups(ctx context.Context, ids []int, opts provider.VerifyOptions) (*provider.VerifyReport, error) {
	r, err := p.open(ctx)
	if err != nil {
		return nil, err
	}
	res, err := r.Verify(ctx, ids, opts.Progress)
	if err != nil {
		return nil, mapErr(err)
	}
	rep := &provider.VerifyReport{Chunks: res.Chunks, Bytes: res.Bytes, Problems: res.Problems, Notices: res.Notices, Backups: []provider.VerifiedBackup{}}
	if rep.Problems == nil {
		rep.Problems = []string{}
	}
	for _, b := range res.Backups {
		v := provider.VerifiedBackup{ID: b.ID, HostName: b.HostName, Status: "ok", Problem: b.Problem}
		if !b.OK {
			v.Status = "damaged"
		}
		rep.Backups = append(rep.Backups, v)
	}
	return rep, nil
}

// deleteBackups deletes every backup (not snapshot) of a host.
func (p *Provider) deleteBackups(ctx context.Context, r *engine.Repo, hostID int) error {
	all, err := r.Manifests(ctx)
	if err != nil {
		return mapErr(err)
	}
	for _, m := range all {
		if m.HostID == hostID && !m.Snapshot {
			if err := r.Expire(ctx, m.ID); err != nil && !errors.Is(err, engine.ErrKept) {
				return mapErr(err)
			}
		}
	}
	return nil
}

// PruneBackups implements provider.Provider.
func (p *Provider) PruneBackups(ctx context.Context, host string, opts provider.PruneOptions) ([]provider.Backup, error) {
	if opts.KeepDaily < 0 || opts.KeepWeekly < 0 || opts.KeepDaily+opts.KeepWeekly == 0 {
		return nil, provider.Errorf(provider.ErrInvalid, "say what to keep: --keep-daily and --keep-weekly take counts of 1 or more")
	}
	r, err := p.open(ctx)
	if err != nil {
		return nil, err
	}
	ms, err := p.manifests(ctx, host, false)
	if err != nil {
		return nil, err
	}
	byHost := map[int][]schedule.Item{}
	byID := map[int]*engine.Manifest{}
	for _, m := range ms {
		byHost[m.HostID] = append(byHost[m.HostID], schedule.Item{ID: m.ID, Time: m.CreatedAt})
		byID[m.ID] = m
	}
	removed := []provider.Backup{}
	for _, items := range byHost {
		for _, id := range schedule.KeepDailyWeekly(items, opts.KeepDaily, opts.KeepWeekly) {
			if !opts.DryRun {
				// Prune keeps the newest it read; a delete of that one
				// meanwhile must not leave the host with none.
				err := r.ExpireUnlessLast(ctx, id)
				if errors.Is(err, engine.ErrKept) || errors.Is(err, engine.ErrLastBackup) || errors.Is(err, engine.ErrBeingDeleted) || errors.Is(err, engine.ErrNotFound) {
					continue // converted to a snapshot, kept as the last, or deleted since it was read
				}
				if err != nil {
					return removed, mapErr(err)
				}
			}
			removed = append(removed, backupView(byID[id]))
		}
	}
	sort.Slice(removed, func(i, j int) bool { return removed[i].ID < removed[j].ID })
	return removed, nil
}

package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/dropback/dropback/pkg/engine"
	"github.com/dropback/dropback/pkg/export"
	"github.com/dropback/dropback/pkg/provider"
)

var _ provider.Exporter = (*Provider)(nil)

// openedBackup is a backup opened for reading in place, as an operation
// announced to gc.
type openedBackup struct {
	op      *engine.Op
	br      *engine.BackupReader
	m       *engine.Manifest
	disks   []export.Disk
	notices []string
}

func (o *openedBackup) close() {
	if o.br != nil {
		o.br.Close()
	}
	o.op.End()
}

// served describes what o serves, for ServeRequest.Ready and
// MountRequest.Ready.
func (o *openedBackup) served() provider.ServedBackup {
	s := provider.ServedBackup{BackupID: o.m.ID, HostID: o.m.HostID, HostName: o.m.HostName, Notices: o.notices}
	for _, d := range o.disks {
		s.Disks = append(s.Disks, provider.ServedDisk{Name: d.Name(), SizeBytes: d.Size()})
	}
	return s
}

// openBackup announces a reader to gc, then finds the backup and opens the
// disks asked for (disk, or every disk when ""). A long-running reader
// (serve, mount) must be announced, and its operation keeps its marker
// fresh for as long as it runs; a short one goes on unannounced where no
// marker can be written, and says so.
func (p *Provider) openBackup(ctx context.Context, host, backup, disk string, long bool, cacheBytes int64) (*openedBackup, error) {
	r, err := p.open(ctx)
	if err != nil {
		return nil, err
	}
	o := &openedBackup{}
	if long {
		// Its operation outlives ctx until it ends, so that a serve told
		// to stop answers the reads in flight.
		if o.op, err = r.Begin(context.WithoutCancel(ctx), engine.OpExport, 0); err != nil {
			return nil, fmt.Errorf("%w; a reader that keeps running must be announced, so that gc keeps what it reads (`dropback backups export` reads a repository it cannot write)", mapErr(err))
		}
	} else {
		var notice string
		if o.op, notice, err = r.BeginReader(ctx, engine.OpExport, 0); err != nil {
			return nil, mapErr(err)
		}
		if notice != "" {
			o.notices = append(o.notices, notice)
		}
	}
	if err := p.openDisks(engine.WithOp(ctx, o.op), r, o, host, backup, disk, cacheBytes); err != nil {
		o.close()
		return nil, err
	}
	return o, nil
}

func (p *Provider) openDisks(ctx context.Context, r *engine.Repo, o *openedBackup, host, backup, disk string, cacheBytes int64) error {
	// A removed host's snapshots can still be read.
	h, err := p.lookupHost(ctx, host, true)
	if err != nil {
		return err
	}
	if o.m, err = p.findBackup(ctx, r, h, backup); err != nil {
		return err
	}
	if disk != "" && !hasDisk(o.m, disk) {
		names := make([]string, len(o.m.Disks))
		for i, d := range o.m.Disks {
			names[i] = printable(d.Name)
		}
		return provider.Errorf(provider.ErrNotFound, "backup %d has no disk %s (it has %s)", o.m.ID, printable(disk), strings.Join(names, ", "))
	}
	if o.br, err = r.OpenBackup(ctx, o.m, engine.ReadOptions{CacheBytes: cacheBytes}); err != nil {
		return mapErr(err)
	}
	for _, d := range o.br.Disks() {
		if disk == "" || d.Name() == disk {
			o.disks = append(o.disks, exportDisk{d})
		}
	}
	return nil
}

func hasDisk(m *engine.Manifest, name string) bool {
	for _, d := range m.Disks {
		if d.Name == name {
			return true
		}
	}
	return false
}

// exportDisk is an engine disk reader as an export.Disk.
type exportDisk struct{ *engine.DiskReader }

func (d exportDisk) Extents(off, length int64) []export.Extent {
	ext := d.DiskReader.Extents(off, length)
	out := make([]export.Extent, len(ext))
	for i, e := range ext {
		out[i] = export.Extent{Offset: e.Offset, Length: e.Length, Zero: e.Zero}
	}
	return out
}

// ExportBackup implements provider.Exporter. Every file is checked and
// created, under no name yet, before the first is written; each takes its
// path once complete.
func (p *Provider) ExportBackup(ctx context.Context, req provider.ExportRequest) (*provider.ExportResult, error) {
	if req.Format != provider.ImageRaw && req.Format != provider.ImageQcow2 {
		return nil, provider.Errorf(provider.ErrInvalid, "unknown image format %q: raw or qcow2", printable(req.Format))
	}
	o, err := p.openBackup(ctx, req.Host, req.Backup, req.Disk, false, 0)
	if err != nil {
		return nil, err
	}
	defer o.close()
	ctx = engine.WithOp(ctx, o.op)
	res := &provider.ExportResult{BackupID: o.m.ID, HostID: o.m.HostID, Format: req.Format, Disks: []provider.ExportedDisk{}, Notices: o.notices}
	if req.To == "-" {
		if len(o.disks) != 1 {
			return nil, provider.Errorf(provider.ErrInvalid, "backup %d has %d disks and --to - writes one: choose it with --disk", o.m.ID, len(o.disks))
		}
		d := o.disks[0]
		n, err := export.Write(ctx, req.Stdout, d, req.Format, req.Progress)
		if err != nil {
			return nil, mapErr(err)
		}
		res.Disks = append(res.Disks, provider.ExportedDisk{Name: d.Name(), Path: "-", SizeBytes: d.Size(), ImageBytes: n})
		return res, nil
	}
	files, err := p.exportFiles(ctx, req, o)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for i, d := range o.disks {
		n, err := export.WriteFile(ctx, files[i].File(), d, req.Format, req.Progress)
		if err == nil {
			err = files[i].Commit()
		}
		if err != nil {
			return nil, fmt.Errorf("disk %s to %s: %w", printable(d.Name()), files[i].Path(), targetErr(err))
		}
		res.Disks = append(res.Disks, provider.ExportedDisk{Name: d.Name(), Path: files[i].Path(), SizeBytes: d.Size(), ImageBytes: n})
	}
	return res, nil
}

// exportFiles creates a new file for each disk of o, under req.To: the
// path itself for one disk (or a file named after the disk inside it,
// when it is a directory), files named after the disks inside it for
// several. None is a disk of a host.
func (p *Provider) exportFiles(ctx context.Context, req provider.ExportRequest, o *openedBackup) ([]*engine.NewFile, error) {
	r, err := p.open(ctx)
	if err != nil {
		return nil, err
	}
	hosts, err := r.Hosts(ctx)
	if err != nil {
		return nil, mapErr(err)
	}
	names := make([]string, len(o.disks))
	for i, d := range o.disks {
		names[i] = filepath.Base(d.Name())
		if req.Format == provider.ImageQcow2 {
			names[i] += ".qcow2"
		}
	}
	paths, err := targetPathsOf(req.To, names, true)
	if err != nil {
		return nil, err
	}
	var files []*engine.NewFile
	for _, path := range paths {
		if owner := diskOwner(hosts, path); owner != "" {
			err = provider.Errorf(provider.ErrInvalid, "%s is a disk of host %s; an export writes a new file", path, owner)
		} else {
			var f *engine.NewFile
			if f, err = engine.CreateFile(path, req.Force); err == nil {
				files = append(files, f)
				continue
			}
			err = targetErr(err)
		}
		for _, f := range files {
			f.Close()
		}
		return nil, err
	}
	return files, nil
}

// ServeBackup implements provider.Exporter.
func (p *Provider) ServeBackup(ctx context.Context, req provider.ServeRequest) error {
	o, err := p.openBackup(ctx, req.Host, req.Backup, req.Disk, true, req.CacheBytes)
	if err != nil {
		return err
	}
	defer o.close()
	return serveNBD(ctx, o, req)
}

// MountBackup implements provider.Exporter.
func (p *Provider) MountBackup(ctx context.Context, req provider.MountRequest) error {
	if fi, err := os.Stat(req.Dir); err != nil || !fi.IsDir() {
		if err == nil {
			err = errors.New("not a directory")
		}
		return provider.Errorf(provider.ErrInvalid, "mount on %s: %v", printable(req.Dir), unwrapPath(err))
	}
	o, err := p.openBackup(ctx, req.Host, req.Backup, req.Disk, true, 0)
	if err != nil {
		return err
	}
	defer o.close()
	return mountFUSE(ctx, o, req)
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

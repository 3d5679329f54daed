package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dropback/dropback/pkg/engine"
	"github.com/dropback/dropback/pkg/provider"
	"github.com/dropback/dropback/pkg/vm"
	"github.com/dropback/dropback/pkg/vm/libvirt"
	"github.com/dropback/dropback/pkg/vm/qemu"
)

// Hosts that are running guests (docs/vms.md): their disks are read
// through a point in time their hypervisor exports, reached through the
// narrow vm.Guest interface; the engine sees only readers.

// openGuest reaches the guest of a VM host.
func openGuest(ctx context.Context, rec *engine.VMRecord) (vm.Guest, error) {
	switch rec.Kind {
	case engine.VMQemu:
		return qemu.Open(ctx, qemu.Options{QMP: rec.QMP, Agent: rec.Agent})
	case engine.VMLibvirt:
		return libvirt.Open(ctx, libvirt.Options{URI: rec.URI, Domain: rec.Domain})
	}
	return nil, fmt.Errorf("unknown kind of guest %q", rec.Kind)
}

// guestName says which guest a host is, for messages.
func guestName(rec *engine.VMRecord) string {
	if rec.Kind == engine.VMLibvirt {
		return "libvirt domain " + rec.Domain
	}
	return "the QEMU guest at " + rec.QMP
}

// vmRecord turns the VM options of a host spec into a record, with its
// paths made absolute; nil for a host of disks.
func vmRecord(spec provider.HostSpec) (*engine.VMRecord, error) {
	kinds := 0
	for _, set := range []bool{len(spec.Disks) > 0, spec.QMP != "", spec.Libvirt != ""} {
		if set {
			kinds++
		}
	}
	switch {
	case kinds > 1:
		return nil, provider.Errorf(provider.ErrInvalid, "give --disk, --qemu or --libvirt, only one of them")
	case kinds == 0 && (spec.Agent != "" || len(spec.Devices) > 0 || spec.Scratch != ""):
		return nil, provider.Errorf(provider.ErrInvalid, "%s needs a running guest: give --qemu or --libvirt", guestFlags(spec))
	case kinds == 0:
		return nil, provider.Errorf(provider.ErrInvalid, "give at least one --disk, or a running guest with --qemu or --libvirt")
	case len(spec.Disks) > 0:
		if spec.Agent != "" || len(spec.Devices) > 0 || spec.Scratch != "" {
			return nil, provider.Errorf(provider.ErrInvalid, "%s is for a running guest (--qemu or --libvirt), not --disk", guestFlags(spec))
		}
		return nil, nil
	}
	rec := &engine.VMRecord{Kind: engine.VMQemu, QMP: spec.QMP, Agent: spec.Agent, Devices: spec.Devices, Scratch: spec.Scratch}
	if spec.Libvirt != "" {
		if spec.Agent != "" {
			return nil, provider.Errorf(provider.ErrInvalid, "--qemu-agent is for --qemu; libvirt reaches the guest agent itself")
		}
		rec = &engine.VMRecord{Kind: engine.VMLibvirt, Domain: spec.Libvirt, URI: spec.LibvirtURI, Devices: spec.Devices, Scratch: spec.Scratch}
	}
	for _, p := range []*string{&rec.QMP, &rec.Agent, &rec.Scratch} {
		if *p != "" {
			abs, err := filepath.Abs(*p)
			if err != nil {
				return nil, provider.Errorf(provider.ErrInvalid, "%s: %v", printable(*p), err)
			}
			*p = abs
		}
	}
	if err := checkScratch(rec.Scratch); err != nil {
		return nil, err
	}
	return rec, nil
}

// guestFlags names the flags of a spec that are only for a running guest.
func guestFlags(spec provider.HostSpec) string {
	var flags []string
	for _, f := range []struct {
		name string
		set  bool
	}{{"--device", len(spec.Devices) > 0}, {"--qemu-agent", spec.Agent != ""}, {"--scratch", spec.Scratch != ""}} {
		if f.set {
			flags = append(flags, f.name)
		}
	}
	return strings.Join(flags, ", ")
}

// checkScratch refuses a scratch directory that is not one, so that every
// backup does not fail at it.
func checkScratch(dir string) error {
	if dir == "" {
		return nil
	}
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return provider.Errorf(provider.ErrInvalid, "--scratch %s: no such directory", printable(dir))
	case err != nil:
		return provider.Errorf(provider.ErrInvalid, "--scratch %s: %v", printable(dir), unwrapPath(err))
	case !fi.IsDir():
		return provider.Errorf(provider.ErrInvalid, "--scratch %s is not a directory", printable(dir))
	}
	return nil
}

// addVMHost registers a running guest: it must answer, and have the disks
// chosen.
func (p *Provider) addVMHost(ctx context.Context, r *engine.Repo, others []engine.HostRecord, name string, rec *engine.VMRecord) (*provider.Host, error) {
	g, err := openGuest(ctx, rec)
	if err != nil {
		return nil, provider.Errorf(provider.ErrInvalid, "%v", err)
	}
	defer g.Close()
	disks, err := guestDisks(ctx, g, rec)
	if err != nil {
		return nil, err
	}
	h := engine.HostRecord{Name: name, VM: rec, Disks: disks}
	for _, d := range disks {
		if owner := diskOwner(others, d.Path); d.Path != "" && owner != "" {
			return nil, provider.Errorf(provider.ErrInvalid, "disk %s (%s) is already a disk of host %s", d.Name, d.Path, owner)
		}
	}
	h, err = r.AddHost(ctx, h)
	if err != nil {
		return nil, mapErr(err)
	}
	v := p.hostView(h)
	return &v, nil
}

// guestDisks lists the disks of the guest that the host backs up.
func guestDisks(ctx context.Context, g vm.Guest, rec *engine.VMRecord) ([]engine.DiskSource, error) {
	all, err := g.Disks(ctx)
	if err != nil {
		return nil, fmt.Errorf("list the disks of %s: %w", guestName(rec), err)
	}
	chosen, err := vm.Choose(all, rec.Devices)
	if err != nil {
		return nil, provider.Errorf(provider.ErrInvalid, "%s: %v", guestName(rec), err)
	}
	out := make([]engine.DiskSource, len(chosen))
	for i, d := range chosen {
		out[i] = engine.DiskSource{Name: d.Device, Path: d.File, Format: d.Format}
	}
	return out, nil
}

// backupVM backs up a running guest through a point in time of its disks.
func (p *Provider) backupVM(ctx context.Context, r *engine.Repo, h engine.HostRecord, opts provider.CreateOptions, op *engine.Op) (*provider.CreateResult, error) {
	g, err := openGuest(ctx, h.VM)
	if err != nil {
		return nil, fmt.Errorf("reach %s: %w", guestName(h.VM), err)
	}
	defer g.Close()
	disks, err := guestDisks(ctx, g, h.VM)
	if err != nil {
		return nil, err
	}
	since, err := checkGuestDisks(ctx, r, h, g, disks, opts.AcceptResize)
	if err != nil {
		return nil, err
	}
	p.refreshDisks(ctx, r, h, disks)
	act, err := r.StartAction(ctx, "backup", "host", h.ID)
	if err != nil {
		return nil, mapErr(err)
	}
	res, err := p.readGuest(ctx, r, h, g, disks, since, opts, op)
	if err != nil {
		err = mapErr(err)
		_ = r.FinishAction(context.WithoutCancel(ctx), act, 0, fmt.Errorf("back up host %s: %w", h.Name, err))
		return nil, err
	}
	if err := r.FinishAction(ctx, act, 0, nil); err != nil {
		return nil, err
	}
	res.Action = actionView(*act)
	return res, nil
}

// checkGuestDisks refuses disks whose size differs from the last backup
// of them, as checkDisks does for files, and returns the dirty bitmap the
// last backup of each disk started, by device.
func checkGuestDisks(ctx context.Context, r *engine.Repo, h engine.HostRecord, g vm.Guest, disks []engine.DiskSource, acceptResize bool) (map[string]string, error) {
	all, err := g.Disks(ctx)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(disks))
	for i, d := range disks {
		names[i] = d.Name
	}
	prev, err := r.PreviousDisks(ctx, h.ID, names)
	if err != nil {
		return nil, mapErr(err)
	}
	since := map[string]string{}
	for _, d := range disks {
		last, ok := prev[d.Name]
		if !ok {
			continue
		}
		size := all[vm.IndexOf(all, d.Name)].Size
		if !acceptResize && last.SizeBytes != size {
			return nil, provider.Errorf(provider.ErrConfirm, "disk %s is %d bytes, but was %d bytes in backup %d; if it was resized on purpose, back it up with `dropback backups create %s --accept-resize`",
				printable(d.Name), size, last.SizeBytes, last.BackupID, h.Name)
		}
		since[d.Name] = last.Bitmap
	}
	return since, nil
}

// refreshDisks records the guest's disks in the host record when they
// changed since it was written (a disk added, an image moved), so that an
// in-place restore finds them. It is best effort: a conflict or a failure
// changes nothing.
func (p *Provider) refreshDisks(ctx context.Context, r *engine.Repo, h engine.HostRecord, disks []engine.DiskSource) {
	if slices.Equal(h.Disks, disks) {
		return
	}
	h.Disks = disks
	_, _ = r.UpdateHost(ctx, h)
}

// readGuest takes the point in time, reads it into a backup, and releases
// it: with the bitmaps it started kept when the backup was stored, and the
// older ones kept otherwise.
func (p *Provider) readGuest(ctx context.Context, r *engine.Repo, h engine.HostRecord, g vm.Guest, disks []engine.DiskSource, since map[string]string, opts provider.CreateOptions, op *engine.Op) (res *provider.CreateResult, err error) {
	names := make([]string, len(disks))
	for i, d := range disks {
		names[i] = d.Name
	}
	pit, err := g.PointInTime(ctx, vm.Request{Devices: names, Since: since, Whole: opts.FullRead, Freeze: !opts.NoFreeze, Scratch: h.VM.Scratch})
	if err != nil {
		return nil, fmt.Errorf("take a point in time of %s: %w", guestName(h.VM), err)
	}
	var notices []string
	defer func() {
		ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		endErr := pit.End(ectx, err == nil)
		notices = append(slices.Clone(pit.Notices()), notices...)
		switch {
		case errors.Is(endErr, vm.ErrNotRunning):
			notices = append(notices, endErr.Error())
		case endErr != nil:
			notices = append(notices, fmt.Sprintf("%v; the next backup clears what is left", endErr))
		}
		if res != nil {
			res.Notices = notices
		} else if len(notices) > 0 {
			err = fmt.Errorf("%w (%s)", err, notices[len(notices)-1])
		}
	}()
	live, closeAll, err := openExports(ctx, pit.Exports())
	defer closeAll()
	if err != nil {
		return nil, err
	}
	consistency := engine.ConsistencyCrash
	if pit.Frozen() {
		consistency = engine.ConsistencyApplication
	}
	m, err := r.Backup(ctx, engine.BackupRequest{
		HostID: h.ID, HostName: h.Name, Disks: disks, Time: opts.Time, Progress: opts.Progress, Op: op,
		Live: live, Consistency: consistency, Check: pit.Check,
		Notify: func(msg string) { notices = append(notices, msg) },
	})
	if err != nil {
		return nil, err
	}
	return &provider.CreateResult{Backup: backupView(m)}, nil
}

// openExports connects to the exports of a point in time and reads what
// each reports changed; closeAll closes what was opened.
func openExports(ctx context.Context, exports []vm.Export) ([]engine.LiveDisk, func(), error) {
	var readers []*vm.Reader
	closeAll := func() {
		for _, rd := range readers {
			rd.Close()
		}
	}
	live := make([]engine.LiveDisk, len(exports))
	for i, e := range exports {
		rd, err := vm.Open(ctx, e)
		if err != nil {
			return nil, closeAll, err
		}
		readers = append(readers, rd)
		live[i] = engine.LiveDisk{Reader: rd, Bitmap: e.Bitmap}
		regions, ok, err := rd.Changes(ctx)
		if err != nil {
			return nil, closeAll, err
		}
		if ok {
			live[i].Changed = &engine.Changes{Bitmap: e.Since, Regions: regions}
		}
	}
	return live, closeAll, nil
}

// checkNotLive refuses to back up, as plain files, disks that a running
// QEMU has open for writing, unless allowLive.
func checkNotLive(h engine.HostRecord, allowLive bool) error {
	if allowLive {
		return nil
	}
	for _, d := range h.Disks {
		if inUse, err := vm.InUse(d.Path, true); err == nil && inUse {
			return provider.Errorf(provider.ErrInUse, "disk %s is open in a running QEMU, which writes to it while it would be read: register the guest with `dropback hosts add NAME --qemu QMP-SOCKET` (or --libvirt DOMAIN) to back it up at one point in time, or pass --allow-live to back up the image as it is",
				printable(d.Path))
		}
	}
	return nil
}

// notRunning refuses a restore over the disks of h when h is a guest that
// runs: it writes them meanwhile, even one whose image was deleted.
func notRunning(ctx context.Context, h engine.HostRecord) error {
	if h.VM == nil {
		return nil
	}
	g, err := openGuest(ctx, h.VM)
	if err != nil {
		return nil
	}
	running, status, err := g.Running(ctx)
	g.Close()
	if err == nil && running {
		return provider.Errorf(provider.ErrInUse, "host %s is a running guest (%s): shut it down before restoring over its disks, or restore elsewhere with --to", h.Name, status)
	}
	return nil
}

// checkRestoreTargets refuses to restore over the disks of a running
// guest: onto a disk a running QEMU has open, or in place onto a VM host
// whose guest runs; and in place onto a disk that is not a raw image, as a
// backup holds the bytes the guest sees, not the image file.
func checkRestoreTargets(ctx context.Context, h engine.HostRecord, targets []engine.RestoreTarget, inPlace bool) error {
	if inPlace && h.VM != nil {
		if err := notRunning(ctx, h); err != nil {
			return err
		}
		for _, d := range h.Disks {
			if d.Format != "" && d.Format != "raw" {
				return qcow2InPlace(h, d)
			}
		}
	}
	for _, t := range targets {
		if inUse, err := vm.InUse(t.Path, false); err == nil && inUse {
			return provider.Errorf(provider.ErrInUse, "%s is open in a running QEMU: shut the guest down before restoring over it, or restore elsewhere with --to", printable(t.Path))
		}
	}
	return nil
}

// qcow2InPlace is the refusal of an in-place restore onto an image that is
// not raw, with the way to restore it: --to a file for a guest of one
// disk, --to a directory, where each disk is a file named as the disk, for
// a guest of several.
func qcow2InPlace(h engine.HostRecord, d engine.DiskSource) error {
	to, file := "--to FILE", "FILE"
	if len(h.Disks) > 1 {
		to, file = "--to DIR", "DIR/"+filepath.Base(d.Name)
	}
	return provider.Errorf(provider.ErrInvalid, "disk %s of host %s is a %s image, and a backup holds the bytes the guest sees: restore it with %s, then `qemu-img convert -f raw -O %s %s %s`",
		d.Name, h.Name, d.Format, to, d.Format, file, printable(d.Path))
}

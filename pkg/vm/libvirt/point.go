package libvirt

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/dropback/dropback/pkg/nbd"
	"github.com/dropback/dropback/pkg/vm"
)

// point is a pull-mode backup job of a domain.
type point struct {
	g          *Guest
	checkpoint string // created with the job
	token      string
	scratch    string
	disks      []vm.Disk
	since      map[string]string // device -> the checkpoint its changes are read since
	old        map[string]string // device -> the last backup's checkpoint, read or not
	exports    []vm.Export
	notices    []string
	frozen     bool
	begun      bool
	ended      bool
}

var _ vm.PointInTime = (*point)(nil)

func (p *point) Exports() []vm.Export { return p.exports }
func (p *point) Frozen() bool         { return p.frozen }
func (p *point) Notices() []string    { return p.notices }

func (p *point) notef(format string, args ...any) {
	p.notices = append(p.notices, fmt.Sprintf(format, args...))
}

func (p *point) socket() string { return scratchFile(p.scratch, p.token, "nbd") + ".sock" }

// chooseSince keeps, for each disk, the checkpoint its last backup created
// when the domain still has it and the disk can keep bitmaps (qcow2), and
// fills in the exports.
func (p *point) chooseSince(since map[string]string, checkpoints map[string]bool, whole bool) {
	p.since, p.old = map[string]string{}, map[string]string{}
	for _, d := range p.disks {
		e := vm.Export{Device: d.Device, Size: d.Size, Network: "unix", Addr: p.socket(), Name: d.Device}
		if d.PersistentBitmaps() {
			e.Bitmap = p.checkpoint
		}
		if want := since[d.Device]; want != "" {
			switch {
			case !d.PersistentBitmaps():
				p.notef("disk %s is read whole: libvirt keeps checkpoints of qcow2 disks only, and it is %s", d.Device, d.Format)
			case !checkpoints[want]:
				p.notef("disk %s is read whole: the checkpoint %s that its last backup created is gone", d.Device, want)
			case whole:
				p.old[d.Device] = want
			default:
				p.since[d.Device], p.old[d.Device] = want, want
				e.Since, e.DirtyContext = want, nbd.DirtyBitmapContext("backup-"+d.Device)
			}
		}
		p.exports = append(p.exports, e)
	}
}

// backupXML describes the pull-mode backup: every chosen disk, the others
// left out.
func (p *point) backupXML() string {
	var b strings.Builder
	fmt.Fprintf(&b, "<domainbackup mode='pull'><server transport='unix' socket='%s'/><disks>", xmlEscape(p.socket()))
	for _, d := range p.disks {
		mode := "backupmode='full'"
		if cp := p.since[d.Device]; cp != "" {
			mode = fmt.Sprintf("backupmode='incremental' incremental='%s'", xmlEscape(cp))
		}
		fmt.Fprintf(&b, "<disk name='%s' backup='yes' type='file' %s><scratch file='%s'/></disk>",
			xmlEscape(d.Device), mode, xmlEscape(scratchFile(p.scratch, p.token, d.Device)))
	}
	b.WriteString("</disks></domainbackup>")
	return b.String()
}

// checkpointXML describes the checkpoint created at the instant of the
// backup: a bitmap on every chosen qcow2 disk.
func (p *point) checkpointXML() string {
	var b strings.Builder
	fmt.Fprintf(&b, "<domaincheckpoint><name>%s</name><disks>", xmlEscape(p.checkpoint))
	all, _ := p.g.Disks(context.Background())
	for _, d := range all {
		cp := "no"
		if vm.IndexOf(p.disks, d.Device) >= 0 && d.PersistentBitmaps() {
			cp = "bitmap"
		}
		fmt.Fprintf(&b, "<disk name='%s' checkpoint='%s'/>", xmlEscape(d.Device), cp)
	}
	b.WriteString("</disks></domaincheckpoint>")
	return b.String()
}

// freeze freezes the guest's filesystems through libvirt's guest agent, if
// asked, and returns the thaw, which runs whatever happened.
func (p *point) freeze(ctx context.Context, want bool) (thaw func()) {
	if !want {
		return func() {}
	}
	if _, err := p.g.l.DomainFsfreeze(p.g.dom, nil, 0); err != nil {
		p.notef("the backup is crash-consistent: the guest agent could not freeze the filesystems: %v", err)
		_, _ = p.g.l.DomainFsthaw(p.g.dom, nil, 0)
		return func() {}
	}
	p.frozen = true
	return func() {
		if _, err := p.g.l.DomainFsthaw(p.g.dom, nil, 0); err != nil {
			p.notef("THE GUEST'S FILESYSTEMS MAY STILL BE FROZEN: thaw: %v; thaw them with `virsh domfsthaw %s`", err, p.g.opts.Domain)
		}
	}
}

// clearLeftovers ends a backup job an earlier backup left running, and
// deletes dropback's checkpoints that no backup uses (since names those
// still in use).
func (p *point) clearLeftovers(since map[string]string) error {
	var cleared []string
	if desc, err := p.g.l.DomainBackupGetXMLDesc(p.g.dom, 0); err == nil {
		if !strings.Contains(desc, "dropback-") {
			return fmt.Errorf("domain %s runs a backup job of another tool; back it up when that ends", p.g.opts.Domain)
		}
		if err := p.g.l.DomainAbortJob(p.g.dom); err != nil {
			return fmt.Errorf("end the backup job an earlier backup left: %w", err)
		}
		cleared = append(cleared, "a backup job")
	}
	inUse := map[string]bool{}
	for _, cp := range since {
		inUse[cp] = true
	}
	cps, err := p.g.checkpoints()
	if err != nil {
		return err
	}
	n := 0
	for name := range cps {
		if strings.HasPrefix(name, checkpointPrefix) && !inUse[name] {
			if err := p.g.deleteCheckpoint(name); err != nil {
				return err
			}
			n++
		}
	}
	if n > 0 {
		cleared = append(cleared, fmt.Sprintf("%d checkpoint(s) no backup uses", n))
	}
	if len(cleared) > 0 {
		p.notef("cleared what an earlier backup left in the domain: %s", strings.Join(cleared, ", "))
	}
	return nil
}

func (g *Guest) deleteCheckpoint(name string) error {
	cp, err := g.l.DomainCheckpointLookupByName(g.dom, name, 0)
	if err != nil {
		return nil // gone already
	}
	if err := g.l.DomainCheckpointDelete(cp, 0); err != nil {
		return fmt.Errorf("delete checkpoint %s of domain %s: %w", name, g.opts.Domain, err)
	}
	return nil
}

// Check implements vm.PointInTime: the backup job still runs.
func (p *point) Check(ctx context.Context) error {
	if _, err := p.g.l.DomainBackupGetXMLDesc(p.g.dom, 0); err != nil {
		return fmt.Errorf("the point in time of domain %s did not hold: its backup job ended (%v)", p.g.opts.Domain, err)
	}
	return nil
}

// End implements vm.PointInTime: it ends the backup job, then keeps the
// checkpoint the job created when the backup was stored (and deletes the
// older ones it read changes since), or deletes it otherwise.
func (p *point) End(ctx context.Context, stored bool) error {
	if p.ended || !p.begun {
		return nil
	}
	p.ended = true
	var errs []string
	if err := p.g.l.DomainAbortJob(p.g.dom); err != nil {
		errs = append(errs, fmt.Sprintf("end the backup job: %v", err))
	}
	drop := []string{p.checkpoint}
	if stored {
		drop = drop[:0]
		for _, cp := range p.old {
			if !contains(drop, cp) {
				drop = append(drop, cp)
			}
		}
	}
	for _, cp := range drop {
		if err := p.g.deleteCheckpoint(cp); err != nil {
			errs = append(errs, err.Error())
		}
	}
	for _, d := range p.disks {
		_ = os.Remove(scratchFile(p.scratch, p.token, d.Device))
	}
	if len(errs) > 0 {
		return fmt.Errorf("release the backup job of domain %s: %s", p.g.opts.Domain, strings.Join(errs, "; "))
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Package libvirt reaches a guest through libvirt's API (with
// github.com/digitalocean/go-libvirt), since libvirt owns the monitor of the
// guests it runs, and implements vm.Guest with libvirt's own backup support:
// a pull-mode backup (virDomainBackupBegin) exports a point in time of the
// disks over NBD, and a checkpoint created with it (one dirty bitmap per
// disk) lets the next backup read only what changed. The filesystem freeze
// goes through libvirt's guest agent connection (virDomainFSFreeze).
package libvirt

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/dropback/dropback/pkg/vm"
)

// DefaultURI is the libvirt connection used when none is given.
const DefaultURI = "qemu:///system"

// Options say how to reach a guest.
type Options struct {
	// URI is the libvirt connection ("" for DefaultURI); a unix socket
	// elsewhere is qemu+unix:///system?socket=PATH.
	URI string
	// Domain is the guest's name.
	Domain string
}

// Guest is a libvirt domain.
type Guest struct {
	l    *golibvirt.Libvirt
	dom  golibvirt.Domain
	opts Options
}

var _ vm.Guest = (*Guest)(nil)

// Open connects to libvirt and finds the domain. It fails with an error
// wrapping vm.ErrUnreachable when libvirt does not answer.
func Open(ctx context.Context, opts Options) (*Guest, error) {
	if opts.URI == "" {
		opts.URI = DefaultURI
	}
	u, err := url.Parse(opts.URI)
	if err != nil {
		return nil, fmt.Errorf("libvirt URI %s: %w", opts.URI, err)
	}
	l, err := golibvirt.ConnectToURI(u)
	if err != nil {
		return nil, fmt.Errorf("%w: libvirt at %s: %v", vm.ErrUnreachable, opts.URI, err)
	}
	dom, err := l.DomainLookupByName(opts.Domain)
	if err != nil {
		_ = l.Disconnect()
		return nil, fmt.Errorf("libvirt domain %s: %w", opts.Domain, err)
	}
	return &Guest{l: l, dom: dom, opts: opts}, nil
}

// Close disconnects from libvirt.
func (g *Guest) Close() error { return g.l.Disconnect() }

// libvirt's domain states (virDomainState).
var states = map[int32]string{0: "nostate", 1: "running", 2: "blocked", 3: "paused", 4: "shutdown", 5: "shutoff", 6: "crashed", 7: "pmsuspended"}

// Running implements vm.Guest.
func (g *Guest) Running(ctx context.Context) (bool, string, error) {
	st, _, err := g.l.DomainGetState(g.dom, 0)
	if err != nil {
		return false, "", fmt.Errorf("state of domain %s: %w", g.opts.Domain, err)
	}
	return st == 1, states[st], nil
}

// domainXML is what dropback reads of a domain's XML.
type domainXML struct {
	Disks []struct {
		Device string `xml:"device,attr"`
		Driver struct {
			Type string `xml:"type,attr"`
		} `xml:"driver"`
		Source struct {
			File string `xml:"file,attr"`
			Dev  string `xml:"dev,attr"`
		} `xml:"source"`
		Target struct {
			Dev string `xml:"dev,attr"`
		} `xml:"target"`
		ReadOnly *struct{} `xml:"readonly"`
	} `xml:"devices>disk"`
}

// Disks implements vm.Guest: the domain's disks (not CD-ROMs), named by
// their target.
func (g *Guest) Disks(ctx context.Context) ([]vm.Disk, error) {
	desc, err := g.l.DomainGetXMLDesc(g.dom, 0)
	if err != nil {
		return nil, fmt.Errorf("describe domain %s: %w", g.opts.Domain, err)
	}
	var d domainXML
	if err := xml.Unmarshal([]byte(desc), &d); err != nil {
		return nil, fmt.Errorf("describe domain %s: %w", g.opts.Domain, err)
	}
	var out []vm.Disk
	for _, x := range d.Disks {
		if x.Device != "disk" {
			continue
		}
		_, capacity, _, err := g.l.DomainGetBlockInfo(g.dom, x.Target.Dev, 0)
		if err != nil {
			return nil, fmt.Errorf("size of disk %s of domain %s: %w", x.Target.Dev, g.opts.Domain, err)
		}
		file := x.Source.File
		if file == "" {
			file = x.Source.Dev
		}
		out = append(out, vm.Disk{Device: x.Target.Dev, File: file, Format: x.Driver.Type, Size: int64(capacity), ReadOnly: x.ReadOnly != nil})
	}
	return out, nil
}

// checkpointPrefix begins the names of dropback's checkpoints.
const checkpointPrefix = "dropback-"

// PointInTime implements vm.Guest with a pull-mode backup job: libvirt
// takes the point in time (its own copy-before-write fleecing) and exports
// it over NBD on a unix socket in the scratch directory, and creates a
// checkpoint at the same instant, whose bitmaps record every later write.
// A disk's bitmap is the checkpoint's name.
func (g *Guest) PointInTime(ctx context.Context, req vm.Request) (_ vm.PointInTime, err error) {
	all, err := g.Disks(ctx)
	if err != nil {
		return nil, err
	}
	chosen, err := vm.Choose(all, req.Devices)
	if err != nil {
		return nil, err
	}
	scratch := req.Scratch
	if scratch == "" {
		scratch = os.TempDir()
	}
	p := &point{g: g, checkpoint: checkpointPrefix + randomHex(8), disks: chosen, scratch: scratch, token: randomHex(4)}
	if err := p.clearLeftovers(req.Since); err != nil {
		return nil, err
	}
	checkpoints, err := g.checkpoints()
	if err != nil {
		return nil, err
	}
	p.chooseSince(req.Since, checkpoints, req.Whole)
	thaw := p.freeze(ctx, req.Freeze)
	err = g.l.DomainBackupBegin(g.dom, p.backupXML(), golibvirt.OptString{p.checkpointXML()}, 0)
	thaw()
	if err != nil {
		return nil, fmt.Errorf("begin the backup job of domain %s: %w", g.opts.Domain, err)
	}
	p.begun = true
	return p, nil
}

// checkpoints lists the domain's checkpoints by name.
func (g *Guest) checkpoints() (map[string]bool, error) {
	cps, _, err := g.l.DomainListAllCheckpoints(g.dom, 1, 0)
	if err != nil {
		return nil, fmt.Errorf("list the checkpoints of domain %s: %w", g.opts.Domain, err)
	}
	out := make(map[string]bool, len(cps))
	for _, c := range cps {
		out[c.Name] = true
	}
	return out, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// xmlEscape escapes s for an XML attribute.
func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

func scratchFile(dir, token, dev string) string {
	return filepath.Join(dir, fmt.Sprintf("dropback-%s-%s.qcow2", token, dev))
}

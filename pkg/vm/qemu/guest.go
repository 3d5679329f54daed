// Package qemu reaches a QEMU guest through its QMP socket (with
// github.com/digitalocean/go-qemu) and implements vm.Guest: its disks from
// query-block, a point in time of all of them by copy-before-write
// fleecing (blockdev-backup with sync "none" into a temporary qcow2 overlay,
// started for every disk in one transaction) exported by QEMU's own NBD
// server, dirty bitmaps rotated in that same transaction, and the guest
// agent's filesystem freeze around it. docs/vms.md describes the steps and
// what each failure leaves.
package qemu

import (
	"context"
	"errors"
	"strings"

	"github.com/dropback/dropback/pkg/vm"
)

// Options say how to reach a guest.
type Options struct {
	// QMP is the path of the guest's QMP socket (-qmp unix:PATH,server=on).
	QMP string
	// Agent is the path of the host end of the guest agent's channel; ""
	// finds it through QMP (the chardev of the org.qemu.guest_agent.0
	// port), when there is one.
	Agent string
}

// Guest is a QEMU guest reached over QMP.
type Guest struct {
	opts Options
	mon  *monitor
}

var _ vm.Guest = (*Guest)(nil)

// Open connects to the guest's QMP socket. It fails with an error wrapping
// vm.ErrUnreachable when nothing answers there.
func Open(ctx context.Context, opts Options) (*Guest, error) {
	g := &Guest{opts: opts, mon: &monitor{path: opts.QMP}}
	if _, err := g.mon.connect(ctx); err != nil {
		return nil, err
	}
	return g, nil
}

// Close ends the QMP session.
func (g *Guest) Close() error { return g.mon.close() }

// Running implements vm.Guest.
func (g *Guest) Running(ctx context.Context) (bool, string, error) {
	var st struct {
		Running bool   `json:"running"`
		Status  string `json:"status"`
	}
	if err := g.mon.run(ctx, "query-status", nil, &st); err != nil {
		return false, "", err
	}
	return st.Running, st.Status, nil
}

// blockInfo is an entry of query-block.
type blockInfo struct {
	Device   string `json:"device"`
	Qdev     string `json:"qdev"`
	Inserted *struct {
		NodeName string `json:"node-name"`
		File     string `json:"file"`
		Drv      string `json:"drv"`
		Ro       bool   `json:"ro"`
		Image    struct {
			VirtualSize int64  `json:"virtual-size"`
			Format      string `json:"format"`
		} `json:"image"`
	} `json:"inserted"`
}

// disk is a disk of the guest with the node dropback works on: the root
// node of its block backend.
type disk struct {
	vm.Disk
	node string
}

// disks lists the disks that have a medium.
func (g *Guest) disks(ctx context.Context) ([]disk, error) {
	var infos []blockInfo
	if err := g.mon.run(ctx, "query-block", nil, &infos); err != nil {
		return nil, err
	}
	var out []disk
	for _, b := range infos {
		in := b.Inserted
		if in == nil {
			continue // an empty drive: no medium
		}
		d := disk{node: in.NodeName, Disk: vm.Disk{
			Device: deviceName(b), File: in.File, Format: in.Drv, Size: in.Image.VirtualSize, ReadOnly: in.Ro,
		}}
		out = append(out, d)
	}
	return out, nil
}

// deviceName is the name a user knows a disk by: its drive ID (-drive
// id=), else its device ID (-device id=), else its node name.
func deviceName(b blockInfo) string {
	if b.Device != "" {
		return b.Device
	}
	q := strings.TrimSuffix(b.Qdev, "/virtio-backend")
	if id, ok := strings.CutPrefix(q, "/machine/peripheral/"); ok && !strings.Contains(id, "/") {
		return id
	}
	if q != "" && !strings.HasPrefix(q, "/") {
		return q
	}
	return b.Inserted.NodeName
}

// Disks implements vm.Guest.
func (g *Guest) Disks(ctx context.Context) ([]vm.Disk, error) {
	ds, err := g.disks(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]vm.Disk, len(ds))
	for i, d := range ds {
		out[i] = d.Disk
	}
	return out, nil
}

// agentPort is the name of the virtio-serial port qemu-ga listens on.
const agentPort = "org.qemu.guest_agent.0"

// agentSocket returns the path of the host end of the guest agent's
// channel: Options.Agent, else the unix socket of the chardev behind the
// guest's org.qemu.guest_agent.0 port, else "".
func (g *Guest) agentSocket(ctx context.Context) (string, error) {
	if g.opts.Agent != "" {
		return g.opts.Agent, nil
	}
	label, err := g.agentChardev(ctx)
	if err != nil || label == "" {
		return "", err
	}
	var chardevs []struct {
		Label    string `json:"label"`
		Filename string `json:"filename"`
	}
	if err := g.mon.run(ctx, "query-chardev", nil, &chardevs); err != nil {
		return "", err
	}
	for _, c := range chardevs {
		if c.Label != label {
			continue
		}
		// "unix:/run/web-1.qga,server=on", "disconnected:unix:..." while
		// no client is connected
		path, ok := strings.CutPrefix(strings.TrimPrefix(c.Filename, "disconnected:"), "unix:")
		if !ok {
			return "", nil
		}
		path, _, _ = strings.Cut(path, ",")
		return path, nil
	}
	return "", nil
}

// agentChardev finds the virtserialport named org.qemu.guest_agent.0 among
// the guest's devices and returns its chardev's label, or "".
func (g *Guest) agentChardev(ctx context.Context) (string, error) {
	for _, parent := range []string{"/machine/peripheral", "/machine/peripheral-anon"} {
		var props []struct {
			Name string `json:"name"`
			Type string `json:"type"`
		}
		if err := g.mon.run(ctx, "qom-list", map[string]string{"path": parent}, &props); err != nil {
			var ce *CommandError
			if errors.As(err, &ce) {
				continue
			}
			return "", err
		}
		for _, p := range props {
			if p.Type != "child<virtserialport>" {
				continue
			}
			path := parent + "/" + p.Name
			var name, chardev string
			if g.mon.run(ctx, "qom-get", map[string]string{"path": path, "property": "name"}, &name) != nil || name != agentPort {
				continue
			}
			if err := g.mon.run(ctx, "qom-get", map[string]string{"path": path, "property": "chardev"}, &chardev); err != nil {
				return "", err
			}
			return chardev, nil
		}
	}
	return "", nil
}

package qemu_test

import (
	"bytes"
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dropback/dropback/internal/qemutest"
	"github.com/dropback/dropback/pkg/vm"
	"github.com/dropback/dropback/pkg/vm/qemu"
	"github.com/dropback/dropback/pkg/vm/qga/qgatest"
)

const mib = 1 << 20

// guest starts a QEMU with one disk of each given format, IDs vda, vdb, ...
func guest(t *testing.T, agent bool, formats ...string) *qemutest.VM {
	t.Helper()
	qemutest.Available(t)
	dir := t.TempDir()
	var disks []qemutest.Disk
	for i, f := range formats {
		id := "vd" + string(rune('a'+i))
		path := filepath.Join(dir, id+"."+f)
		qemutest.MakeImage(t, path, f, 16*mib)
		disks = append(disks, qemutest.Disk{Path: path, Format: f, ID: id, Drive: i%2 == 1})
	}
	return qemutest.Start(t, qemutest.Options{Disks: disks, AgentChannel: agent})
}

func open(t *testing.T, v *qemutest.VM, agent string) *qemu.Guest {
	t.Helper()
	g, err := qemu.Open(context.Background(), qemu.Options{QMP: v.QMP, Agent: agent})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// readAll reads a whole export.
func readAll(t *testing.T, e vm.Export) []byte {
	t.Helper()
	r, err := vm.Open(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	buf := make([]byte, r.Size())
	if _, err := r.ReadAt(context.Background(), buf, 0); err != nil {
		t.Fatal(err)
	}
	return buf
}

func TestDisks(t *testing.T) {
	v := guest(t, false, "qcow2", "raw")
	g := open(t, v, "")
	disks, err := g.Disks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range disks {
		got = append(got, d.Device+" "+d.Format)
		if d.Size != 16*mib || d.ReadOnly {
			t.Errorf("disk %s: %d bytes, read-only %v", d.Device, d.Size, d.ReadOnly)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"vda qcow2", "vdb raw"}) {
		t.Fatalf("disks %q", got)
	}
	if _, err := vm.Choose(disks, []string{"vdz"}); err == nil || !strings.Contains(err.Error(), `no disk "vdz" (it has `) {
		t.Fatalf("choose vdz: %v", err)
	}
	running, status, err := g.Running(context.Background())
	if err != nil || !running || status != "running" {
		t.Fatalf("running %v %q %v", running, status, err)
	}
}

// The point in time holds the bytes of its instant while the guest
// overwrites them, on every disk at once, and ending it leaves nothing
// behind but the bitmaps it started.
func TestPointInTimeHoldsWhileTheGuestWrites(t *testing.T) {
	v := guest(t, false, "qcow2", "raw")
	g := open(t, v, "")
	ctx := context.Background()
	for _, id := range []string{"vda", "vdb"} {
		v.Write(t, id, 0x11, 0, 2*mib)
	}
	p, err := g.PointInTime(ctx, vm.Request{Devices: []string{"vda", "vdb"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"vda", "vdb"} {
		v.Write(t, id, 0x22, mib, 2*mib)
	}
	want := make([]byte, 16*mib)
	copy(want, bytes.Repeat([]byte{0x11}, 2*mib))
	for _, e := range p.Exports() {
		if got := readAll(t, e); !bytes.Equal(got, want) {
			t.Errorf("disk %s does not read as at the instant", e.Device)
		}
		if e.Bitmap == "" || e.DirtyContext != "" {
			t.Errorf("disk %s: bitmap %q, dirty context %q", e.Device, e.Bitmap, e.DirtyContext)
		}
	}
	if err := p.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.End(ctx, true); err != nil {
		t.Fatal(err)
	}
	keep := []string{p.Exports()[0].Bitmap, p.Exports()[1].Bitmap}
	if left := v.Leftovers(t, keep...); len(left) > 0 {
		t.Fatalf("left in the guest: %q", left)
	}
	if st := v.Status(t); st != "running" {
		t.Fatalf("guest %s", st)
	}
}

// dirty returns what a point in time since bitmap reports changed.
func dirty(t *testing.T, e vm.Export) [][2]int64 {
	t.Helper()
	r, err := vm.Open(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	regions, ok, err := r.Changes(context.Background())
	if err != nil || !ok {
		t.Fatalf("changes of %s: %v %v", e.Device, ok, err)
	}
	return regions
}

// A bitmap started at one backup reports, at the next, what the guest
// wrote in between; a backup that is not stored leaves the older bitmap,
// which then reports every write since it started.
func TestBitmapsRotate(t *testing.T) {
	for _, format := range []string{"qcow2", "raw"} {
		t.Run(format, func(t *testing.T) {
			v := guest(t, false, format)
			g := open(t, v, "")
			ctx := context.Background()
			first, err := g.PointInTime(ctx, vm.Request{})
			if err != nil {
				t.Fatal(err)
			}
			b1 := first.Exports()[0].Bitmap
			if err := first.End(ctx, true); err != nil {
				t.Fatal(err)
			}
			v.Write(t, "vda", 0x33, 3*mib, 64<<10)
			second, err := g.PointInTime(ctx, vm.Request{Since: map[string]string{"vda": b1}})
			if err != nil {
				t.Fatal(err)
			}
			e := second.Exports()[0]
			if e.Since != b1 {
				t.Fatalf("since %q, want %q (notices %q)", e.Since, b1, second.Notices())
			}
			if got := dirty(t, e); !slices.Equal(got, [][2]int64{{3 * mib, 3*mib + 64<<10}}) {
				t.Fatalf("dirty %v", got)
			}
			if err := second.End(ctx, false); err != nil { // not stored
				t.Fatal(err)
			}
			if got := v.Bitmaps(t); !slices.Equal(got, []string{b1}) {
				t.Fatalf("bitmaps after a backup that was not stored: %q, want %q", got, b1)
			}
			v.Write(t, "vda", 0x44, 8*mib, 64<<10)
			third, err := g.PointInTime(ctx, vm.Request{Since: map[string]string{"vda": b1}})
			if err != nil {
				t.Fatal(err)
			}
			want := [][2]int64{{3 * mib, 3*mib + 64<<10}, {8 * mib, 8*mib + 64<<10}}
			if got := dirty(t, third.Exports()[0]); !slices.Equal(got, want) {
				t.Fatalf("dirty %v, want %v", got, want)
			}
			if err := third.End(ctx, true); err != nil {
				t.Fatal(err)
			}
			if got, b3 := v.Bitmaps(t), third.Exports()[0].Bitmap; !slices.Equal(got, []string{b3}) {
				t.Fatalf("bitmaps after a stored backup: %q, want %q", got, b3)
			}
		})
	}
}

// A restart keeps a qcow2 disk's bitmap and loses a raw disk's: then the
// disk is read whole, and a notice says why.
func TestBitmapAcrossRestart(t *testing.T) {
	for _, format := range []string{"qcow2", "raw"} {
		t.Run(format, func(t *testing.T) {
			v := guest(t, false, format)
			ctx := context.Background()
			g := open(t, v, "")
			first, err := g.PointInTime(ctx, vm.Request{})
			if err != nil {
				t.Fatal(err)
			}
			b1 := first.Exports()[0].Bitmap
			if err := first.End(ctx, true); err != nil {
				t.Fatal(err)
			}
			g.Close()
			v.Write(t, "vda", 0x55, 0, 64<<10)
			v.Restart(t)
			g = open(t, v, "")
			next, err := g.PointInTime(ctx, vm.Request{Since: map[string]string{"vda": b1}})
			if err != nil {
				t.Fatal(err)
			}
			defer next.End(ctx, false)
			e := next.Exports()[0]
			if format == "qcow2" {
				if e.Since != b1 || len(next.Notices()) > 0 {
					t.Fatalf("since %q, notices %q: the qcow2 bitmap did not survive", e.Since, next.Notices())
				}
				if got := dirty(t, e); !slices.Equal(got, [][2]int64{{0, 64 << 10}}) {
					t.Fatalf("dirty %v", got)
				}
				return
			}
			if e.Since != "" || e.DirtyContext != "" || len(next.Notices()) != 1 || !strings.Contains(next.Notices()[0], "disk vda is read whole") {
				t.Fatalf("since %q, notices %q: want a full read and why", e.Since, next.Notices())
			}
		})
	}
}

// What a backup that died left in the guest (its export, job, nodes and
// frozen bitmap) is cleared by the next one, which says so.
func TestLeftoversAreCleared(t *testing.T) {
	v := guest(t, false, "qcow2")
	ctx := context.Background()
	g := open(t, v, "")
	dead, err := g.PointInTime(ctx, vm.Request{})
	if err != nil {
		t.Fatal(err)
	}
	b1 := dead.Exports()[0].Bitmap
	g.Close() // the process died: End never runs
	if left := v.Leftovers(t, b1); len(left) == 0 {
		t.Fatal("a point in time left nothing in the guest to clear")
	}
	g = open(t, v, "")
	next, err := g.PointInTime(ctx, vm.Request{})
	if err != nil {
		t.Fatal(err)
	}
	if n := next.Notices(); !strings.Contains(strings.Join(n, "\n"), "cleared what an earlier backup left in the guest: 1 NBD export(s), 1 fleecing job(s), 2 fleecing node(s), 1 dirty bitmap(s)") {
		t.Fatalf("notices %q", n)
	}
	b2 := next.Exports()[0].Bitmap
	if err := next.End(ctx, true); err != nil {
		t.Fatal(err)
	}
	if left := v.Leftovers(t, b2); len(left) > 0 {
		t.Fatalf("left: %q", left)
	}
}

func TestGuestAgent(t *testing.T) {
	tests := []struct {
		name       string
		fake       bool   // a stand-in agent answers, given by path
		channel    bool   // the guest has an agent channel, found through QMP
		fail       string // the agent fails the freeze
		wantFrozen bool
		wantNotice string
		wantCalls  []string
	}{
		{name: "agent freezes and thaws", fake: true, wantFrozen: true, wantCalls: []string{"freeze", "thaw"}},
		{name: "freeze fails", fake: true, fail: "fsfreeze: /data: Device or resource busy", wantNotice: "could not freeze the filesystems", wantCalls: []string{"freeze", "thaw"}},
		{name: "channel but no agent", channel: true, wantNotice: "no guest agent answers on"},
		{name: "no channel", wantNotice: "the guest has no guest agent channel"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := guest(t, tt.channel, "qcow2")
			var agent *qgatest.Agent
			path := ""
			if tt.fake {
				var err error
				if agent, err = qgatest.Start(filepath.Join(t.TempDir(), "qga.sock")); err != nil {
					t.Fatal(err)
				}
				defer agent.Close()
				agent.FailFreeze(tt.fail)
				path = agent.Path
			}
			g := open(t, v, path)
			p, err := g.PointInTime(context.Background(), vm.Request{Freeze: true})
			if err != nil {
				t.Fatal(err)
			}
			defer p.End(context.Background(), false)
			if p.Frozen() != tt.wantFrozen {
				t.Errorf("frozen %v, want %v", p.Frozen(), tt.wantFrozen)
			}
			n := strings.Join(p.Notices(), "\n")
			if tt.wantNotice == "" && n != "" || !strings.Contains(n, tt.wantNotice) {
				t.Errorf("notices %q, want %q", n, tt.wantNotice)
			}
			if agent != nil {
				if agent.Frozen() {
					t.Error("the guest is left frozen")
				}
				if h := agent.History(); !slices.Equal(h, tt.wantCalls) {
					t.Errorf("agent calls %q, want %q", h, tt.wantCalls)
				}
			}
		})
	}
}

// A bitmap that is there but cannot say what changed is not used: one that
// QEMU loaded from a qcow2 image it never closed (the host lost power: the
// bitmap is marked inconsistent), and one that stopped recording. The disk
// is read whole and a notice says why; the inconsistent bitmap is removed,
// and the bitmap this point in time starts is the one kept.
func TestBitmapThatCannotBeUsed(t *testing.T) {
	tests := []struct {
		name  string
		spoil func(t *testing.T, v *qemutest.VM, bitmap string)
		why   string
	}{
		{name: "inconsistent after a crash", why: "it is not whole", spoil: func(t *testing.T, v *qemutest.VM, _ string) {
			v.Restart(t) // saved in the image, and marked in use while QEMU has it open
			v.Write(t, "vda", 0x66, 0, 64<<10)
			v.IO(t, "vda", "flush") // the write itself survives
			v.Crash(t)              // never saved again: in use, so inconsistent when loaded
		}},
		{name: "removed by another backup", why: "it is gone: the latest backup of this disk was deleted, or another repository or tool backs up this guest and removed it, or the image was replaced or restored, or QEMU dropped it",
			spoil: func(t *testing.T, v *qemutest.VM, bitmap string) {
				v.Run(t, "block-dirty-bitmap-remove", map[string]string{"node": "disk0", "name": bitmap})
				v.Write(t, "vda", 0x66, 0, 64<<10)
			}},
		{name: "stopped recording", why: "it stopped recording", spoil: func(t *testing.T, v *qemutest.VM, bitmap string) {
			v.Run(t, "block-dirty-bitmap-disable", map[string]string{"node": "disk0", "name": bitmap})
			v.Write(t, "vda", 0x66, 0, 64<<10)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := guest(t, false, "qcow2")
			ctx := context.Background()
			g := open(t, v, "")
			first, err := g.PointInTime(ctx, vm.Request{})
			if err != nil {
				t.Fatal(err)
			}
			b1 := first.Exports()[0].Bitmap
			if err := first.End(ctx, true); err != nil {
				t.Fatal(err)
			}
			g.Close()
			tt.spoil(t, v, b1)
			g = open(t, v, "")
			next, err := g.PointInTime(ctx, vm.Request{Since: map[string]string{"vda": b1}})
			if err != nil {
				t.Fatal(err)
			}
			e := next.Exports()[0]
			n := next.Notices()
			if e.Since != "" || e.DirtyContext != "" || len(n) != 1 || !strings.Contains(n[0], "disk vda is read whole") || !strings.Contains(n[0], tt.why) {
				t.Fatalf("since %q, dirty context %q, notices %q: want a full read because %s", e.Since, e.DirtyContext, n, tt.why)
			}
			if got := readAll(t, e); !bytes.Equal(got[:64<<10], bytes.Repeat([]byte{0x66}, 64<<10)) {
				t.Fatal("the point in time does not hold the guest's last write")
			}
			if err := next.End(ctx, true); err != nil {
				t.Fatal(err)
			}
			if got := v.Bitmaps(t); !slices.Equal(got, []string{e.Bitmap}) {
				t.Fatalf("bitmaps %q, want only %q", got, e.Bitmap)
			}
		})
	}
}

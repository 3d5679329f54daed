package qemu

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dropback/dropback/pkg/nbd"
	"github.com/dropback/dropback/pkg/vm"
)

// Names of what a point in time adds to the guest. Node, job and export
// IDs begin with "dbk-" (node names are at most 31 characters), the dirty
// bitmaps dropback keeps between backups with "dropback-", and the one it
// exports during a backup with "dropback-tmp-". Whatever bears these names
// and is not the current point in time's is a leftover of an earlier
// backup (leftover.go).
const (
	idPrefix     = "dbk-"
	bitmapPrefix = "dropback-"
	tmpPrefix    = "dropback-tmp-"
)

// releaseTimeout bounds releasing a point in time after its backup ended,
// also when the backup was cancelled.
const releaseTimeout = time.Minute

// point is a point in time of some of a guest's disks, and everything it
// created in the guest, for End to undo.
type point struct {
	g       *Guest
	token   string
	scratch string
	disks   []disk
	since   []string // the bitmap whose changes each disk's export reports, or ""
	old     []string // the last backup's bitmap of each disk, read or not
	bitmaps []string // the bitmap started for each disk
	exports []vm.Export
	notices []string
	frozen  bool

	// What exists in the guest, for End.
	files       []string // scratch images, by path
	owner       *scratchOwner
	fileNodes   []string
	fleeceNodes []string
	jobs        []string
	exportIDs   []string
	nbdStarted  bool
	tmpBitmaps  []string // per disk, "" where none
	pointTaken  bool     // the transaction ran: bitmaps were started
	ended       bool
}

var _ vm.PointInTime = (*point)(nil)

func (p *point) Exports() []vm.Export { return p.exports }
func (p *point) Frozen() bool         { return p.frozen }
func (p *point) Notices() []string    { return p.notices }

func (p *point) notef(format string, args ...any) {
	p.notices = append(p.notices, fmt.Sprintf(format, args...))
}

// PointInTime implements vm.Guest.
func (g *Guest) PointInTime(ctx context.Context, req vm.Request) (_ vm.PointInTime, err error) {
	p := &point{g: g, token: randomHex(3), scratch: req.Scratch}
	if p.scratch == "" {
		p.scratch = os.TempDir()
	}
	// Before any file of this backup is made, and until it ends: no sweep
	// of another backup takes them meanwhile. A token another backup
	// holds, or one left, is not this backup's: it draws another.
	for tries := 1; ; tries++ {
		o, err := holdScratch(p.scratch, p.token)
		if errors.Is(err, fs.ErrExist) && tries < 8 {
			p.token = randomHex(3)
			continue
		}
		p.owner = o // nil where the directory takes no owner file
		break
	}
	defer func() {
		if err != nil {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
			defer cancel()
			if rerr := p.End(rctx, false); rerr != nil {
				err = fmt.Errorf("%w; and releasing what it set up failed: %v (the next backup clears it)", err, rerr)
			}
		}
	}()
	all, err := g.disks(ctx)
	if err != nil {
		return nil, err
	}
	chosen, err := vm.Choose(vmDisks(all), req.Devices)
	if err != nil {
		return nil, err
	}
	if err := p.clearLeftovers(ctx, chosen, req.Since); err != nil {
		return nil, err
	}
	if n := sweepScratch(p.scratch, p.token, time.Now()); n > 0 {
		p.notef("removed %d scratch file(s) that earlier backups left in %s, which no QEMU uses", n, p.scratch)
	}
	if all, err = g.disks(ctx); err != nil { // the root nodes, with no leftover filter above them
		return nil, err
	}
	for _, c := range chosen {
		p.disks = append(p.disks, all[vm.IndexOf(vmDisks(all), c.Device)])
	}
	if err := p.checkBitmaps(ctx, req.Since); err != nil {
		return nil, err
	}
	if req.Whole {
		p.since = make([]string, len(p.disks))
	}
	if err := p.prepare(ctx); err != nil {
		return nil, err
	}
	thaw := p.freeze(ctx, req)
	err = p.take(ctx)
	thaw()
	if err != nil {
		return nil, err
	}
	if err := p.export(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

func vmDisks(ds []disk) []vm.Disk {
	out := make([]vm.Disk, len(ds))
	for i, d := range ds {
		out[i] = d.Disk
	}
	return out
}

// prepare creates, for every disk, an empty qcow2 overlay in the scratch
// directory whose backing is the disk (the fleecing node), and starts
// QEMU's NBD server on a unix socket there. Nothing of it touches the
// guest's I/O.
func (p *point) prepare(ctx context.Context) error {
	for i, d := range p.disks {
		path := filepath.Join(p.scratch, fmt.Sprintf("dropback-%s-%d.qcow2", p.token, i))
		fileNode := fmt.Sprintf("%sf-%s-%d", idPrefix, p.token, i)
		fleece := fmt.Sprintf("%sl-%s-%d", idPrefix, p.token, i)
		if err := p.g.createJob(ctx, fmt.Sprintf("%sc-%s-%d", idPrefix, p.token, i), map[string]any{"driver": "file", "filename": path, "size": 0}); err != nil {
			return fmt.Errorf("create the fleecing image %s of disk %s: %w", path, d.Device, err)
		}
		p.files = append(p.files, path)
		if err := p.g.mon.run(ctx, "blockdev-add", map[string]any{"driver": "file", "node-name": fileNode, "filename": path}, nil); err != nil {
			return fmt.Errorf("open the fleecing image of disk %s: %w", d.Device, err)
		}
		p.fileNodes = append(p.fileNodes, fileNode)
		if err := p.g.createJob(ctx, fmt.Sprintf("%sq-%s-%d", idPrefix, p.token, i), map[string]any{"driver": "qcow2", "file": fileNode, "size": d.Size}); err != nil {
			return fmt.Errorf("format the fleecing image of disk %s: %w", d.Device, err)
		}
		if err := p.g.mon.run(ctx, "blockdev-add", map[string]any{"driver": "qcow2", "node-name": fleece, "file": fileNode, "backing": d.node}, nil); err != nil {
			return fmt.Errorf("add the fleecing node of disk %s: %w", d.Device, err)
		}
		p.fleeceNodes = append(p.fleeceNodes, fleece)
	}
	return p.startNBD(ctx)
}

// startNBD starts QEMU's NBD server on a socket in the scratch directory.
// One that runs already but serves nothing of anyone else's is what an
// earlier backup left: it is stopped and started anew.
func (p *point) startNBD(ctx context.Context) error {
	sock := p.socket()
	args := map[string]any{"addr": map[string]any{"type": "unix", "data": map[string]string{"path": sock}}}
	err := p.g.mon.run(ctx, "nbd-server-start", args, nil)
	var ce *CommandError
	if errors.As(err, &ce) && strings.Contains(ce.Desc, "already running") {
		others, lerr := p.g.foreignExports(ctx)
		if lerr != nil {
			return lerr
		}
		if len(others) > 0 {
			return fmt.Errorf("QEMU's NBD server runs already, with exports of another tool (%s); dropback needs it: stop it (QMP nbd-server-stop) or back up when it is free", strings.Join(others, ", "))
		}
		if err := p.g.mon.run(ctx, "nbd-server-stop", nil, nil); err != nil {
			return err
		}
		p.notef("stopped the NBD server an earlier backup left running in the guest")
		err = p.g.mon.run(ctx, "nbd-server-start", args, nil)
	}
	if err != nil {
		return fmt.Errorf("start QEMU's NBD server on %s: %w", sock, err)
	}
	p.nbdStarted = true
	for i := range p.disks {
		p.exports = append(p.exports, vm.Export{Device: p.disks[i].Device, Size: p.disks[i].Size, Network: "unix", Addr: sock})
	}
	return nil
}

// take is the instant: one transaction starts copy-before-write from every
// disk into its fleecing node, starts a new dirty bitmap on every disk, and
// freezes a copy of the bitmap each disk's changes are read from.
func (p *point) take(ctx context.Context) error {
	var actions []map[string]any
	add := func(typ string, data map[string]any) {
		actions = append(actions, map[string]any{"type": typ, "data": data})
	}
	p.tmpBitmaps = make([]string, len(p.disks))
	for i, d := range p.disks {
		job := fmt.Sprintf("%sj-%s-%d", idPrefix, p.token, i)
		add("blockdev-backup", map[string]any{"job-id": job, "device": d.node, "target": p.fleeceNodes[i], "sync": "none"})
		p.bitmaps = append(p.bitmaps, bitmapPrefix+randomHex(8))
		add("block-dirty-bitmap-add", map[string]any{"node": d.node, "name": p.bitmaps[i], "persistent": d.PersistentBitmaps()})
		if p.since[i] != "" {
			p.tmpBitmaps[i] = fmt.Sprintf("%s%s-%d", tmpPrefix, p.token, i)
			add("block-dirty-bitmap-add", map[string]any{"node": d.node, "name": p.tmpBitmaps[i], "disabled": true})
			add("block-dirty-bitmap-merge", map[string]any{"node": d.node, "target": p.tmpBitmaps[i], "bitmaps": []string{p.since[i]}})
		}
	}
	if err := p.g.mon.run(ctx, "transaction", map[string]any{"actions": actions}, nil); err != nil {
		var ce *CommandError
		if !errors.As(err, &ce) {
			// Lost or cancelled: it may have run. End removes what it
			// may have added.
			p.pointTaken = true
			p.addJobs()
		}
		return fmt.Errorf("take the point in time: %w", err)
	}
	p.pointTaken = true
	p.addJobs()
	return nil
}

func (p *point) addJobs() {
	p.jobs = p.jobs[:0]
	for i := range p.disks {
		p.jobs = append(p.jobs, fmt.Sprintf("%sj-%s-%d", idPrefix, p.token, i))
	}
}

// export adds an NBD export of every fleecing node, with the frozen copy of
// its bitmap when it has one.
func (p *point) export(ctx context.Context) error {
	for i := range p.disks {
		id := fmt.Sprintf("%se-%s-%d", idPrefix, p.token, i)
		args := map[string]any{"type": "nbd", "id": id, "node-name": p.fleeceNodes[i], "name": id, "writable": false}
		if p.tmpBitmaps[i] != "" {
			args["bitmaps"] = []string{p.tmpBitmaps[i]}
		}
		if err := p.g.mon.run(ctx, "block-export-add", args, nil); err != nil {
			var ce *CommandError
			if !errors.As(err, &ce) {
				p.exportIDs = append(p.exportIDs, id)
			}
			return fmt.Errorf("export disk %s over NBD: %w", p.disks[i].Device, err)
		}
		p.exportIDs = append(p.exportIDs, id)
		e := &p.exports[i]
		e.Name, e.Bitmap = id, p.bitmaps[i]
		if p.tmpBitmaps[i] != "" {
			e.Since, e.DirtyContext = p.since[i], nbd.DirtyBitmapContext(p.tmpBitmaps[i])
		}
	}
	return nil
}

// createJob runs blockdev-create and waits for its job to end.
func (g *Guest) createJob(ctx context.Context, id string, options map[string]any) error {
	if err := g.mon.run(ctx, "blockdev-create", map[string]any{"job-id": id, "options": options}, nil); err != nil {
		return err
	}
	for {
		var jobs []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
			Error  string `json:"error"`
		}
		if err := g.mon.run(ctx, "query-jobs", nil, &jobs); err != nil {
			return err
		}
		found := false
		for _, j := range jobs {
			if j.ID != id {
				continue
			}
			found = true
			if j.Status == "concluded" {
				_ = g.mon.run(ctx, "job-dismiss", map[string]string{"id": id}, nil)
				if j.Error != "" {
					return errors.New(j.Error)
				}
				return nil
			}
		}
		if !found {
			return nil // dismissed on its own
		}
		if err := sleep(ctx, 5*time.Millisecond); err != nil {
			return err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

package qemu

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/dropback/dropback/pkg/vm"
)

// pollEvery is how often a wait for QEMU to finish a step asks again.
const pollEvery = 5 * time.Millisecond

// nodeInfo is an entry of query-named-block-nodes.
type nodeInfo struct {
	NodeName string `json:"node-name"`
	Drv      string `json:"drv"`
	File     string `json:"file"`
	Bitmaps  []struct {
		Name         string `json:"name"`
		Recording    bool   `json:"recording"`
		Busy         bool   `json:"busy"`
		Persistent   bool   `json:"persistent"`
		Inconsistent bool   `json:"inconsistent"`
	} `json:"dirty-bitmaps"`
}

func (g *Guest) nodes(ctx context.Context) ([]nodeInfo, error) {
	var nodes []nodeInfo
	err := g.mon.run(ctx, "query-named-block-nodes", map[string]any{"flat": true}, &nodes)
	return nodes, err
}

// clearLeftovers removes what an earlier backup that could not end left in
// the guest: its exports, fleecing jobs and nodes, frozen bitmaps, and the
// dirty bitmaps of dropback's on the chosen disks that no backup uses any
// more (since maps a device to the one that is still in use). The bitmaps
// of the guest's other disks are another host's (one registered with
// --device) and left alone. Each kind cleared is a notice.
func (p *point) clearLeftovers(ctx context.Context, chosen []vm.Disk, since map[string]string) error {
	var cleared []string
	count := func(n int, what string) {
		if n > 0 {
			cleared = append(cleared, fmt.Sprintf("%d %s", n, what))
		}
	}
	var exports []struct {
		ID string `json:"id"`
	}
	if err := p.g.mon.run(ctx, "query-block-exports", nil, &exports); err != nil {
		return err
	}
	var ours []string
	for _, e := range exports {
		if strings.HasPrefix(e.ID, idPrefix) {
			ours = append(ours, e.ID)
		}
	}
	if err := p.g.deleteExports(ctx, ours); err != nil {
		return err
	}
	count(len(ours), "NBD export(s)")
	jobs, err := p.g.blockJobs(ctx)
	if err != nil {
		return err
	}
	var oldJobs []string
	for id := range jobs {
		if strings.HasPrefix(id, idPrefix) {
			oldJobs = append(oldJobs, id)
		}
	}
	if err := p.g.cancelJobs(ctx, oldJobs); err != nil {
		return err
	}
	count(len(oldJobs), "fleecing job(s)")
	n, err := p.clearNodes(ctx, chosen, since)
	if err != nil {
		return err
	}
	count(n[0], "fleecing node(s)")
	count(n[1], "dirty bitmap(s) no backup uses")
	if len(cleared) > 0 {
		p.notef("cleared what an earlier backup left in the guest: %s", strings.Join(cleared, ", "))
	}
	return nil
}

// clearNodes deletes leftover fleecing nodes and their files, and the
// bitmaps of dropback's on the chosen disks (and on nodes that are no
// disk's) that are not in since. It returns how many nodes and bitmaps it
// removed.
func (p *point) clearNodes(ctx context.Context, chosen []vm.Disk, since map[string]string) ([2]int, error) {
	var n [2]int
	nodes, err := p.g.nodes(ctx)
	if err != nil {
		return n, err
	}
	var fleece, files, paths []string
	for _, node := range nodes {
		switch {
		case strings.HasPrefix(node.NodeName, idPrefix+"l-"):
			fleece = append(fleece, node.NodeName)
		case strings.HasPrefix(node.NodeName, idPrefix+"f-"):
			files = append(files, node.NodeName)
			if strings.HasPrefix(filepath.Base(node.File), "dropback-") {
				paths = append(paths, node.File)
			}
		}
	}
	if err := p.g.deleteNodes(ctx, fleece, files, paths); err != nil {
		return n, err
	}
	n[0] = len(fleece) + len(files)
	disks, err := p.g.disks(ctx)
	if err != nil {
		return n, err
	}
	inUse := map[string]string{} // node -> the bitmap its device's backups use
	others := map[string]bool{}  // nodes of disks this backup does not read
	for _, d := range disks {
		inUse[d.node] = since[d.Device]
		if vm.IndexOf(chosen, d.Device) < 0 {
			others[d.node] = true
		}
	}
	for _, node := range nodes {
		keep, isDisk := inUse[node.NodeName]
		if others[node.NodeName] {
			continue
		}
		for _, b := range node.Bitmaps {
			if !strings.HasPrefix(b.Name, bitmapPrefix) || isDisk && b.Name == keep {
				continue
			}
			if err := p.g.removeBitmap(ctx, node.NodeName, b.Name); err != nil {
				return n, err
			}
			n[1]++
		}
	}
	return n, nil
}

// checkBitmaps decides, for every disk, whether the bitmap its previous
// backup started can say what changed since: it must be there, recording,
// and whole. A bitmap that is not whole (QEMU stopped without saving it)
// is removed; one that stopped recording is dropped with the bitmaps this
// backup read from, once it is stored. Every disk that must be read whole says why in a notice.
func (p *point) checkBitmaps(ctx context.Context, since map[string]string) error {
	p.since = make([]string, len(p.disks))
	p.old = make([]string, len(p.disks))
	nodes, err := p.g.nodes(ctx)
	if err != nil {
		return err
	}
	for i, d := range p.disks {
		want := since[d.Device]
		if want == "" {
			continue
		}
		why := goneWhy(d.Disk)
		for _, node := range nodes {
			if node.NodeName != d.node {
				continue
			}
			for _, b := range node.Bitmaps {
				if b.Name != want {
					continue
				}
				switch {
				case b.Inconsistent:
					why = "it is not whole (QEMU stopped without saving it)"
					if err := p.g.removeBitmap(ctx, d.node, want); err != nil {
						return err
					}
				case !b.Recording:
					why = "it stopped recording"
					p.old[i] = want // of no use to any backup: dropped once this one is stored
				case b.Busy:
					why = "another job is using it"
				default:
					why = ""
					p.since[i], p.old[i] = want, want
				}
			}
		}
		if why != "" {
			p.notef("disk %s is read whole: the dirty bitmap %s that its last backup started cannot be used: %s", d.Device, want, why)
		}
	}
	return nil
}

// goneWhy says why the bitmap a disk's last backup started may be gone:
// dropback itself removes it when that backup is deleted (the bitmap of
// the backup before it went when that one was stored), or when a backup
// of the guest by another repository or tool clears bitmaps it does not
// use; and a raw image keeps none across a restart.
func goneWhy(d vm.Disk) string {
	why := "it is gone: the latest backup of this disk was deleted, or another repository or tool backs up this guest and removed it, "
	if d.PersistentBitmaps() {
		return why + "or the image was replaced or restored, or QEMU dropped it"
	}
	return why + "or the guest was restarted (" + d.Format + " keeps no bitmaps across a restart), or the image was replaced"
}

// foreignExports lists the NBD exports of the guest that are not
// dropback's.
func (g *Guest) foreignExports(ctx context.Context) ([]string, error) {
	var exports []struct {
		ID string `json:"id"`
	}
	if err := g.mon.run(ctx, "query-block-exports", nil, &exports); err != nil {
		return nil, err
	}
	var out []string
	for _, e := range exports {
		if !strings.HasPrefix(e.ID, idPrefix) {
			out = append(out, e.ID)
		}
	}
	return out, nil
}

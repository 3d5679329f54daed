package qemu

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"

	"github.com/dropback/dropback/pkg/vm"
)

// Check implements vm.PointInTime: the point in time held if every
// fleecing job still runs. A job that ended (cancelled by another client,
// failed because the scratch directory filled up) stopped copying what the
// guest overwrote, so what was read after may be newer than the instant.
func (p *point) Check(ctx context.Context) error {
	jobs, err := p.g.blockJobs(ctx)
	if err != nil {
		return fmt.Errorf("check that the point in time held: %w", err)
	}
	for i, id := range p.jobs {
		st, ok := jobs[id]
		if !ok || st != "running" && st != "ready" {
			if !ok {
				st = "gone"
			}
			return fmt.Errorf("the point in time of disk %s did not hold: its fleecing job is %s (cancelled by another QMP client, or the scratch directory %s is full?)",
				p.disks[i].Device, st, p.scratch)
		}
	}
	return nil
}

// blockJobs returns the status of every block job, by ID.
func (g *Guest) blockJobs(ctx context.Context) (map[string]string, error) {
	var jobs []struct {
		Device string `json:"device"`
		Status string `json:"status"`
	}
	if err := g.mon.run(ctx, "query-block-jobs", nil, &jobs); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(jobs))
	for _, j := range jobs {
		out[j.Device] = j.Status
	}
	return out, nil
}

// End implements vm.PointInTime. It goes on after a step fails, so that as
// much as can be is released, and returns every failure; but once QEMU is
// gone (its QMP socket refuses) there is nothing left in the guest to
// release: it removes the scratch files QEMU can no longer remove, and
// says once that QEMU is gone, wrapping vm.ErrNotRunning.
func (p *point) End(ctx context.Context, stored bool) error {
	if p.ended {
		return nil
	}
	p.ended = true
	var errs []error
	var gone error
	keep := func(err error) {
		if err == nil || gone != nil {
			return
		}
		if gone = p.gone(ctx, err); gone == nil {
			errs = append(errs, err)
		}
	}
	keep(p.g.deleteExports(ctx, p.exportIDs))
	if p.nbdStarted {
		keep(ignoreMissing(p.g.mon.run(ctx, "nbd-server-stop", nil, nil)))
	}
	keep(p.g.cancelJobs(ctx, p.jobs))
	keep(p.g.deleteNodes(ctx, p.fleeceNodes, p.fileNodes, p.files))
	for i, d := range p.disks {
		if i < len(p.tmpBitmaps) && p.tmpBitmaps[i] != "" {
			keep(p.g.removeBitmap(ctx, d.node, p.tmpBitmaps[i]))
		}
		if !p.pointTaken || i >= len(p.bitmaps) {
			continue
		}
		switch {
		case stored && p.old[i] != "":
			keep(p.g.removeBitmap(ctx, d.node, p.old[i])) // the new one records from here
		case !stored:
			keep(p.g.removeBitmap(ctx, d.node, p.bitmaps[i])) // the old one still records every change
		}
	}
	p.removeOwn()
	p.owner.release()
	if gone != nil {
		return goneError(fmt.Sprintf("release the point in time: QEMU is gone (%v); nothing of the backup is left in the guest, and its scratch files in %s are removed",
			gone, p.scratch))
	}
	if len(errs) > 0 {
		return fmt.Errorf("release the point in time: %w", errors.Join(errs...))
	}
	return nil
}

// goneError is the end of a point in time whose QEMU is gone: it is
// vm.ErrNotRunning, in its own words.
type goneError string

func (e goneError) Error() string      { return string(e) }
func (goneError) Is(target error) bool { return target == vm.ErrNotRunning }

// gone tells whether err, an error of a QMP command, is because QEMU is
// gone: the connection was lost or cannot be made, a new one is refused,
// and nothing holds the point in time's scratch files (a QEMU whose QMP
// socket was removed still holds them). It returns the refusal, or nil
// when QEMU may still be there.
func (p *point) gone(ctx context.Context, err error) error {
	if !errors.Is(err, ErrLost) && !errors.Is(err, vm.ErrUnreachable) {
		return nil
	}
	perr := p.g.mon.run(ctx, "query-status", nil, nil)
	if !errors.Is(perr, syscall.ECONNREFUSED) && !errors.Is(perr, syscall.ENOENT) {
		return nil
	}
	if p.ownInUse() {
		return nil
	}
	return perr
}

// deleteExports removes NBD exports, dropping their clients, and waits
// until they are gone.
func (g *Guest) deleteExports(ctx context.Context, ids []string) error {
	for _, id := range ids {
		if err := ignoreMissing(g.mon.run(ctx, "block-export-del", map[string]any{"id": id, "mode": "hard"}, nil)); err != nil {
			return err
		}
	}
	for len(ids) > 0 {
		var exports []struct {
			ID string `json:"id"`
		}
		if err := g.mon.run(ctx, "query-block-exports", nil, &exports); err != nil {
			return err
		}
		ids = slices.DeleteFunc(ids, func(id string) bool {
			return !slices.ContainsFunc(exports, func(e struct {
				ID string `json:"id"`
			}) bool {
				return e.ID == id
			})
		})
		if len(ids) > 0 {
			if err := sleep(ctx, pollEvery); err != nil {
				return err
			}
		}
	}
	return nil
}

// cancelJobs cancels block jobs and waits until they are gone.
func (g *Guest) cancelJobs(ctx context.Context, ids []string) error {
	for _, id := range ids {
		if err := ignoreMissing(g.mon.run(ctx, "block-job-cancel", map[string]any{"device": id, "force": true}, nil)); err != nil {
			return err
		}
	}
	for {
		jobs, err := g.blockJobs(ctx)
		if err != nil {
			return err
		}
		left := slices.ContainsFunc(ids, func(id string) bool { _, ok := jobs[id]; return ok })
		if !left {
			return nil
		}
		if err := sleep(ctx, pollEvery); err != nil {
			return err
		}
	}
}

// deleteNodes deletes fleecing nodes, then the file nodes under them, then
// their files.
func (g *Guest) deleteNodes(ctx context.Context, fleece, files, paths []string) error {
	for _, n := range append(slices.Clone(fleece), files...) {
		if err := ignoreMissing(g.mon.run(ctx, "blockdev-del", map[string]string{"node-name": n}, nil)); err != nil {
			return err
		}
	}
	for _, p := range paths {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove the fleecing image: %w", err)
		}
	}
	return nil
}

func (g *Guest) removeBitmap(ctx context.Context, node, name string) error {
	return ignoreMissing(g.mon.run(ctx, "block-dirty-bitmap-remove", map[string]string{"node": node, "name": name}, nil))
}

// ignoreMissing makes QEMU's "not found" answers success: what should be
// removed is gone already.
func ignoreMissing(err error) error {
	var ce *CommandError
	if errors.As(err, &ce) {
		d := strings.ToLower(ce.Desc)
		if strings.Contains(d, "not found") || strings.Contains(d, "no job") || strings.Contains(d, "not running") ||
			strings.Contains(d, "cannot find") || strings.Contains(d, "no export") || strings.Contains(d, "no active block job") {
			return nil
		}
	}
	return err
}

package vm

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/dropback/dropback/pkg/nbd"
)

// Reader reads one disk of a point in time over NBD. It is an
// engine.LiveReader, and reports what changed since an earlier bitmap when
// its export has one. Its methods are safe for concurrent use.
type Reader struct {
	c    *nbd.Client
	exp  Export
	read atomic.Int64
}

// Open connects to the NBD export of exp, asking for the allocation of its
// blocks and, when exp has one, its dirty bitmap.
func Open(ctx context.Context, exp Export) (*Reader, error) {
	contexts := []string{nbd.ContextBaseAllocation}
	if exp.DirtyContext != "" {
		contexts = append(contexts, exp.DirtyContext)
	}
	c, err := nbd.Dial(ctx, exp.Network, exp.Addr, exp.Name, contexts...)
	if err != nil {
		return nil, fmt.Errorf("read disk %s: %w", exp.Device, err)
	}
	if c.Size() != exp.Size {
		c.Close()
		return nil, fmt.Errorf("read disk %s: the export is %d bytes, the disk %d", exp.Device, c.Size(), exp.Size)
	}
	return &Reader{c: c, exp: exp}, nil
}

// Size is the size of the disk.
func (r *Reader) Size() int64 { return r.c.Size() }

// ReadAt reads len(p) bytes at off.
func (r *Reader) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	n, err := r.c.ReadAt(ctx, p, off)
	r.read.Add(int64(n))
	return n, err
}

// BytesRead is how many bytes ReadAt has read.
func (r *Reader) BytesRead() int64 { return r.read.Load() }

// DataRegions returns the ranges that may hold data: everything the server
// does not report as reading zeros. A server that grants no allocation
// context has data everywhere.
func (r *Reader) DataRegions(ctx context.Context) ([][2]int64, error) {
	id, ok := r.c.MetaContext(nbd.ContextBaseAllocation)
	if !ok {
		return [][2]int64{{0, r.c.Size()}}, nil
	}
	return r.regions(ctx, id, func(e nbd.Extent) bool { return e.Flags&nbd.StateZero == 0 })
}

// Changes returns the ranges the dirty bitmap reports written since it was
// started. ok is false when the export has no dirty bitmap, or the server
// did not grant its context: then everything must be read.
func (r *Reader) Changes(ctx context.Context) (regions [][2]int64, ok bool, err error) {
	if r.exp.DirtyContext == "" {
		return nil, false, nil
	}
	id, ok := r.c.MetaContext(r.exp.DirtyContext)
	if !ok {
		return nil, false, nil
	}
	regions, err = r.regions(ctx, id, func(e nbd.Extent) bool { return e.Flags&nbd.StateDirty != 0 })
	return regions, err == nil, err
}

// regions maps the extents of the whole export in one context and returns
// the runs of those keep says yes to, adjacent ones merged.
func (r *Reader) regions(ctx context.Context, id uint32, keep func(nbd.Extent) bool) ([][2]int64, error) {
	var out [][2]int64
	err := r.c.MapExtents(ctx, 0, r.c.Size(), id, func(e nbd.Extent) error {
		if !keep(e) {
			return nil
		}
		if n := len(out); n > 0 && out[n-1][1] == e.Offset {
			out[n-1][1] = e.End()
		} else {
			out = append(out, [2]int64{e.Offset, e.End()})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("block status of disk %s: %w", r.exp.Device, err)
	}
	return out, nil
}

// Close ends the NBD session.
func (r *Reader) Close() error { return r.c.Close() }

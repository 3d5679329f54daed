package export

import (
	"context"

	"github.com/dropback/dropback/pkg/nbd"
)

// NBDExports returns the disks as read-only NBD exports, each named by its
// disk's name, for nbd.NewServer. Extents of zeros are reported as holes
// that read as zeros (StateHole|StateZero) in "base:allocation", so that
// clients skip them; the server sends them without reading them.
func NBDExports(disks []Disk) map[string]nbd.Export {
	out := make(map[string]nbd.Export, len(disks))
	for _, d := range disks {
		out[d.Name()] = nbdDisk{d}
	}
	return out
}

type nbdDisk struct{ d Disk }

var _ nbd.Export = nbdDisk{}

func (e nbdDisk) Size() int64 { return e.d.Size() }

func (e nbdDisk) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	return e.d.ReadAt(ctx, p, off)
}

func (e nbdDisk) Extents(_ context.Context, off, length int64) ([]nbd.Extent, error) {
	ext := e.d.Extents(off, length)
	out := make([]nbd.Extent, len(ext))
	for i, x := range ext {
		out[i] = nbd.Extent{Offset: x.Offset, Length: x.Length}
		if x.Zero {
			out[i].Flags = nbd.StateHole | nbd.StateZero
		}
	}
	return out, nil
}

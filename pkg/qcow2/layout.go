// Package qcow2 writes qcow2 version 3 disk images in one sequential pass, and
// reads them back.
//
// The writer is built for exports whose allocation is known before any data is
// read: the caller describes the virtual size and the guest ranges that hold
// data, NewLayout places every structure (header, L1 table, L2 tables, refcount
// table and blocks, then one host cluster per allocated guest cluster in
// ascending guest order), and a Writer emits the file front to back, so the
// destination can be a pipe. Everything outside the described ranges stays
// unallocated and reads as zeros. The format is QEMU's docs/interop/qcow2.rst;
// docs/qcow2.md says which parts of it are used.
package qcow2

import (
	"errors"
	"fmt"
	"math/bits"
)

const (
	// DefaultClusterSize is the cluster size NewLayout uses when given 0, and
	// the one qemu-img uses by default.
	DefaultClusterSize = 64 << 10
	// MinClusterSize and MaxClusterSize bound the cluster size: the format's
	// minimum, and the largest QEMU opens.
	MinClusterSize = 512
	MaxClusterSize = 2 << 20

	sectorSize     = 512
	refcountOrder  = 4                      // 16-bit refcounts, QEMU's default
	refcountBytes  = 1 << refcountOrder / 8 // bytes per refcount entry
	headerLength   = 112                    // v3 header with compression_type, as QEMU writes it
	copiedFlag     = uint64(1) << 63        // L1/L2 entry: refcount is exactly one
	maxL1Bytes     = 32 << 20               // QEMU's limit on the L1 table
	maxRefTabBytes = 8 << 20                // QEMU's limit on the refcount table
	maxHostOffset  = int64(1) << 56         // L2 entries hold offset bits 9-55
)

// ErrLayout reports allocation maps and sizes that cannot be laid out.
var ErrLayout = errors.New("invalid qcow2 layout")

// Extent is a range of guest bytes that holds data.
type Extent struct {
	Offset int64
	Length int64
}

// run is a range of allocated guest clusters.
type run struct {
	first, count int64
}

// Layout is the placement of every cluster of a qcow2 file, computed before
// anything is written. It is immutable and safe for concurrent use.
type Layout struct {
	size        int64
	clusterBits uint
	runs        []run // allocated guest clusters, ascending and disjoint

	dataClusters int64
	l1Entries    int64
	l1Clusters   int64
	l2Tables     int64
	rtClusters   int64 // refcount table
	rbClusters   int64 // refcount blocks

	l1Offset, l2Offset, rtOffset, rbOffset, dataOffset int64
	fileClusters                                       int64
}

// NewLayout lays out an image of virtualSize bytes whose data lies in the
// extents data, which must be in ascending order and must not overlap.
// virtualSize is rounded up to a multiple of 512 bytes, since QEMU sees disks
// in sectors and ignores a partial last one (it rounds a raw file's size up
// the same way); the added bytes read as zeros.
// Extents need not be aligned: each is widened to whole clusters, and the
// Writer fills the widened part with whatever the caller writes there, else
// zeros. clusterSize is a power of two from MinClusterSize to MaxClusterSize;
// 0 means DefaultClusterSize. Errors wrap ErrLayout.
func NewLayout(virtualSize int64, data []Extent, clusterSize int) (*Layout, error) {
	if clusterSize == 0 {
		clusterSize = DefaultClusterSize
	}
	if clusterSize < MinClusterSize || clusterSize > MaxClusterSize || clusterSize&(clusterSize-1) != 0 {
		return nil, fmt.Errorf("%w: cluster size %d is not a power of two from %d to %d",
			ErrLayout, clusterSize, MinClusterSize, MaxClusterSize)
	}
	if virtualSize < 0 {
		return nil, fmt.Errorf("%w: negative virtual size %d", ErrLayout, virtualSize)
	}
	virtualSize = (virtualSize + sectorSize - 1) &^ (sectorSize - 1)
	l := &Layout{size: virtualSize, clusterBits: uint(bits.TrailingZeros(uint(clusterSize)))}
	if err := l.addExtents(data); err != nil {
		return nil, err
	}
	if err := l.place(); err != nil {
		return nil, err
	}
	return l, nil
}

// addExtents turns byte extents into merged runs of guest clusters.
func (l *Layout) addExtents(data []Extent) error {
	cs := l.clusterSize()
	prevEnd := int64(0)
	for _, e := range data {
		if e.Length == 0 {
			continue
		}
		if e.Offset < 0 || e.Length < 0 || e.Offset > l.size || e.Length > l.size-e.Offset {
			return fmt.Errorf("%w: extent [%d, +%d) is outside the virtual size %d",
				ErrLayout, e.Offset, e.Length, l.size)
		}
		if e.Offset < prevEnd {
			return fmt.Errorf("%w: extent at %d overlaps or precedes the one ending at %d",
				ErrLayout, e.Offset, prevEnd)
		}
		prevEnd = e.Offset + e.Length
		first := e.Offset >> l.clusterBits
		end := (prevEnd + cs - 1) >> l.clusterBits
		if n := len(l.runs); n > 0 && l.runs[n-1].first+l.runs[n-1].count >= first {
			last := &l.runs[n-1]
			l.dataClusters += end - (last.first + last.count)
			last.count = end - last.first
			continue
		}
		l.runs = append(l.runs, run{first: first, count: end - first})
		l.dataClusters += end - first
	}
	return nil
}

// place assigns host offsets: header, L1, L2 tables, refcount table,
// refcount blocks, data.
func (l *Layout) place() error {
	cs := l.clusterSize()
	l2Entries := cs / 8
	guestClusters := (l.size + cs - 1) >> l.clusterBits
	l.l1Entries = (guestClusters + l2Entries - 1) / l2Entries
	if l.l1Entries*8 > maxL1Bytes {
		return fmt.Errorf("%w: virtual size %d needs an L1 table of %d bytes, over QEMU's %d; use larger clusters",
			ErrLayout, l.size, l.l1Entries*8, maxL1Bytes)
	}
	l.l1Clusters = (l.l1Entries*8 + cs - 1) >> l.clusterBits
	lastTable := int64(-1)
	for _, r := range l.runs {
		t0, t1 := r.first/l2Entries, (r.first+r.count-1)/l2Entries
		l.l2Tables += t1 - t0 + 1
		if t0 == lastTable {
			l.l2Tables--
		}
		lastTable = t1
	}
	// The refcount blocks must cover every cluster, themselves and the
	// refcount table included: grow both until they do.
	fixed := 1 + l.l1Clusters + l.l2Tables + l.dataClusters
	perBlock := cs / refcountBytes
	for {
		total := fixed + l.rtClusters + l.rbClusters
		rb := (total + perBlock - 1) / perBlock
		rt := (rb*8 + cs - 1) >> l.clusterBits
		if rb == l.rbClusters && rt == l.rtClusters {
			l.fileClusters = total
			break
		}
		l.rbClusters, l.rtClusters = rb, rt
	}
	if l.rtClusters*cs > maxRefTabBytes || l.fileClusters > maxHostOffset>>l.clusterBits {
		return fmt.Errorf("%w: a file of %d clusters of %d bytes is too large for qcow2",
			ErrLayout, l.fileClusters, cs)
	}
	if l.l1Entries > 0 {
		l.l1Offset = cs
	}
	l.l2Offset = (1 + l.l1Clusters) * cs
	l.rtOffset = l.l2Offset + l.l2Tables*cs
	l.rbOffset = l.rtOffset + l.rtClusters*cs
	l.dataOffset = l.rbOffset + l.rbClusters*cs
	return nil
}

func (l *Layout) clusterSize() int64 { return int64(1) << l.clusterBits }

// VirtualSize is the size of the disk as the guest sees it: the size given to
// NewLayout rounded up to a multiple of 512.
func (l *Layout) VirtualSize() int64 { return l.size }

// ClusterSize is the cluster size in bytes.
func (l *Layout) ClusterSize() int { return 1 << l.clusterBits }

// DataClusters is the number of allocated guest clusters.
func (l *Layout) DataClusters() int64 { return l.dataClusters }

// DataOffset is where the first data cluster starts in the file: the size of
// all metadata.
func (l *Layout) DataOffset() int64 { return l.dataOffset }

// FileSize is the exact length of the file the Writer produces.
func (l *Layout) FileSize() int64 { return l.fileClusters << l.clusterBits }

// DataBytes is the number of guest bytes the file stores: the allocated
// clusters, cut at the virtual size.
func (l *Layout) DataBytes() int64 {
	n := l.dataClusters << l.clusterBits
	if len(l.runs) > 0 {
		last := l.runs[len(l.runs)-1]
		n -= max(0, (last.first+last.count)<<l.clusterBits-l.size)
	}
	return n
}

package qcow2

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ErrUnsupported reports a qcow2 feature the reader does not handle: backing
// files, encryption, snapshots, compressed clusters, external data files,
// extended L2 entries, or any incompatible feature bit.
var ErrUnsupported = errors.New("unsupported qcow2 feature")

// ErrCorrupt reports an image whose structures contradict the format.
var ErrCorrupt = errors.New("corrupt qcow2 image")

// Header holds the fields of a qcow2 header that the reader uses.
type Header struct {
	Version               uint32
	ClusterBits           uint32
	Size                  int64
	L1Size                uint32
	L1TableOffset         int64
	RefcountTableOffset   int64
	RefcountTableClusters uint32
	RefcountOrder         uint32
	HeaderLength          uint32
}

const (
	l2OffsetMask   = (uint64(1)<<56 - 1) &^ 511 // bits 9-55
	l2ZeroFlag     = uint64(1)
	compressedFlag = uint64(1) << 62
	l2Reserved     = uint64(0x3f)<<56 | 0x1fe // bits 1-8 and 56-61
	l1Reserved     = uint64(0x7f)<<56 | 0x1ff // bits 0-8 and 56-62
)

// Image reads a qcow2 image without a backing file: enough to verify what
// Writer produces and to read images qemu-img creates. Its methods are safe
// for concurrent use when the underlying io.ReaderAt is.
type Image struct {
	r  io.ReaderAt
	h  Header
	l1 []uint64
}

var _ io.ReaderAt = (*Image)(nil)

// Open parses the header and L1 table of the image in r. Errors wrap
// ErrUnsupported, ErrCorrupt, or the error of r.
func Open(r io.ReaderAt) (*Image, error) {
	var b [104]byte
	if _, err := r.ReadAt(b[:], 0); err != nil {
		return nil, fmt.Errorf("read qcow2 header: %w", err)
	}
	h, err := parseHeader(b[:])
	if err != nil {
		return nil, err
	}
	im := &Image{r: r, h: h, l1: make([]uint64, h.L1Size)}
	raw := make([]byte, 8*int(h.L1Size))
	if _, err := r.ReadAt(raw, h.L1TableOffset); err != nil {
		return nil, fmt.Errorf("read qcow2 L1 table at %d: %w", h.L1TableOffset, err)
	}
	for i := range im.l1 {
		im.l1[i] = binary.BigEndian.Uint64(raw[8*i:])
	}
	return im, nil
}

func parseHeader(b []byte) (Header, error) {
	be := binary.BigEndian
	if string(b[0:4]) != "QFI\xfb" {
		return Header{}, fmt.Errorf("%w: no qcow2 magic", ErrCorrupt)
	}
	h := Header{
		Version:               be.Uint32(b[4:]),
		ClusterBits:           be.Uint32(b[20:]),
		Size:                  int64(be.Uint64(b[24:])),
		L1Size:                be.Uint32(b[36:]),
		L1TableOffset:         int64(be.Uint64(b[40:])),
		RefcountTableOffset:   int64(be.Uint64(b[48:])),
		RefcountTableClusters: be.Uint32(b[56:]),
		RefcountOrder:         4,
		HeaderLength:          72,
	}
	switch h.Version {
	case 2:
	case 3:
		h.RefcountOrder, h.HeaderLength = be.Uint32(b[96:]), be.Uint32(b[100:])
		if incompatible := be.Uint64(b[72:]); incompatible != 0 {
			return h, fmt.Errorf("%w: incompatible features %#x", ErrUnsupported, incompatible)
		}
	default:
		return h, fmt.Errorf("%w: version %d", ErrUnsupported, h.Version)
	}
	switch {
	case be.Uint64(b[8:]) != 0:
		return h, fmt.Errorf("%w: backing file", ErrUnsupported)
	case be.Uint32(b[32:]) != 0:
		return h, fmt.Errorf("%w: encryption", ErrUnsupported)
	case be.Uint32(b[60:]) != 0:
		return h, fmt.Errorf("%w: internal snapshots", ErrUnsupported)
	case h.ClusterBits < 9 || h.ClusterBits > 21:
		return h, fmt.Errorf("%w: cluster_bits %d", ErrUnsupported, h.ClusterBits)
	case h.RefcountOrder > 6:
		return h, fmt.Errorf("%w: refcount_order %d", ErrCorrupt, h.RefcountOrder)
	case h.Size < 0 || int64(h.L1Size)*8 > maxL1Bytes:
		return h, fmt.Errorf("%w: size %d with %d L1 entries", ErrCorrupt, h.Size, h.L1Size)
	}
	cs := int64(1) << h.ClusterBits
	need := (h.Size + cs - 1) / cs
	if l2 := cs / 8; int64(h.L1Size) < (need+l2-1)/l2 {
		return h, fmt.Errorf("%w: %d L1 entries cannot map %d bytes", ErrCorrupt, h.L1Size, h.Size)
	}
	if h.L1TableOffset%cs != 0 || h.RefcountTableOffset%cs != 0 {
		return h, fmt.Errorf("%w: unaligned L1 or refcount table", ErrCorrupt)
	}
	return h, nil
}

// Header returns the parsed header.
func (im *Image) Header() Header { return im.h }

// Size is the virtual size of the disk.
func (im *Image) Size() int64 { return im.h.Size }

// ClusterSize is the cluster size in bytes.
func (im *Image) ClusterSize() int64 { return int64(1) << im.h.ClusterBits }

// HostOffset returns where the byte at guest offset off is stored in the
// file, or 0 when it reads as zeros (unallocated, or a zero cluster).
func (im *Image) HostOffset(off int64) (int64, error) {
	if off < 0 || off >= im.h.Size {
		return 0, fmt.Errorf("guest offset %d outside the virtual size %d", off, im.h.Size)
	}
	cs := im.ClusterSize()
	c := off / cs
	perTable := cs / 8
	l1e := im.l1[c/perTable]
	if l1e&^copiedFlag == 0 {
		return 0, nil
	}
	if l1e&l1Reserved != 0 {
		return 0, fmt.Errorf("%w: L1 entry %d is %#x", ErrCorrupt, c/perTable, l1e)
	}
	var b [8]byte
	at := int64(l1e&l2OffsetMask) + c%perTable*8
	if _, err := im.r.ReadAt(b[:], at); err != nil {
		return 0, fmt.Errorf("read qcow2 L2 entry at %d: %w", at, err)
	}
	l2e := binary.BigEndian.Uint64(b[:])
	switch {
	case l2e&compressedFlag != 0:
		return 0, fmt.Errorf("%w: compressed cluster at guest offset %d", ErrUnsupported, off)
	case l2e&l2Reserved != 0:
		return 0, fmt.Errorf("%w: L2 entry for guest offset %d is %#x", ErrCorrupt, off, l2e)
	case l2e&l2ZeroFlag != 0 || l2e&l2OffsetMask == 0:
		return 0, nil
	}
	return int64(l2e&l2OffsetMask) + off%cs, nil
}

// ReadAt reads guest bytes; unallocated and zero clusters read as zeros.
func (im *Image) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read qcow2 image: negative offset %d", off)
	}
	if off >= im.h.Size {
		return 0, io.EOF
	}
	want := len(p)
	if int64(want) > im.h.Size-off {
		p = p[:im.h.Size-off]
	}
	cs := im.ClusterSize()
	n := 0
	for n < len(p) {
		at := off + int64(n)
		k := int(min(int64(len(p)-n), cs-at%cs))
		host, err := im.HostOffset(at)
		if err != nil {
			return n, err
		}
		if host == 0 {
			clear(p[n : n+k])
		} else if _, err := im.r.ReadAt(p[n:n+k], host); err != nil {
			return n, fmt.Errorf("read qcow2 data at %d: %w", host, err)
		}
		n += k
	}
	if n < want {
		return n, io.EOF
	}
	return n, nil
}

// Extents lists the guest ranges stored in the file, merged and in ascending
// order, cut at the virtual size; zero clusters and unallocated ones are left
// out. It reads every L2 table once.
func (im *Image) Extents() ([]Extent, error) {
	cs := im.ClusterSize()
	perTable := cs / 8
	var out []Extent
	table := make([]byte, cs)
	for t, l1e := range im.l1 {
		if l1e&^copiedFlag == 0 {
			continue
		}
		at := int64(l1e & l2OffsetMask)
		if _, err := im.r.ReadAt(table, at); err != nil {
			return nil, fmt.Errorf("read qcow2 L2 table at %d: %w", at, err)
		}
		for i := int64(0); i < perTable; i++ {
			e := binary.BigEndian.Uint64(table[8*i:])
			standard := e&compressedFlag == 0
			if standard && (e&l2ZeroFlag != 0 || e&l2OffsetMask == 0) {
				continue
			}
			start := (int64(t)*perTable + i) * cs
			if start >= im.h.Size {
				break
			}
			ext := Extent{start, min(cs, im.h.Size-start)}
			if n := len(out); n > 0 && out[n-1].Offset+out[n-1].Length == start {
				out[n-1].Length += ext.Length
			} else {
				out = append(out, ext)
			}
		}
	}
	return out, nil
}

// VirtualSize reads the size the guest sees of the qcow2 image in r from
// its header alone, whatever features the image uses (a backing file,
// bitmaps, QEMU holding it open): it is for showing the size of an image,
// not for reading it.
func VirtualSize(r io.ReaderAt) (int64, error) {
	var b [32]byte
	if _, err := r.ReadAt(b[:], 0); err != nil {
		return 0, fmt.Errorf("read qcow2 header: %w", err)
	}
	if string(b[0:4]) != "QFI\xfb" {
		return 0, fmt.Errorf("%w: no qcow2 magic", ErrCorrupt)
	}
	if v := binary.BigEndian.Uint32(b[4:]); v != 2 && v != 3 {
		return 0, fmt.Errorf("%w: version %d", ErrUnsupported, v)
	}
	size := int64(binary.BigEndian.Uint64(b[24:]))
	if size < 0 {
		return 0, fmt.Errorf("%w: size %d", ErrCorrupt, size)
	}
	return size, nil
}

package qcow2

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	kib = int64(1) << 10
	mib = int64(1) << 20
	gib = int64(1) << 30
	tib = int64(1) << 40
)

// pattern is the byte the property tests store at guest offset off: never
// zero, and different from one cluster to the next.
func pattern(off int64) byte {
	return byte(off^off>>9^off>>17^off>>25^off>>33) | 1
}

// randomMap draws a virtual size and up to maxExtents disjoint extents of at
// most 64 KiB each.
func randomMap(rng *rand.Rand, sizeLog uint, maxExtents int) (int64, []Extent) {
	size := int64(1)<<sizeLog + rng.Int64N(int64(1)<<sizeLog)
	if rng.IntN(8) == 0 {
		size = rng.Int64N(1 << 20)
	}
	if size == 0 {
		return 0, nil
	}
	n := rng.IntN(maxExtents + 1)
	offs := make([]int64, n)
	for i := range offs {
		offs[i] = rng.Int64N(size)
	}
	if n > 0 && rng.IntN(4) == 0 {
		offs[0] = size - 1 - rng.Int64N(min(size, 4096)) // data in the last cluster
	}
	slices.Sort(offs)
	var out []Extent
	for i, off := range offs {
		end := min(size, off+1+rng.Int64N(64<<10))
		if i+1 < n {
			end = min(end, offs[i+1])
		}
		if end > off {
			out = append(out, Extent{off, end - off})
		}
	}
	return size, out
}

// feedPattern writes the pattern over each extent in pieces of random size,
// sometimes with zeros of the holes around them in the same call.
func feedPattern(t *testing.T, rng *rand.Rand, w *Writer, size int64, extents []Extent) {
	pos := int64(0)
	for _, e := range extents {
		start := e.Offset
		if rng.IntN(3) == 0 {
			start = e.Offset - rng.Int64N(min(e.Offset-pos, 100000)+1) // zeros before the extent
		}
		for off := start; off < e.Offset+e.Length; {
			n := min(1+rng.Int64N(20000), e.Offset+e.Length-off)
			p := make([]byte, n)
			for i := range p {
				if o := off + int64(i); o >= e.Offset {
					p[i] = pattern(o)
				}
			}
			k, err := w.WriteAt(p, off)
			require.NoError(t, err)
			require.Equal(t, int(n), k)
			off += n
		}
		pos = e.Offset + e.Length
	}
	if rest := min(size-pos, 100000); rest > 0 && rng.IntN(2) == 0 {
		_, err := w.WriteAt(make([]byte, rest), pos) // trailing zeros
		require.NoError(t, err)
	}
}

// checkLayout writes an image of the map through a Writer into memory, then
// reads it back: the refcounts must match the references exactly (so no two
// structures share a cluster and nothing leaks), the allocated ranges must be
// the extents widened to clusters, and the data must read back.
func checkLayout(t *testing.T, rng *rand.Rand, size int64, clusterSize int, extents []Extent) {
	l, err := NewLayout(size, extents, clusterSize)
	if err != nil {
		require.ErrorIs(t, err, ErrLayout)
		cs := int64(clusterSize)
		l1Entries := ((size+cs-1)/cs + cs/8 - 1) / (cs / 8)
		require.Greater(t, l1Entries*8, int64(maxL1Bytes), "only an oversized L1 is refused here")
		return
	}
	buf := bytes.NewBuffer(make([]byte, 0, l.FileSize()))
	w, err := NewWriter(buf, l)
	require.NoError(t, err)
	feedPattern(t, rng, w, l.VirtualSize(), extents)
	require.NoError(t, w.Close())
	require.Equal(t, l.FileSize(), int64(buf.Len()))
	require.Equal(t, l.FileSize(), w.Written())

	im, err := Open(bytes.NewReader(buf.Bytes()))
	require.NoError(t, err)
	require.NoError(t, im.Check())
	assert.Equal(t, l.VirtualSize(), im.Size())
	got, err := im.Extents()
	require.NoError(t, err)
	want := wantRanges(l)
	assert.Equal(t, want, got)
	stored := int64(0)
	for _, e := range want {
		stored += e.Length
		p := make([]byte, e.Length)
		_, err := im.ReadAt(p, e.Offset)
		require.NoError(t, err)
		expect := make([]byte, e.Length)
		for _, x := range extents {
			for o := max(x.Offset, e.Offset); o < min(x.Offset+x.Length, e.Offset+e.Length); o++ {
				expect[o-e.Offset] = pattern(o)
			}
		}
		require.True(t, bytes.Equal(expect, p), "data of range %+v", e)
	}
	assert.Equal(t, stored, l.DataBytes())
}

// wantRanges is the allocation of l in guest bytes, cut at the virtual size.
func wantRanges(l *Layout) []Extent {
	var want []Extent
	for _, r := range l.runs {
		start := r.first << l.clusterBits
		want = append(want, Extent{start, min(l.size, (r.first+r.count)<<l.clusterBits) - start})
	}
	return want
}

// TestLayoutProperties checks random maps and sizes, from empty disks to
// 16 TiB, over every cluster size from 512 bytes to 2 MiB.
func TestLayoutProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		clusterSize := 512 << rng.IntN(13)
		size, extents := randomMap(rng, uint(rng.IntN(45)), 1+i%40)
		checkLayout(t, rng, size, clusterSize, extents)
	}
}

func FuzzLayout(f *testing.F) {
	f.Add(uint64(1), uint8(7), uint8(30), uint8(10))
	f.Add(uint64(2), uint8(0), uint8(33), uint8(40))
	f.Add(uint64(3), uint8(12), uint8(44), uint8(3))
	f.Add(uint64(4), uint8(3), uint8(0), uint8(1))
	f.Fuzz(func(t *testing.T, seed uint64, clusterShift, sizeLog, maxExtents uint8) {
		rng := rand.New(rand.NewPCG(seed, 0))
		size, extents := randomMap(rng, uint(sizeLog%45), int(maxExtents%64))
		checkLayout(t, rng, size, 512<<(clusterShift%13), extents)
	})
}

func TestNewLayoutRejects(t *testing.T) {
	tests := []struct {
		name        string
		size        int64
		extents     []Extent
		clusterSize int
	}{
		{"cluster size not a power of two", mib, nil, 3000},
		{"cluster size below 512", mib, nil, 256},
		{"cluster size above 2 MiB", mib, nil, 4 << 20},
		{"negative size", -1, nil, 0},
		{"extent past the end", mib, []Extent{{mib - 10, 11}}, 0},
		{"negative extent", mib, []Extent{{-1, 10}}, 0},
		{"extents out of order", mib, []Extent{{5000, 10}, {100, 10}}, 0},
		{"overlapping extents", mib, []Extent{{100, 10}, {105, 10}}, 0},
		{"L1 over 32 MiB", 1 << 50, nil, 512},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewLayout(tc.size, tc.extents, tc.clusterSize)
			assert.ErrorIs(t, err, ErrLayout)
		})
	}
}

func TestNewLayoutMergesAndCounts(t *testing.T) {
	// Two extents in one cluster, one adjacent to it, and one in the
	// partial last cluster of a 1 MiB + 1000 byte disk with 64 KiB clusters.
	l, err := NewLayout(mib+1000, []Extent{{10, 10}, {100, 10}, {64 * kib, 1}, {mib + 5, 1}}, 0)
	require.NoError(t, err)
	assert.Equal(t, []run{{0, 2}, {16, 1}}, l.runs)
	assert.Equal(t, int64(3), l.DataClusters())
	assert.Equal(t, mib+1024, l.VirtualSize())
	assert.Equal(t, 2*64*kib+1024, l.DataBytes())
	// header, L1, one L2 table, refcount table, one refcount block, data
	assert.Equal(t, 5*64*kib, l.DataOffset())
	assert.Equal(t, 8*64*kib, l.FileSize())
}

func TestOpenRejects(t *testing.T) {
	var buf bytes.Buffer
	l, err := NewLayout(mib, nil, 0)
	require.NoError(t, err)
	w, err := NewWriter(&buf, l)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	good := buf.Bytes()
	tests := []struct {
		name  string
		patch func(b []byte)
		want  error
	}{
		{"bad magic", func(b []byte) { b[0] = 'X' }, ErrCorrupt},
		{"version 4", func(b []byte) { b[7] = 4 }, ErrUnsupported},
		{"dirty bit", func(b []byte) { b[79] = 1 }, ErrUnsupported},
		{"backing file", func(b []byte) { b[15] = 1 }, ErrUnsupported},
		{"encryption", func(b []byte) { b[35] = 2 }, ErrUnsupported},
		{"snapshots", func(b []byte) { b[63] = 1 }, ErrUnsupported},
		{"L1 too small for the size", func(b []byte) { b[24] = 1 }, ErrCorrupt},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Clone(good)
			tc.patch(b)
			_, err := Open(bytes.NewReader(b))
			assert.True(t, errors.Is(err, tc.want), "got %v", err)
		})
	}
}

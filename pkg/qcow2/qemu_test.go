//go:build linux

package qcow2

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// needTools skips the test when a tool from Debian's qemu-utils (or another
// package) is missing.
func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is missing: scripts/deps.sh installs it", tool)
		}
	}
}

// runCmd runs a command and returns its stdout and exit code.
func runCmd(t *testing.T, name string, args ...string) (string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		t.Logf("%s %v: exit %d\n%s%s", name, args, exit.ExitCode(), stdout.String(), stderr.String())
		return stdout.String(), exit.ExitCode()
	}
	require.NoError(t, err, "%s %v", name, args)
	return stdout.String(), 0
}

// qemuCheck asserts that `qemu-img check` finds nothing wrong and that the
// image ends where the layout says.
func qemuCheck(t *testing.T, path string, end int64) {
	t.Helper()
	out, code := runCmd(t, "qemu-img", "check", "-f", "qcow2", "--output=json", path)
	require.Equal(t, 0, code, "qemu-img check %s", path)
	var res struct {
		CheckErrors int   `json:"check-errors"`
		Leaks       int   `json:"leaks"`
		Corruptions int   `json:"corruptions"`
		EndOffset   int64 `json:"image-end-offset"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &res), out)
	assert.Zero(t, res.CheckErrors+res.Leaks+res.Corruptions, out)
	if end >= 0 {
		assert.Equal(t, end, res.EndOffset, out)
	}
}

// qemuInfo asserts what `qemu-img info` reads from the header.
func qemuInfo(t *testing.T, path string, size int64, clusterSize int) {
	t.Helper()
	out, code := runCmd(t, "qemu-img", "info", "-f", "qcow2", "--output=json", path)
	require.Equal(t, 0, code)
	var info struct {
		VirtualSize int64 `json:"virtual-size"`
		ClusterSize int   `json:"cluster-size"`
		Dirty       bool  `json:"dirty-flag"`
		Specific    struct {
			Data struct {
				Compat       string `json:"compat"`
				RefcountBits int    `json:"refcount-bits"`
				Corrupt      bool   `json:"corrupt"`
			} `json:"data"`
		} `json:"format-specific"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &info), out)
	assert.Equal(t, size, info.VirtualSize)
	assert.Equal(t, clusterSize, info.ClusterSize)
	assert.Equal(t, "1.1", info.Specific.Data.Compat, "version 3")
	assert.Equal(t, 16, info.Specific.Data.RefcountBits)
	assert.False(t, info.Dirty || info.Specific.Data.Corrupt, out)
}

// qemuDataRanges returns the merged guest ranges `qemu-img map` reports as
// data.
func qemuDataRanges(t *testing.T, path string) []Extent {
	t.Helper()
	out, code := runCmd(t, "qemu-img", "map", "-f", "qcow2", "--output=json", path)
	require.Equal(t, 0, code)
	var entries []struct {
		Start  int64 `json:"start"`
		Length int64 `json:"length"`
		Data   bool  `json:"data"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &entries), out)
	var got []Extent
	for _, e := range entries {
		if e.Data {
			got = appendMerged(got, Extent{e.Start, e.Length})
		}
	}
	return got
}

func appendMerged(s []Extent, e Extent) []Extent {
	if n := len(s); n > 0 && s[n-1].Offset+s[n-1].Length == e.Offset {
		s[n-1].Length += e.Length
		return s
	}
	return append(s, e)
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	h := sha256.New()
	_, err = io.Copy(h, f)
	require.NoError(t, err)
	return [32]byte(h.Sum(nil))
}

// qemuWriteAfter writes through QEMU's qcow2 driver into a copy of the image,
// over an allocated cluster and into a hole, and checks the image again: the
// refcounts and COPIED flags must be right for QEMU to allocate correctly.
func qemuWriteAfter(t *testing.T, path string, size int64) {
	t.Helper()
	if size < 128*kib {
		return
	}
	cp := path + ".written"
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(cp, b, 0o644))
	last := fmt.Sprint((size - 64*kib) / 512 * 512)
	_, code := runCmd(t, "qemu-io", "-f", "qcow2",
		"-c", "write -P 0x5a 0 64k", "-c", "write -P 0x5b "+last+" 64k",
		"-c", "read -P 0x5a 0 64k", "-c", "read -P 0x5b "+last+" 64k", cp)
	require.Equal(t, 0, code)
	qemuCheck(t, cp, -1)
}

type exportCase struct {
	name        string
	size        int64
	chunk       int64
	clusterSize int
	parts       []part
	check       func(t *testing.T, l *Layout)
}

func exportCases() []exportCase {
	return []exportCase{
		{name: "zero-byte disk", size: 0, chunk: mib},
		{name: "all holes", size: 64 * mib, chunk: mib},
		{name: "written zeros only", size: 8 * mib, chunk: mib, parts: []part{{0, 8 * mib, 'z'}}},
		{name: "fully allocated", size: 16 * mib, chunk: mib, parts: []part{{0, 16 * mib, 'r'}}},
		{name: "odd size with data in the partial last chunk", size: 5*mib + 12345, chunk: mib,
			parts: []part{{mib, 100 * kib, 'r'}, {5 * mib, 12345, 'r'}}},
		{name: "64 KiB chunks", size: 20*mib + 4096, chunk: 64 * kib,
			parts: []part{{0, 200 * kib, 't'}, {300 * kib, 64 * kib, 'z'}, {7 * mib, 3 * mib, 'r'}, {20 * mib, 4096, 't'}}},
		{name: "4 MiB chunks", size: 40 * mib, chunk: 4 * mib,
			parts: []part{{5 * mib, 10, 'r'}, {16 * mib, 9 * mib, 't'}}},
		{name: "2 MiB clusters over 64 KiB chunks", size: 10*mib + 777, chunk: 64 * kib, clusterSize: 2 << 20,
			parts: []part{{64 * kib, 64 * kib, 'r'}, {3*mib + 5, 100, 't'}, {10 * mib, 777, 'r'}}},
		{name: "over 4 GiB", size: 6*gib + 64*kib + 3, chunk: mib,
			parts: []part{{0, mib, 't'}, {4*gib - 512*kib, mib, 'r'}, {6 * gib, 64*kib + 3, 'r'}},
			check: func(t *testing.T, l *Layout) { assert.Equal(t, int64(13), l.l1Entries) }},
		{name: "512-byte clusters: L1 and refcount table span clusters", size: 6 * gib, chunk: mib, clusterSize: 512,
			parts: []part{{0, 4 * mib, 'r'}, {3 * gib, 4 * mib, 't'}, {6*gib - 4*mib, 4 * mib, 'r'}},
			check: func(t *testing.T, l *Layout) {
				assert.Greater(t, l.l1Clusters, int64(1))
				assert.Greater(t, l.rtClusters, int64(1))
			}},
		{name: "4 KiB clusters", size: 3*gib + 1, chunk: 256 * kib, clusterSize: 4096,
			parts: []part{{gib + 3, 300 * kib, 't'}, {3 * gib, 1, 'r'}},
			check: func(t *testing.T, l *Layout) { assert.Greater(t, l.l1Clusters, int64(1)) }},
		{name: "2 TiB sparse", size: 2 * tib, chunk: mib,
			parts: []part{{0, mib, 'r'}, {tib, 3 * mib, 't'}, {2*tib - mib, mib, 'r'}},
			check: func(t *testing.T, l *Layout) {
				assert.Equal(t, 7*64*kib, l.DataOffset(), "metadata of a sparse 2 TiB disk")
			}},
	}
}

// TestExportReadByQemu writes each disk through the streaming API to a file
// and through a pipe, and has qemu-img check, compare and map the result.
func TestExportReadByQemu(t *testing.T) {
	needTools(t, "qemu-img", "qemu-io")
	for _, tc := range exportCases() {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			raw := filepath.Join(dir, "disk.raw")
			makeRaw(t, raw, tc.size, tc.parts)
			extents := allocMap(t, raw, tc.chunk)
			l, err := NewLayout(tc.size, extents, tc.clusterSize)
			require.NoError(t, err)
			if tc.check != nil {
				tc.check(t, l)
			}
			file, piped := filepath.Join(dir, "file.qcow2"), filepath.Join(dir, "pipe.qcow2")
			exportFile(t, raw, file, l, extents, false)
			exportPipe(t, raw, piped, l, extents)
			assert.Equal(t, fileSum(t, file), fileSum(t, piped), "file and pipe output differ")
			st, err := os.Stat(file)
			require.NoError(t, err)
			require.Equal(t, l.FileSize(), st.Size())
			if tc.size <= 64*mib {
				whole := filepath.Join(dir, "whole.qcow2")
				exportFile(t, raw, whole, l, extents, true)
				assert.Equal(t, fileSum(t, file), fileSum(t, whole), "streaming the whole disk differs")
			}

			qemuCheck(t, file, l.FileSize())
			qemuInfo(t, file, (tc.size+511)/512*512, l.ClusterSize())
			_, code := runCmd(t, "qemu-img", "compare", "-f", "raw", "-F", "qcow2", raw, file)
			assert.Equal(t, 0, code, "qemu-img compare")
			assert.Equal(t, wantRanges(l), qemuDataRanges(t, file))
			qemuWriteAfter(t, file, tc.size)
		})
	}
}

// TestQemuNbdServesExport reads an exported image through qemu-nbd with
// nbdcopy and compares it with the raw disk.
func TestQemuNbdServesExport(t *testing.T) {
	needTools(t, "qemu-img", "qemu-nbd", "nbdcopy")
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk.raw")
	size := 24*mib + 512
	makeRaw(t, raw, size, []part{{mib, 2 * mib, 'r'}, {9 * mib, 5 * kib, 't'}, {24 * mib, 512, 'r'}})
	extents := allocMap(t, raw, mib)
	l, err := NewLayout(size, extents, 0)
	require.NoError(t, err)
	img, copied := filepath.Join(dir, "disk.qcow2"), filepath.Join(dir, "copied.raw")
	exportFile(t, raw, img, l, extents, false)
	_, code := runCmd(t, "nbdcopy", "--", "[", "qemu-nbd", "-r", "-f", "qcow2", img, "]", copied)
	require.Equal(t, 0, code, "nbdcopy from qemu-nbd")
	assert.Equal(t, fileSum(t, raw), fileSum(t, copied))
}

// TestReaderOnQemuImages reads images that qemu-img writes, with other
// cluster sizes, refcount widths, version 2, and zero clusters, so the reader
// and Check are checked against QEMU rather than against this Writer.
func TestReaderOnQemuImages(t *testing.T) {
	needTools(t, "qemu-img", "qemu-io")
	tests := []struct {
		name, options string
		zeroCluster   bool // turn the first cluster into a zero cluster
	}{
		{"defaults", "cluster_size=65536", true},
		{"4 KiB clusters, 1-bit refcounts", "cluster_size=4096,refcount_bits=1", true},
		{"512-byte clusters, 8-bit refcounts", "cluster_size=512,refcount_bits=8", false},
		{"64-bit refcounts", "refcount_bits=64", true},
		{"version 2", "compat=0.10", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			raw, img := filepath.Join(dir, "disk.raw"), filepath.Join(dir, "disk.qcow2")
			size := 10*mib + 1234
			makeRaw(t, raw, size, []part{{0, 300 * kib, 'r'}, {4 * mib, 5 * kib, 't'}, {10 * mib, 1234, 'r'}})
			_, code := runCmd(t, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-o", tc.options, raw, img)
			require.Equal(t, 0, code)
			want, err := os.ReadFile(raw)
			require.NoError(t, err)
			want = append(want, make([]byte, (size+511)/512*512-size)...)
			if tc.zeroCluster {
				_, code := runCmd(t, "qemu-io", "-f", "qcow2", "-c", "write -z 0 64k", img)
				require.Equal(t, 0, code)
				clear(want[:64*kib])
			}

			f, err := os.Open(img)
			require.NoError(t, err)
			defer f.Close()
			im, err := Open(f)
			require.NoError(t, err)
			require.NoError(t, im.Check())
			got := make([]byte, im.Size())
			_, err = im.ReadAt(got, 0)
			require.NoError(t, err)
			assert.True(t, bytes.Equal(want, got), "content differs from the raw disk")
			ext, err := im.Extents()
			require.NoError(t, err)
			assert.Equal(t, qemuDataRanges(t, img), ext)
		})
	}
}

// TestCheckFindsDamage damages a written image in the ways Check looks for,
// and expects both Check and `qemu-img check` to refuse it.
func TestCheckFindsDamage(t *testing.T) {
	needTools(t, "qemu-img")
	l, err := NewLayout(mib, []Extent{{0, 128 * kib}}, 0)
	require.NoError(t, err)
	var buf bytes.Buffer
	w, err := NewWriter(&buf, l)
	require.NoError(t, err)
	_, err = w.WriteAt(bytes.Repeat([]byte{7}, 128*1024), 0)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	good := buf.Bytes()
	be := binary.BigEndian
	firstData := l.DataOffset() / 65536
	tests := []struct {
		name   string
		damage func(b []byte) []byte
	}{
		{"leaked cluster", func(b []byte) []byte {
			be.PutUint16(b[l.rbOffset+2*l.fileClusters:], 1)
			return append(b, make([]byte, 65536)...)
		}},
		{"data cluster without refcount", func(b []byte) []byte {
			be.PutUint16(b[l.rbOffset+2*firstData:], 0)
			return b
		}},
		{"two L2 entries share a cluster", func(b []byte) []byte {
			copy(b[l.l2Offset+8:], b[l.l2Offset:l.l2Offset+8])
			return b
		}},
		{"COPIED flag cleared", func(b []byte) []byte {
			b[l.l2Offset] &^= 0x80
			return b
		}},
		{"refcount of two on a data cluster", func(b []byte) []byte {
			be.PutUint16(b[l.rbOffset+2*firstData:], 2)
			return b
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.damage(bytes.Clone(good))
			im, err := Open(bytes.NewReader(b))
			require.NoError(t, err)
			assert.ErrorIs(t, im.Check(), ErrCorrupt)
			path := filepath.Join(t.TempDir(), "damaged.qcow2")
			require.NoError(t, os.WriteFile(path, b, 0o644))
			_, code := runCmd(t, "qemu-img", "check", "-f", "qcow2", path)
			assert.NotEqual(t, 0, code, "qemu-img check accepts it")
		})
	}
	im, err := Open(bytes.NewReader(good))
	require.NoError(t, err)
	require.NoError(t, im.Check(), "the undamaged image")
}

package export

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/dropback/dropback/internal/directio"
	"github.com/dropback/dropback/pkg/progress"
)

const testChunk = 64 << 10

// memDisk is a Disk in memory, in chunks of testChunk: a chunk of zeros is
// a zero extent, as in a backup.
type memDisk struct {
	name string
	data []byte
}

func (d *memDisk) Name() string { return d.name }
func (d *memDisk) Size() int64  { return int64(len(d.data)) }

func (d *memDisk) ReadAt(_ context.Context, p []byte, off int64) (int, error) {
	if off >= int64(len(d.data)) {
		return 0, io.EOF
	}
	n := copy(p, d.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (d *memDisk) chunk(i int64) []byte {
	return d.data[i*testChunk : min((i+1)*testChunk, int64(len(d.data)))]
}

func (d *memDisk) Extents(off, length int64) []Extent {
	end := min(off+length, d.Size())
	var out []Extent
	for i := off / testChunk; i*testChunk < end; i++ {
		s, e := max(i*testChunk, off), min((i+1)*testChunk, end)
		zero := isZero(d.chunk(i))
		if n := len(out); n > 0 && out[n-1].Zero == zero {
			out[n-1].Length += e - s
			continue
		}
		out = append(out, Extent{Offset: s, Length: e - s, Zero: zero})
	}
	return out
}

func (d *memDisk) Stream(ctx context.Context, fn func(int64, []byte) error, prog *progress.Counter) error {
	for i := int64(0); i*testChunk < d.Size(); i++ {
		c := d.chunk(i)
		if isZero(c) {
			prog.AddSkipped(int64(len(c)))
			continue
		}
		if err := fn(i*testChunk, c); err != nil {
			return err
		}
		prog.AddRead(int64(len(c)))
	}
	return nil
}

// testDisk is a disk of size bytes with data in the given chunk ranges
// (random bytes, with a run of zeros inside each chunk), zeros elsewhere.
func testDisk(name string, size int64, data ...[2]int64) *memDisk {
	d := &memDisk{name: name, data: make([]byte, size)}
	rng := rand.New(rand.NewPCG(uint64(size), 3))
	for _, r := range data {
		for off := r[0] * testChunk; off < min(r[1]*testChunk, size); off++ {
			d.data[off] = byte(rng.Uint32() | 1)
		}
		// Zeros within a data chunk: a hole in a sparse raw file.
		clear(d.data[min(r[0]*testChunk+8192, size):min(r[0]*testChunk+16384, size)])
	}
	return d
}

var diskCases = []struct {
	name string
	disk *memDisk
}{
	{"sparse", testDisk("sparse", 64*testChunk, [2]int64{0, 2}, [2]int64{10, 13}, [2]int64{63, 64})},
	{"full", testDisk("full", 16*testChunk, [2]int64{0, 16})},
	{"all zeros", testDisk("zeros", 40*testChunk)},
	{"odd size", testDisk("odd", 5*testChunk+777, [2]int64{3, 6})},
	{"smaller than a sector", testDisk("tiny", 300, [2]int64{0, 1})},
	{"empty", testDisk("empty", 0)},
}

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is missing: scripts/deps.sh installs it", tool)
		}
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// newFile is an empty file for WriteFile.
func newFile(t *testing.T, path string) *directio.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	df := directio.Wrap(f)
	t.Cleanup(func() { df.Close() })
	return df
}

func TestWriteRaw(t *testing.T) {
	for _, c := range diskCases {
		t.Run(c.name, func(t *testing.T) {
			var prog progress.Counter
			var out bytes.Buffer
			n, err := Write(context.Background(), &out, c.disk, FormatRaw, &prog)
			if err != nil || n != c.disk.Size() || !bytes.Equal(out.Bytes(), c.disk.data) {
				t.Fatalf("raw to a stream: %d bytes, %v; equal %v", n, err, bytes.Equal(out.Bytes(), c.disk.data))
			}
			if s := prog.Get(); s.Phase != "export" || s.Total != c.disk.Size() || !s.Complete() && s.Total > 0 {
				t.Fatalf("progress %+v", s)
			}
			path := filepath.Join(t.TempDir(), "disk.raw")
			if n, err := WriteFile(context.Background(), newFile(t, path), c.disk, FormatRaw, nil); err != nil || n != c.disk.Size() {
				t.Fatalf("raw to a file: %d, %v", n, err)
			}
			got, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(got, c.disk.data) {
				t.Fatalf("the raw file differs from the disk (%v)", err)
			}
			var data int64
			for _, e := range c.disk.Extents(0, c.disk.Size()) {
				if !e.Zero {
					data += (e.Length + 4095) / 4096 * 4096
				}
			}
			if used := allocated(t, path); used > data {
				t.Fatalf("the raw file takes %d bytes on disk, more than the disk's %d bytes of data: not sparse", used, data)
			}
		})
	}
}

func allocated(t *testing.T, path string) int64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

// Every qcow2 image written, to a file and to a stream, passes qemu-img
// check and compares equal to the disk; zero extents are unallocated.
func TestWriteQcow2(t *testing.T) {
	needTools(t, "qemu-img")
	for _, c := range diskCases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			raw := filepath.Join(dir, "disk.raw")
			if err := os.WriteFile(raw, c.disk.data, 0o600); err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(dir, "file.qcow2")
			size, err := WriteFile(context.Background(), newFile(t, file), c.disk, FormatQcow2, nil)
			if err != nil {
				t.Fatal(err)
			}
			if fi, _ := os.Stat(file); fi.Size() != size {
				t.Fatalf("WriteFile said %d bytes, the file has %d", size, fi.Size())
			}
			var stream bytes.Buffer
			if n, err := Write(context.Background(), &stream, c.disk, FormatQcow2, nil); err != nil || n != size {
				t.Fatalf("qcow2 to a stream: %d bytes, %v; the file has %d", n, err, size)
			}
			fileBytes, _ := os.ReadFile(file)
			if !bytes.Equal(fileBytes, stream.Bytes()) {
				t.Fatal("the qcow2 file and the qcow2 stream differ")
			}
			run(t, "qemu-img", "check", "-f", "qcow2", file)
			run(t, "qemu-img", "compare", "-f", "raw", "-F", "qcow2", raw, file)
			checkAllocation(t, file, c.disk)
		})
	}
}

// checkAllocation checks with qemu-img map that the image allocates
// exactly the disk's data extents, to the cluster.
func checkAllocation(t *testing.T, image string, d *memDisk) {
	t.Helper()
	out := run(t, "qemu-img", "map", "--output=json", "-f", "qcow2", image)
	var want strings.Builder
	for _, e := range d.Extents(0, d.Size()) {
		if !e.Zero {
			fmt.Fprintf(&want, "%d+%d ", e.Offset, (e.Length+511)/512*512)
		}
	}
	got := mapData(t, out)
	if got != want.String() {
		t.Fatalf("allocated ranges: %q, want %q", got, want.String())
	}
}

// mapData lists the data ranges of qemu-img map's JSON as "start+length ",
// neighbours merged.
func mapData(t *testing.T, out string) string {
	t.Helper()
	var m []struct {
		Start  int64 `json:"start"`
		Length int64 `json:"length"`
		Data   bool  `json:"data"`
	}
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("qemu-img map: %v\n%s", err, out)
	}
	var runs [][2]int64
	for _, e := range m {
		if !e.Data {
			continue
		}
		if n := len(runs); n > 0 && runs[n-1][0]+runs[n-1][1] == e.Start {
			runs[n-1][1] += e.Length
			continue
		}
		runs = append(runs, [2]int64{e.Start, e.Length})
	}
	var b strings.Builder
	for _, r := range runs {
		fmt.Fprintf(&b, "%d+%d ", r[0], r[1])
	}
	return b.String()
}

// The file writer writes what it is given where it is given, across its
// buffers, with holes where it skips ahead, and refuses to go back.
func TestFileWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	f := newFile(t, path)
	w := newFileWriter(f)
	want := make([]byte, 3*fileBuffer+12345)
	rng := rand.New(rand.NewPCG(1, 2))
	writes := [][2]int{{0, 100}, {100, 5000}, {8192, fileBuffer}, {fileBuffer + 8192 + 4096, fileBuffer + 3}, {3 * fileBuffer, 12000}}
	for _, wr := range writes {
		p := make([]byte, wr[1])
		for i := range p {
			p[i] = byte(rng.Uint32() | 1)
		}
		copy(want[wr[0]:], p)
		if n, err := w.WriteAt(p, int64(wr[0])); n != len(p) || err != nil {
			t.Fatalf("WriteAt(%d at %d) = %d, %v", len(p), wr[0], n, err)
		}
	}
	if _, err := w.WriteAt([]byte("x"), 10); err == nil {
		t.Fatal("a write behind the last one was taken")
	}
	if err := w.Finish(int64(len(want))); err != nil {
		t.Fatal(err)
	}
	w.Close()
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("the file differs from what was written (%v)", err)
	}
}

// A sparse file is written in many short runs between holes, several in
// flight at once: each lands where it was given, the holes stay holes.
func TestFileWriterManyRuns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	f := newFile(t, path)
	w := newFileWriter(f)
	const runs = 3000
	want := make([]byte, runs*3*4096)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range runs {
		off := i*3*4096 + 4096*(i%2) // a hole of one or two blocks before each run
		p := make([]byte, 4096*(2-i%2))
		for j := range p {
			p[j] = byte(rng.Uint32() | 1)
		}
		copy(want[off:], p)
		if n, err := w.WriteAt(p, int64(off)); n != len(p) || err != nil {
			t.Fatalf("run %d: WriteAt(%d at %d) = %d, %v", i, len(p), off, n, err)
		}
	}
	if err := w.Finish(int64(len(want))); err != nil {
		t.Fatal(err)
	}
	w.Close()
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("the file differs from what was written (%v)", err)
	}
}

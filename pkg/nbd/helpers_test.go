package nbd

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// needTools skips the test with one line when a tool is not installed.
func needTools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (scripts/deps.sh installs it)", tool)
		}
	}
}

// socketPath returns a path for a unix socket, short enough for the 108
// bytes a socket address holds.
func socketPath(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "nbd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "s")
}

// region is a run of data written into a test image.
type region struct {
	off, length int64
	pattern     byte // 0: random bytes
}

// sparseImage writes a sparse file of size bytes holding regions, and
// returns its path and content.
func sparseImage(t *testing.T, size int64, regions []region) (string, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, size)
	rng := rand.New(rand.NewPCG(uint64(size), 7))
	for _, r := range regions {
		b := want[r.off : r.off+r.length]
		for i := range b {
			if b[i] = r.pattern; r.pattern == 0 {
				b[i] = byte(rng.Uint32() | 1)
			}
		}
		if _, err := f.WriteAt(b, r.off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	return path, want
}

// dataRuns returns the allocated runs of a file written by sparseImage, as
// the filesystem rounds them: to 4 KiB blocks, cut at the end of the file.
func dataRuns(size int64, regions []region) []Extent {
	var out []Extent
	for _, r := range regions {
		a, b := r.off&^4095, min((r.off+r.length+4095)&^4095, size)
		if n := len(out); n > 0 && out[n-1].End() >= a {
			out[n-1].Length = max(out[n-1].End(), b) - out[n-1].Offset
			continue
		}
		out = append(out, Extent{Offset: a, Length: b - a})
	}
	return out
}

// holeMap turns extents into alternating data (flags 0) and hole
// (StateHole) runs over [0, size), merging neighbours.
func holeMap(exts []Extent, mask uint32) []Extent {
	var out []Extent
	for _, e := range exts {
		f := e.Flags & mask
		if n := len(out); n > 0 && out[n-1].Flags == f && out[n-1].End() == e.Offset {
			out[n-1].Length += e.Length
			continue
		}
		out = append(out, Extent{Offset: e.Offset, Length: e.Length, Flags: f})
	}
	return out
}

// runsToMap turns the data runs of a file of size bytes into the map
// holeMap makes of its block status with mask StateHole.
func runsToMap(size int64, runs []Extent, flag uint32) []Extent {
	var out []Extent
	pos := int64(0)
	for _, r := range runs {
		if r.Offset > pos {
			out = append(out, Extent{Offset: pos, Length: r.Offset - pos, Flags: flag})
		}
		out = append(out, Extent{Offset: r.Offset, Length: r.Length})
		pos = r.End()
	}
	if pos < size {
		out = append(out, Extent{Offset: pos, Length: size - pos, Flags: flag})
	}
	return out
}

// fileExport exports a file, finding its holes with SEEK_DATA/SEEK_HOLE.
type fileExport struct {
	f    *os.File
	size int64
}

func openFileExport(t *testing.T, path string) *fileExport {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return &fileExport{f: f, size: st.Size()}
}

func (e *fileExport) Size() int64 { return e.size }

func (e *fileExport) ReadAt(_ context.Context, p []byte, off int64) (int, error) {
	return e.f.ReadAt(p, off)
}

func (e *fileExport) Extents(_ context.Context, off, length int64) ([]Extent, error) {
	fd, end := int(e.f.Fd()), off+length
	var out []Extent
	for pos := off; pos < end; {
		data, err := unix.Seek(fd, pos, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			data = e.size
		} else if err != nil {
			return nil, err
		}
		if data > pos {
			out = append(out, Extent{Offset: pos, Length: min(data, end) - pos, Flags: StateHole | StateZero})
		}
		if data >= end {
			break
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return nil, err
		}
		out = append(out, Extent{Offset: data, Length: min(hole, end) - data})
		pos = hole
	}
	return out, nil
}

// memExport exports bytes held in memory; every 4 KiB block of zeroes is a
// hole.
type memExport struct{ data []byte }

func (e *memExport) Size() int64 { return int64(len(e.data)) }

func (e *memExport) ReadAt(_ context.Context, p []byte, off int64) (int, error) {
	return copy(p, e.data[off:]), nil
}

func (e *memExport) Extents(_ context.Context, off, length int64) ([]Extent, error) {
	var out []Extent
	zero := make([]byte, 4096)
	for pos := off &^ 4095; pos < off+length; pos += 4096 {
		end := min(pos+4096, int64(len(e.data)))
		var f uint32
		if bytes.Equal(e.data[pos:end], zero[:end-pos]) {
			f = StateHole | StateZero
		}
		out = append(out, Extent{Offset: pos, Length: end - pos, Flags: f})
	}
	return out, nil
}

// serve starts srv on a fresh unix socket and returns the socket's path.
// The server is closed when the test ends.
func serve(t testing.TB, srv *Server) string {
	t.Helper()
	sock := socketPath(t)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close server: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return sock
}

// run runs a command and returns its standard output, failing the test
// with its output when it fails.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// logf returns a ServerOptions.Logf that logs to t.
func logf(t *testing.T) func(string, ...any) {
	return func(format string, args ...any) { t.Logf(format, args...) }
}

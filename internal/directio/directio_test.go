package directio

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// The File must read and write exactly as os.File does, whatever the
// alignment of the request, the file's size, and whether the filesystem
// allows direct I/O.
func TestFileBehavesLikeOSFile(t *testing.T) {
	for _, direct := range []bool{true, false} {
		for _, size := range []int{0, 1, 511, 4096, 4097, 3*4096 + 100, 1 << 20} {
			f, want := newFile(t, size, direct)
			for _, c := range []struct {
				off   int64
				n     int
				align bool
			}{
				{0, size, true}, {0, size, false}, {0, 4096, true}, {4096, 8192, true},
				{4096, 100, true}, {1, 4096, true}, {0, size + 4096, true}, {int64(size), 4096, true},
				{int64(RoundDown(int64(size))), 4096, true}, {int64(size) + 8192, 4096, true},
			} {
				if c.n == 0 {
					continue
				}
				var p []byte
				if c.align {
					p = Alloc(c.n)
				} else {
					p = make([]byte, c.n+1)[1:]
				}
				got, err := f.ReadAt(p, c.off)
				wantN, wantErr := 0, error(nil)
				if c.off < int64(size) {
					wantN = min(c.n, size-int(c.off))
				}
				if wantN < c.n {
					wantErr = io.EOF
				}
				if got != wantN || !errors.Is(err, wantErr) && !(wantErr == nil && err == nil) {
					t.Fatalf("direct=%v size %d: ReadAt(%d bytes at %d, aligned %v) = %d, %v; want %d, %v", direct, size, c.n, c.off, c.align, got, err, wantN, wantErr)
				}
				if got > 0 && !bytes.Equal(p[:got], want[c.off:c.off+int64(got)]) {
					t.Fatalf("direct=%v size %d: ReadAt(%d bytes at %d) read other bytes", direct, size, c.n, c.off)
				}
			}
		}
	}
}

func TestWriteAtAnyAlignment(t *testing.T) {
	for _, direct := range []bool{true, false} {
		f, want := newFile(t, 64<<10, direct)
		rng := rand.New(rand.NewPCG(1, 2))
		for _, c := range []struct {
			off   int64
			n     int
			align bool
		}{
			{0, 4096, true}, {8192, 4096 + 17, true}, {3, 100, false}, {16384, 8192, false},
			{60 << 10, 8192, true}, // extends the file
			{70 << 10, 1, true},
		} {
			var p []byte
			if c.align {
				p = Alloc(c.n)
			} else {
				p = make([]byte, c.n+1)[1:]
			}
			for i := range p {
				p[i] = byte(rng.Uint32())
			}
			if n, err := f.WriteAt(p, c.off); n != len(p) || err != nil {
				t.Fatalf("direct=%v: WriteAt(%d at %d) = %d, %v", direct, c.n, c.off, n, err)
			}
			if end := c.off + int64(c.n); end > int64(len(want)) {
				want = append(want, make([]byte, end-int64(len(want)))...)
			}
			copy(want[c.off:], p)
		}
		got, err := os.ReadFile(f.Name())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("direct=%v: the file holds other bytes than were written", direct)
		}
	}
}

func TestAlloc(t *testing.T) {
	for _, n := range []int{1, 4095, 4096, 1<<20 + 3} {
		p := Alloc(n)
		if len(p) != n || cap(p) != RoundUp(n) || !aligned(p, 0) {
			t.Fatalf("Alloc(%d): len %d cap %d aligned %v", n, len(p), cap(p), aligned(p, 0))
		}
	}
}

// newFile makes a file of size random bytes and opens it with or without a
// direct descriptor.
func newFile(t *testing.T, size int, direct bool) (*File, []byte) {
	t.Helper()
	data := make([]byte, size)
	rng := rand.New(rand.NewPCG(uint64(size), 7))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	osf, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := &File{File: osf}
	if direct {
		f = Wrap(osf)
		if !f.Direct() && Flag != 0 {
			t.Logf("the filesystem of %s refuses direct I/O; testing the page-cache path only", p)
		}
	}
	t.Cleanup(func() { f.Close() })
	return f, data
}

// The direct descriptor's errors name the file, not /proc/self/fd/N.
func TestDirectDescriptorBearsTheFileName(t *testing.T) {
	f, _ := newFile(t, 8192, true)
	if f.direct == nil {
		t.Skip("this filesystem refuses O_DIRECT")
	}
	if f.direct.Name() != f.Name() {
		t.Fatalf("the direct descriptor is named %q, the file %q", f.direct.Name(), f.Name())
	}
}

package qcow2

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// failAfter accepts n bytes, then fails every write.
type failAfter struct{ n int }

var errDisk = errors.New("disk full")

func (f *failAfter) Write(p []byte) (int, error) {
	if len(p) <= f.n {
		f.n -= len(p)
		return len(p), nil
	}
	k := f.n
	f.n = 0
	return k, errDisk
}

func TestWriterRejects(t *testing.T) {
	// A 1 MiB disk with data in [64 KiB, 192 KiB).
	extents := []Extent{{64 * kib, 128 * kib}}
	tests := []struct {
		name  string
		calls func(w *Writer) error
		want  error
	}{
		{"out of order", func(w *Writer) error {
			if _, err := w.WriteAt([]byte{1}, 100*kib); err != nil {
				return err
			}
			_, err := w.WriteAt([]byte{1}, 99*kib)
			return err
		}, ErrOrder},
		{"nonzero byte in a hole", func(w *Writer) error {
			p := make([]byte, 10)
			p[7] = 1
			_, err := w.WriteAt(p, 300*kib)
			return err
		}, ErrUnallocated},
		{"nonzero byte before the extent", func(w *Writer) error {
			p := make([]byte, 64*kib)
			p[0] = 1
			_, err := w.WriteAt(p, 32*kib)
			return err
		}, ErrUnallocated},
		{"past the virtual size", func(w *Writer) error {
			_, err := w.WriteAt(make([]byte, 2), mib-1)
			return err
		}, ErrUnallocated},
		{"after close", func(w *Writer) error {
			if err := w.Close(); err != nil {
				return err
			}
			_, err := w.WriteAt([]byte{1}, 100*kib)
			return err
		}, ErrClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := NewLayout(mib, extents, 0)
			require.NoError(t, err)
			w, err := NewWriter(io.Discard, l)
			require.NoError(t, err)
			assert.ErrorIs(t, tc.calls(w), tc.want)
		})
	}
}

func TestWriterErrorMessageNamesTheOffset(t *testing.T) {
	l, err := NewLayout(mib, nil, 0)
	require.NoError(t, err)
	w, err := NewWriter(io.Discard, l)
	require.NoError(t, err)
	p := make([]byte, 100*kib)
	p[70*kib+3] = 9
	n, err := w.WriteAt(p, 10)
	assert.ErrorContains(t, err, "nonzero byte at guest offset 71693")
	assert.Equal(t, 0, n)
}

// TestWriterDestinationFails checks that a failing destination stops the
// writer at every stage and that the error sticks.
func TestWriterDestinationFails(t *testing.T) {
	l, err := NewLayout(4*mib, []Extent{{0, 2 * mib}}, 0)
	require.NoError(t, err)
	for _, after := range []int{0, 100, int(l.DataOffset()) - 1, int(l.DataOffset()) + 5000} {
		dst := &failAfter{n: after}
		w, err := NewWriter(dst, l)
		if after < int(l.DataOffset()) {
			assert.ErrorIs(t, err, errDisk, "metadata cut at %d", after)
			continue
		}
		require.NoError(t, err)
		_, err = w.WriteAt(make([]byte, mib), 0)
		assert.ErrorIs(t, err, errDisk)
		_, err = w.WriteAt(make([]byte, 10), 3*mib)
		assert.ErrorIs(t, err, errDisk, "sticky")
		assert.ErrorIs(t, w.Close(), errDisk)
		assert.Equal(t, int64(after), w.Written())
	}
}

// TestWriterCloseFillsZeros checks that Close completes an image whose data
// was never written: the allocated clusters read as zeros.
func TestWriterCloseFillsZeros(t *testing.T) {
	l, err := NewLayout(3*mib+100, []Extent{{mib, 5}, {3 * mib, 100}}, 4096)
	require.NoError(t, err)
	var buf bytes.Buffer
	w, err := NewWriter(&buf, l)
	require.NoError(t, err)
	_, err = w.WriteAt([]byte("hello"), mib)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	require.NoError(t, w.Close(), "a second Close")
	im, err := Open(bytes.NewReader(buf.Bytes()))
	require.NoError(t, err)
	require.NoError(t, im.Check())
	got := make([]byte, 4096)
	_, err = im.ReadAt(got, mib)
	require.NoError(t, err)
	assert.Equal(t, append([]byte("hello"), make([]byte, 4091)...), got)
	_, err = im.ReadAt(got[:512], 3*mib)
	require.NoError(t, err)
	assert.Equal(t, make([]byte, 512), got[:512])
	ext, err := im.Extents()
	require.NoError(t, err)
	assert.Equal(t, []Extent{{mib, 4096}, {3 * mib, 512}}, ext)
}

// BenchmarkWrite1GiB writes a 1 GiB disk whose 1 MiB chunks are seven in
// eight data, the rest holes, in 1 MiB WriteAt calls, to /dev/null and
// through an os.Pipe drained by another goroutine (as `--to -` would be).
// MB/s counts the guest data bytes.
func BenchmarkWrite1GiB(b *testing.B) {
	const size = gib
	var extents []Extent
	for off := int64(0); off < size; off += mib {
		if off/mib%8 != 3 {
			extents = append(extents, Extent{off, mib})
		}
	}
	l, err := NewLayout(size, extents, 0)
	require.NoError(b, err)
	chunk := make([]byte, mib)
	for i := range chunk {
		chunk[i] = byte(i*7 + i>>11)
	}
	write := func(b *testing.B, dst io.Writer) {
		w, err := NewWriter(dst, l)
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range extents {
			if _, err := w.WriteAt(chunk, e.Offset); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("devnull", func(b *testing.B) {
		null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		require.NoError(b, err)
		defer null.Close()
		b.SetBytes(l.DataBytes())
		for b.Loop() {
			write(b, null)
		}
	})
	b.Run("pipe", func(b *testing.B) {
		b.SetBytes(l.DataBytes())
		for b.Loop() {
			pr, pw, err := os.Pipe()
			require.NoError(b, err)
			drained := make(chan error, 1)
			go func() {
				_, err := io.Copy(io.Discard, pr)
				drained <- err
			}()
			write(b, pw)
			pw.Close()
			require.NoError(b, <-drained)
			pr.Close()
		}
	})
}

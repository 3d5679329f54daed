//go:build linux

package qcow2

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// part is a region of a test disk: 'r' random, 't' text-like, 'z' zeros
// written explicitly (allocated on disk, yet all zero).
type part struct {
	off, n int64
	kind   byte
}

// makeRaw writes a sparse raw disk of size bytes with parts and returns its
// path.
func makeRaw(t *testing.T, path string, size int64, parts []part) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, f.Truncate(size))
	rng := rand.New(rand.NewChaCha8([32]byte{7}))
	for _, p := range parts {
		buf := make([]byte, p.n)
		switch p.kind {
		case 'r':
			for i := range buf {
				buf[i] = byte(rng.Uint32())
			}
		case 't':
			line := []byte(fmt.Sprintf("line of text at %d, quite ordinary\n", p.off))
			for i := range buf {
				buf[i] = line[i%len(line)]
			}
		}
		_, err := f.WriteAt(buf, p.off)
		require.NoError(t, err)
	}
}

// allocMap builds the allocation map dropback's image index gives: each
// chunk of chunkSize bytes (the last one possibly shorter) that holds a
// nonzero byte is data; holes found with SEEK_DATA/SEEK_HOLE are never read.
func allocMap(t *testing.T, path string, chunkSize int64) []Extent {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	st, err := f.Stat()
	require.NoError(t, err)
	size := st.Size()
	var out []Extent
	buf := make([]byte, chunkSize)
	next := int64(0) // first chunk offset not yet classified
	for off := int64(0); off < size; {
		data, err := unix.Seek(int(f.Fd()), off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break
		}
		require.NoError(t, err)
		hole, err := unix.Seek(int(f.Fd()), data, unix.SEEK_HOLE)
		require.NoError(t, err)
		for c := max(next, data/chunkSize*chunkSize); c < hole; c += chunkSize {
			n := min(chunkSize, size-c)
			_, err := f.ReadAt(buf[:n], c)
			require.NoError(t, err)
			if !bytes.Equal(buf[:n], make([]byte, n)) {
				out = append(out, Extent{c, n})
			}
			next = c + chunkSize
		}
		off = hole
	}
	return out
}

// feed writes the data of raw through w: only the extents, in pieces of at
// most 1 MiB as an export does, or, when whole is set, every byte of the disk
// through io.NewOffsetWriter.
func feed(w *Writer, raw *os.File, size int64, extents []Extent, whole bool) error {
	buf := make([]byte, mib)
	if whole {
		_, err := io.CopyBuffer(io.NewOffsetWriter(w, 0), io.NewSectionReader(raw, 0, size), buf)
		return err
	}
	for _, e := range extents {
		for off := e.Offset; off < e.Offset+e.Length; {
			n := min(int64(len(buf)), e.Offset+e.Length-off)
			if _, err := raw.ReadAt(buf[:n], off); err != nil {
				return err
			}
			if _, err := w.WriteAt(buf[:n], off); err != nil {
				return err
			}
			off += n
		}
	}
	return nil
}

// export writes the qcow2 image of raw to dst.
func export(dst io.Writer, rawPath string, l *Layout, extents []Extent, whole bool) error {
	raw, err := os.Open(rawPath)
	if err != nil {
		return err
	}
	defer raw.Close()
	w, err := NewWriter(dst, l)
	if err != nil {
		return err
	}
	if err := feed(w, raw, l.VirtualSize(), extents, whole); err != nil {
		return err
	}
	return w.Close()
}

// exportFile writes the image to a regular file at out.
func exportFile(t *testing.T, rawPath, out string, l *Layout, extents []Extent, whole bool) {
	t.Helper()
	f, err := os.Create(out)
	require.NoError(t, err)
	require.NoError(t, export(f, rawPath, l, extents, whole))
	require.NoError(t, f.Close())
}

// exportPipe writes the image through an os.Pipe, which cannot seek, and
// copies what comes out of the pipe to out.
func exportPipe(t *testing.T, rawPath, out string, l *Layout, extents []Extent) {
	t.Helper()
	pr, pw, err := os.Pipe()
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		err := export(pw, rawPath, l, extents, false)
		pw.Close()
		done <- err
	}()
	f, err := os.Create(out)
	require.NoError(t, err)
	_, copyErr := io.Copy(f, pr)
	pr.Close()
	require.NoError(t, <-done)
	require.NoError(t, copyErr)
	require.NoError(t, f.Close())
}

package export

import (
	"fmt"

	"github.com/dropback/dropback/internal/directio"
)

// fileBuffer is the size of each of a fileWriter's two buffers.
const fileBuffer = 4 << 20

// fileWriter writes a file front to back, around the page cache where the
// filesystem allows it: bytes are gathered into an aligned buffer, and a
// full buffer is written by a goroutine of its own while the next one
// fills, so that writing overlaps with reading the backup. WriteAt may skip
// ahead, leaving a hole; it never goes back.
type fileWriter struct {
	f      *directio.File
	buf    []byte // filling; starts at file offset at
	spare  []byte
	at     int64
	flight chan error // the write in flight, if any
	err    error
}

func newFileWriter(f *directio.File) *fileWriter {
	return &fileWriter{f: f, buf: directio.Alloc(fileBuffer)[:0], spare: directio.Alloc(fileBuffer)[:0]}
}

// Write appends p.
func (w *fileWriter) Write(p []byte) (int, error) {
	return w.WriteAt(p, w.at+int64(len(w.buf)))
}

// WriteAt writes p at off, which must not be below the end of the previous
// write; the bytes between stay a hole.
func (w *fileWriter) WriteAt(p []byte, off int64) (int, error) {
	end := w.at + int64(len(w.buf))
	switch {
	case w.err != nil:
		return 0, w.err
	case off < end:
		return 0, fmt.Errorf("write at %d after %d: a file is written front to back", off, end)
	case off > end:
		if err := w.flush(); err != nil {
			return 0, err
		}
		w.at = off
	}
	n := 0
	for n < len(p) {
		k := copy(w.buf[len(w.buf):cap(w.buf)], p[n:])
		w.buf = w.buf[:len(w.buf)+k]
		n += k
		if len(w.buf) == cap(w.buf) {
			if err := w.flush(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// flush starts writing the buffer and swaps in the spare one once the
// previous write has ended.
func (w *fileWriter) flush() error {
	if len(w.buf) == 0 {
		return w.err
	}
	if err := w.wait(); err != nil {
		return err
	}
	buf, at := w.buf, w.at
	w.flight = make(chan error, 1)
	go func(done chan<- error) {
		_, err := w.f.WriteAt(buf, at)
		done <- err
	}(w.flight)
	w.buf, w.spare = w.spare[:0], buf[:0]
	w.at += int64(len(buf))
	return nil
}

// wait waits for the write in flight.
func (w *fileWriter) wait() error {
	if w.flight != nil {
		if err := <-w.flight; err != nil && w.err == nil {
			w.err = err
		}
		w.flight = nil
	}
	return w.err
}

// Finish writes what is buffered, gives the file size bytes and syncs it.
// It does not close the file.
func (w *fileWriter) Finish(size int64) error {
	if err := w.flush(); err != nil {
		return err
	}
	if err := w.wait(); err != nil {
		return err
	}
	if err := w.f.Truncate(size); err != nil {
		return err
	}
	return w.f.Sync()
}

// Close waits for the write in flight; the file stays open.
func (w *fileWriter) Close() { _ = w.wait() }

package export

import (
	"fmt"
	"sync"

	"github.com/dropback/dropback/internal/directio"
)

// fileBuffer is the size of each of a fileWriter's buffers, and
// fileBuffers how many it has: one filling while the others are written.
// A sparse file is written in runs between its holes, each flushed on its
// own, so several runs must be able to be in flight at once.
const (
	fileBuffer  = 4 << 20
	fileBuffers = 4
)

// fileWriter writes a file front to back, around the page cache where the
// filesystem allows it: bytes are gathered into an aligned buffer, and a
// full buffer, or the run before a hole, is written by a goroutine of its
// own while the next one fills, so that writing overlaps with reading the
// backup. WriteAt may skip ahead, leaving a hole; it never goes back.
type fileWriter struct {
	f    *directio.File
	buf  []byte // filling; starts at file offset at
	at   int64
	free chan []byte // buffers not in flight
	wg   sync.WaitGroup
	mu   sync.Mutex
	err  error // the first write that failed
}

func newFileWriter(f *directio.File) *fileWriter {
	w := &fileWriter{f: f, buf: directio.Alloc(fileBuffer)[:0], free: make(chan []byte, fileBuffers)}
	for range fileBuffers - 1 {
		w.free <- directio.Alloc(fileBuffer)[:0]
	}
	return w
}

// failed is the error of the first write that failed, if any.
func (w *fileWriter) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Write appends p.
func (w *fileWriter) Write(p []byte) (int, error) {
	return w.WriteAt(p, w.at+int64(len(w.buf)))
}

// WriteAt writes p at off, which must not be below the end of the previous
// write; the bytes between stay a hole.
func (w *fileWriter) WriteAt(p []byte, off int64) (int, error) {
	end := w.at + int64(len(w.buf))
	if err := w.failed(); err != nil {
		return 0, err
	}
	switch {
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

// flush starts writing the buffer and takes a free one to fill next,
// waiting for a write to end when all are in flight.
func (w *fileWriter) flush() error {
	if len(w.buf) == 0 {
		return w.failed()
	}
	buf, at := w.buf, w.at
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		if _, err := w.f.WriteAt(buf, at); err != nil {
			w.mu.Lock()
			if w.err == nil {
				w.err = err
			}
			w.mu.Unlock()
		}
		w.free <- buf[:0]
	}()
	w.at += int64(len(buf))
	w.buf = <-w.free
	return w.failed()
}

// wait waits for every write in flight.
func (w *fileWriter) wait() error {
	w.wg.Wait()
	return w.failed()
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

// Close waits for the writes in flight; the file stays open.
func (w *fileWriter) Close() { _ = w.wait() }

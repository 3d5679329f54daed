package qcow2

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

var (
	// ErrOrder reports a WriteAt below data already written.
	ErrOrder = errors.New("qcow2 data written out of order")
	// ErrUnallocated reports nonzero data outside the layout's extents, or
	// data past the virtual size.
	ErrUnallocated = errors.New("qcow2 data outside the allocated extents")
	// ErrClosed reports a write after Close.
	ErrClosed = errors.New("qcow2 writer is closed")
)

// Writer emits the image a Layout describes, strictly front to back: the
// metadata in NewWriter, then the data clusters as WriteAt supplies them, then
// the zero padding of the last cluster in Close. It never seeks, so dst may be
// a pipe. Its memory is a few clusters, whatever the size of the image.
//
// WriteAt calls must come at non-decreasing offsets (io.NewOffsetWriter over
// a Writer turns it into a sequential io.Writer of the raw disk). Bytes of
// allocated clusters that no call covers are written as zeros. Bytes outside
// the allocated clusters must be zero and are dropped; nonzero ones fail with
// ErrUnallocated. A Writer is not safe for concurrent use. After an error from
// dst every call returns that error, and the output is incomplete.
type Writer struct {
	l     *Layout
	dst   io.Writer
	buf   []byte // one cluster of scratch
	zeros []byte // one cluster of zeros

	written int64 // bytes handed to dst
	pos     int64 // guest offset up to which data is emitted or skipped
	ri      int   // the first run that ends after pos
	err     error // sticky error from dst
	closed  bool
}

var _ io.WriterAt = (*Writer)(nil)

// NewWriter writes the metadata of l to dst and returns a Writer for its data.
// It does not close dst.
func NewWriter(dst io.Writer, l *Layout) (*Writer, error) {
	cs := l.ClusterSize()
	w := &Writer{l: l, dst: dst, buf: make([]byte, cs), zeros: make([]byte, cs)}
	for _, step := range []func() error{w.writeHeader, w.writeL1, w.writeL2, w.writeRefcountTable, w.writeRefcountBlocks} {
		if err := step(); err != nil {
			return nil, err
		}
	}
	if w.written != l.dataOffset {
		return nil, fmt.Errorf("write qcow2 metadata: wrote %d bytes, laid out %d", w.written, l.dataOffset)
	}
	return w, nil
}

func (w *Writer) writeHeader() error {
	l, h := w.l, w.buf
	clear(h)
	copy(h[0:4], "QFI\xfb")
	be := binary.BigEndian
	be.PutUint32(h[4:], 3) // version
	be.PutUint32(h[20:], uint32(l.clusterBits))
	be.PutUint64(h[24:], uint64(l.size))
	be.PutUint32(h[36:], uint32(l.l1Entries))
	be.PutUint64(h[40:], uint64(l.l1Offset))
	be.PutUint64(h[48:], uint64(l.rtOffset))
	be.PutUint32(h[56:], uint32(l.rtClusters))
	be.PutUint32(h[96:], refcountOrder)
	be.PutUint32(h[100:], headerLength)
	// Feature bits, snapshots, backing file and compression type stay 0; the
	// zeros after the header end the (empty) list of header extensions.
	return w.emit(h)
}

// writeL1 points each L1 entry whose guest range holds data at its L2 table;
// the L2 tables follow in the same order.
func (w *Writer) writeL1() error {
	l := w.l
	tw := w.table(l.l1Clusters)
	k := int64(0)
	err := l.forTables(func(t int64) error {
		off := l.l2Offset + k<<l.clusterBits
		k++
		return tw.set(t, uint64(off)|copiedFlag)
	})
	if err != nil {
		return err
	}
	return tw.finish()
}

// writeL2 maps the allocated guest clusters, in ascending order, to
// consecutive host clusters from DataOffset.
func (w *Writer) writeL2() error {
	l := w.l
	perTable := l.clusterSize() / 8
	tw := w.table(l.l2Tables)
	host, ordinal, lastTable := l.dataOffset, int64(-1), int64(-1)
	for _, r := range l.runs {
		for c := r.first; c < r.first+r.count; c++ {
			if t := c / perTable; t != lastTable {
				ordinal, lastTable = ordinal+1, t
			}
			if err := tw.set(ordinal*perTable+c%perTable, uint64(host)|copiedFlag); err != nil {
				return err
			}
			host += l.clusterSize()
		}
	}
	return tw.finish()
}

func (w *Writer) writeRefcountTable() error {
	l := w.l
	tw := w.table(l.rtClusters)
	for j := int64(0); j < l.rbClusters; j++ {
		if err := tw.set(j, uint64(l.rbOffset+j<<l.clusterBits)); err != nil {
			return err
		}
	}
	return tw.finish()
}

// writeRefcountBlocks gives every cluster of the file a refcount of one.
func (w *Writer) writeRefcountBlocks() error {
	l := w.l
	perBlock := l.clusterSize() / refcountBytes
	ones := make([]byte, l.clusterSize())
	for i := 0; i < len(ones); i += refcountBytes {
		binary.BigEndian.PutUint16(ones[i:], 1)
	}
	for j := int64(0); j < l.rbClusters; j++ {
		block := ones
		if left := l.fileClusters - j*perBlock; left < perBlock {
			block = w.buf
			clear(block)
			copy(block, ones[:left*refcountBytes])
		}
		if err := w.emit(block); err != nil {
			return err
		}
	}
	return nil
}

// forTables calls fn with the index of each L2 table that maps data, in
// ascending order.
func (l *Layout) forTables(fn func(t int64) error) error {
	perTable := l.clusterSize() / 8
	last := int64(-1)
	for _, r := range l.runs {
		for t := max(r.first/perTable, last+1); t <= (r.first+r.count-1)/perTable; t++ {
			if err := fn(t); err != nil {
				return err
			}
			last = t
		}
	}
	return nil
}

// tableWriter emits a table of big-endian uint64 entries one cluster at a
// time, from entries set in ascending index order; unset entries are zero.
type tableWriter struct {
	w        *Writer
	clusters int64 // clusters in the table
	done     int64 // clusters emitted; w.buf holds cluster done
}

func (w *Writer) table(clusters int64) *tableWriter {
	clear(w.buf)
	return &tableWriter{w: w, clusters: clusters}
}

func (t *tableWriter) set(i int64, v uint64) error {
	perCluster := int64(len(t.w.buf) / 8)
	for t.done < i/perCluster {
		if err := t.flush(); err != nil {
			return err
		}
	}
	binary.BigEndian.PutUint64(t.w.buf[i%perCluster*8:], v)
	return nil
}

func (t *tableWriter) flush() error {
	if t.done >= t.clusters {
		return fmt.Errorf("write qcow2 metadata: table entry beyond its %d clusters", t.clusters)
	}
	if err := t.w.emit(t.w.buf); err != nil {
		return err
	}
	clear(t.w.buf)
	t.done++
	return nil
}

func (t *tableWriter) finish() error {
	for t.done < t.clusters {
		if err := t.flush(); err != nil {
			return err
		}
	}
	return nil
}

// emit hands p to dst and counts it; a failure sticks.
func (w *Writer) emit(p []byte) error {
	if w.err != nil {
		return w.err
	}
	n, err := w.dst.Write(p)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		w.err = fmt.Errorf("write qcow2 image at file offset %d: %w", w.written+int64(n), err)
	}
	w.written += int64(n)
	return w.err
}

func (w *Writer) emitZeros(n int64) error {
	for n > 0 {
		k := min(n, int64(len(w.zeros)))
		if err := w.emit(w.zeros[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// runBytes is the guest byte range of run i.
func (w *Writer) runBytes(i int) (start, end int64) {
	r := w.l.runs[i]
	return r.first << w.l.clusterBits, (r.first + r.count) << w.l.clusterBits
}

// advance moves pos to `to`, writing zeros for the allocated bytes between.
func (w *Writer) advance(to int64) error {
	for w.pos < to {
		if w.ri == len(w.l.runs) {
			w.pos = to
			break
		}
		start, end := w.runBytes(w.ri)
		if w.pos < start {
			w.pos = min(to, start)
			continue
		}
		n := min(to, end) - w.pos
		if err := w.emitZeros(n); err != nil {
			return err
		}
		w.pos += n
		if w.pos == end {
			w.ri++
		}
	}
	return nil
}

// WriteAt writes the guest bytes p at guest offset off, which must not be
// below the end of the previous write. It returns how many bytes of p it
// consumed (written, or dropped as zeros outside the extents).
func (w *Writer) WriteAt(p []byte, off int64) (int, error) {
	switch {
	case w.err != nil:
		return 0, w.err
	case w.closed:
		return 0, ErrClosed
	case len(p) == 0:
		return 0, nil
	case off < w.pos:
		return 0, fmt.Errorf("%w: write at guest offset %d after data up to %d", ErrOrder, off, w.pos)
	case off > w.l.size || int64(len(p)) > w.l.size-off:
		return 0, fmt.Errorf("%w: write [%d, +%d) past the virtual size %d", ErrUnallocated, off, len(p), w.l.size)
	}
	if err := w.advance(off); err != nil {
		return 0, err
	}
	n := 0
	for n < len(p) {
		rest := p[n:]
		if w.ri == len(w.l.runs) {
			if err := w.skipZeros(rest); err != nil {
				return n, err
			}
			return len(p), nil
		}
		start, end := w.runBytes(w.ri)
		if w.pos < start {
			k := min(int64(len(rest)), start-w.pos)
			if err := w.skipZeros(rest[:k]); err != nil {
				return n, err
			}
			n += int(k)
			continue
		}
		k := min(int64(len(rest)), end-w.pos)
		if err := w.emit(rest[:k]); err != nil {
			return n, err
		}
		n += int(k)
		w.pos += k
		if w.pos == end {
			w.ri++
		}
	}
	return n, nil
}

// skipZeros drops p, which lies outside the extents at pos, if it is all zero.
func (w *Writer) skipZeros(p []byte) error {
	for i := 0; i < len(p); i += len(w.zeros) {
		chunk := p[i:min(len(p), i+len(w.zeros))]
		if !bytes.Equal(chunk, w.zeros[:len(chunk)]) {
			j := 0
			for chunk[j] == 0 {
				j++
			}
			at := w.pos + int64(i+j)
			return fmt.Errorf("%w: nonzero byte at guest offset %d", ErrUnallocated, at)
		}
	}
	w.pos += int64(len(p))
	return nil
}

// Close zero-fills the allocated bytes not yet written, up to the end of the
// last cluster, and checks that the file has its laid-out size. It does not
// close dst. Calling Close again returns the first call's result.
func (w *Writer) Close() error {
	if w.closed || w.err != nil {
		return w.err
	}
	w.closed = true
	if n := len(w.l.runs); n > 0 {
		_, end := w.runBytes(n - 1)
		if err := w.advance(end); err != nil {
			return err
		}
	}
	if w.written != w.l.FileSize() {
		w.err = fmt.Errorf("write qcow2 image: wrote %d bytes, laid out %d", w.written, w.l.FileSize())
	}
	return w.err
}

// Written is the number of bytes written to dst so far, for progress.
func (w *Writer) Written() int64 { return w.written }

// Package export gets the disks of a backup out without restoring them: as
// raw or qcow2 images written front to back to a file or a pipe, as
// read-only NBD exports, and as the files of a read-only FUSE mount. It
// works on any Disk; the engine's disk readers are one, adapted by the
// local provider.
package export

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/dropback/dropback/internal/directio"
	"github.com/dropback/dropback/pkg/progress"
	"github.com/dropback/dropback/pkg/qcow2"
)

// Disk is one disk of a backup, read in place.
//
// Its methods are safe for concurrent use. ReadAt and Stream check every
// byte they return against the backup (an error otherwise, never other
// bytes), and fail once the backup may no longer be read.
type Disk interface {
	// Name is the disk's name in the backup: the name of its export and
	// of its file in a mount.
	Name() string
	// Size is the disk's size in bytes.
	Size() int64
	// ReadAt reads len(p) bytes at off, as io.ReaderAt does: fewer only
	// at the end of the disk, with io.EOF.
	ReadAt(ctx context.Context, p []byte, off int64) (int, error)
	// Extents describes [off, off+length), cut to the disk's size, as
	// runs of data and of zeros in ascending order with no gaps. A run
	// flagged Zero reads as zeros; a data run may hold zeros too.
	Extents(off, length int64) []Extent
	// Stream calls fn with the disk's data in ascending order of offset,
	// each piece valid during the call only; what it leaves out reads as
	// zeros. It counts the pieces as read, and the rest as skipped, in
	// prog's current job. An error of fn stops it and is returned.
	Stream(ctx context.Context, fn func(off int64, data []byte) error, prog *progress.Counter) error
}

// Extent is a run of a disk's bytes: data, or zeros the backup does not
// store (Zero).
type Extent struct {
	Offset, Length int64
	Zero           bool
}

// Image formats.
const (
	FormatRaw   = "raw"
	FormatQcow2 = "qcow2"
)

// Write writes d as an image of the given format to w, strictly front to
// back, so w may be a pipe: raw writes every byte of the disk, zeros
// included; qcow2 leaves zero extents unallocated. It returns the bytes
// written. prog, if not nil, counts the disk's bytes as an "export" job.
func Write(ctx context.Context, w io.Writer, d Disk, format string, prog *progress.Counter) (int64, error) {
	switch format {
	case FormatRaw:
		return writeRaw(ctx, w, d, prog)
	case FormatQcow2:
		return writeQcow2(ctx, w, d, prog)
	}
	return 0, fmt.Errorf("unknown image format %q", format)
}

// WriteFile writes d as an image of the given format into f, a new empty
// file, and syncs it: raw with holes where the disk has zeros, so the file
// is sparse; qcow2 as Write does. Aligned writes go around the page cache,
// as a restore's do. It returns the file's size.
func WriteFile(ctx context.Context, f *directio.File, d Disk, format string, prog *progress.Counter) (int64, error) {
	fw := newFileWriter(f)
	defer fw.Close()
	var size int64
	var err error
	switch format {
	case FormatRaw:
		size, err = d.Size(), streamSparse(ctx, fw, d, prog)
	case FormatQcow2:
		size, err = writeQcow2(ctx, fw, d, prog)
	default:
		err = fmt.Errorf("unknown image format %q", format)
	}
	if err != nil {
		return 0, err
	}
	if err := fw.Finish(size); err != nil {
		return 0, fmt.Errorf("write %s: %w", f.Name(), err)
	}
	return size, nil
}

// zeros is read from to write runs of zeros.
var zeros = make([]byte, 1<<20)

func writeZeros(w io.Writer, n int64) error {
	for n > 0 {
		k := min(n, int64(len(zeros)))
		if _, err := w.Write(zeros[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// writeRaw writes every byte of d to w.
func writeRaw(ctx context.Context, w io.Writer, d Disk, prog *progress.Counter) (int64, error) {
	prog.Start("export", d.Size())
	var pos int64
	err := d.Stream(ctx, func(off int64, data []byte) error {
		if err := writeZeros(w, off-pos); err != nil {
			return err
		}
		_, err := w.Write(data)
		pos = off + int64(len(data))
		return err
	}, prog)
	if err == nil {
		err = writeZeros(w, d.Size()-pos)
	}
	if err != nil {
		return 0, err
	}
	return d.Size(), nil
}

// holeBlock is the granularity at which a sparse raw file leaves zeros out.
const holeBlock = 4096

// streamSparse writes the data of d into fw, leaving out every aligned
// block of zeros, which stays a hole.
func streamSparse(ctx context.Context, fw *fileWriter, d Disk, prog *progress.Counter) error {
	prog.Start("export", d.Size())
	return d.Stream(ctx, func(off int64, data []byte) error {
		for start := 0; start < len(data); {
			for start < len(data) && isZero(data[start:min(start+holeBlock, len(data))]) {
				start += holeBlock
			}
			end := start
			for end < len(data) && !isZero(data[end:min(end+holeBlock, len(data))]) {
				end += holeBlock
			}
			end = min(end, len(data))
			if start < end {
				if _, err := fw.WriteAt(data[start:end], off+int64(start)); err != nil {
					return err
				}
			}
			start = end
		}
		return nil
	}, prog)
}

// writeQcow2 writes d to w as a qcow2 image whose allocated clusters are
// the disk's data extents, and returns the image's size.
func writeQcow2(ctx context.Context, w io.Writer, d Disk, prog *progress.Counter) (int64, error) {
	var data []qcow2.Extent
	for _, e := range d.Extents(0, d.Size()) {
		if !e.Zero {
			data = append(data, qcow2.Extent{Offset: e.Offset, Length: e.Length})
		}
	}
	layout, err := qcow2.NewLayout(d.Size(), data, 0)
	if err != nil {
		return 0, fmt.Errorf("lay out a qcow2 image of disk %s: %w", d.Name(), err)
	}
	prog.Start("export", d.Size())
	qw, err := qcow2.NewWriter(w, layout)
	if err != nil {
		return 0, err
	}
	err = d.Stream(ctx, func(off int64, data []byte) error {
		_, err := qw.WriteAt(data, off)
		return err
	}, prog)
	if err != nil {
		return 0, err
	}
	if err := qw.Close(); err != nil {
		return 0, err
	}
	return layout.FileSize(), nil
}

// isZero reports whether b, of at most len(zeros) bytes, holds only zeros.
func isZero(b []byte) bool { return bytes.Equal(b, zeros[:len(b)]) }

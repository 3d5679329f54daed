package engine

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/dropback/dropback/pkg/crypt"
	"github.com/dropback/dropback/pkg/store"
)

// Anyone who can write to a repository can plant anything in it: an object
// of gigabytes, forged lengths and counts, a FIFO. Every object kind has a
// largest size (docs/format.md, "Size limits"), checked before it is read:
// by the size a listing gives, or by reading at most one byte more than the
// limit. Decoders refuse lengths and counts beyond what the format allows,
// so that memory follows the limits, not what the repository holds.

// MaxID is the highest backup, host, action or revision number: IDs are
// written with ten digits.
const MaxID = 9_999_999_999

// MaxDisks is the most disks a host, and so a backup, can have.
const MaxDisks = 64

// Size limits of the objects, in bytes. Each is far above what a writer
// makes (see docs/format.md); maxMarker (ops.go) bounds markers, leases
// and claims.
const (
	maxConfigSize   = 64 << 10
	maxManifestSize = 4 << 20
	maxHostSize     = 4 << 20
	maxActionSize   = 64 << 10
	maxGCMarkSize   = 64 << 20
	maxGCDoneSize   = 64 << 10
	maxIdleHintSize = 16 << 20
	maxDamageSize   = 64 << 20
	maxSegmentSize  = 64 << 20
	maxPackSize     = 128 << 20
	// maxImageChunks is the most chunks an image index holds (128 TiB of
	// disk at 1 MiB chunks).
	maxImageChunks = maxImageBody / 32
)

// segmentTarget is the size at which a writer starts another index
// segment, well below maxSegmentSize.
const segmentTarget = 16 << 20

// maxPackEntries is the most blobs a writer puts in one pack, so that a
// pack's trailer stays small however well its chunks compress.
const maxPackEntries = 1 << 16

// maxImageSize is the largest image index of n chunks: its magic and the
// zstd encoding, in at most two frames, of its header and IDs, which never
// grows by more than a block header per 128 KiB and a frame header.
func maxImageSize(n int64) int64 {
	body := 20 + 32*n
	return int64(len(imageMagic)) + body + body/1024 + 2*64
}

// sizeText writes a limit for people.
func sizeText(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// readObject reads the whole object name, a what, reading at most limit+1
// bytes of it. A missing object is store.ErrNotFound; one larger than limit,
// or something that is no object (a FIFO, a link), is ErrCorrupt. known is
// the object's size when a listing gave it, else -1: an object that a
// listing says is too large is not read at all.
func (r *Repo) readObject(ctx context.Context, name, what string, limit, known int64) ([]byte, error) {
	return readBounded(ctx, r.st, name, what, limit, known)
}

func readBounded(ctx context.Context, st store.Store, name, what string, limit, known int64) ([]byte, error) {
	if known > limit {
		return nil, tooLarge(name, what, limit)
	}
	data, err := st.Get(ctx, name, 0, limit+1)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("%s: %w", name, store.ErrNotFound)
	case errors.Is(err, store.ErrNotObject):
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", what, err) // the store's error names the object
	case int64(len(data)) > limit:
		return nil, tooLarge(name, what, limit)
	}
	return data, nil
}

func tooLarge(name, what string, limit int64) error {
	return fmt.Errorf("%w: %s %s is larger than %s, the most a %s can be", ErrCorrupt, what, name, sizeText(limit), what)
}

// statBounded returns the size of the object name, a what, refusing one
// larger than limit or that is no object, before anything of it is read.
func (r *Repo) statBounded(ctx context.Context, name, what string, limit int64) (int64, error) {
	info, err := r.st.Stat(ctx, name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return 0, fmt.Errorf("%s: %w", name, store.ErrNotFound)
	case errors.Is(err, store.ErrNotObject):
		return 0, fmt.Errorf("%w: %v", ErrCorrupt, err)
	case err != nil:
		return 0, fmt.Errorf("read %s %s: %w", what, name, err)
	case info.Size > limit:
		return 0, tooLarge(name, what, limit)
	}
	return info.Size, nil
}

// parseDigits returns the number a name of exactly ten digits writes, from
// 1 to MaxID; false for anything else.
func parseDigits(s string) (int, bool) {
	if len(s) != 10 {
		return 0, false
	}
	n := 0
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n > 0
}

// blobOverhead is what a blob of the given flags stores beyond its
// compressed or raw bytes: the nonce and tag of an encrypted one.
func blobOverhead(flags uint8) uint32 {
	if flags&flagEncrypted != 0 {
		return crypt.BlobOverhead
	}
	return 0
}

// checkEntry checks that a blob's place is one the format allows: inside a
// pack after its magic, no longer than a chunk can be, with known flags.
func checkEntry(e Entry) error {
	switch {
	case int64(e.Offset) < int64(len(packMagic)) || int64(e.Offset)+int64(e.Length) > maxPackSize:
		return fmt.Errorf("%w: a blob at %d of %d bytes lies outside any pack", ErrCorrupt, e.Offset, e.Length)
	case e.Raw > MaxChunkSize || e.Length > MaxChunkSize+blobOverhead(e.Flags):
		return fmt.Errorf("%w: a blob of %d bytes (%d stored) is longer than a chunk can be", ErrCorrupt, e.Raw, e.Length)
	case e.Flags&^(flagZstd|flagEncrypted) != 0:
		return fmt.Errorf("%w: a blob has unknown flags %#x", ErrCorrupt, e.Flags)
	}
	return nil
}

package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"

	"github.com/dropback/dropback/pkg/store"
)

const imageMagic = "DBIMG001"

// Image is the fixed index of one disk image: one chunk ID per chunk, so the
// chunk of any offset is one lookup.
type Image struct {
	Size      int64
	ChunkSize int
	Chunks    []ID
	// mem is the memory reserved for Chunks (budget.go), or nil.
	mem *memHold
}

// release gives back the memory reserved for the image, which is not used
// after. It may be called more than once, and on nil.
func (im *Image) release() {
	if im != nil {
		im.mem.release()
	}
}

// imageMemory is what the chunk IDs of an image of n chunks take.
func imageMemory(n int64) int64 { return 32 * n }

// imageReserver reserves the memory of an image index whose header states
// n chunks before its IDs are decoded, or refuses it.
type imageReserver func(n int64) (*memHold, error)

// reserveImage is the imageReserver of image index id read on its own.
func (r *Repo) reserveImage(id ID) imageReserver {
	return func(n int64) (*memHold, error) {
		return r.mem.reserve(imageMemory(n), fmt.Sprintf("image index %s (%d chunks)", id, n))
	}
}

func chunkCount(size int64, chunkSize int) int {
	return int((size + int64(chunkSize) - 1) / int64(chunkSize))
}

// chunkLen is the length of chunk i of the image.
func (im *Image) chunkLen(i int) int {
	off := int64(i) * int64(im.ChunkSize)
	return int(min(int64(im.ChunkSize), im.Size-off))
}

func encodeImage(im *Image) []byte { return encodeImageSplit(im, 0) }

// encodeImageSplit encodes im, with its body in two zstd frames split at
// byte split when that is inside the body: the same image in other bytes,
// and so under another name, for when the name of the one-frame encoding
// is taken by an image gc condemned.
func encodeImageSplit(im *Image, split int) []byte {
	body := make([]byte, 0, 20+32*len(im.Chunks))
	body = binary.LittleEndian.AppendUint64(body, uint64(im.Size))
	body = binary.LittleEndian.AppendUint32(body, uint32(im.ChunkSize))
	body = binary.LittleEndian.AppendUint64(body, uint64(len(im.Chunks)))
	for _, id := range im.Chunks {
		body = append(body, id[:]...)
	}
	enc, _ := codec()
	out := []byte(imageMagic)
	if split > 0 && split < len(body) {
		out = enc.EncodeAll(body[:split], out)
		body = body[split:]
	}
	return enc.EncodeAll(body, out)
}

// putImage writes the image index of a backup and returns its ID: never
// the name of an image gc condemned (avoid), which gc may delete at any
// time, even if it holds the same image, nor of a damaged one. When the
// name of the one-frame encoding holds a damaged copy, the image is written
// under another encoding and an image-repaired/ marker points the damaged
// name to it, so that the backups that name the damaged copy read whole
// again; nothing is deleted or replaced.
func (r *Repo) putImage(ctx context.Context, im *Image, avoid map[ID]bool) (ID, error) {
	var damaged []ID
	for split := 0; split < maxVariants; split++ {
		data := encodeImageSplit(im, split)
		id := r.contentID(data)
		if avoid[id] {
			continue
		}
		err := r.putObject(ctx, imageName(id), data)
		if errors.Is(err, errNameDamaged) {
			damaged = append(damaged, id)
			continue // that name holds a damaged copy: write it under another
		}
		if err != nil {
			return ID{}, err
		}
		for _, d := range damaged {
			r.markRepaired(ctx, d, id)
		}
		return id, nil
	}
	return ID{}, fmt.Errorf("write image index: %d encodings of it are taken by damaged or condemned objects", maxVariants)
}

func repairedName(id ID) string { return "image-repaired/" + id.String() }

// markRepaired writes, create-once, that the damaged image index of name
// damaged holds what image index good does. It is best effort: the backup
// that wrote good needs no marker, and a reader checks a marker before it
// follows it (see followRepair), so one written by someone else, or
// damaged since, can only fail to help.
func (r *Repo) markRepaired(ctx context.Context, damaged, good ID) {
	_ = r.st.Put(ctx, repairedName(damaged), []byte(good.String()+"\n"))
}

// followRepair reads the image index that an image-repaired/ marker names
// in place of image id, damaged or missing, and returns it with its ID
// only if it proves to be the same image: decoded and encoded again, one of
// its encodings must hash to id. A marker that is missing, damaged or
// names anything else is ErrNotFound, and the caller reports the damage.
func (r *Repo) followRepair(ctx context.Context, id ID, limit int64, reserve imageReserver) (*Image, ID, error) {
	data, err := r.readObject(ctx, repairedName(id), "image repair marker", int64(2*len(ID{})+1), -1)
	if err != nil {
		return nil, ID{}, store.ErrNotFound
	}
	good, err := ParseID(string(bytes.TrimSpace(data)))
	if err != nil || good == id {
		return nil, ID{}, store.ErrNotFound
	}
	raw, err := r.getContent(ctx, imageName(good), "image index", good, limit, -1)
	if err != nil {
		return nil, ID{}, store.ErrNotFound
	}
	im, err := decodeImage(raw, reserve)
	if errors.Is(err, ErrMemory) {
		return nil, ID{}, err
	}
	if err != nil {
		return nil, ID{}, store.ErrNotFound
	}
	for split := 0; split < maxVariants; split++ {
		if r.contentID(encodeImageSplit(im, split)) == id {
			return im, good, nil
		}
	}
	im.release()
	return nil, ID{}, store.ErrNotFound
}

// maxVariants bounds the encodings tried for one content-addressed object.
const maxVariants = 20

// maxImageBody bounds a decoded image index: 32 bytes per chunk, so 2^32
// bytes are 128 TiB of disk at 1 MiB chunks. The shared decoder's 64 MiB
// limit, meant for chunks, stopped at 2 TiB.
const maxImageBody = 1 << 32

// decodeImage decodes an image index; reserve, when not nil, reserves the
// memory of its IDs from the count its header states, before any is
// decoded, and may refuse it.
func decodeImage(data []byte, reserve imageReserver) (*Image, error) {
	if len(data) < len(imageMagic) || string(data[:len(imageMagic)]) != imageMagic {
		return nil, fmt.Errorf("%w: not an image index", ErrCorrupt)
	}
	dec, err := zstd.NewReader(bytes.NewReader(data[len(imageMagic):]),
		zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxImageBody))
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	var hdr [20]byte
	if _, err := io.ReadFull(dec, hdr[:]); err != nil {
		return nil, fmt.Errorf("%w: image index truncated or unreadable: %v", ErrCorrupt, err)
	}
	im := &Image{
		Size:      int64(binary.LittleEndian.Uint64(hdr[:])),
		ChunkSize: int(binary.LittleEndian.Uint32(hdr[8:])),
	}
	n := binary.LittleEndian.Uint64(hdr[12:])
	if im.Size < 0 || im.ChunkSize < MinChunkSize || im.ChunkSize > MaxChunkSize ||
		n > maxImageBody/32 || int(n) != chunkCount(im.Size, im.ChunkSize) {
		return nil, fmt.Errorf("%w: image index sizes do not agree", ErrCorrupt)
	}
	if reserve != nil {
		if im.mem, err = reserve(int64(n)); err != nil {
			return nil, err
		}
	}
	// The IDs are read a block at a time, so that memory follows the bytes
	// there are, never the count in the header alone; once the budget has
	// taken the count, they go into one array of it.
	im.Chunks = make([]ID, 0, min(n, 1<<16))
	if reserve != nil {
		im.Chunks = make([]ID, 0, n)
	}
	buf := make([]byte, 32<<12)
	for left := n; left > 0; {
		k := min(left, uint64(len(buf)/32))
		if _, err := io.ReadFull(dec, buf[:k*32]); err != nil {
			im.release()
			return nil, fmt.Errorf("%w: image index truncated or unreadable: %v", ErrCorrupt, err)
		}
		for i := range k {
			im.Chunks = append(im.Chunks, ID(buf[i*32:(i+1)*32]))
		}
		left -= k
	}
	if k, _ := dec.Read(buf[:1]); k != 0 {
		im.release()
		return nil, fmt.Errorf("%w: image index has trailing bytes", ErrCorrupt)
	}
	return im, nil
}

func imageName(id ID) string { return "images/" + id.String() }

// errNameDamaged means an object of the name exists and holds other bytes
// than its name says: the caller writes the same content under another
// name (another encoding), and leaves the damaged one for verify and gc.
var errNameDamaged = errors.New("an object of that name is damaged")

// putObject writes a content-addressed object, named by the hash of all its
// bytes. One that exists holds the same bytes, unless it was damaged since:
// when it was read whole, twice, and both times differed, putObject returns
// errNameDamaged. It never deletes: another writer may be replacing the same
// object, and a crash between a delete and a put would lose it.
func (r *Repo) putObject(ctx context.Context, name string, data []byte) error {
	err := r.st.Put(ctx, name, data)
	if err == nil {
		return nil
	}
	if !errors.Is(err, store.ErrExists) {
		return fmt.Errorf("write %s: %w", name, err)
	}
	for range 2 {
		old, err := r.st.Get(ctx, name, 0, int64(len(data))+1)
		if errors.Is(err, errUndecryptable) || errors.Is(err, errTooLong) {
			continue // read whole, and not these bytes: as one that differs
		}
		if err != nil {
			return fmt.Errorf("write %s: it exists and cannot be read back: %w", name, err)
		}
		if bytes.Equal(old, data) {
			return nil
		}
	}
	return fmt.Errorf("write %s: %w", name, errNameDamaged)
}

// getContent reads a content-addressed object, what id (an image index or
// index segment), of at most limit bytes (known, when not -1, is its size
// from a listing), and checks it against its name. A missing object is
// store.ErrNotFound, for the caller to judge.
func (r *Repo) getContent(ctx context.Context, name, what string, id ID, limit, known int64) ([]byte, error) {
	data, err := r.readObject(ctx, name, what, limit, known)
	if errors.Is(err, store.ErrNotFound) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if r.contentID(data) != id {
		return nil, fmt.Errorf("%w: %s %s does not match its name", ErrCorrupt, what, id)
	}
	return data, nil
}

// LoadImage reads and checks an image index of any size an image index can
// have: its size is asked first, so a larger object is never read.
// LoadDiskImage, which knows the disk's size, reads no more than the
// disk's image can take.
func (r *Repo) LoadImage(ctx context.Context, id ID) (*Image, error) {
	size, err := r.statBounded(ctx, imageName(id), "image index", maxImageSize(maxImageChunks))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	im, _, err := r.loadImageFrom(ctx, id, maxImageSize(maxImageChunks), size, r.reserveImage(id))
	return im, err
}

// LoadDiskImage reads and checks the image index of disk i of backup m: an
// object larger than the image of a disk of that size is refused unread,
// and the image must describe a disk of that size in this repository's
// chunks. The memory of its IDs is reserved from the disk's size that the
// manifest states before anything is read (a *MemoryError when the budget
// cannot take it), and is held until the image is released.
func (r *Repo) LoadDiskImage(ctx context.Context, m *Manifest, i int) (*Image, error) {
	im, _, err := r.loadDiskImage(ctx, m, i)
	return im, err
}

// loadDiskImage is LoadDiskImage that also returns the ID of the object it
// read: the image the manifest names, or the repair of it that stands in.
func (r *Repo) loadDiskImage(ctx context.Context, m *Manifest, i int) (*Image, ID, error) {
	d := m.Disks[i]
	id, err := ParseID(d.Image)
	if err != nil {
		return nil, ID{}, fmt.Errorf("%w: backup %d disk %s: %v", ErrCorrupt, m.ID, d.Name, err)
	}
	n := int64(chunkCount(d.SizeBytes, r.cfg.ChunkSize))
	what := fmt.Sprintf("the image index of disk %s of backup %d (%s of disk, %d chunks)", d.Name, m.ID, MemText(d.SizeBytes), n)
	hold, err := r.mem.reserve(imageMemory(n), what)
	if err != nil {
		return nil, ID{}, err
	}
	// The image must hold the n chunks reserved for: a header that states
	// another count is refused before its IDs are decoded. A decoding that
	// failed gave the reservation back: the next takes it again.
	reserve := func(k int64) (*memHold, error) {
		if k != n {
			return nil, fmt.Errorf("%w: image index %s holds %d chunks, not the %d of disk %s of backup %d", ErrCorrupt, id, k, n, d.Name, m.ID)
		}
		return hold, hold.grow(imageMemory(n)-hold.size(), what)
	}
	im, from, err := r.loadImageFrom(ctx, id, maxImageSize(n), -1, reserve)
	if err != nil {
		hold.release()
		return nil, ID{}, err
	}
	if im.Size != d.SizeBytes || im.ChunkSize != r.cfg.ChunkSize {
		im.release()
		return nil, ID{}, fmt.Errorf("%w: image index %s describes %d bytes in chunks of %d, not disk %s of backup %d (%d bytes in chunks of %d)",
			ErrCorrupt, id, im.Size, im.ChunkSize, d.Name, m.ID, d.SizeBytes, r.cfg.ChunkSize)
	}
	return im, from, nil
}

// loadImageFrom reads image index id, or, when that object is missing or
// damaged, the repair an image-repaired/ marker proves to be the same
// image; it returns the ID of the object read.
func (r *Repo) loadImageFrom(ctx context.Context, id ID, limit, known int64, reserve imageReserver) (*Image, ID, error) {
	data, err := r.getContent(ctx, imageName(id), "image index", id, limit, known)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, ErrCorrupt) {
		im, good, rerr := r.followRepair(ctx, id, limit, reserve)
		if rerr == nil {
			return im, good, nil
		}
		if errors.Is(rerr, ErrMemory) {
			return nil, ID{}, rerr
		}
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, ID{}, fmt.Errorf("%w: image index %s is missing", ErrCorrupt, id)
	}
	if err != nil {
		return nil, ID{}, err
	}
	im, err := decodeImage(data, reserve)
	if errors.Is(err, ErrMemory) {
		return nil, ID{}, err
	}
	if err != nil {
		if im, good, rerr := r.followRepair(ctx, id, limit, reserve); rerr == nil {
			return im, good, nil
		}
		return nil, ID{}, fmt.Errorf("image index %s: %w", id, err)
	}
	return im, id, nil
}

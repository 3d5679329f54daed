package engine

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/zeebo/blake3"
)

// ID names a chunk, pack, index segment or image: 32 bytes of BLAKE3.
type ID [32]byte

// ZeroID stands for an all-zero chunk in an image index. It is never stored.
var ZeroID ID

// String is the lower-case hex form used in object names.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether id is ZeroID.
func (id ID) IsZero() bool { return id == ZeroID }

// ParseID parses the hex form of an ID.
func ParseID(s string) (ID, error) {
	var id ID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("invalid object id %q", s)
	}
	copy(id[:], b)
	return id, nil
}

// contentID is the unkeyed BLAKE3-256 of an object's bytes, its name.
func contentID(data []byte) ID {
	return ID(blake3.Sum256(data))
}

// chunkHasher computes keyed chunk IDs. One per goroutine.
type chunkHasher struct{ h *blake3.Hasher }

func newChunkHasher(key [32]byte) chunkHasher {
	h, err := blake3.NewKeyed(key[:])
	if err != nil {
		panic(err) // only for a key of the wrong length
	}
	return chunkHasher{h}
}

func (c chunkHasher) sum(data []byte) ID {
	c.h.Reset()
	_, _ = c.h.Write(data)
	var id ID
	c.h.Sum(id[:0])
	return id
}

// isZero reports whether b holds only zero bytes.
func isZero(b []byte) bool {
	for len(b) >= 64 {
		x := binary.LittleEndian.Uint64(b) | binary.LittleEndian.Uint64(b[8:]) |
			binary.LittleEndian.Uint64(b[16:]) | binary.LittleEndian.Uint64(b[24:]) |
			binary.LittleEndian.Uint64(b[32:]) | binary.LittleEndian.Uint64(b[40:]) |
			binary.LittleEndian.Uint64(b[48:]) | binary.LittleEndian.Uint64(b[56:])
		if x != 0 {
			return false
		}
		b = b[64:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// Blob flags.
const (
	flagZstd = 1 << 0
	// flagEncrypted marks a blob sealed by crypt.SealBlob: every blob of
	// an encrypted repository, none of another.
	flagEncrypted = 1 << 1
)

var (
	codecOnce sync.Once
	encoder   *zstd.Encoder
	decoder   *zstd.Decoder
)

// codec returns the shared zstd encoder and decoder. Both are safe for
// concurrent EncodeAll/DecodeAll calls.
func codec() (*zstd.Encoder, *zstd.Decoder) {
	codecOnce.Do(func() {
		n := runtime.GOMAXPROCS(0)
		var err error
		encoder, err = zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(n),
			zstd.WithEncoderCRC(false),
			// Disk data often has no repeats but a skewed byte
			// distribution (text, code, tables): entropy-code it anyway.
			zstd.WithAllLitEntropyCompression(true))
		if err != nil {
			panic(err)
		}
		decoder, err = zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(n),
			zstd.WithDecoderMaxMemory(uint64(MaxChunkSize)*4))
		if err != nil {
			panic(err)
		}
	})
	return encoder, decoder
}

// compress returns the blob for chunk data and its flags: zstd when that is
// smaller, else data itself. Data that looks random is stored raw without
// trying: zstd would spend as long on it as on text, for nothing.
func compress(data, dst []byte) ([]byte, uint8) {
	if looksRandom(data) {
		return data, 0
	}
	enc, _ := codec()
	out := enc.EncodeAll(data, dst[:0])
	if len(out) >= len(data) {
		return data, 0
	}
	return out, flagZstd
}

// decompress returns the plain bytes of a blob.
func decompress(blob []byte, flags uint8, rawLen int, dst []byte) ([]byte, error) {
	switch flags {
	case 0:
		if len(blob) != rawLen {
			return nil, fmt.Errorf("%w: blob length %d, want %d", ErrCorrupt, len(blob), rawLen)
		}
		return blob, nil
	case flagZstd:
		_, dec := codec()
		out, err := dec.DecodeAll(blob, dst[:0])
		if err != nil {
			return nil, fmt.Errorf("%w: decompress blob: %v", ErrCorrupt, err)
		}
		if len(out) != rawLen {
			return nil, fmt.Errorf("%w: blob decompressed to %d bytes, want %d", ErrCorrupt, len(out), rawLen)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("%w: unknown blob flags %#x", ErrCorrupt, flags)
	}
}

// looksRandom estimates from a sample whether data is incompressible: every
// byte value about equally frequent, as in ciphertext, media or archives.
func looksRandom(data []byte) bool {
	const sample, parts = 4096, 4
	if len(data) < sample*parts {
		return false
	}
	var hist [256]int
	step := len(data) / parts
	for p := range parts {
		for _, c := range data[p*step : p*step+sample] {
			hist[c]++
		}
	}
	// For uniformly random bytes each of the 256 values is expected 64
	// times in 16 KiB; a skewed distribution (text, code, zero-padded
	// tables) puts far more weight on a few.
	var sq int
	for _, n := range hist {
		sq += n * n
	}
	const n = sample * parts
	// sq*256/n^2 is 1 for a flat distribution plus sampling noise of about
	// 256/n; data whose Huffman coding could save 2% or more sits well above.
	return float64(sq)*256/float64(n*n) < 1.03
}

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

const mib = 1 << 20

// kind is what one region of the image holds.
type kind int

const (
	hole       kind = iota // never written: left as a hole in a sparse file
	zero                   // allocated, all zero bytes
	textLike               // compressible about 2x, never repeated
	binaryLike             // compressible about 1.5x, never repeated
	random                 // incompressible
)

func (k kind) String() string {
	return [...]string{"hole", "zero", "text", "binary", "random"}[k]
}

// createWeights are the shares, in percent, of each kind of MiB in a new
// image, in the order they are drawn.
var createWeights = []struct {
	kind   kind
	weight int
}{{hole, 35}, {zero, 10}, {textLike, 25}, {binaryLike, 20}, {random, 10}}

// churnSizes and churnKinds are the lengths and kinds of churn's writes,
// with their weights.
var (
	churnSizes        = []int{4096, 65536, mib}
	churnSizeWeights  = []int{50, 30, 20}
	churnKinds        = []kind{textLike, binaryLike, random, zero}
	churnKindWeights  = []int{45, 35, 15, 5}
	churnHotShare     = 0.8 // share of writes that land in the hot tenth
	textAlphabet      = strings.Repeat("eeeeeeeettttttaaaaaoooooiiiiinnnnnsssssrrrrhhhhllldddcccuuu"+"mmmfffpppggwwyybbvk      \n\n,..EETA0123456789", 4)[:256]
	errSizeNotWholeMB = errors.New("size must be a whole number of MiB")
)

// pickKind draws the kind of the next MiB of a new image.
func pickKind(rng *pyRand) kind {
	r := int(rng.below(100))
	for _, kw := range createWeights {
		if r < kw.weight {
			return kw.kind
		}
		r -= kw.weight
	}
	return createWeights[len(createWeights)-1].kind
}

// layout returns the kind of each MiB of the image create makes for size
// and seed, without making it.
func layout(size, seed int64) []kind {
	rng := newPyRand(seed)
	kinds := make([]kind, size/mib)
	for i := range kinds {
		kinds[i] = pickKind(rng)
		if kinds[i] != hole && kinds[i] != zero {
			rng.skip(mib / 4)
		}
	}
	return kinds
}

// fill writes len(b) bytes of kind k into b, drawing from rng unless k is
// zero. len(b) must be a multiple of 8.
func fill(rng *pyRand, k kind, b []byte) {
	switch k {
	case zero:
		clear(b)
		return
	case hole:
		panic("fill: a hole has no bytes")
	}
	rng.read(b)
	switch k {
	case textLike:
		for i, c := range b {
			b[i] = textAlphabet[c]
		}
	case binaryLike:
		// Zero three bytes in every eight-byte word, as in code and tables.
		for i := 0; i < len(b); i += 8 {
			b[i+1], b[i+4], b[i+6] = 0, 0, 0
		}
	}
}

// parseSize reads a size such as 4G, 256M, 1.5GiB or 1048576: K, M, G and T
// are powers of 1024, and a trailing B or iB is ignored.
func parseSize(s string) (int64, error) {
	units := map[byte]float64{'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30, 'T': 1 << 40}
	t := strings.TrimRight(strings.TrimRight(strings.ToUpper(strings.TrimSpace(s)), "B"), "I")
	if t != "" {
		if u, ok := units[t[len(t)-1]]; ok {
			f, err := strconv.ParseFloat(t[:len(t)-1], 64)
			if err != nil || f < 0 {
				return 0, fmt.Errorf("bad size %q", s)
			}
			return int64(f * u), nil
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n, nil
}

// runWriter gathers consecutive regions of an image into one buffer and
// writes each run with one WriteAt, so a new image is written in large
// sequential writes and its holes are never written at all.
type runWriter struct {
	f   *os.File
	buf []byte
	off int64 // where buf starts in the file
}

// next returns the buffer for the len bytes at off, writing out what is
// gathered first if off does not follow it or the buffer is full.
func (w *runWriter) next(off int64, n int) ([]byte, error) {
	if len(w.buf) > 0 && (off != w.off+int64(len(w.buf)) || len(w.buf)+n > cap(w.buf)) {
		if err := w.flush(); err != nil {
			return nil, err
		}
	}
	if len(w.buf) == 0 {
		w.off = off
	}
	w.buf = w.buf[:len(w.buf)+n]
	return w.buf[len(w.buf)-n:], nil
}

func (w *runWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	if _, err := w.f.WriteAt(w.buf, w.off); err != nil {
		return fmt.Errorf("write at %d: %w", w.off, err)
	}
	w.buf = w.buf[:0]
	return nil
}

// create makes a new image of size bytes at path, replacing any file there:
// a sparse file whose MiBs are holes, zeros, text-like, binary-like or
// random data in the shares of createWeights, the same bytes for the same
// seed.
func create(ctx context.Context, path string, size, seed int64) error {
	if size%mib != 0 {
		return errSizeNotWholeMB
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create image: %w", err)
	}
	if err := writeImage(ctx, f, size, seed); err != nil {
		f.Close()
		return fmt.Errorf("make image %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close image %s: %w", path, err)
	}
	return nil
}

func writeImage(ctx context.Context, f *os.File, size, seed int64) error {
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("truncate: %w", err)
	}
	rng := newPyRand(seed)
	w := &runWriter{f: f, buf: make([]byte, 0, 16*mib)}
	for i := range size / mib {
		if err := ctx.Err(); err != nil {
			return err
		}
		k := pickKind(rng)
		if k == hole {
			continue
		}
		b, err := w.next(i*mib, mib)
		if err != nil {
			return err
		}
		fill(rng, k, b)
	}
	return w.flush()
}

// churn ages the image at path by day of guest-like writes, in place:
// writes of 4 KiB to 1 MiB, 4 KiB-aligned, most of them inside a hot tenth
// of the image, until about percent of its size is written. The same day and
// seed give the same writes.
func churn(ctx context.Context, path string, day int64, percent float64, seed int64) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open image: %w", err)
	}
	if err := churnFile(ctx, f, day, percent, seed); err != nil {
		f.Close()
		return fmt.Errorf("churn image %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close image %s: %w", path, err)
	}
	return nil
}

func churnFile(ctx context.Context, f *os.File, day int64, percent float64, seed int64) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat: %w", err)
	}
	size := fi.Size()
	if size <= mib {
		return fmt.Errorf("image of %d bytes is too small to churn", size)
	}
	rng := newPyRand(seed*1_000_003 + day)
	hotStart := rng.below(max(1, size-size/10)) / 4096 * 4096
	budget := int64(float64(size) * percent / 100)
	buf := make([]byte, mib)
	for budget > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := int64(churnSizes[rng.choice(churnSizeWeights)])
		var off int64
		if rng.float() < churnHotShare {
			off = hotStart + rng.below(max(1, size/10-n))
		} else {
			off = rng.below(size - n)
		}
		off = off / 4096 * 4096
		b := buf[:n]
		fill(rng, churnKinds[rng.choice(churnKindWeights)], b)
		if _, err := f.WriteAt(b, off); err != nil {
			return fmt.Errorf("write at %d: %w", off, err)
		}
		budget -= n
	}
	return nil
}

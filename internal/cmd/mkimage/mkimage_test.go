package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func makeImage(t *testing.T, size, seed int64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "disk.img")
	require.NoError(t, create(context.Background(), path, size, seed))
	return path
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return data
}

func sha(t *testing.T, path string) string {
	t.Helper()
	sum := sha256.Sum256(readFile(t, path))
	return hex.EncodeToString(sum[:])
}

// TestPyRandMatchesCPython checks the generator against values printed by
// CPython 3.11: random.Random(1).getrandbits(32) three times,
// random.Random(1000004).randrange(10**12) and random.Random(5).random().
func TestPyRandMatchesCPython(t *testing.T) {
	r := newPyRand(1)
	assert.Equal(t, []uint32{577090037, 2444712010, 3639700191}, []uint32{r.uint32(), r.uint32(), r.uint32()})
	assert.Equal(t, int64(178230445143), newPyRand(1000004).below(1_000_000_000_000))
	assert.Equal(t, 0.6229016948897019, newPyRand(5).float())
}

// TestSameBytesAsMkimagePy checks an image and its churn against the
// sha256 of those made by the Python generator this command was ported from
// (mkimage.py create IMG --size 16M; mkimage.py churn IMG --day 1
// --percent 20).
func TestSameBytesAsMkimagePy(t *testing.T) {
	path := makeImage(t, 16*mib, 1)
	assert.Equal(t, "bea20b22074987dc62f51e821598e1ad1752fc60b5d5b69af14bf103931d0475", sha(t, path))
	require.NoError(t, churn(context.Background(), path, 1, 20, 1))
	assert.Equal(t, "a4324a6adc7b00345df3665478f35e9a81ca53c3c948958a2a5a1119b03a8d8a", sha(t, path))
}

func TestCreateIsDeterministic(t *testing.T) {
	tests := []struct {
		name         string
		seedA, seedB int64
		same         bool
	}{
		{"same seed", 1, 1, true},
		{"other seed", 1, 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := readFile(t, makeImage(t, 32*mib, tt.seedA))
			b := readFile(t, makeImage(t, 32*mib, tt.seedB))
			assert.Equal(t, tt.same, bytes.Equal(a, b))
		})
	}
}

// nextData returns where the first data at or after off starts, by
// SEEK_DATA, or -1 if there is none.
func nextData(t *testing.T, f *os.File, off int64) int64 {
	t.Helper()
	next, err := f.Seek(off, unix.SEEK_DATA)
	if errors.Is(err, syscall.ENXIO) {
		return -1
	}
	require.NoError(t, err)
	return next
}

// nextHole returns where the first hole at or after off starts, by
// SEEK_HOLE (the end of the file counts as one).
func nextHole(t *testing.T, f *os.File, off int64) int64 {
	t.Helper()
	next, err := f.Seek(off, unix.SEEK_HOLE)
	require.NoError(t, err)
	return next
}

// classify says what kind of data one MiB holds, from its bytes alone.
func classify(b []byte) kind {
	if bytes.Count(b, []byte{0}) == len(b) {
		return zero
	}
	if strings.Trim(string(b), textAlphabet) == "" {
		return textLike
	}
	for i := 0; i < len(b); i += 8 {
		if b[i+1] != 0 || b[i+4] != 0 || b[i+6] != 0 {
			return random
		}
	}
	return binaryLike
}

// TestCreateLayout checks every MiB of an image against layout: holes are
// holes by SEEK_DATA and SEEK_HOLE, every other MiB is allocated and holds
// what its kind says.
func TestCreateLayout(t *testing.T) {
	const size = 64 * mib
	path := makeImage(t, size, 3)
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	probe, err := os.Create(filepath.Join(t.TempDir(), "probe"))
	require.NoError(t, err)
	defer probe.Close()
	require.NoError(t, probe.Truncate(mib))
	if nextData(t, probe, 0) != -1 {
		t.Skip("the filesystem of t.TempDir does not report holes")
	}

	kinds := layout(size, 3)
	seen := map[kind]int{}
	buf := make([]byte, mib)
	for i, k := range kinds {
		off := int64(i) * mib
		seen[k]++
		if k == hole {
			assert.Equal(t, off, nextHole(t, f, off), "MiB %d should be a hole", i)
			if d := nextData(t, f, off); d != -1 {
				assert.GreaterOrEqual(t, d, off+mib, "MiB %d should be a hole", i)
			}
			continue
		}
		assert.Equal(t, off, nextData(t, f, off), "MiB %d (%s) should be allocated", i, k)
		assert.GreaterOrEqual(t, nextHole(t, f, off), off+mib, "MiB %d (%s) should be allocated", i, k)
		_, err := f.ReadAt(buf, off)
		require.NoError(t, err)
		assert.Equal(t, k, classify(buf), "MiB %d", i)
	}
	for _, k := range []kind{hole, zero, textLike, binaryLike, random} {
		assert.NotZero(t, seen[k], "no MiB of kind %s in %d MiB", k, len(kinds))
	}
}

// TestCreateShares checks the shares of each kind over a 1 GiB layout
// against the documented 35/10/25/20/10 percent.
func TestCreateShares(t *testing.T) {
	kinds := layout(1<<30, 1)
	count := map[kind]int{}
	for _, k := range kinds {
		count[k]++
	}
	for _, kw := range createWeights {
		share := 100 * float64(count[kw.kind]) / float64(len(kinds))
		assert.InDelta(t, kw.weight, share, 4, "share of %s", kw.kind)
	}
}

// changedBlocks returns, for each 4 KiB block, whether it differs between a
// and b.
func changedBlocks(a, b []byte) []bool {
	out := make([]bool, len(a)/4096)
	for i := range out {
		out[i] = !bytes.Equal(a[i*4096:(i+1)*4096], b[i*4096:(i+1)*4096])
	}
	return out
}

func copyFile(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "copy.img")
	in, err := os.Open(src)
	require.NoError(t, err)
	defer in.Close()
	out, err := os.Create(dst)
	require.NoError(t, err)
	_, err = io.Copy(out, in)
	require.NoError(t, err)
	require.NoError(t, out.Close())
	return dst
}

// TestChurn checks that a day of churn writes about the documented share of
// the image, the same way every time for the same day, and differently on
// another day.
func TestChurn(t *testing.T) {
	const size = 64 * mib
	base := makeImage(t, size, 1)
	before := readFile(t, base)
	tests := []struct {
		name    string
		day     int64
		percent float64
	}{
		{"one percent", 1, 1},
		{"five percent", 2, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b, c := copyFile(t, base), copyFile(t, base), copyFile(t, base)
			ctx := context.Background()
			require.NoError(t, churn(ctx, a, tt.day, tt.percent, 1))
			require.NoError(t, churn(ctx, b, tt.day, tt.percent, 1))
			require.NoError(t, churn(ctx, c, tt.day+1, tt.percent, 1))
			after := readFile(t, a)
			require.Len(t, after, size)
			assert.Equal(t, after, readFile(t, b), "the same day churns the same way")
			assert.NotEqual(t, after, readFile(t, c), "another day churns another way")

			changed := changedBlocks(before, after)
			n := 0
			for _, ch := range changed {
				if ch {
					n++
				}
			}
			budget := float64(size) * tt.percent / 100
			// Writes stop once budget is spent, so they total less than
			// budget plus one write; overlaps and zeros over zeros change
			// less than they write.
			assert.Less(t, float64(n*4096), budget+mib)
			assert.Greater(t, float64(n*4096), budget/2)
		})
	}
}

// TestChurnIsHot checks that most of a day's writes land inside one tenth
// of the image: 80% of them are aimed there.
func TestChurnIsHot(t *testing.T) {
	const size = 256 * mib
	path := makeImage(t, size, 1)
	before := readFile(t, path)
	require.NoError(t, churn(context.Background(), path, 1, 10, 1))
	changed := changedBlocks(before, readFile(t, path))
	n := 0
	for _, ch := range changed {
		if ch {
			n++
		}
	}
	require.NotZero(t, n)
	t.Logf("%d of %d changed blocks in the hottest tenth", int(hottestTenth(changed)), n)
	assert.GreaterOrEqual(t, hottestTenth(changed), 0.6*float64(n))
}

// hottestTenth returns the most changed blocks in any window of a tenth of
// the blocks.
func hottestTenth(changed []bool) float64 {
	w := len(changed) / 10
	cur, best := 0, 0
	for i, ch := range changed {
		if ch {
			cur++
		}
		if i >= w && changed[i-w] {
			cur--
		}
		best = max(best, cur)
	}
	return float64(best)
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"4G", 4 << 30, false},
		{"256M", 256 << 20, false},
		{"256MiB", 256 << 20, false},
		{" 1.5g ", 3 << 29, false},
		{"2T", 2 << 40, false},
		{"1048576", 1 << 20, false},
		{"", 0, true},
		{"4X", 0, true},
		{"-1G", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseSize(tt.in)
			if tt.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestRun(t *testing.T) {
	img := filepath.Join(t.TempDir(), "disk.img")
	tests := []struct {
		name    string
		args    []string
		wantErr error
		stdout  string
	}{
		{"size", []string{"size", "2G"}, nil, "2147483648\n"},
		{"create, flags after the image", []string{"create", img, "--size", "3M", "--seed", "2"}, nil, ""},
		{"churn, flags before the image", []string{"churn", "--day", "1", img}, nil, ""},
		{"churn without a day", []string{"churn", img}, errUsage, ""},
		{"size not whole MiB", []string{"create", img, "--size", "1000"}, errSizeNotWholeMB, ""},
		{"unknown command", []string{"grow", img}, errUsage, ""},
		{"unknown flag", []string{"create", img, "--big"}, errUsage, ""},
		{"no image", []string{"create"}, errUsage, ""},
		{"nothing", nil, errUsage, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tt.args, &stdout, &stderr)
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err, "stderr: %s", stderr.String())
			assert.Equal(t, tt.stdout, stdout.String())
		})
	}
	fi, err := os.Stat(img)
	require.NoError(t, err)
	assert.EqualValues(t, 3*mib, fi.Size())
}

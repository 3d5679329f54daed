package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dropback/dropback/pkg/store"
	"github.com/dropback/dropback/pkg/store/local"
)

const testChunk = 64 << 10

func newRepo(t *testing.T) (*Repo, store.Store) {
	t.Helper()
	return initRepo(t, t.TempDir())
}

// initRepo makes a repository of testChunk chunks in dir/repo, encrypted
// unless -plain.
func initRepo(t *testing.T, dir string) (*Repo, *local.Store) {
	t.Helper()
	return initRepoWith(t, dir, encrypt(InitOptions{ChunkSize: testChunk}))
}

// initPlainRepo makes a repository of testChunk chunks in dir/repo that is
// not encrypted: for the tests of what a hostile repository may hold,
// which an encrypted repository refuses before it decodes anything.
func initPlainRepo(t *testing.T, dir string) (*Repo, *local.Store) {
	t.Helper()
	return initRepoWith(t, dir, InitOptions{ChunkSize: testChunk, Options: Options{Password: testPassword}})
}

func initRepoWith(t *testing.T, dir string, opts InitOptions) (*Repo, *local.Store) {
	t.Helper()
	st, err := local.Open(filepath.Join(dir, "repo"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := Init(context.Background(), st, opts)
	if err != nil {
		t.Fatal(err)
	}
	return r, st
}

// region describes part of a test disk.
type region struct {
	off, n int64
	kind   string // "random", "zero" (written zeros), "text"
}

// makeDisk writes a sparse file of the given size with the given regions;
// everything else is a hole.
func makeDisk(t *testing.T, path string, size int64, regions ...region) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(uint64(size), 7))
	for _, r := range regions {
		buf := make([]byte, r.n)
		switch r.kind {
		case "random":
			for i := range buf {
				buf[i] = byte(rng.Uint32())
			}
		case "text":
			words := []string{"the ", "disk ", "backup ", "chunk ", "zstd\n"}
			var b bytes.Buffer
			for b.Len() < len(buf) {
				b.WriteString(words[rng.IntN(len(words))])
			}
			copy(buf, b.Bytes())
		}
		if _, err := f.WriteAt(buf, r.off); err != nil {
			t.Fatal(err)
		}
	}
}

// writeAt writes data into the file at off.
func writeAt(t *testing.T, path string, off int64, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func fileHash(t *testing.T, path string) [32]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(data)
}

// allocated is the number of bytes the file really occupies on disk.
func allocated(t *testing.T, path string) int64 {
	t.Helper()
	var st syscallStat
	statFile(t, path, &st)
	return st.blocks * 512
}

func backup(t *testing.T, r *Repo, disks ...string) *Manifest {
	t.Helper()
	var src []DiskSource
	for i, d := range disks {
		src = append(src, DiskSource{Name: "disk" + string(rune('0'+i)), Path: d})
	}
	m, err := r.Backup(context.Background(), BackupRequest{HostID: 1, HostName: "web-1", Disks: src})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func restoreTo(t *testing.T, r *Repo, m *Manifest, inPlace bool, paths ...string) []RestoreStats {
	t.Helper()
	var targets []RestoreTarget
	for _, p := range paths {
		targets = append(targets, RestoreTarget{Path: p, InPlace: inPlace})
	}
	st, err := r.Restore(context.Background(), m, targets, nil)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestRoundTrip(t *testing.T) {
	const c = testChunk
	cases := []struct {
		name    string
		size    int64
		regions []region
	}{
		{"empty disk", 0, nil},
		{"all hole", 10 * c, nil},
		{"random", 8 * c, []region{{0, 8 * c, "random"}}},
		{"sparse mix", 40 * c, []region{
			{c, 3 * c, "random"}, {6 * c, 2 * c, "zero"}, {10*c + 100, 5000, "text"},
			{20 * c, 4 * c, "text"}, {39 * c, c, "random"},
		}},
		{"size not a multiple of the chunk", 5*c + 12345, []region{{0, 5*c + 12345, "text"}}},
		{"size not a multiple of 512", 3*c + 7, []region{{2 * c, c + 7, "random"}}},
		{"tiny", 1, []region{{0, 1, "random"}}},
		{"data in the last partial chunk only", 4*c + 999, []region{{4*c + 10, 900, "random"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := newRepo(t)
			dir := t.TempDir()
			src := filepath.Join(dir, "src.img")
			makeDisk(t, src, tc.size, tc.regions...)
			m := backup(t, r, src)
			dst := filepath.Join(dir, "dst.img")
			restoreTo(t, r, m, false, dst)
			if fileHash(t, src) != fileHash(t, dst) {
				t.Fatal("restored image differs from the source")
			}
			fi, err := os.Stat(dst)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Size() != tc.size {
				t.Fatalf("restored size %d, want %d", fi.Size(), tc.size)
			}
			// Holes and zero runs stay holes: the copy occupies no more
			// than the data it holds, give or take a block per region.
			var data int64
			for _, rg := range tc.regions {
				if rg.kind != "zero" {
					data += rg.n
				}
			}
			if got, limit := allocated(t, dst), data+int64(len(tc.regions)+1)*8192; got > limit {
				t.Errorf("restored file occupies %d bytes, want at most %d: not sparse", got, limit)
			}
		})
	}
}

func TestTwoDisks(t *testing.T) {
	r, _ := newRepo(t)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.img"), filepath.Join(dir, "b.img")
	makeDisk(t, a, 9*testChunk, region{0, 3 * testChunk, "random"})
	makeDisk(t, b, 4*testChunk+3, region{testChunk, 2 * testChunk, "text"})
	m := backup(t, r, a, b)
	ra, rb := filepath.Join(dir, "ra.img"), filepath.Join(dir, "rb.img")
	restoreTo(t, r, m, false, ra, rb)
	if fileHash(t, a) != fileHash(t, ra) || fileHash(t, b) != fileHash(t, rb) {
		t.Fatal("restored disks differ")
	}
}

func TestIncrementalStoresOnlyChangedChunks(t *testing.T) {
	r, _ := newRepo(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	makeDisk(t, src, 100*testChunk, region{0, 100 * testChunk, "random"})
	first := backup(t, r, src)
	if first.NewChunks != 100 {
		t.Fatalf("first backup stored %d chunks, want 100", first.NewChunks)
	}
	// Change one byte in each of two chunks.
	writeAt(t, src, 5*testChunk+17, []byte{1})
	writeAt(t, src, 70*testChunk, []byte{2})
	second := backup(t, r, src)
	if second.NewChunks != 2 {
		t.Fatalf("second backup stored %d chunks, want 2", second.NewChunks)
	}
	if second.NewBytes > 2*testChunk+1024 {
		t.Fatalf("second backup stored %d bytes, want about %d", second.NewBytes, 2*testChunk)
	}
	if second.ID != first.ID+1 {
		t.Fatalf("IDs %d then %d, want consecutive", first.ID, second.ID)
	}
}

func TestInPlaceRestoreWritesOnlyChangedChunks(t *testing.T) {
	r, _ := newRepo(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	makeDisk(t, src, 100*testChunk, region{0, 60 * testChunk, "random"}, region{80 * testChunk, 10 * testChunk, "text"})
	want := fileHash(t, src)
	m := backup(t, r, src)

	// Change 1%: one chunk rewritten, plus data written into a hole.
	writeAt(t, src, 3*testChunk, bytes.Repeat([]byte{9}, 100))
	writeAt(t, src, 95*testChunk, bytes.Repeat([]byte{7}, 10))

	st := restoreTo(t, r, m, true, src)
	if fileHash(t, src) != want {
		t.Fatal("in-place restore did not bring back the backup")
	}
	if st[0].ChunksWritten != 2 || st[0].BytesWritten != 2*testChunk {
		t.Fatalf("wrote %d chunks, %d bytes; want 2 chunks, %d bytes", st[0].ChunksWritten, st[0].BytesWritten, 2*testChunk)
	}
	st = restoreTo(t, r, m, true, src)
	if st[0].BytesWritten != 0 {
		t.Fatalf("restore onto an identical disk wrote %d bytes", st[0].BytesWritten)
	}
}

func TestVerifyFindsFlippedByte(t *testing.T) {
	r, _ := newRepo(t)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.img"), filepath.Join(dir, "b.img")
	makeDisk(t, a, 10*testChunk, region{0, 10 * testChunk, "random"})
	makeDisk(t, b, 10*testChunk, region{0, 10 * testChunk, "text"})
	ma := backup(t, r, a)
	mb := backup(t, r, b)

	res, err := r.Verify(context.Background(), nil, nil)
	if err != nil || res.Damaged() {
		t.Fatalf("clean repository: err %v, damaged %v %v", err, res.Damaged(), res.Problems)
	}
	// Flip one byte inside a stored chunk of backup a.
	pack := flipChunk(t, r, imageOf(t, r, ma).Chunks[3])

	res, err = r.Verify(context.Background(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	bad := map[int]bool{}
	for _, v := range res.Backups {
		if !v.OK {
			bad[v.ID] = true
		}
	}
	if !bad[ma.ID] {
		t.Fatalf("verify did not name backup %d: %+v", ma.ID, res)
	}
	if bad[mb.ID] && !sharesPack(t, r, mb, pack) {
		t.Fatalf("verify named backup %d, which does not use the damaged pack", mb.ID)
	}
	_, err = r.Restore(context.Background(), ma, []RestoreTarget{{Path: filepath.Join(dir, "out.img")}}, nil)
	if err == nil || !strings.Contains(err.Error(), "does not match") && !strings.Contains(err.Error(), "does not decrypt") {
		t.Fatalf("restore of a damaged backup: err = %v, want a hash mismatch, or a blob that does not decrypt", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "out.img")); !os.IsNotExist(err) {
		t.Fatal("a failed restore left its target behind")
	}
}

// imageOf loads the image index of the first disk of m.
func imageOf(t *testing.T, r *Repo, m *Manifest) *Image {
	t.Helper()
	ids, err := m.Images()
	if err != nil {
		t.Fatal(err)
	}
	im, err := r.LoadImage(context.Background(), ids[0])
	if err != nil {
		t.Fatal(err)
	}
	return im
}

func sharesPack(t *testing.T, r *Repo, m *Manifest, pack ID) bool {
	t.Helper()
	idx, _, err := r.LoadIndex(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range imageOf(t, r, m).Chunks {
		if p, _, ok := idx.lookup(c); ok && p == pack {
			return true
		}
	}
	return false
}

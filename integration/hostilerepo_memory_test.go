package integration

// Memory follows DROPBACK_MAX_MEMORY, not what a hostile repository holds:
// a planted manifest of the largest disk an image index can describe, and
// well-formed index segments of fake chunks past the budget, are refused
// in one line that names the variable, before the memory is taken.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/zeebo/blake3"
	"golang.org/x/sys/unix"
)

// zeroImageIndex is an image index of a disk of n zero chunks of chunk
// bytes: its header, then the 32n zero bytes of its IDs as copies of one
// zstd frame of 64 MiB of zeros. Frames follow one another in an image
// index, so a few hundred kilobytes decode to 4 GiB.
func zeroImageIndex(t *testing.T, size, chunk, n int64) []byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	require.NoError(t, err)
	defer enc.Close()
	hdr := binary.LittleEndian.AppendUint64(nil, uint64(size))
	hdr = binary.LittleEndian.AppendUint32(hdr, uint32(chunk))
	hdr = binary.LittleEndian.AppendUint64(hdr, uint64(n))
	out := enc.EncodeAll(hdr, []byte("DBIMG001"))
	const block = 64 << 20
	require.Zero(t, 32*n%block)
	frame := enc.EncodeAll(make([]byte, block), nil)
	for range 32 * n / block {
		out = append(out, frame...)
	}
	return out
}

// plantHugeBackup plants backup id of db-1, a copy of its real one whose
// disks (disks of them) are each of 2^27 chunks of 1 MiB, 128 TiB, the
// largest an image index can describe: 4 GiB of chunk IDs each, from one
// planted image index of all-zero chunks.
func (h *hostileRepo) plantHugeBackup(id, disks int) {
	t := h.t
	const chunk, n = 1 << 20, 1 << 27
	size := int64(n*chunk - 1)
	img := zeroImageIndex(t, size, chunk, n)
	imgID := fmt.Sprintf("%x", blake3.Sum256(img))
	h.plantBytes("images/"+imgID, img)
	var sealed struct {
		Body map[string]any `json:"body"`
	}
	require.NoError(t, json.Unmarshal(h.get(fmt.Sprintf("backups/%010d", h.db.ID)), &sealed))
	m := sealed.Body
	m["id"] = id
	var ds []map[string]any
	for i := range disks {
		ds = append(ds, map[string]any{"name": fmt.Sprintf("vd%d", i), "path": fmt.Sprintf("/dev/vd%d", i),
			"size_bytes": size, "data_bytes": 0, "image": imgID})
	}
	m["disks"] = ds
	body, err := json.Marshal(m)
	require.NoError(t, err)
	rec, err := json.Marshal(map[string]any{"blake3": fmt.Sprintf("%x", blake3.Sum256(body)), "body": json.RawMessage(body)})
	require.NoError(t, err)
	h.plantBytes(fmt.Sprintf("backups/%010d", id), rec)
}

// A planted manifest of a 128 TiB disk, and one of 64 of them: every
// command that would load their images refuses in one line naming
// DROPBACK_MAX_MEMORY (exit 1), under 200 MB, and the other hosts' backups
// still list and restore.
func TestHostileRepoHugeDiskManifest(t *testing.T) {
	for _, disks := range []int{1, 64} {
		t.Run(fmt.Sprintf("%d disks", disks), func(t *testing.T) {
			hostileBackends(t, func(t *testing.T, h *hostileRepo) {
				id := h.db.ID + 10
				h.plantHugeBackup(id, disks)
				out := filepath.Join(h.dir, "planted")
				require.NoError(t, os.Mkdir(out, 0o700))
				what := fmt.Sprintf("disk vd0 of backup %d", id)
				r := h.fails(1, what, "backups", "restore", "db-1", fmt.Sprint(id), "--to", filepath.Join(out, "db.img"))
				t.Log(r.stderr)
				assert.Contains(t, r.stderr, "set DROPBACK_MAX_MEMORY above 4 GiB", "the refusal says what to raise")
				h.fails(1, what, "backups", "export", "db-1", fmt.Sprint(id), "--to", filepath.Join(out, "db.raw"))
				// gc keeps everything while it cannot read a backup's images.
				h.fails(1, "DROPBACK_MAX_MEMORY", "repo", "gc")
				v := h.run("backups", "verify", "-o", "json")
				assert.Equal(t, 7, v.code, "verify calls the planted backup unverified: %s", v.stderr)
				assert.Contains(t, v.stdout, "would take 4 GiB of memory", "verify says why")
				h.lists("db-1", h.db)
				h.webWorks()
				h.dbWorks()
				h.create("web-1")
			})
		})
	}
}

// Well-formed index segments of fake chunks, as any writer to the
// repository can plant by the million: under a DROPBACK_MAX_MEMORY they
// pass, a command that loads the index stops in one line that names the
// variable, where it would otherwise grow with them; the same command
// works under that budget before they are planted, and under the default
// after.
func TestHostileRepoIndexPastTheBudget(t *testing.T) {
	hostileBackends(t, func(t *testing.T, h *hostileRepo) {
		const budget = "DROPBACK_MAX_MEMORY=16MiB"
		env := h.env
		h.env = append(append([]string(nil), env...), budget)
		h.webWorks()
		// 32 segments of 8192 fake chunks: 12 MiB of entries, which
		// decode to about 50 MiB of index.
		for s := range 32 {
			seg := []byte("DBINDX01")
			seg = binary.LittleEndian.AppendUint32(seg, 1)
			pack := blake3.Sum256([]byte(fmt.Sprint("planted pack ", s)))
			seg = append(seg, pack[:]...)
			seg = binary.LittleEndian.AppendUint32(seg, 8192)
			for c := range 8192 {
				chunk := blake3.Sum256([]byte(fmt.Sprint(s, "/", c)))
				seg = append(seg, chunk[:]...)
				seg = binary.LittleEndian.AppendUint32(seg, 8)
				seg = binary.LittleEndian.AppendUint32(seg, 100)
				seg = binary.LittleEndian.AppendUint32(seg, 100)
				seg = append(seg, 0)
			}
			h.plantBytes(fmt.Sprintf("index/%x", blake3.Sum256(seg)), seg)
		}
		out := filepath.Join(h.dir, "out.img")
		h.fails(1, "DROPBACK_MAX_MEMORY above", "backups", "restore", "web-1", fmt.Sprint(h.web.ID), "--to", out)
		_, err := os.Stat(out)
		assert.True(t, os.IsNotExist(err), "nothing is written: %v", err)
		h.env = env
		h.webWorks()
		h.dbWorks()
	})
}

// A real disk of 1 TiB, sparse, with a few MiB written, backs up, restores
// to a sparse file and verifies under the default budget: its image index
// (a million chunks, 32 MiB) is far inside it.
func TestSparseTebibyteDiskUnderTheDefaultBudget(t *testing.T) {
	h := newHostileLocal(t)
	disk := filepath.Join(h.dir, "big.img")
	parts := []part{{0, 2 * mib, "random"}, {300 << 30, mib, "text"}, {1<<40 - 3*mib, 3 * mib, "random"}}
	makeDisk(t, disk, 1<<40, 3, parts...)
	h.ok("hosts", "add", "big", "--disk", disk)
	b := h.create("big")
	out := filepath.Join(h.dir, "big-restored.img")
	h.ok("backups", "restore", "big", fmt.Sprint(b.ID), "--to", out)
	fi, err := os.Stat(out)
	require.NoError(t, err)
	assert.Equal(t, int64(1<<40), fi.Size())
	assert.Less(t, onDisk(t, out), int64(64*mib), "the restored file is sparse")
	sameSparse(t, disk, out)
	h.ok("backups", "verify", "big")
}

// sameSparse checks that two sparse files hold the same bytes, reading
// only where either holds data: elsewhere both are holes, and so zeros.
func sameSparse(t *testing.T, a, b string) {
	t.Helper()
	fa, err := os.Open(a)
	require.NoError(t, err)
	defer fa.Close()
	fb, err := os.Open(b)
	require.NoError(t, err)
	defer fb.Close()
	fi, err := fa.Stat()
	require.NoError(t, err)
	for _, f := range []*os.File{fa, fb} {
		for off := int64(0); off < fi.Size(); {
			start, err := unix.Seek(int(f.Fd()), off, unix.SEEK_DATA)
			if err != nil {
				break // no data past off
			}
			end, err := unix.Seek(int(f.Fd()), start, unix.SEEK_HOLE)
			require.NoError(t, err)
			x, y := make([]byte, end-start), make([]byte, end-start)
			_, err = fa.ReadAt(x, start)
			require.True(t, err == nil || err == io.EOF, "%v", err)
			_, err = fb.ReadAt(y, start)
			require.True(t, err == nil || err == io.EOF, "%v", err)
			require.True(t, bytes.Equal(x, y), "%s and %s differ in [%d, %d)", a, b, start, end)
			off = end
		}
	}
}

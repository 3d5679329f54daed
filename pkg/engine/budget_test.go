package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

func TestParseMemory(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
	}{
		{"512MiB", 512 << 20}, {"2GiB", 2 << 30}, {"2gib", 2 << 30}, {"2G", 2 << 30}, {"1.5GiB", 3 << 29},
		{"64 MiB", 64 << 20}, {"1TiB", 1 << 40}, {"500MB", 500e6}, {"1048576", 1 << 20}, {"4096KiB", 4 << 20},
	} {
		got, err := ParseMemory(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseMemory(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "lots", "2 GiB please", "-1GiB", "1KiB", "12", "GiB", "1.2.3MiB", "9999999TiB"} {
		if n, err := ParseMemory(bad); err == nil {
			t.Errorf("ParseMemory(%q) = %d, want an error", bad, n)
		}
	}
}

func TestDefaultMaxMemory(t *testing.T) {
	d := DefaultMaxMemory()
	if d < minDefaultMemory || d > maxDefaultMemory {
		t.Errorf("default budget %s, want from %s to %s", MemText(d), MemText(minDefaultMemory), MemText(maxDefaultMemory))
	}
	if p := physicalMemory(); p > 0 && d != min(max(p/4, minDefaultMemory), maxDefaultMemory) {
		t.Errorf("default budget %s on a machine of %s", MemText(d), MemText(p))
	}
}

// Reservations add up across holders; one that would pass the limit is
// refused with what it is and what it would take, and what is released can
// be taken again.
func TestMemBudgetAccountsWhatIsHeldAtOnce(t *testing.T) {
	b := newMemBudget(100 << 20)
	a, err := b.reserve(60<<20, "image a")
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.reserve(50<<20, "image b")
	var me *MemoryError
	if !errors.As(err, &me) || !errors.Is(err, ErrMemory) {
		t.Fatalf("60 MiB held, 50 MiB more of 100: %v, want a MemoryError", err)
	}
	if me.Need != 50<<20 || me.Held != 60<<20 || me.Limit != 100<<20 || !strings.Contains(err.Error(), "image b would take 50 MiB") {
		t.Errorf("refusal: %+v: %v", me, err)
	}
	c, err := b.reserve(40<<20, "image c")
	if err != nil {
		t.Fatalf("40 MiB beside 60 of 100: %v", err)
	}
	if err := c.grow(1, "image c"); !errors.Is(err, ErrMemory) {
		t.Errorf("a byte past the limit: %v", err)
	}
	a.release()
	a.release() // twice gives back nothing more
	if b.Held() != 40<<20 {
		t.Errorf("held %d after a release, want 40 MiB", b.Held())
	}
	c.shrink(10 << 20)
	if err := c.grow(70<<20, "image c"); err != nil {
		t.Errorf("grow to the limit: %v", err)
	}
	c.release()
	var nilHold *memHold
	nilHold.release()
	if err := nilHold.grow(1<<40, "x"); err != nil || b.Held() != 0 {
		t.Errorf("nil hold: %v, held %d", err, b.Held())
	}
}

// zeroImage is the image index of a disk of n zero chunks of testChunk,
// encoded a block at a time, as a writer who plants one would: a few
// kilobytes that decode to 32 bytes a chunk.
func zeroImage(t *testing.T, n int64) []byte {
	t.Helper()
	var out bytes.Buffer
	out.WriteString(imageMagic)
	enc, err := zstd.NewWriter(&out, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	hdr := binary.LittleEndian.AppendUint64(nil, uint64(n*testChunk))
	hdr = binary.LittleEndian.AppendUint32(hdr, testChunk)
	hdr = binary.LittleEndian.AppendUint64(hdr, uint64(n))
	_, _ = enc.Write(hdr)
	zeros := make([]byte, 1<<20)
	for left := 32 * n; left > 0; left -= int64(len(zeros)) {
		_, _ = enc.Write(zeros[:min(left, int64(len(zeros)))])
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// plantHugeDisks plants backup id of the db host whose disks (disks of
// them) are each n zero chunks, all of one planted image index.
func (e *hostileEnv) plantHugeDisks(id, disks int, n int64) *Manifest {
	e.t.Helper()
	data := zeroImage(e.t, n)
	img := contentID(data)
	e.write(imageName(img), data)
	m := *e.db
	m.ID = id
	m.Disks = nil
	for i := range disks {
		m.Disks = append(m.Disks, ManifestDisk{Name: fmt.Sprintf("vd%d", i), Path: fmt.Sprintf("/dev/vd%d", i), SizeBytes: n * testChunk, Image: img.String()})
	}
	body, err := seal(&m)
	if err != nil {
		e.t.Fatal(err)
	}
	e.write(objectName("backups/", id), body)
	got, err := e.r.Manifest(e.ctx, id)
	if err != nil {
		e.t.Fatalf("the planted manifest does not read: %v", err)
	}
	return got
}

// allocated returns the bytes fn allocated on the heap.
func allocatedBy(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// A planted manifest of a disk whose image takes more than the budget is
// refused from the size the manifest states, before its image index (a few
// kilobytes of zstd) is decoded: the memory is never allocated. Another
// host's backup still restores. One disk, and the most disks a backup can
// have.
func TestPlantedHugeDiskIsRefusedBeforeDecoding(t *testing.T) {
	e := newHostileEnv(t)
	const budget = 64 << 20
	r, err := Open(e.ctx, e.reads, Options{Password: testPassword, MaxMemory: budget})
	if err != nil {
		t.Fatal(err)
	}
	e.r = r
	const n = 1 << 22 // 128 MiB of chunk IDs
	for _, disks := range []int{1, MaxDisks} {
		m := e.plantHugeDisks(100+disks, disks, n)
		var restoreErr error
		alloc := allocatedBy(func() {
			_, restoreErr = r.Restore(e.ctx, m, make([]RestoreTarget, disks), nil)
		})
		var me *MemoryError
		if !errors.As(restoreErr, &me) {
			t.Fatalf("restore of a backup of %d disks of %d chunks: %v, want refused by the memory budget", disks, n, restoreErr)
		}
		if !strings.Contains(restoreErr.Error(), fmt.Sprintf("disk vd0 of backup %d", m.ID)) || me.Need != 32*n || me.Limit != budget {
			t.Errorf("the refusal names the disk and what it would take: %v (%+v)", restoreErr, me)
		}
		if alloc > budget/2 {
			t.Errorf("refusing a backup of %d disks allocated %d MiB", disks, alloc>>20)
		}
		if _, err := r.OpenBackup(e.ctx, m, ReadOptions{}); !errors.Is(err, ErrMemory) {
			t.Errorf("open the backup for reading: %v, want refused by the memory budget", err)
		}
		if held := r.mem.Held() - r.mem.Kept(); held != 0 {
			t.Errorf("%d bytes still reserved after the refusals", held)
		}
	}
	e.restores(e.web, e.webDisk)
}

// Images and the index are held together: a budget that takes either
// alone but not both refuses the restore, and every command gives back
// what it reserved.
func TestImagesAndIndexAreAccountedTogether(t *testing.T) {
	dir := t.TempDir()
	r, st := initPlainRepo(t, dir)
	disk := filepath.Join(dir, "disk.img")
	makeDisk(t, disk, 256*testChunk, region{0, 200 * testChunk, "random"})
	m := backup(t, r, disk)
	if held := r.mem.Held() - r.mem.Kept(); held != 0 {
		t.Errorf("%d bytes reserved after a backup", held)
	}
	open := func(limit int64) *Repo {
		// One read at a time, so that the peak of loading the index is the
		// same each time.
		r, err := Open(t.Context(), st, Options{Password: testPassword, MaxMemory: limit, ReadParallelism: 1})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	big := open(64 << 20)
	x, _, err := big.LoadIndex(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	indexHeldBytes, indexPeak := big.mem.Held(), big.mem.Peak()
	x.release()
	im, err := big.LoadDiskImage(t.Context(), m, 0)
	if err != nil {
		t.Fatal(err)
	}
	imageBytes := big.mem.Held()
	im.release()
	if indexHeldBytes < 200*entrySize || imageBytes != 32*256 {
		t.Fatalf("index %d bytes, image %d bytes reserved", indexHeldBytes, imageBytes)
	}
	// Room for the image and the index as it loads alone, not for both.
	small := open(indexPeak + imageBytes/2)
	x, _, err = small.LoadIndex(t.Context())
	if err != nil {
		t.Fatalf("the index alone: %v", err)
	}
	x.release()
	_, err = small.Restore(t.Context(), m, []RestoreTarget{{Path: filepath.Join(dir, "out.img")}}, nil)
	if !errors.Is(err, ErrMemory) || strings.Contains(err.Error(), "image") {
		t.Errorf("restore under a budget for the image or the index, not both: %v, want the index refused", err)
	}
	restoreTo(t, big, m, false, filepath.Join(dir, "out.img"))
	br, err := big.OpenBackup(t.Context(), m, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if big.mem.Held() == 0 {
		t.Error("an open reader holds nothing")
	}
	br.Close()
	if _, err := big.Verify(t.Context(), nil, nil); err != nil {
		t.Fatal(err)
	}
	for _, rr := range []*Repo{big, small} {
		if held := rr.mem.Held() - rr.mem.Kept(); held != 0 {
			t.Errorf("%d bytes reserved after restore, read and verify", held)
		}
	}
}

// Many small, well-formed index segments of fake chunks, as a writer to
// the repository may plant: a command that loads the index stops at the
// budget, saying so, instead of growing with them.
func TestPlantedIndexSegmentsStopAtTheBudget(t *testing.T) {
	e := newHostileEnv(t)
	const budget = 8 << 20
	r, err := Open(e.ctx, e.reads, Options{Password: testPassword, MaxMemory: budget})
	if err != nil {
		t.Fatal(err)
	}
	e.r = r
	if _, _, err := r.LoadIndex(e.ctx); err != nil {
		t.Fatalf("before the segments are planted: %v", err)
	}
	// 64 segments of 4096 fake chunks each: 12 MiB of index.
	for s := range 64 {
		p := PackIndex{Pack: contentID([]byte(fmt.Sprint("pack", s)))}
		for c := range 4096 {
			p.Entries = append(p.Entries, Entry{Chunk: contentID([]byte(fmt.Sprint(s, "/", c))), Offset: 8, Length: 100, Raw: 100})
		}
		data := encodeIndexSegment([]PackIndex{p})
		e.write("index/"+contentID(data).String(), data)
	}
	_, err = r.Restore(e.ctx, e.web, []RestoreTarget{{Path: filepath.Join(e.dir, "out.img")}}, nil)
	var me *MemoryError
	if !errors.As(err, &me) || !strings.Contains(err.Error(), "the index of chunks") {
		t.Fatalf("restore with 12 MiB of planted index under a budget of 8: %v, want refused by the memory budget", err)
	}
	if held := r.mem.Held() - r.mem.Kept(); held != 0 {
		t.Errorf("%d bytes still reserved after the refusal", held)
	}
}

// Backups planted by the hundred, each of an image of its own fake chunks
// that fits the budget alone: verify, which gathers the chunks all images
// use, stops at the budget instead of growing with them.
func TestVerifyAndGCStopAtTheBudgetOfTheChunksTheyGather(t *testing.T) {
	e := newHostileEnv(t)
	const budget = 4 << 20
	r, err := Open(e.ctx, e.reads, Options{Password: testPassword, MaxMemory: budget})
	if err != nil {
		t.Fatal(err)
	}
	e.r = r
	if _, err := r.Verify(e.ctx, nil, nil); err != nil {
		t.Fatalf("before the backups are planted: %v", err)
	}
	const n = 2048 // 64 KiB of image, 160 KiB of the set
	for b := range 40 {
		im := &Image{Size: n * testChunk, ChunkSize: testChunk}
		for c := range n {
			im.Chunks = append(im.Chunks, contentID([]byte(fmt.Sprint(b, "/", c))))
		}
		data := encodeImage(im)
		img := contentID(data)
		e.write(imageName(img), data)
		m := *e.db
		m.ID = 100 + b
		m.Disks = []ManifestDisk{{Name: "vda", Path: "/dev/vda", SizeBytes: n * testChunk, Image: img.String()}}
		body, err := seal(&m)
		if err != nil {
			t.Fatal(err)
		}
		e.write(objectName("backups/", m.ID), body)
	}
	_, err = r.Verify(e.ctx, nil, nil)
	if !errors.Is(err, ErrMemory) || !strings.Contains(err.Error(), "the set of the chunks the backups use") {
		t.Fatalf("verify of 40 planted backups of 2048 chunks each under a budget of 4 MiB: %v, want refused by the memory budget", err)
	}
	if held := r.mem.Held() - r.mem.Kept(); held != 0 {
		t.Errorf("%d bytes still reserved after the refusal", held)
	}
	// gc gathers the same set: it stops at the budget too (at the set, or
	// at an image it reads beside the set, as the reads in parallel come),
	// and deletes nothing.
	before := countObjects(t, e.reads, "")
	_, err = r.GC(e.ctx, noMinAge)
	if !errors.Is(err, ErrMemory) || !strings.HasPrefix(err.Error(), "gc stopped: ") ||
		!strings.Contains(err.Error(), "gc's set of the chunks the backups use") && !strings.Contains(err.Error(), "the image index of disk vda") {
		t.Fatalf("gc of 40 planted backups of 2048 chunks each under a budget of 4 MiB: %v, want refused by the memory budget", err)
	}
	if after := countObjects(t, e.reads, ""); after < before {
		t.Errorf("gc refused by the budget deleted %d objects", before-after)
	}
	if held := r.mem.Held() - r.mem.Kept(); held != 0 {
		t.Errorf("%d bytes still reserved after gc's refusal", held)
	}
}

// Planted segments of the largest size a segment can have, which do not
// decode, are damage to report, not a reason to refuse the index: a read
// that does not fit the budget beside those in flight waits for them.
func TestPlantedLargeSegmentsWaitForTheBudget(t *testing.T) {
	e := newHostileEnv(t)
	r, err := Open(e.ctx, e.reads, Options{Password: testPassword, MaxMemory: 160 << 20, ReadParallelism: 8})
	if err != nil {
		t.Fatal(err)
	}
	e.r = r
	for i := range 8 {
		e.huge("index/"+contentID([]byte(fmt.Sprint("planted ", i))).String(), maxSegmentSize)
	}
	x, problems, err := r.LoadIndex(e.ctx)
	if err != nil {
		t.Fatalf("8 planted segments of %s under a budget of 160 MiB: %v, want them reported as damage", MemText(maxSegmentSize), err)
	}
	if len(problems) != 8 || x.Len() == 0 {
		t.Errorf("%d problems, %d chunks: want the 8 planted segments reported and the rest loaded", len(problems), x.Len())
	}
	x.release()
	if p := r.mem.Peak(); p > 160<<20 {
		t.Errorf("peak reserved %s", MemText(p))
	}
}

// Manifests, host records and actions planted by the thousand (any host of a fleet
// can write them) stop a listing at the memory budget, naming it, instead
// of growing the command with them; under a budget they fit in, the same
// repository lists its backups and names the planted ones as damaged.
func TestPlantedManifestsStopAtTheBudget(t *testing.T) {
	ctx := context.Background()
	r, st, _ := memRepo(t)
	src := filepath.Join(t.TempDir(), "src.img")
	makeDisk(t, src, 2*testChunk, region{0, testChunk, "random"})
	backup(t, r, src)
	const planted = 8000
	for id := 10; id < 10+planted; id++ {
		st.Set(objectName("backups", id), []byte("planted"), time.Now())
	}
	small, err := Open(ctx, st, Options{Password: testPassword, MaxMemory: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = small.ManifestsAndDamage(ctx)
	if !errors.Is(err, ErrMemory) || !strings.Contains(err.Error(), "backups") {
		t.Fatalf("listing %d planted manifests under a budget of 1 MiB: %v; want the budget named", planted, err)
	}
	ms, damaged, err := r.ManifestsAndDamage(ctx)
	if err != nil || len(ms) != 1 || len(damaged) != planted {
		t.Fatalf("under the default budget: %d backups, %d damaged, %v; want 1 and %d", len(ms), len(damaged), err, planted)
	}

	// Host records alike.
	for id := 10; id < 10+planted; id++ {
		st.Set(hostObject(id, 1), []byte("planted"), time.Now())
	}
	if _, _, err := small.HostsAndDamage(ctx); !errors.Is(err, ErrMemory) || !strings.Contains(err.Error(), "host records") {
		t.Fatalf("listing %d planted host records under a budget of 1 MiB: %v; want the budget named", planted, err)
	}
	if _, hd, err := r.HostsAndDamage(ctx); err != nil || len(hd) != planted {
		t.Fatalf("under the default budget: %d hosts damaged, %v; want %d", len(hd), err, planted)
	}

	// And actions.
	for id := 10; id < 10+planted; id++ {
		st.Set(fmt.Sprintf("actions/%010d/%010d", id, 1), []byte("planted"), time.Now())
	}
	if _, _, err := small.ActionsAndDamage(ctx); !errors.Is(err, ErrMemory) || !strings.Contains(err.Error(), "actions") {
		t.Fatalf("listing %d planted actions under a budget of 1 MiB: %v; want the budget named", planted, err)
	}
	if _, ad, err := r.ActionsAndDamage(ctx); err != nil || len(ad) != planted {
		t.Fatalf("under the default budget: %d actions damaged, %v; want %d", len(ad), err, planted)
	}
}

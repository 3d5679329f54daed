package engine

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dropback/dropback/pkg/progress"
	"github.com/dropback/dropback/pkg/store"
	"github.com/dropback/dropback/pkg/store/faulty"
)

// readerDisk is a test disk of holes, written zeros, random and text
// regions, with a size that is no multiple of the chunk size, and a second
// copy of one region, so that one chunk serves two places.
func readerDisk(t *testing.T) (string, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "disk.img")
	size := int64(37*testChunk + 1234)
	makeDisk(t, path, size,
		region{0, 3 * testChunk, "random"},
		region{5 * testChunk, 2 * testChunk, "zero"},
		region{9*testChunk + 100, 4 * testChunk, "text"},
		region{20 * testChunk, 5 * testChunk, "random"},
		region{36 * testChunk, testChunk + 1234, "text"},
	)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	writeAt(t, path, 30*testChunk, data[20*testChunk:21*testChunk]) // a duplicate chunk
	data, _ = os.ReadFile(path)
	return path, data
}

func openReader(t *testing.T, r *Repo, m *Manifest, opts ReadOptions) *BackupReader {
	t.Helper()
	b, err := r.OpenBackup(context.Background(), m, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestDiskReaderReadAt(t *testing.T) {
	r, _ := newRepo(t)
	path, want := readerDisk(t)
	m := backup(t, r, path)
	d := openReader(t, r, m, ReadOptions{CacheBytes: 4 * testChunk}).Disks()[0]
	if d.Size() != int64(len(want)) || d.Name() != "disk0" {
		t.Fatalf("disk %s of %d bytes, want disk0 of %d", d.Name(), d.Size(), len(want))
	}
	ctx := context.Background()
	cases := []struct {
		name    string
		off     int64
		n       int
		wantN   int
		wantErr error
	}{
		{"first byte", 0, 1, 1, nil},
		{"a whole chunk", testChunk, testChunk, testChunk, nil},
		{"across a data and a zero chunk", 3*testChunk - 10, 20, 20, nil},
		{"across many chunks", 2*testChunk + 7, 9 * testChunk, 9 * testChunk, nil},
		{"written zeros", 5 * testChunk, testChunk, testChunk, nil},
		{"the partial last chunk", 37 * testChunk, 1234, 1234, nil},
		{"past the end", int64(len(want)) - 10, 100, 10, io.EOF},
		{"at the end", int64(len(want)), 10, 0, io.EOF},
		{"nothing at the end", int64(len(want)), 0, 0, nil},
		{"the duplicate chunk", 30 * testChunk, testChunk, testChunk, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := bytes.Repeat([]byte{0xee}, c.n)
			n, err := d.ReadAt(ctx, p, c.off)
			if n != c.wantN || !errors.Is(err, c.wantErr) && err != c.wantErr {
				t.Fatalf("ReadAt(%d bytes at %d) = %d, %v; want %d, %v", c.n, c.off, n, err, c.wantN, c.wantErr)
			}
			if !bytes.Equal(p[:n], want[c.off:c.off+int64(n)]) {
				t.Fatal("the bytes read differ from the disk's")
			}
		})
	}
	// Random reads from many goroutines, through a cache of 4 chunks.
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			p := make([]byte, 3*testChunk)
			for range 200 {
				off := rng.Int64N(int64(len(want)))
				n := 1 + rng.IntN(len(p))
				got, err := d.ReadAt(ctx, p[:n], off)
				if end := min(off+int64(n), int64(len(want))); int64(got) != end-off || (err != nil && err != io.EOF) {
					t.Errorf("ReadAt(%d at %d) = %d, %v", n, off, got, err)
					return
				}
				if !bytes.Equal(p[:got], want[off:off+int64(got)]) {
					t.Errorf("ReadAt(%d at %d) read other bytes", n, off)
					return
				}
			}
		}()
	}
	wg.Wait()
	c := d.b.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lru.Len() > c.max || c.lru.Len()+len(c.free) > c.max+cap(c.loads) || len(c.loading) != 0 {
		t.Fatalf("cache of at most %d chunks holds %d, with %d spare buffers and %d loads", c.max, c.lru.Len(), len(c.free), len(c.loading))
	}
}

// Readers that ask for one chunk at once load it once.
func TestChunkCacheLoadsOnce(t *testing.T) {
	c := newChunkCache(2, 8, 1)
	var loads int
	var mu sync.Mutex
	release := make(chan struct{})
	load := func(buf []byte) ([]byte, error) {
		mu.Lock()
		loads++
		mu.Unlock()
		<-release
		return append(buf[:0], "12345678"...), nil
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e, err := c.get(context.Background(), ID{1}, load)
			if err != nil || string(e.data) != "12345678" {
				t.Errorf("get: %q, %v", e.data, err)
				return
			}
			c.release(e)
		}()
	}
	for {
		c.mu.Lock()
		waiting := c.stats.waits + c.stats.loads
		c.mu.Unlock()
		if waiting == 10 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	if loads != 1 {
		t.Fatalf("10 readers of one chunk loaded it %d times", loads)
	}
	// A failed load fails its waiters and is tried again by the next.
	fail := errors.New("no")
	if _, err := c.get(context.Background(), ID{2}, func([]byte) ([]byte, error) { return nil, fail }); err != fail {
		t.Fatalf("a failed load: %v", err)
	}
	if e, err := c.get(context.Background(), ID{2}, func(b []byte) ([]byte, error) { return b, nil }); err != nil {
		t.Fatalf("the next load after a failed one: %v", err)
	} else {
		c.release(e)
	}
	// Pushed out while held: the buffer is reused only once released.
	held, _ := c.get(context.Background(), ID{3}, func(b []byte) ([]byte, error) { return append(b[:0], "held...."...), nil })
	for i := range 3 {
		e, _ := c.get(context.Background(), ID{4 + byte(i)}, func(b []byte) ([]byte, error) { return append(b[:0], "other..."...), nil })
		c.release(e)
	}
	if !held.evicted || string(held.data) != "held...." {
		t.Fatalf("an entry pushed out while held: evicted %v, data %q", held.evicted, held.data)
	}
	c.release(held)
}

func TestDiskReaderExtents(t *testing.T) {
	r, _ := newRepo(t)
	path, want := readerDisk(t)
	d := openReader(t, r, backup(t, r, path), ReadOptions{}).Disks()[0]
	for _, rng := range [][2]int64{{0, d.Size()}, {testChunk + 5, 10 * testChunk}, {36*testChunk + 10, 1 << 40}} {
		ext := d.Extents(rng[0], rng[1])
		pos := rng[0]
		for i, e := range ext {
			if e.Offset != pos || e.Length <= 0 || i > 0 && ext[i-1].Zero == e.Zero {
				t.Fatalf("extents of %v: %+v: not alternating runs without gaps", rng, ext)
			}
			if e.Zero && !isZero(want[e.Offset:e.End()]) {
				t.Fatalf("extent %+v is flagged zero but holds data", e)
			}
			pos = e.End()
		}
		if pos != min(rng[0]+rng[1], d.Size()) {
			t.Fatalf("extents of %v end at %d", rng, pos)
		}
	}
	ext := d.Extents(0, d.Size())
	if len(ext) != 9 || ext[0].Zero || !ext[1].Zero || ext[1].Offset != 3*testChunk || ext[1].Length != 6*testChunk {
		t.Fatalf("extents: %+v; want data up to 3 chunks, then zeros (holes and written zeros) up to chunk 9, ...", ext)
	}
	if d.DataBytes() != 3*testChunk+5*testChunk+5*testChunk+testChunk+testChunk+1234 {
		t.Fatalf("data bytes %d", d.DataBytes())
	}
}

func TestDiskReaderStream(t *testing.T) {
	r, _ := newRepo(t)
	path, want := readerDisk(t)
	d := openReader(t, r, backup(t, r, path), ReadOptions{}).Disks()[0]
	got := make([]byte, len(want))
	var prog progress.Counter
	prog.Start("export", d.Size())
	last := int64(-1)
	err := d.Stream(context.Background(), func(off int64, data []byte) error {
		if off <= last || off%testChunk != 0 {
			t.Fatalf("chunk at %d after %d", off, last)
		}
		last = off
		copy(got[off:], data)
		return nil
	}, &prog)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the streamed disk differs from the original")
	}
	if s := prog.Get(); s.Read != d.DataBytes() || s.Done() != d.Size() {
		t.Fatalf("progress %+v; want %d read of %d", s, d.DataBytes(), d.Size())
	}
	// An error of fn stops the stream and is returned.
	stop := errors.New("stop")
	calls := 0
	if err := d.Stream(context.Background(), func(int64, []byte) error { calls++; return stop }, nil); err != stop || calls != 1 {
		t.Fatalf("a stream whose fn fails: %v after %d calls", err, calls)
	}
}

// A chunk whose stored bytes changed is an error, never data: for ReadAt and
// for Stream alike.
func TestDiskReaderRefusesDamagedChunks(t *testing.T) {
	r, _ := newRepo(t)
	path, want := readerDisk(t)
	m := backup(t, r, path)
	bad := imageOf(t, r, m).Chunks[21]
	flipChunk(t, r, bad)
	d := openReader(t, r, m, ReadOptions{}).Disks()[0]
	p := make([]byte, 3*testChunk)
	n, err := d.ReadAt(context.Background(), p, 20*testChunk)
	// A plain repository finds the chunk's hash wrong; an encrypted one, its
	// blob failing to decrypt.
	named := strings.Contains(err.Error(), "does not match its hash") || strings.Contains(err.Error(), "does not decrypt")
	if !errors.Is(err, ErrCorrupt) || n != testChunk || !named {
		t.Fatalf("reading over a damaged chunk: %d, %v; want the chunk before it and ErrCorrupt", n, err)
	}
	if !bytes.Equal(p[:n], want[20*testChunk:21*testChunk]) {
		t.Fatal("the chunk before the damaged one read wrong")
	}
	var served int64
	err = d.Stream(context.Background(), func(off int64, data []byte) error {
		if off == 21*testChunk {
			t.Fatal("the damaged chunk was streamed")
		}
		served += int64(len(data))
		return nil
	}, nil)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("streaming a damaged chunk: %v", err)
	}
}

// A backup whose chunk is gone cannot be opened, and says which.
func TestOpenBackupWithMissingChunk(t *testing.T) {
	r, st := newRepo(t)
	path, _ := readerDisk(t)
	m := backup(t, r, path)
	if err := st.Delete(context.Background(), "index/"+m.IndexSegments[0]); err != nil {
		t.Fatal(err)
	}
	_, err := r.OpenBackup(context.Background(), m, ReadOptions{})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("opening a backup whose index segment is gone: %v", err)
	}
	if ops := runningNames(t, st); len(ops) != 0 {
		t.Fatalf("a failed open left operation markers: %v", ops)
	}
}

func runningNames(t *testing.T, st store.Store) []string {
	t.Helper()
	var names []string
	if err := st.List(context.Background(), "running/", func(i store.Info) error { names = append(names, i.Name); return nil }); err != nil {
		t.Fatal(err)
	}
	return names
}

// A reader announces itself as an export until it is closed, unless it
// runs as the operation its context carries.
func TestBackupReaderIsAnOperation(t *testing.T) {
	ctx := context.Background()
	r, st := newRepo(t)
	path, _ := readerDisk(t)
	m := backup(t, r, path)
	b, err := r.OpenBackup(ctx, m, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ops, err := r.runningOps(ctx)
	if err != nil || len(ops) != 1 {
		t.Fatalf("running operations while a reader is open: %v, %v", ops, err)
	}
	for _, o := range ops {
		if o.m.Kind != OpExport || o.m.HostID != m.HostID {
			t.Fatalf("the reader runs as %+v, want an export of host %d", o.m, m.HostID)
		}
	}
	b.Close()
	if names := runningNames(t, st); len(names) != 0 {
		t.Fatalf("markers after Close: %v", names)
	}
	if _, err := b.Disks()[0].ReadAt(ctx, make([]byte, 10), 0); err == nil {
		t.Fatal("a read after Close succeeded")
	}

	op, err := r.Begin(ctx, OpExport, 7)
	if err != nil {
		t.Fatal(err)
	}
	b, err = r.OpenBackup(WithOp(ctx, op), m, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	if names := runningNames(t, st); len(names) != 1 {
		t.Fatalf("the caller's operation after the reader closed: %v, want its marker", names)
	}
	op.End()
}

// A reader whose marker cannot be refreshed stops reading before gc may
// count it as gone: reads fail with ErrLostProtection and Done is closed.
func TestBackupReaderLosesProtection(t *testing.T) {
	ctx := context.Background()
	r, st, clk := memRepo(t)
	fs := faulty.New(st)
	r.st = fs
	src := filepath.Join(t.TempDir(), "src.img")
	makeDisk(t, src, 4*testChunk, region{0, 4 * testChunk, "random"})
	m := backup(t, r, src)
	b, err := r.OpenBackup(ctx, m, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	d := b.Disks()[0]
	if _, err := d.ReadAt(ctx, make([]byte, 10), 0); err != nil {
		t.Fatal(err)
	}
	fs.Set(faulty.Rule{Op: faulty.Put, Pattern: "running/"}) // every refresh fails
	for i := 0; ; i++ {
		select {
		case <-b.Done():
		default:
			if i > 1000 {
				t.Fatal("the reader kept its protection without refreshing its marker")
			}
			clk.Advance(time.Minute)
			time.Sleep(5 * time.Millisecond) // let the heartbeat try
			continue
		}
		break
	}
	if err := b.Err(); !errors.Is(err, ErrLostProtection) {
		t.Fatalf("Err after the marker went unrefreshed: %v", err)
	}
	if _, err := d.ReadAt(ctx, make([]byte, 10), 0); !errors.Is(err, ErrLostProtection) {
		t.Fatalf("a read after the protection was lost: %v, want ErrLostProtection", err)
	}
	if err := d.Stream(ctx, func(int64, []byte) error { return nil }, nil); !errors.Is(err, ErrLostProtection) {
		t.Fatalf("a stream after the protection was lost: %v, want ErrLostProtection", err)
	}
}

package engine

// Fuzz targets for every decoder of repository objects (the records of the
// deletion protocol are in fuzz_records_test.go). A decoder must
// return an error for any bytes it cannot use: never panic, never loop, and
// never allocate from a length field more than the bytes it was given can
// back. `go test` runs each target over its seeds; scripts/fuzz.sh runs
// them with the fuzzer.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dropback/dropback/pkg/store"
)

// fzStore is a store.Store in memory, enough for the decoders' callers.
type fzStore struct {
	mu   sync.Mutex
	objs map[string][]byte
}

var _ store.Store = (*fzStore)(nil)

func newFzStore() *fzStore { return &fzStore{objs: map[string][]byte{}} }

func (s *fzStore) Put(ctx context.Context, name string, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.objs[name]; ok {
		return fmt.Errorf("put %s: %w", name, store.ErrExists)
	}
	s.objs[name] = bytes.Clone(data)
	return nil
}

// set writes an object whether or not it exists.
func (s *fzStore) set(name string, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.objs[name] = bytes.Clone(data)
}

func (s *fzStore) Get(ctx context.Context, name string, off, length int64) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	data, ok := s.objs[name]
	if !ok {
		return nil, fmt.Errorf("get %s: %w", name, store.ErrNotFound)
	}
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	data = data[off:]
	if length >= 0 && length < int64(len(data)) {
		data = data[:length]
	}
	return bytes.Clone(data), nil
}

func (s *fzStore) Stat(ctx context.Context, name string) (store.Info, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	data, ok := s.objs[name]
	if !ok {
		return store.Info{}, fmt.Errorf("stat %s: %w", name, store.ErrNotFound)
	}
	return store.Info{Name: name, Size: int64(len(data))}, nil
}

func (s *fzStore) List(ctx context.Context, prefix string, fn func(store.Info) error) error {
	s.mu.Lock()
	var infos []store.Info
	for name, data := range s.objs {
		if strings.HasPrefix(name, prefix) {
			infos = append(infos, store.Info{Name: name, Size: int64(len(data))})
		}
	}
	s.mu.Unlock()
	sort.Slice(infos, func(i, j int) bool { return infos[i].Name < infos[j].Name })
	for _, info := range infos {
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}

func (s *fzStore) Delete(ctx context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.objs, name)
	return nil
}

func (s *fzStore) Location() string { return "memory" }

// fzRepo is a new repository in memory, not encrypted: the decoders'
// fuzz targets reach the decoders, which in an encrypted repository only
// see what opened with the key (see FuzzOpenObject).
func fzRepo(t testing.TB) (*Repo, *fzStore) {
	st := newFzStore()
	r, err := Init(context.Background(), st, InitOptions{ChunkSize: testChunk})
	if err != nil {
		t.Fatal(err)
	}
	return r, st
}

func fzID(b byte) ID {
	var id ID
	for i := range id {
		id[i] = b + byte(i)
	}
	return id
}

func FuzzIndexSegment(f *testing.F) {
	good := encodeIndexSegment([]PackIndex{
		{Pack: fzID(1), Entries: []Entry{{Chunk: fzID(2), Offset: 8, Length: 10, Raw: 20, Flags: 1}}},
		{Pack: fzID(3), Entries: []Entry{{Chunk: fzID(4), Offset: 8, Length: 5, Raw: 5}, {Chunk: fzID(5), Offset: 13, Length: 7, Raw: 7}}},
	})
	// The targets return early on what does not decode: a decoder that
	// rejected everything would pass them, so the good seed must decode.
	if _, err := decodeIndexSegment(good); err != nil {
		f.Fatalf("a good index segment does not decode: %v", err)
	}
	f.Add(good)
	f.Add(encodeIndexSegment(nil))
	f.Add(good[:len(good)-1])
	f.Add([]byte(indexMagic))
	huge := bytes.Clone(good)
	binary.LittleEndian.PutUint32(huge[8:], 0xffffffff)
	f.Add(huge)
	entries := bytes.Clone(good)
	binary.LittleEndian.PutUint32(entries[12+32:], 0xffffffff)
	f.Add(entries)
	f.Fuzz(func(t *testing.T, data []byte) {
		packs, err := decodeIndexSegment(data)
		if err != nil {
			return
		}
		if again := encodeIndexSegment(packs); !bytes.Equal(again, data) {
			t.Fatalf("a segment decodes but does not encode back to its bytes")
		}
	})
}

func FuzzPackTrailer(f *testing.F) {
	r, _ := fzRepo(f)
	b := newPackBuilder(DefaultChunkSize)
	b.add(fzID(1), []byte("hello, world"), 12, 0)
	b.add(fzID(2), bytes.Repeat([]byte{7}, 100), 300, flagZstd)
	pack, _ := b.finish(r)
	if entries, _, err := r.parsePackTrailer(pack); err != nil || len(entries) != 2 {
		f.Fatalf("a good pack's trailer: %d entries, %v; want 2", len(entries), err)
	}
	f.Add(bytes.Clone(pack))
	f.Add(bytes.Clone(pack[:len(pack)-1]))
	f.Add([]byte(packMagic + "\x00\x00\x00\x00" + packEndMagic))
	huge := bytes.Clone(pack)
	binary.LittleEndian.PutUint32(huge[len(huge)-12:], 0xffffffff)
	f.Add(huge)
	out := bytes.Clone(pack)
	binary.LittleEndian.PutUint32(out[len(out)-12-entrySize+32:], 0xfffffff0) // offset
	f.Add(out)
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, _, err := r.parsePackTrailer(data)
		if err != nil {
			return
		}
		for _, e := range entries {
			if int(e.Offset) < len(packMagic) || int(e.Offset)+int(e.Length) > len(data) {
				t.Fatalf("entry %+v lies outside the pack of %d bytes", e, len(data))
			}
		}
		if start := len(data) - 12 - len(entries)*entrySize; start < len(packMagic) {
			t.Fatalf("a trailer of %d entries does not fit in %d bytes", len(entries), len(data))
		}
	})
}

// fzImageBody is an image index with the given header and chunk bytes.
func fzImageBody(size int64, chunkSize uint32, count uint64, chunks []byte) []byte {
	body := binary.LittleEndian.AppendUint64(nil, uint64(size))
	body = binary.LittleEndian.AppendUint32(body, chunkSize)
	body = binary.LittleEndian.AppendUint64(body, count)
	body = append(body, chunks...)
	enc, _ := codec()
	return enc.EncodeAll(body, []byte(imageMagic))
}

func FuzzImage(f *testing.F) {
	good := encodeImage(&Image{Size: 3*testChunk + 5, ChunkSize: testChunk, Chunks: []ID{fzID(1), ZeroID, fzID(2), fzID(3)}})
	if _, err := decodeImage(good, nil); err != nil {
		f.Fatalf("a good image index does not decode: %v", err)
	}
	f.Add(good)
	f.Add(encodeImage(&Image{ChunkSize: testChunk}))
	f.Add([]byte(imageMagic))
	f.Add([]byte(imageMagic + "not zstd"))
	// Counts that overflow when multiplied by 32, sizes that overflow when
	// rounded up to chunks, chunk sizes of 0 or 4 GiB.
	f.Add(fzImageBody(1<<59, 1, 1<<59, nil))
	f.Add(fzImageBody(1<<62, 1<<30, 1<<32, nil))
	f.Add(fzImageBody(1<<63-1, 2, 1<<62, nil))
	f.Add(fzImageBody(testChunk, 0, 1, make([]byte, 32)))
	f.Add(fzImageBody(testChunk, 0xffffffff, 1, make([]byte, 32)))
	f.Add(fzImageBody(-1, testChunk, 0, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		im, err := decodeImage(data, nil)
		if err != nil {
			return
		}
		if len(im.Chunks) != chunkCount(im.Size, im.ChunkSize) || im.ChunkSize < MinChunkSize || im.ChunkSize > MaxChunkSize {
			t.Fatalf("decoded an inconsistent image: size %d, chunk size %d, %d chunks", im.Size, im.ChunkSize, len(im.Chunks))
		}
		if again, err := decodeImage(encodeImage(im), nil); err != nil || len(again.Chunks) != len(im.Chunks) {
			t.Fatalf("an image does not survive encoding: %v", err)
		}
	})
}

func fzManifest() []byte {
	m := Manifest{Version: 1, ID: 1, HostID: 1, HostName: "web-1", CreatedAt: time.Unix(1e9, 0).UTC(),
		Disks:         []ManifestDisk{{Name: "vda", Path: "/x.img", SizeBytes: 10, Image: fzID(1).String()}},
		IndexSegments: []string{fzID(2).String()}}
	data, _ := seal(m)
	return data
}

func FuzzManifest(f *testing.F) {
	good := fzManifest()
	{
		r, st := fzRepo(f)
		st.set("backups/0000000001", good)
		if _, err := r.Manifest(context.Background(), 1); err != nil {
			f.Fatalf("a good manifest does not read: %v", err)
		}
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte(`{"blake3":"00","body":{"version":1,"id":1}}`))
	f.Add([]byte(`{"blake3":"","body":null}`))
	f.Add([]byte(`{"version":99,"id":1}`))
	f.Add([]byte(`{"version":1,"id":1,"disks":[{"image":"zz"}],"index_segments":["x"]}`))
	f.Add([]byte(`{"id":1,"disks":null}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := context.Background()
		r, st := fzRepo(t)
		st.set("backups/0000000001", data)
		m, err := r.Manifest(ctx, 1)
		if err == nil {
			m.Images()
			m.segmentIDs()
		}
		ms, err := r.Manifests(ctx)
		if err == nil {
			for _, m := range ms {
				m.Images()
			}
		}
		r.Verify(ctx, nil, nil)
		r.GC(ctx, noMinAge)
	})
}

func FuzzHostRecord(f *testing.F) {
	h := HostRecord{ID: 1, Rev: 1, Name: "web-1", Disks: []DiskSource{{Name: "vda", Path: "/x.img"}},
		Policy: &PolicyRecord{Plan: "daily", Hour: 4, RetentionDays: 7}}
	good, _ := seal(h)
	{
		r, st := fzRepo(f)
		st.set(hostObject(1, 1), good)
		hosts, err := r.Hosts(context.Background())
		if err != nil || len(hosts) != 1 || hosts[0].Name != "web-1" {
			f.Fatalf("a good host record does not read: %v, %v", hosts, err)
		}
	}
	f.Add(good, good)
	f.Add(good, []byte(`{"id":1,"rev":1}`)) // revision 2 says it is revision 1
	f.Add(good, []byte(`{"id":1,"rev":9223372036854775807}`))
	f.Add([]byte(`{"id":1,"rev":-5}`), []byte(`{"id":1,"rev":-5}`))
	f.Add([]byte(`{"id":2}`), []byte(`{`))
	f.Add([]byte(`[]`), []byte(nil))
	f.Fuzz(func(t *testing.T, rev1, rev2 []byte) {
		ctx := context.Background()
		r, st := fzRepo(t)
		st.set(hostObject(1, 1), rev1)
		if rev2 != nil {
			st.set(hostObject(1, 2), rev2)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			if hosts, err := r.Hosts(ctx); err == nil {
				for _, h := range hosts {
					r.UpdateHost(ctx, h)
				}
			}
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("reading host records does not end")
		}
	})
}

func FuzzActionRecord(f *testing.F) {
	now := time.Unix(1e9, 0).UTC()
	a := ActionRecord{ID: 1, N: 1, Type: "backup", Status: ActionCompleted, StartedAt: now, CompletedAt: &now, ResourceID: 3, ResourceType: "host"}
	good, _ := json.Marshal(a)
	{
		r, st := fzRepo(f)
		st.set(actionObject(1, 1), good)
		if got, err := r.Action(context.Background(), 1); err != nil || got.ResourceID != 3 {
			f.Fatalf("a good action record does not read: %v, %v", got, err)
		}
	}
	f.Add(good)
	f.Add(good[:10])
	f.Add([]byte(`{"completed_at":"not a time"}`))
	f.Add([]byte(`{"id":"1"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := context.Background()
		r, st := fzRepo(t)
		st.set(actionObject(1, 1), data)
		r.Action(ctx, 1)
		r.Actions(ctx)
	})
}

func FuzzGCMark(f *testing.F) {
	good, _ := json.Marshal(gcMark{At: time.Unix(1e9, 0).UTC(), Packs: []string{fzID(1).String()}, Images: []string{fzID(2).String()}})
	{
		r, st := fzRepo(f)
		st.set("gc/condemned/00000000000000000001-00", good)
		packs, images, err := r.condemned(context.Background())
		if err != nil || !packs[fzID(1)] || !images[fzID(2)] {
			f.Fatalf("a good gc mark does not read: %v, %v, %v", packs, images, err)
		}
	}
	f.Add(good)
	f.Add([]byte(`{"packs":["nothex"],"images":[""]}`))
	f.Add([]byte(`{"at":"yesterday"}`))
	f.Add(good[:5])
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := context.Background()
		r, st := fzRepo(t)
		st.set("gc/condemned/00000000000000000001-00", data)
		st.set("gc/done/00000000000000000001-00", data)
		st.set("running/00", data)
		r.LoadIndex(ctx)
		r.GC(ctx, noMinAge)
		r.Stats(ctx)
	})
}

func FuzzDamageRecord(f *testing.F) {
	d := damage{}
	d.add(fzID(1), fzID(2))
	good := encodeDamage(time.Unix(1e9, 0).UTC(), d)
	if _, err := decodeDamage(good); err != nil {
		f.Fatalf("a good damage record does not decode: %v", err)
	}
	f.Add(good)
	f.Add([]byte(`{"packs":{"zz":["00"]}}`))
	f.Add([]byte(`{"packs":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if d, err := decodeDamage(data); err == nil {
			if _, err := decodeDamage(encodeDamage(time.Time{}, d)); err != nil {
				t.Fatalf("a damage record does not survive encoding: %v", err)
			}
		}
		ctx := context.Background()
		r, st := fzRepo(t)
		st.set("damaged/00000000000000000001-00", data)
		r.LoadIndex(ctx)
		r.Verify(ctx, nil, nil)
	})
}

func FuzzConfig(f *testing.F) {
	_, st := fzRepo(f)
	good, err := st.Get(context.Background(), "config", 0, -1)
	if err != nil {
		f.Fatal(err)
	}
	if _, err := Open(context.Background(), st, Options{Password: testPassword}); err != nil {
		f.Fatalf("a good config does not open: %v", err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte(`{"format":"dropback-repository","version":99}`))
	f.Add([]byte(`{"format":"dropback-repository","version":1,"chunk_size":65536,"chunk_hash":"blake3-keyed","encryption":"none","chunk_key":"00"}`))
	f.Add([]byte("[restic]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		st := newFzStore()
		st.set("config", data)
		r, err := Open(context.Background(), st, Options{Password: testPassword})
		if err != nil {
			return
		}
		if cs := r.ChunkSize(); cs < MinChunkSize || cs > MaxChunkSize {
			t.Fatalf("opened a repository with chunk size %d", cs)
		}
	})
}

func FuzzBlob(f *testing.F) {
	enc, _ := codec()
	plain := bytes.Repeat([]byte("dropback "), 500)
	if out, err := decompress(enc.EncodeAll(plain, nil), flagZstd, len(plain), nil); err != nil || !bytes.Equal(out, plain) {
		f.Fatalf("a good blob does not decompress: %v", err)
	}
	f.Add(enc.EncodeAll(plain, nil), uint8(flagZstd), uint32(len(plain)))
	f.Add(plain, uint8(0), uint32(len(plain)))
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, uint8(flagZstd), uint32(MaxChunkSize))
	f.Add([]byte("x"), uint8(7), uint32(1))
	f.Fuzz(func(t *testing.T, blob []byte, flags uint8, raw uint32) {
		raw %= MaxChunkSize + 1
		out, err := decompress(blob, flags, int(raw), nil)
		if err == nil && len(out) != int(raw) {
			t.Fatalf("decompressed %d bytes, want %d", len(out), raw)
		}
	})
}

// The image index of a disk of 2.2 million chunks (2.2 TiB at 1 MiB) decodes:
// it is bigger than the decoder limit meant for chunks.
func TestImageOfAHugeDiskDecodes(t *testing.T) {
	n := 2_200_000
	im := &Image{Size: int64(n) << 20, ChunkSize: 1 << 20, Chunks: make([]ID, n)}
	for i := range im.Chunks {
		binary.LittleEndian.PutUint64(im.Chunks[i][:], uint64(i)*0x9e3779b97f4a7c15+1)
		binary.LittleEndian.PutUint64(im.Chunks[i][8:], uint64(i))
	}
	got, err := decodeImage(encodeImage(im), nil)
	if err != nil {
		t.Fatalf("decode the image of a %d-chunk disk: %v", n, err)
	}
	if len(got.Chunks) != n || got.Chunks[n-1] != im.Chunks[n-1] {
		t.Fatal("the image decodes to other chunks")
	}
}

package engine

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dropback/dropback/pkg/store/local"
)

// A host whose every recent revision is damaged is left out and named;
// every other host reads, and updates.
func TestDamagedHostRecordAffectsOnlyThatHost(t *testing.T) {
	e := newHostileEnv(t)
	for _, rev := range e.hostRevs(e.dbHost.ID) {
		e.write(rev, []byte("{ damaged"))
	}
	hosts, damaged, err := e.r.HostsAndDamage(e.ctx)
	if err != nil || len(hosts) != 1 || hosts[0].ID != e.webHost.ID {
		t.Fatalf("HostsAndDamage = %v, %v; want web-1", hosts, err)
	}
	corrupt(t, "the damaged host", damaged[e.dbHost.ID], "host 2")
	if hs, err := e.r.Hosts(e.ctx); err != nil || len(hs) != 1 {
		t.Errorf("Hosts = %v, %v; want web-1 alone", hs, err)
	}
	if _, err := e.r.UpdateHost(e.ctx, hosts[0]); err != nil {
		t.Errorf("update web-1: %v", err)
	}
	e.backup(e.r, e.webHost)
}

// One damaged action record leaves the others listed, and is named.
func TestDamagedActionAffectsOnlyThatAction(t *testing.T) {
	e := newHostileEnv(t)
	e.write(actionObject(1, 2), []byte(`{"id":`))
	as, damaged, err := e.r.ActionsAndDamage(e.ctx)
	if err != nil || len(as) != 1 || as[0].ID != 2 {
		t.Fatalf("ActionsAndDamage = %v, %v; want action 2", as, err)
	}
	corrupt(t, "the damaged action", damaged[1], "action 1")
	if _, err := e.r.Action(e.ctx, 2); err != nil {
		t.Errorf("read action 2: %v", err)
	}
}

// A record without its seal is refused: removing the seal is no way
// around it.
func TestUnsealedRecordsAreRefused(t *testing.T) {
	e := newHostileEnv(t)
	unsealed := func(name string, v any) {
		data, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		e.write(name, data)
	}
	m := *e.db
	m.HostName = "changed"
	unsealed(objectName("backups", e.db.ID), m)
	_, damaged, err := e.r.ManifestsAndDamage(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	corrupt(t, "an unsealed manifest", damaged[e.db.ID], "not sealed")

	h := e.dbHost
	h.Name = "changed"
	revs := e.hostRevs(h.ID)
	unsealed(revs[len(revs)-1], h)
	_, hd, err := e.r.HostsAndDamage(e.ctx)
	if err != nil || hd[h.ID] == nil {
		t.Errorf("an unsealed host record: damage %v, %v", hd, err)
	}

	unsealed("config", e.r.Config())
	_, err = Open(e.ctx, e.reads, Options{Password: testPassword})
	if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "not sealed") {
		t.Errorf("open with an unsealed config: %v, want a format error saying it is not sealed", err)
	}
}

// A manifest with two disks of one name, more disks than a backup can
// have, or a disk larger than an image index can describe is damaged.
func TestManifestDisksAreChecked(t *testing.T) {
	cases := map[string]func(m *Manifest){
		"two disks of one name": func(m *Manifest) { m.Disks = append(m.Disks, m.Disks[0]) },
		"too many disks": func(m *Manifest) {
			for len(m.Disks) <= MaxDisks {
				d := m.Disks[0]
				d.Name += strings.Repeat("x", len(m.Disks))
				m.Disks = append(m.Disks, d)
			}
		},
		"a disk too large":    func(m *Manifest) { m.Disks[0].SizeBytes = 1 << 62 },
		"a negative size":     func(m *Manifest) { m.Disks[0].SizeBytes = -1 },
		"a disk with no name": func(m *Manifest) { m.Disks[0].Name = "" },
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			e := newHostileEnv(t)
			m := *e.db
			m.Disks = append([]ManifestDisk(nil), m.Disks...)
			change(&m)
			data, err := seal(m)
			if err != nil {
				t.Fatal(err)
			}
			e.write(objectName("backups", m.ID), data)
			_, err = e.r.Manifest(e.ctx, m.ID)
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("read the manifest: %v, want damage", err)
			}
		})
	}
}

// A host record is checked as a manifest is, and hosts are refused more
// disks or a name twice when they are written.
func TestHostDisksAreChecked(t *testing.T) {
	e := newHostileEnv(t)
	h := e.webHost
	h.Disks = append(h.Disks, h.Disks[0])
	if _, err := e.r.UpdateHost(e.ctx, h); !errors.Is(err, ErrInvalid) {
		t.Errorf("a host with two disks of one name: %v, want ErrInvalid", err)
	}
	h.Rev++
	data, _ := seal(h)
	e.write(hostObject(h.ID, h.Rev), data)
	if got, _, _ := e.r.HostsAndDamage(e.ctx); len(got) != 2 || len(got[0].Disks) != 1 {
		t.Errorf("a damaged latest revision must give way to the one before: %+v", got)
	}
	many := HostRecord{Name: "many"}
	for i := 0; i <= MaxDisks; i++ {
		many.Disks = append(many.Disks, DiskSource{Name: strings.Repeat("d", i+1), Path: e.webDisk})
	}
	if _, err := e.r.AddHost(e.ctx, many); !errors.Is(err, ErrInvalid) {
		t.Errorf("a host of %d disks: %v, want ErrInvalid", len(many.Disks), err)
	}
}

// Forged lengths in an index segment (a restore once allocated 12.6 GB
// for 10 chunks), and chunks longer than the repository's chunk size, make
// the segment damaged.
func TestForgedIndexEntries(t *testing.T) {
	seg := func(e Entry) []byte {
		return encodeIndexSegment([]PackIndex{{Pack: fzID(1), Entries: []Entry{e}}})
	}
	for name, e := range map[string]Entry{
		"stored length 1.26 GB": {Chunk: fzID(2), Offset: 8, Length: 1_260_000_000, Raw: 1 << 20, Flags: flagZstd},
		"raw length 4 GiB":      {Chunk: fzID(2), Offset: 8, Length: 100, Raw: 0xffffffff, Flags: flagZstd},
		"offset past a pack":    {Chunk: fzID(2), Offset: 0xfffffff0, Length: 100, Raw: 100},
		"offset in the magic":   {Chunk: fzID(2), Offset: 2, Length: 100, Raw: 100},
		"unknown flags":         {Chunk: fzID(2), Offset: 8, Length: 100, Raw: 100, Flags: 0x80},
	} {
		if _, err := decodeIndexSegment(seg(e)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: decode = %v, want damage", name, err)
		}
	}
	// Within the format, but longer than this repository's chunks.
	e := newHostileEnv(t)
	data := seg(Entry{Chunk: fzID(2), Offset: 8, Length: 100, Raw: testChunk + 1, Flags: flagZstd})
	id := contentID(data)
	e.write("index/"+id.String(), data)
	_, problems, err := e.r.LoadIndex(e.ctx)
	if err != nil || len(problems) != 1 || !errors.Is(problems[0], ErrCorrupt) {
		t.Errorf("a segment of chunks longer than the repository's: problems %v, %v", problems, err)
	}
}

// An image index that disagrees with its manifest about the disk's size,
// or whose header claims more chunks than its bytes hold, is damaged.
func TestForgedImageIndexes(t *testing.T) {
	e := newHostileEnv(t)
	im := imageOf(t, e.r, e.db)
	other := *im
	other.Size += testChunk
	other.Chunks = append(append([]ID(nil), im.Chunks...), ZeroID)
	data := encodeImage(&other)
	id := contentID(data)
	e.write(imageName(id), data)
	m := *e.db
	m.Disks = append([]ManifestDisk(nil), m.Disks...)
	m.Disks[0].Image = id.String()
	if _, err := e.r.LoadDiskImage(e.ctx, &m, 0); !errors.Is(err, ErrCorrupt) {
		t.Errorf("an image of another size than its disk: %v, want damage", err)
	}
	body := binary.LittleEndian.AppendUint64(nil, uint64(1<<40))
	body = binary.LittleEndian.AppendUint32(body, testChunk)
	body = binary.LittleEndian.AppendUint64(body, uint64(chunkCount(1<<40, testChunk)))
	enc, _ := codec()
	if _, err := decodeImage(enc.EncodeAll(body, []byte(imageMagic)), nil); !errors.Is(err, ErrCorrupt) {
		t.Errorf("an image whose header claims 16 million chunks it lacks: %v, want damage", err)
	}
}

// A place that holds files but no repository is not called a repository
// whose config was lost: it is not a dropback repository.
func TestOtherFilesAreNotARepository(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"bin/bash", "etc/passwd", "home/user/notes"} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	st, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(t.Context(), st, Options{Password: testPassword})
	if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "not a dropback repository") || strings.Contains(err.Error(), "lost") {
		t.Errorf("open a directory of other files: %v, want: not a dropback repository", err)
	}
	// One object that is a repository's makes it one whose config is lost.
	if err := os.MkdirAll(filepath.Join(dir, "backups"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "backups", "0000000001"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Open(t.Context(), st, Options{Password: testPassword})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "config is lost") {
		t.Errorf("open a repository without its config: %v, want: the config is lost", err)
	}
}

// What dropback writes stays far within the limits its readers enforce:
// index segments are split, packs close at maxPackEntries blobs, and an
// action keeps only the start of a long error.
func TestWritersStayWithinTheLimits(t *testing.T) {
	var packs []PackIndex
	for i := range 3000 {
		p := PackIndex{Pack: fzID(byte(i))}
		p.Pack[31], p.Pack[30] = byte(i), byte(i>>8)
		for j := range 200 {
			p.Entries = append(p.Entries, Entry{Chunk: fzID(byte(j)), Offset: 8, Length: 10, Raw: 10})
		}
		packs = append(packs, p)
	}
	segs := encodeIndexSegments(packs)
	if len(segs) < 2 {
		t.Fatalf("%d packs make %d segment", len(packs), len(segs))
	}
	n := 0
	for _, s := range segs {
		if len(s) > segmentTarget {
			t.Errorf("a segment of %d bytes, above %d", len(s), segmentTarget)
		}
		got, err := decodeIndexSegment(s)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range got {
			if p.Pack != packs[n].Pack || len(p.Entries) != len(packs[n].Entries) {
				t.Fatalf("pack %d does not come back", n)
			}
			n++
		}
	}
	if n != len(packs) {
		t.Errorf("%d of %d packs come back", n, len(packs))
	}

	b := newPackBuilder(testChunk)
	for i := 0; !b.full(); i++ {
		b.add(fzID(byte(i)), []byte{1, 2, 3}, 64<<10, flagZstd)
	}
	if len(b.entries) != maxPackEntries {
		t.Errorf("a pack of tiny blobs closes at %d entries, want %d", len(b.entries), maxPackEntries)
	}

	e := newHostileEnv(t)
	a, err := e.r.StartAction(e.ctx, "backup", "host", 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.r.FinishAction(e.ctx, a, 0, errors.New(strings.Repeat("é", 1<<20))); err != nil {
		t.Fatal(err)
	}
	got, err := e.r.Action(e.ctx, a.ID)
	if err != nil || len(got.Error) > maxActionError+len("…") {
		t.Errorf("an action of a 2 MiB error: %d bytes of it kept, %v", len(got.Error), err)
	}
}

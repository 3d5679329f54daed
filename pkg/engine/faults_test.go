package engine

// Fault injection: every store call the engine makes can fail. Each failure
// must be reported once, in an error that says what was being done, and
// leave the repository valid: verify clean, every earlier backup restoring
// byte-identical, the next backup and gc succeeding once the store heals.

import (
	"context"
	"errors"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dropback/dropback/pkg/store"
	"github.com/dropback/dropback/pkg/store/faulty"
	"github.com/dropback/dropback/pkg/store/local"
)

// fltDir is a scratch directory on tmpfs when there is one: these tests
// make many repositories and fsync would only slow them down.
func fltDir(t *testing.T) string {
	t.Helper()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "dropback-faults-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

// fltWrite overwrites the chunks i of a disk for which pick(i) holds with
// random bytes from seed.
func fltWrite(t *testing.T, path string, chunks int, seed uint64, pick func(i int) bool) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var key [32]byte
	key[0] = byte(seed)
	rng := rand.NewChaCha8(key)
	buf := make([]byte, testChunk)
	for i := range chunks {
		_, _ = rng.Read(buf)
		if !pick(i) {
			continue
		}
		if _, err := f.WriteAt(buf, int64(i)*testChunk); err != nil {
			t.Fatal(err)
		}
	}
}

// fltEnv is a repository on a faulty store holding one backup to keep and
// one deleted backup whose packs are mostly dead, so gc has work.
type fltEnv struct {
	t    *testing.T
	ctx  context.Context
	fs   *faulty.Store
	r    *Repo
	dir  string
	disk string
	kept map[int][32]byte // backup ID -> disk content
}

const fltChunks = 272 // 17 MiB of 64 KiB chunks: two packs

// fltTemplate is a repository and disk to start from, made once by a test
// and copied by its subtests.
type fltTemplate struct {
	dir  string
	kept map[int][32]byte
}

// newFltEnv copies tmpl, or makes a new one when tmpl is nil.
func newFltEnv(t *testing.T, tmpl *fltTemplate) *fltEnv {
	t.Helper()
	ctx := context.Background()
	if tmpl == nil {
		tmpl = newFltTemplate(t)
	}
	dir := fltDir(t)
	if err := os.CopyFS(dir, os.DirFS(tmpl.dir)); err != nil {
		t.Fatal(err)
	}
	st, err := local.Open(filepath.Join(dir, "repo"))
	if err != nil {
		t.Fatal(err)
	}
	fs := faulty.New(st)
	r, err := Open(ctx, fs, Options{Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}
	e := &fltEnv{t: t, ctx: ctx, fs: fs, r: r, dir: dir, disk: filepath.Join(dir, "disk.img"), kept: maps.Clone(tmpl.kept)}
	return e
}

// newFltTemplate makes a repository with a backup to keep and a deleted
// one whose packs are mostly dead, and a disk with new data.
func newFltTemplate(t *testing.T) *fltTemplate {
	t.Helper()
	ctx := context.Background()
	dir := fltDir(t)
	r, _ := initRepo(t, dir)
	e := &fltEnv{t: t, ctx: ctx, r: r, dir: dir, disk: filepath.Join(dir, "disk.img")}
	fltWrite(t, e.disk, fltChunks, 1, func(int) bool { return true })
	old := e.backup()
	fltWrite(t, e.disk, fltChunks, 2, func(i int) bool { return i%3 != 0 })
	keep := e.backup()
	if err := r.DeleteBackup(ctx, old.ID); err != nil {
		t.Fatal(err)
	}
	kept := map[int][32]byte{keep.ID: fileHash(t, e.disk)}
	fltWrite(t, e.disk, fltChunks, 3, func(i int) bool { return i%4 == 1 })
	return &fltTemplate{dir: dir, kept: kept}
}

func (e *fltEnv) backup() *Manifest {
	e.t.Helper()
	m, err := e.r.Backup(e.ctx, BackupRequest{HostID: 1, HostName: "web-1", Disks: []DiskSource{{Name: "vda", Path: e.disk}}})
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

func (e *fltEnv) keptBackup() *Manifest {
	for id := range e.kept {
		m, err := e.r.Manifest(e.ctx, id)
		if err != nil {
			e.t.Fatal(err)
		}
		return m
	}
	panic("no backup kept")
}

// restores checks that m restores to a new file with the content want.
func (e *fltEnv) restores(m *Manifest, want [32]byte) {
	e.t.Helper()
	out := filepath.Join(e.dir, "out.img")
	defer os.Remove(out)
	if _, err := e.r.Restore(e.ctx, m, []RestoreTarget{{Path: out}}, nil); err != nil {
		e.t.Fatalf("restore backup %d: %v", m.ID, err)
	}
	if fileHash(e.t, out) != want {
		e.t.Fatalf("backup %d does not restore byte-identical", m.ID)
	}
}

// valid checks the repository once the store has healed: verify is clean,
// every kept backup restores, and so does any backup the failed operation
// still completed (its disk is as it was then).
func (e *fltEnv) valid() {
	e.t.Helper()
	res, err := e.r.Verify(e.ctx, nil, nil)
	if err != nil || res.Damaged() {
		e.t.Fatalf("verify after the fault: %v %v %+v", err, res.Problems, res.Backups)
	}
	ms, err := e.r.Manifests(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	for id := range e.kept {
		found := false
		for _, m := range ms {
			found = found || m.ID == id
		}
		if !found {
			e.t.Fatalf("backup %d is gone", id)
		}
	}
	now := fileHash(e.t, e.disk)
	for _, m := range ms {
		want, ok := e.kept[m.ID]
		if !ok {
			want = now
		}
		e.restores(m, want)
	}
}

type fltCase struct {
	name  string
	rules []faulty.Rule
	// op is the operation under fault; ok says it is expected to succeed
	// despite the fault (a read it can do without).
	op   string
	ok   bool
	want string // in the error (or, for verify, in a problem)
}

func fltRule(op faulty.Op, pattern string, times int) faulty.Rule {
	return faulty.Rule{Op: op, Pattern: pattern, Times: times}
}

var fltCases = []fltCase{
	// A backup.
	{name: "pack write fails", op: "backup", want: "packs/", rules: []faulty.Rule{fltRule(faulty.Put, "packs/", 1)}},
	{name: "pack write finds the disk full", op: "backup", want: "no space left on device",
		rules: []faulty.Rule{{Op: faulty.Put, Pattern: "packs/", Err: faulty.ENOSPC}}},
	{name: "pack fsync fails after the write", op: "backup", want: "input/output error",
		rules: []faulty.Rule{{Op: faulty.Put, Pattern: "packs/", Times: 1, Written: true, Err: faulty.EIO}}},
	{name: "index segment write fails", op: "backup", want: "index/", rules: []faulty.Rule{fltRule(faulty.Put, "index/", 0)}},
	{name: "index segment fsync fails after the write", op: "backup", want: "index/",
		rules: []faulty.Rule{{Op: faulty.Put, Pattern: "index/", Written: true, Err: faulty.EIO}}},
	{name: "image index write fails", op: "backup", want: "images/", rules: []faulty.Rule{fltRule(faulty.Put, "images/", 0)}},
	{name: "manifest write fails", op: "backup", want: "backups/", rules: []faulty.Rule{fltRule(faulty.Put, "backups/*", 0)}},
	{name: "manifest fsync fails after the write", op: "backup", want: "backups/",
		rules: []faulty.Rule{{Op: faulty.Put, Pattern: "backups/*", Written: true, Err: faulty.EIO}}},
	{name: "manifest write finds the disk full", op: "backup", want: "no space left on device",
		rules: []faulty.Rule{{Op: faulty.Put, Pattern: "backups/*", Err: faulty.ENOSPC}}},
	{name: "running marker write fails", op: "backup", want: "announce", rules: []faulty.Rule{fltRule(faulty.Put, "running/*", 0)}},
	{name: "index listing fails", op: "backup", want: "index", rules: []faulty.Rule{fltRule(faulty.List, "index/", 0)}},
	{name: "index listing fails part way", op: "backup", want: "index",
		rules: []faulty.Rule{{Op: faulty.List, Pattern: "index/", ListAfter: 1}}},
	{name: "gc mark listing fails", op: "backup", want: "gc marks", rules: []faulty.Rule{fltRule(faulty.List, "gc/condemned/", 0)}},
	{name: "damage record listing fails", op: "backup", want: "damage", rules: []faulty.Rule{fltRule(faulty.List, "damaged/", 0)}},
	{name: "backup listing fails when taking an ID", op: "backup", want: "backups", rules: []faulty.Rule{fltRule(faulty.List, "backups/", 0)}},
	{name: "index segment read fails", op: "backup", ok: true, rules: []faulty.Rule{fltRule(faulty.Get, "index/", 0)}},

	// A restore.
	{name: "pack read fails during restore", op: "restore", want: "packs/", rules: []faulty.Rule{fltRule(faulty.Get, "packs/", 1)}},
	{name: "image index read fails during restore", op: "restore", want: "image", rules: []faulty.Rule{fltRule(faulty.Get, "images/", 0)}},
	{name: "index listing fails during restore", op: "restore", want: "index", rules: []faulty.Rule{fltRule(faulty.List, "index/", 0)}},

	// Garbage collection.
	{name: "pack read fails during gc", op: "gc", want: "packs/", rules: []faulty.Rule{fltRule(faulty.Get, "packs/", 1)}},
	{name: "rewritten pack write fails", op: "gc", want: "packs/", rules: []faulty.Rule{fltRule(faulty.Put, "packs/", 1)}},
	{name: "rewritten pack finds the disk full", op: "gc", want: "no space left on device",
		rules: []faulty.Rule{{Op: faulty.Put, Pattern: "packs/", Err: faulty.ENOSPC}}},
	{name: "gc index segment write fails", op: "gc", want: "index/", rules: []faulty.Rule{fltRule(faulty.Put, "index/", 0)}},
	{name: "gc mark write fails", op: "gc", want: "gc mark", rules: []faulty.Rule{fltRule(faulty.Put, "gc/condemned/*", 0)}},
	{name: "pack delete fails", op: "gc", want: "packs/", rules: []faulty.Rule{fltRule(faulty.Delete, "packs/", 1)}},
	{name: "second pack delete fails", op: "gc", want: "packs/", rules: []faulty.Rule{{Op: faulty.Delete, Pattern: "packs/", After: 1}}},
	{name: "index segment delete fails", op: "gc", want: "index", rules: []faulty.Rule{fltRule(faulty.Delete, "index/", 0)}},
	{name: "gc mark delete fails", op: "gc", want: "gc/condemned/", rules: []faulty.Rule{fltRule(faulty.Delete, "gc/condemned/*", 0)}},
	{name: "gc record write fails", op: "gc", want: "gc", rules: []faulty.Rule{fltRule(faulty.Put, "gc/done/*", 0)}},
	{name: "pack listing fails during gc", op: "gc", want: "packs", rules: []faulty.Rule{fltRule(faulty.List, "packs/", 0)}},
	{name: "manifest listing fails during gc", op: "gc", want: "backups", rules: []faulty.Rule{fltRule(faulty.List, "backups/", 0)}},
	{name: "running marker listing fails during gc", op: "gc", want: "running", rules: []faulty.Rule{fltRule(faulty.List, "running/", 0)}},

	// Deleting a backup (retention, snapshots delete).
	{name: "deleted marker write fails", op: "delete", want: "delete backup", rules: []faulty.Rule{fltRule(faulty.Put, "deleted/*", 0)}},
	{name: "manifest delete fails", op: "delete", want: "delete backup", rules: []faulty.Rule{fltRule(faulty.Delete, "backups/*", 0)}},

	// Verify reports a store that fails as damage, and runs to the end.
	{name: "pack read fails during verify", op: "verify", want: "pack", rules: []faulty.Rule{fltRule(faulty.Get, "packs/", 0)}},
	{name: "pack stat fails during verify", op: "verify", want: "unreadable", rules: []faulty.Rule{fltRule(faulty.Stat, "packs/", 0)}},
	{name: "damage record write fails", op: "verify", want: "record damaged chunks",
		rules: []faulty.Rule{fltRule(faulty.Get, "packs/", 0), fltRule(faulty.Put, "damaged/*", 0)}},
}

// fltText is the text of the error a case injects, to count in messages.
func fltText(rules []faulty.Rule) string {
	for _, r := range rules {
		if r.Err != nil {
			var pe *os.PathError
			if errors.As(r.Err, &pe) {
				return pe.Err.Error()
			}
			return r.Err.Error()
		}
	}
	return faulty.ErrInjected.Error()
}

func TestFaults(t *testing.T) {
	tmpl := newFltTemplate(t)
	for _, tc := range fltCases {
		t.Run(tc.name, func(t *testing.T) {
			e := newFltEnv(t, tmpl)
			kept := e.keptBackup()
			e.fs.Set(tc.rules...)
			var err error
			var problems []string
			switch tc.op {
			case "backup":
				_, err = e.r.Backup(e.ctx, BackupRequest{HostID: 1, HostName: "web-1", Disks: []DiskSource{{Name: "vda", Path: e.disk}}})
			case "restore":
				out := filepath.Join(e.dir, "restored.img")
				_, err = e.r.Restore(e.ctx, kept, []RestoreTarget{{Path: out}}, nil)
				if _, serr := os.Stat(out); !os.IsNotExist(serr) {
					t.Fatal("a failed restore left its target behind")
				}
			case "gc":
				_, err = e.r.GC(e.ctx, noMinAge)
			case "delete":
				err = e.r.DeleteBackup(e.ctx, kept.ID)
			case "verify":
				var res *VerifyResult
				res, err = e.r.Verify(e.ctx, nil, nil)
				if err == nil {
					if !res.Damaged() {
						t.Fatal("verify over a failing store found nothing")
					}
					problems = res.Problems
				}
			}
			injected := e.fs.Injected()
			e.fs.Set()
			if len(injected) == 0 {
				t.Fatal("the fault never fired")
			}
			switch {
			case tc.op == "verify":
				if err != nil {
					t.Fatalf("verify failed to run: %v", err)
				}
				joined := strings.Join(problems, "\n")
				if !strings.Contains(joined, tc.want) {
					t.Fatalf("verify's problems do not say %q:\n%s", tc.want, joined)
				}
			case tc.ok:
				if err != nil {
					t.Fatalf("%s: %v", tc.op, err)
				}
			default:
				if err == nil {
					t.Fatalf("%s succeeded although %v failed", tc.op, injected)
				}
				msg := err.Error()
				if n := strings.Count(msg, fltText(tc.rules)); n != 1 {
					t.Fatalf("the fault is reported %d times, want once: %s", n, msg)
				}
				if !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
					t.Fatalf("error %q does not say %q on one line", msg, tc.want)
				}
				for _, r := range tc.rules {
					if r.Err != nil && !errors.Is(err, r.Err) {
						t.Fatalf("error %q does not wrap %v", msg, r.Err)
					}
				}
			}
			if tc.op == "delete" && err == nil {
				delete(e.kept, kept.ID)
			}
			e.valid()
			// The next backup and gc succeed, and the result is whole.
			m := e.backup()
			e.kept[m.ID] = fileHash(t, e.disk)
			if _, err := e.r.GC(e.ctx, noMinAge); err != nil {
				t.Fatalf("gc after the fault: %v", err)
			}
			e.valid()
		})
	}
}

// A backup that loaded the index before gc condemned the packs it then
// refers to keeps them alive: the sweep spares them, and the backup
// restores while the mark still stands.
func TestBackupRacingGCMarkRestores(t *testing.T) {
	e := newFltEnv(t, nil)
	// The next backup reuses the chunks of the kept one; delete that one
	// at the last moment, so its packs are condemned under the backup.
	kept := e.keptBackup()
	fltWrite(t, e.disk, fltChunks, 2, func(i int) bool { return i%3 != 0 })
	fltWrite(t, e.disk, fltChunks, 3, func(i int) bool { return i%4 == 1 })
	want := fileHash(t, e.disk)
	// The kept backup was taken a day ago: its packs are older than the
	// backup that now reuses them.
	ageFiles(t, filepath.Join(e.dir, "repo"), 24*time.Hour)
	e.fs.Set(faulty.Rule{Op: faulty.Put, Pattern: "images/", Times: 1, Hook: func() {
		if err := e.r.DeleteBackup(e.ctx, kept.ID); err != nil {
			t.Error(err)
		}
		res, err := e.r.GC(e.ctx, GCOptions{Grace: time.Hour})
		if err != nil || res.CondemnedPacks == 0 {
			t.Errorf("gc under the backup: %v, %+v", err, res)
		}
	}})
	m := e.backup()
	e.fs.Set()
	delete(e.kept, kept.ID)
	if m.NewChunks >= fltChunks/2 {
		t.Fatalf("the backup stored %d chunks: it did not reuse the condemned ones", m.NewChunks)
	}
	e.restores(m, want)
	// The sweep, once the grace is over, keeps what the backup needs.
	res, err := e.r.GC(e.ctx, GCOptions{})
	if err != nil || res.DeletedPacks == 0 {
		t.Fatalf("the sweep after the backup: %+v, %v; want the condemned packs it does not need deleted", res, err)
	}
	e.kept[m.ID] = want
	e.valid()
}

// ageFiles sets back the modification time of every file under dir by d,
// as if a local store's objects had been written that long ago.
func ageFiles(t *testing.T, dir string, d time.Duration) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, de os.DirEntry, err error) error {
		if err != nil || !de.Type().IsRegular() {
			return err
		}
		fi, err := de.Info()
		if err != nil {
			return err
		}
		old := fi.ModTime().Add(-d)
		return os.Chtimes(p, old, old)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// flipChunk damages the stored bytes of chunk c in a repository on local
// files (faulty or not) and returns its pack.
func flipChunk(t *testing.T, r *Repo, c ID) ID {
	t.Helper()
	idx, _, err := r.LoadIndex(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	pack, loc, ok := idx.lookup(c)
	if !ok {
		t.Fatal("chunk not in the index")
	}
	p := filepath.Join(r.Store().Location(), packName(pack))
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	data[loc.offset+loc.length/2] ^= 0x5a
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return pack
}

// damageRecords lists the damaged/ objects of st.
func damageRecords(t *testing.T, st store.Store) []string {
	t.Helper()
	var recs []string
	if err := st.List(context.Background(), "damaged/", func(i store.Info) error { recs = append(recs, i.Name); return nil }); err != nil {
		t.Fatal(err)
	}
	return recs
}

// Verify records damaged chunks; the next backup of the disk stores them
// again, which heals the older backups too; verify then drops the record.
func TestDamagedChunksAreStoredAgain(t *testing.T) {
	for _, how := range []string{"flipped", "pack deleted", "pack zeroed"} {
		t.Run(how, func(t *testing.T) {
			e := newFltEnv(t, nil)
			kept := e.keptBackup()
			want := e.kept[kept.ID]
			ids, _ := kept.Images()
			im, err := e.r.LoadImage(e.ctx, ids[0])
			if err != nil {
				t.Fatal(err)
			}
			victim := im.Chunks[7]
			var pack ID
			switch how {
			case "flipped":
				pack = flipChunk(t, e.r, victim)
			case "pack zeroed":
				// Every blob of the pack is lost, its trailer kept.
				idx, _, _ := e.r.LoadIndex(e.ctx)
				pack, _, _ = idx.lookup(im.Chunks[len(im.Chunks)-3]) // new in that backup
				p := filepath.Join(e.fs.Inner().Location(), packName(pack))
				data, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				entries, _, err := e.r.parsePackTrailer(data)
				if err != nil {
					t.Fatal(err)
				}
				for _, en := range entries {
					clear(data[en.Offset : en.Offset+en.Length])
				}
				if err := os.WriteFile(p, data, 0o600); err != nil {
					t.Fatal(err)
				}
				victim = entries[0].Chunk

			default:
				idx, _, _ := e.r.LoadIndex(e.ctx)
				pack, _, _ = idx.lookup(victim)
				if err := e.fs.Inner().Delete(e.ctx, packName(pack)); err != nil {
					t.Fatal(err)
				}
			}
			res, err := e.r.Verify(e.ctx, nil, nil)
			if err != nil || !res.Damaged() || res.Backups[0].OK {
				t.Fatalf("verify of a damaged backup: %v %+v", err, res)
			}
			if recs := damageRecords(t, e.fs.Inner()); len(recs) != 1 {
				t.Fatalf("verify wrote %d damage records, want 1", len(recs))
			}
			idx, _, _ := e.r.LoadIndex(e.ctx)
			if idx.Has(victim) {
				t.Fatal("the index still offers the damaged chunk to backups")
			}
			out := filepath.Join(e.dir, "restored.img")
			if _, err := e.r.Restore(e.ctx, kept, []RestoreTarget{{Path: out}}, nil); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("restore of the damaged backup: %v, want ErrCorrupt", err)
			}
			// A second verify finds the same damage and records nothing new.
			if res, err := e.r.Verify(e.ctx, nil, nil); err != nil || !res.Damaged() {
				t.Fatalf("second verify: the damage vanished: %v", err)
			}
			if recs := damageRecords(t, e.fs.Inner()); len(recs) != 1 {
				t.Fatalf("after a second verify, %d damage records, want still 1: %v", len(recs), recs)
			}
			// The disk as it was: the next backup stores the lost chunks.
			fltWrite(t, e.disk, fltChunks, 2, func(i int) bool { return i%3 != 0 })
			fltWrite(t, e.disk, fltChunks, 1, func(i int) bool { return i%3 == 0 })
			if fileHash(t, e.disk) != want {
				t.Fatal("test setup: the disk is not as it was")
			}
			m := e.backup()
			if m.NewChunks == 0 {
				t.Fatal("the backup stored nothing again")
			}
			e.restores(m, want)
			e.restores(kept, want) // healed by the copy
			e.kept[m.ID] = want
			// gc drops what is left of the damaged pack: garbage now.
			if _, err := e.r.GC(e.ctx, noMinAge); err != nil {
				t.Fatal(err)
			}
			e.valid()
			// A flipped copy stays damaged, and recorded. (A damaged pack
			// that gc deleted, whose record verify drops, is
			// TestDamagedPackIsNeverReplaced.)
			if recs := damageRecords(t, e.fs.Inner()); how == "flipped" && len(recs) != 1 {
				t.Fatalf("%d damage records, want the one of the flipped copy", len(recs))
			}
		})
	}
}

// A pack of one chunk that is damaged gets the same name when the chunk is
// stored again: the backup must neither take the damaged object for its
// own nor delete it (a crash in between would lose what it still holds); it
// writes the chunk as a pack of another name, and gc collects the damaged
// one.
func TestDamagedPackIsNeverReplaced(t *testing.T) {
	ctx := context.Background()
	dir := fltDir(t)
	r, st := initRepo(t, dir)
	disk := filepath.Join(dir, "disk.img")
	fltWrite(t, disk, 4, 9, func(i int) bool { return i == 2 })
	want := fileHash(t, disk)
	src := []DiskSource{{Name: "vda", Path: disk}}
	first, err := r.Backup(ctx, BackupRequest{HostID: 1, HostName: "web-1", Disks: src})
	if err != nil {
		t.Fatal(err)
	}
	packs := listNames(t, st, "packs/")
	if len(packs) != 1 {
		t.Fatalf("%d packs, want 1", len(packs))
	}
	p := filepath.Join(st.Location(), packs[0])
	data, _ := os.ReadFile(p)
	clear(data[8 : 8+testChunk/2])
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if res, err := r.Verify(ctx, nil, nil); err != nil || !res.Damaged() {
		t.Fatalf("verify: %v %+v", err, res)
	}
	second, err := r.Backup(ctx, BackupRequest{HostID: 1, HostName: "web-1", Disks: src})
	if err != nil {
		t.Fatal(err)
	}
	if second.NewChunks != 1 {
		t.Fatalf("the second backup stored %d chunks, want the damaged one again", second.NewChunks)
	}
	if now := listNames(t, st, "packs/"); len(now) != 2 || !slices.Contains(now, packs[0]) {
		t.Fatalf("packs after the second backup: %v; want the damaged %s kept beside a new one", now, packs[0])
	}
	restoresBoth := func() {
		t.Helper()
		for _, m := range []*Manifest{second, first} {
			out := filepath.Join(dir, "out.img")
			if _, err := r.Restore(ctx, m, []RestoreTarget{{Path: out}}, nil); err != nil {
				t.Fatalf("restore backup %d: %v", m.ID, err)
			}
			if fileHash(t, out) != want {
				t.Fatalf("backup %d restores different bytes", m.ID)
			}
			os.Remove(out)
		}
	}
	restoresBoth()
	if res, err := r.Verify(ctx, nil, nil); err != nil || res.Damaged() {
		t.Fatalf("verify after the chunk was stored again: %v %+v", err, res)
	}
	if _, err := r.GC(ctx, noMinAge); err != nil {
		t.Fatal(err)
	}
	if now := listNames(t, st, "packs/"); len(now) != 1 || now[0] == packs[0] {
		t.Fatalf("packs after gc: %v; want only the new one", now)
	}
	restoresBoth()
	if res, err := r.Verify(ctx, nil, nil); err != nil || res.Damaged() {
		t.Fatalf("verify after gc: %v %+v", err, res)
	}
	if recs := damageRecords(t, st); len(recs) != 0 {
		t.Fatalf("verify kept the damage records %v of a pack gc deleted", recs)
	}
}

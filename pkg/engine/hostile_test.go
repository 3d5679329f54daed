package engine

// A damaged or malicious repository: objects far larger than their kind
// can be, FIFOs and links in place of objects, forged lengths and counts,
// IDs at the maximum, one host's or one action's records damaged. Nothing
// of it may take the engine down: every read is bounded, and the damage
// stays with what it touches.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dropback/dropback/pkg/store"
	"github.com/dropback/dropback/pkg/store/local"
)

// readCounter is a store that remembers the most any one read returned.
type readCounter struct {
	store.Store
	mu      sync.Mutex
	largest int64
	what    string
}

func (c *readCounter) note(name string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if int64(n) > c.largest {
		c.largest, c.what = int64(n), name
	}
}

func (c *readCounter) Get(ctx context.Context, name string, off, length int64) ([]byte, error) {
	data, err := c.Store.Get(ctx, name, off, length)
	c.note(name, len(data))
	return data, err
}

func (c *readCounter) ReadAt(ctx context.Context, name string, p []byte, off int64) (int, error) {
	n, err := store.ReadAt(ctx, c.Store, name, p, off)
	c.note(name, n)
	return n, err
}

// hostileEnv is a repository on a local store with one backup of each of
// two hosts, web-1 and db-1, opened through a readCounter.
type hostileEnv struct {
	t               *testing.T
	ctx             context.Context
	dir, root       string
	r               *Repo
	reads           *readCounter
	webHost, dbHost HostRecord
	web, db         *Manifest
	webDisk, dbDisk string
}

func newHostileEnv(t *testing.T) *hostileEnv {
	t.Helper()
	e := &hostileEnv{t: t, ctx: context.Background(), dir: t.TempDir()}
	r, st := initPlainRepo(t, e.dir)
	e.root = filepath.Join(e.dir, "repo")
	e.webDisk, e.dbDisk = filepath.Join(e.dir, "web.img"), filepath.Join(e.dir, "db.img")
	makeDisk(t, e.webDisk, 10*testChunk+100, region{0, 4 * testChunk, "random"}, region{6 * testChunk, 2 * testChunk, "text"})
	makeDisk(t, e.dbDisk, 6*testChunk, region{testChunk, 3 * testChunk, "random"})
	var err error
	if e.webHost, err = r.AddHost(e.ctx, HostRecord{Name: "web-1", Disks: []DiskSource{{Name: "vda", Path: e.webDisk}}}); err != nil {
		t.Fatal(err)
	}
	if e.dbHost, err = r.AddHost(e.ctx, HostRecord{Name: "db-1", Disks: []DiskSource{{Name: "vda", Path: e.dbDisk}}}); err != nil {
		t.Fatal(err)
	}
	e.web = e.backup(r, e.webHost)
	e.db = e.backup(r, e.dbHost)
	for _, h := range []HostRecord{e.webHost, e.dbHost} {
		a, err := r.StartAction(e.ctx, "backup", "host", h.ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.FinishAction(e.ctx, a, 0, nil); err != nil {
			t.Fatal(err)
		}
	}
	e.reopen(st)
	return e
}

// reopen opens the repository again through a fresh readCounter.
func (e *hostileEnv) reopen(st store.Store) {
	e.t.Helper()
	e.reads = &readCounter{Store: st}
	r, err := Open(e.ctx, e.reads, Options{Password: testPassword})
	if err != nil {
		e.t.Fatal(err)
	}
	e.r = r
}

func (e *hostileEnv) backup(r *Repo, h HostRecord) *Manifest {
	e.t.Helper()
	m, err := r.Backup(e.ctx, BackupRequest{HostID: h.ID, HostName: h.Name, Disks: h.Disks})
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

// path is the file of the object name.
func (e *hostileEnv) path(name string) string { return filepath.Join(e.root, filepath.FromSlash(name)) }

// huge replaces the object name by a sparse file of size bytes.
func (e *hostileEnv) huge(name string, size int64) {
	e.t.Helper()
	p := e.path(name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Truncate(p, 0); err != nil && !errors.Is(err, os.ErrNotExist) {
		e.t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		e.t.Fatal(err)
	}
}

// fifo replaces the object name by a FIFO.
func (e *hostileEnv) fifo(name string) {
	e.t.Helper()
	p := e.path(name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		e.t.Fatal(err)
	}
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		e.t.Fatal(err)
	}
}

// write replaces the object name by data.
func (e *hostileEnv) write(name string, data []byte) {
	e.t.Helper()
	p := e.path(name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o600); err != nil {
		e.t.Fatal(err)
	}
}

// hostRevs lists the object names of a host's record.
func (e *hostileEnv) hostRevs(id int) []string {
	e.t.Helper()
	files, err := filepath.Glob(filepath.Join(e.root, "hosts", fmt.Sprintf("%010d", id), "*"))
	if err != nil || len(files) == 0 {
		e.t.Fatalf("no record of host %d (%v)", id, err)
	}
	for i, f := range files {
		files[i] = strings.TrimPrefix(filepath.ToSlash(f), filepath.ToSlash(e.root)+"/")
	}
	return files
}

// restores restores m to a new file and checks it against disk.
func (e *hostileEnv) restores(m *Manifest, disk string) {
	e.t.Helper()
	out := filepath.Join(e.dir, fmt.Sprintf("restored-%d.img", m.ID))
	if _, err := e.r.Restore(e.ctx, m, []RestoreTarget{{Path: out}}, nil); err != nil {
		e.t.Fatalf("restore backup %d: %v", m.ID, err)
	}
	if fileHash(e.t, out) != fileHash(e.t, disk) {
		e.t.Fatalf("backup %d does not restore byte-identical", m.ID)
	}
	os.Remove(out)
}

// within fails the test when fn has not returned after a long time: a
// guard against a read that blocks forever, not a measure of speed.
func within(t *testing.T, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatalf("%s blocked", what)
	}
}

// corrupt requires err to report damage that names want.
func corrupt(t *testing.T, what string, err error, want string) {
	t.Helper()
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), want) {
		t.Errorf("%s: got %v, want damage naming %q", what, err, want)
	}
}

const hugeSize = 1 << 30 // above every object's limit

// An object of any kind far larger than its kind can be is refused
// without reading more than its limit; everything it does not hold works.
func TestHugeObjectsAreRefusedUnread(t *testing.T) {
	cases := []struct {
		name  string
		plant func(e *hostileEnv) string
		check func(e *hostileEnv, name string)
	}{
		{"config", func(e *hostileEnv) string { return "config" }, func(e *hostileEnv, name string) {
			_, err := Open(e.ctx, e.reads, Options{Password: testPassword})
			corrupt(t, "open", err, "config")
		}},
		{"manifest", func(e *hostileEnv) string { return objectName("backups", e.db.ID) }, func(e *hostileEnv, name string) {
			ms, damaged, err := e.r.ManifestsAndDamage(e.ctx)
			if err != nil || len(ms) != 1 || ms[0].ID != e.web.ID || damaged[e.db.ID] == nil {
				t.Errorf("manifests %v, damaged %v, %v; want backup %d listed and %d damaged", ms, damaged, err, e.web.ID, e.db.ID)
			}
			e.restores(e.web, e.webDisk)
		}},
		{"host record", func(e *hostileEnv) string {
			revs := e.hostRevs(e.dbHost.ID)
			for _, rev := range revs[:len(revs)-1] {
				e.huge(rev, hugeSize)
			}
			return revs[len(revs)-1]
		}, func(e *hostileEnv, name string) {
			hosts, damaged, err := e.r.HostsAndDamage(e.ctx)
			if err != nil || len(hosts) != 1 || hosts[0].Name != "web-1" || damaged[e.dbHost.ID] == nil {
				t.Errorf("hosts %v, damaged %v, %v; want web-1 listed and host %d damaged", hosts, damaged, err, e.dbHost.ID)
			}
		}},
		{"action", func(e *hostileEnv) string { return actionObject(2, 2) }, func(e *hostileEnv, name string) {
			as, damaged, err := e.r.ActionsAndDamage(e.ctx)
			if err != nil || len(as) != 1 || as[0].ID != 1 || damaged[2] == nil {
				t.Errorf("actions %v, damaged %v, %v; want action 1 listed and 2 damaged", as, damaged, err)
			}
		}},
		{"index segment", func(e *hostileEnv) string { return "index/" + e.web.IndexSegments[0] }, func(e *hostileEnv, name string) {
			_, problems, err := e.r.LoadIndex(e.ctx)
			if err != nil || len(problems) != 1 {
				t.Fatalf("load the index: problems %v, %v; want the huge segment", problems, err)
			}
			corrupt(t, "load the index", problems[0], e.web.IndexSegments[0])
			e.restores(e.db, e.dbDisk)
		}},
		{"image index", func(e *hostileEnv) string { return "images/" + e.web.Disks[0].Image }, func(e *hostileEnv, name string) {
			_, err := e.r.Restore(e.ctx, e.web, []RestoreTarget{{Path: filepath.Join(e.dir, "out.img")}}, nil)
			corrupt(t, "restore", err, e.web.Disks[0].Image)
			e.restores(e.db, e.dbDisk)
		}},
		{"pack", func(e *hostileEnv) string {
			idx, _, _ := e.r.LoadIndex(e.ctx)
			pack, _, _ := idx.lookup(imageOf(t, e.r, e.web).Chunks[0])
			return packName(pack)
		}, func(e *hostileEnv, name string) {
			_, err := e.r.Restore(e.ctx, e.web, []RestoreTarget{{Path: filepath.Join(e.dir, "out.img")}}, nil)
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("restore from a huge pack: %v, want damage", err)
			}
			e.restores(e.db, e.dbDisk)
		}},
		{"gc mark", func(e *hostileEnv) string { return "gc/condemned/00000000000000000001-00" }, func(e *hostileEnv, name string) {
			if _, _, err := e.r.LoadIndex(e.ctx); err != nil {
				t.Errorf("load the index beside a huge gc mark: %v", err)
			}
			e.restores(e.web, e.webDisk)
		}},
		{"gc done record", func(e *hostileEnv) string { return "gc/done/00000000000000000001-00" }, func(e *hostileEnv, name string) {
			if _, err := e.r.Stats(e.ctx); err != nil {
				t.Errorf("stats beside a huge gc record: %v", err)
			}
		}},
		{"damage record", func(e *hostileEnv) string { return "damaged/00000000000000000001-00" }, func(e *hostileEnv, name string) {
			_, problems, err := e.r.LoadIndex(e.ctx)
			if err != nil || len(problems) != 1 {
				t.Fatalf("load the index: problems %v, %v; want the huge record", problems, err)
			}
			corrupt(t, "load the index", problems[0], name)
			e.restores(e.web, e.webDisk)
		}},
		{"operation marker", func(e *hostileEnv) string { return "running/0123456789abcdef-0000000001" }, func(e *hostileEnv, name string) {
			e.restores(e.web, e.webDisk)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newHostileEnv(t)
			name := c.plant(e)
			e.huge(name, hugeSize)
			within(t, c.name, func() { c.check(e, name) })
			if e.reads.largest > maxSegmentSize+1 {
				t.Errorf("one read returned %d bytes of %s", e.reads.largest, e.reads.what)
			}
		})
	}
}

// A FIFO in place of an object is refused at once, and blocks nothing.
func TestFIFOsInPlaceOfObjects(t *testing.T) {
	cases := []struct {
		name  string
		plant func(e *hostileEnv) string
		check func(e *hostileEnv)
	}{
		{"config", func(e *hostileEnv) string { return "config" }, func(e *hostileEnv) {
			_, err := Open(e.ctx, e.reads, Options{Password: testPassword})
			corrupt(t, "open", err, "config")
		}},
		{"manifest", func(e *hostileEnv) string { return objectName("backups", e.db.ID) }, func(e *hostileEnv) {
			ms, damaged, err := e.r.ManifestsAndDamage(e.ctx)
			if err != nil || len(ms) != 1 || damaged[e.db.ID] == nil {
				t.Errorf("manifests %v, damaged %v, %v", ms, damaged, err)
			}
		}},
		{"action", func(e *hostileEnv) string { return actionObject(2, 2) }, func(e *hostileEnv) {
			as, damaged, err := e.r.ActionsAndDamage(e.ctx)
			if err != nil || len(as) != 1 || damaged[2] == nil {
				t.Errorf("actions %v, damaged %v, %v", as, damaged, err)
			}
		}},
		{"image index", func(e *hostileEnv) string { return "images/" + e.web.Disks[0].Image }, func(e *hostileEnv) {
			_, err := e.r.Restore(e.ctx, e.web, []RestoreTarget{{Path: filepath.Join(e.dir, "out.img")}}, nil)
			corrupt(t, "restore", err, e.web.Disks[0].Image)
			e.restores(e.db, e.dbDisk)
		}},
		{"pack", func(e *hostileEnv) string {
			idx, _, _ := e.r.LoadIndex(e.ctx)
			pack, _, _ := idx.lookup(imageOf(t, e.r, e.web).Chunks[0])
			return packName(pack)
		}, func(e *hostileEnv) {
			_, err := e.r.Restore(e.ctx, e.web, []RestoreTarget{{Path: filepath.Join(e.dir, "out.img")}}, nil)
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("restore from a FIFO pack: %v, want damage", err)
			}
			e.restores(e.db, e.dbDisk)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newHostileEnv(t)
			e.fifo(c.plant(e))
			within(t, c.name, func() { c.check(e) })
		})
	}
}

var _ = local.Open

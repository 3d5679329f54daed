package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dropback/dropback/internal/fakeclock"
	"github.com/dropback/dropback/pkg/store"
	"github.com/dropback/dropback/pkg/store/mem"
)

// requestCounter counts every request made of a store, and the Gets under
// a prefix.
type requestCounter struct {
	store.Store
	prefix   string
	requests atomic.Int64
	gets     atomic.Int64
}

func (s *requestCounter) Get(ctx context.Context, name string, off, n int64) ([]byte, error) {
	s.requests.Add(1)
	if strings.HasPrefix(name, s.prefix) {
		s.gets.Add(1)
	}
	return s.Store.Get(ctx, name, off, n)
}

func (s *requestCounter) Stat(ctx context.Context, name string) (store.Info, error) {
	s.requests.Add(1)
	return s.Store.Stat(ctx, name)
}

func (s *requestCounter) List(ctx context.Context, prefix string, fn func(store.Info) error) error {
	s.requests.Add(1)
	return s.Store.List(ctx, prefix, fn)
}

func (s *requestCounter) Put(ctx context.Context, name string, data []byte) error {
	s.requests.Add(1)
	return s.Store.Put(ctx, name, data)
}

func (s *requestCounter) Delete(ctx context.Context, name string) error {
	s.requests.Add(1)
	return s.Store.Delete(ctx, name)
}

func (s *requestCounter) ListLag() time.Duration { return 0 }

// catalogFixture is a repository on a mem store, encrypted or not, on a
// clock the test moves.
type catalogFixture struct {
	t   *testing.T
	st  *mem.Store
	clk *fakeclock.Clock
	src string
}

func newCatalogFixture(t *testing.T, encrypted bool) *catalogFixture {
	t.Helper()
	clk := fakeclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	st := mem.New(clk.Now)
	o := InitOptions{ChunkSize: testChunk, Options: Options{Now: clk.Now, After: clk.After, Password: testPassword}}
	if encrypted {
		o.Password, o.KDF = []byte(testPasswordText), testKDF
	}
	if _, err := Init(context.Background(), st, o); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "src.img")
	makeDisk(t, src, 4*testChunk, region{0, 4 * testChunk, "text"})
	return &catalogFixture{t: t, st: st, clk: clk, src: src}
}

func (f *catalogFixture) open(st store.Store, cacheDir string) *Repo {
	f.t.Helper()
	r, err := Open(context.Background(), st, Options{Now: f.clk.Now, After: f.clk.After, CacheDir: cacheDir, Password: testPassword})
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

func (f *catalogFixture) backup(hostID int, host string) *Manifest {
	f.t.Helper()
	f.clk.Advance(time.Second)
	m, err := f.open(f.st, "").Backup(context.Background(), BackupRequest{HostID: hostID, HostName: host,
		Disks: []DiskSource{{Name: "disk0", Path: f.src}}})
	if err != nil {
		f.t.Fatal(err)
	}
	return m
}

func (f *catalogFixture) gc(st store.Store) (*GCResult, error) {
	f.clk.Advance(time.Second)
	return f.open(st, "").GC(context.Background(), GCOptions{MinAge: -1})
}

// truth is every manifest as the store holds it, read past catalogs and
// cache, as JSON, and the host records likewise.
func (f *catalogFixture) truth() string {
	f.t.Helper()
	ctx := withoutCache(context.Background())
	r := f.open(f.st, "")
	ms, _, err := r.readManifests(ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	hs, _, err := r.HostsAndDamage(ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	return describe(f.t, ms, hs)
}

func describe(t *testing.T, ms []*Manifest, hs []HostRecord) string {
	t.Helper()
	b, err := json.Marshal(struct {
		M []*Manifest
		H []HostRecord
	}{ms, hs})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// listed is what a command lists: manifests and hosts as readers read
// them, through the catalogs (and the cache in cacheDir, if set).
func (f *catalogFixture) listed(st store.Store, cacheDir string) string {
	f.t.Helper()
	r := f.open(st, cacheDir)
	ms, err := r.Manifests(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	hs, _, err := r.HostsAndDamage(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	return describe(f.t, ms, hs)
}

// plant replaces an object by other bytes, as the repository would write
// them (encrypted when it is), later by the store's clock.
func (f *catalogFixture) plant(name string, data []byte) {
	f.t.Helper()
	f.clk.Advance(time.Second)
	if err := f.st.Delete(context.Background(), name); err != nil {
		f.t.Fatal(err)
	}
	if err := f.open(f.st, "").st.Put(context.Background(), name, data); err != nil {
		f.t.Fatal(err)
	}
}

func catalogNames(t *testing.T, st store.Store) []string {
	t.Helper()
	var out []string
	err := st.List(context.Background(), "catalog/", func(info store.Info) error {
		out = append(out, info.Name)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The catalog is never trusted over the store: a backup deleted after it
// was written is not listed, a manifest whose object changed is read from
// the store, a damaged or forged catalog is named by verify and ignored
// by list, and a backup newer than it is listed.
func TestCatalogIsNeverTrustedOverTheStore(t *testing.T) {
	for _, encrypted := range []bool{false, true} {
		t.Run(fmt.Sprintf("encrypted=%v", encrypted), func(t *testing.T) {
			ctx := context.Background()
			f := newCatalogFixture(t, encrypted)
			if _, err := f.open(f.st, "").AddHost(ctx, HostRecord{Name: "web-1", Disks: []DiskSource{{Name: "disk0", Path: f.src}}}); err != nil {
				t.Fatal(err)
			}
			a, b, c := f.backup(1, "web-1"), f.backup(1, "web-1"), f.backup(1, "web-1")
			res, err := f.gc(f.st)
			if err != nil {
				t.Fatal(err)
			}
			if res.Catalogs != 1 || len(catalogNames(t, f.st)) != 1 {
				t.Fatalf("gc wrote %d catalogs, and %v are there; want 1", res.Catalogs, catalogNames(t, f.st))
			}
			counted := &requestCounter{Store: f.st, prefix: "backups/"}
			check := func(when string, wantGets int64) {
				t.Helper()
				before := counted.gets.Load()
				got := f.listed(counted, "")
				if want := f.truth(); got != want {
					t.Fatalf("%s: listed\n%s\nwant\n%s", when, got, want)
				}
				if n := counted.gets.Load() - before; wantGets >= 0 && n != wantGets {
					t.Fatalf("%s: %d manifests read from the store, want %d", when, n, wantGets)
				}
			}
			check("after gc", 0)

			// Deleted after the catalog: not listed.
			if err := f.open(f.st, "").DeleteBackup(ctx, a.ID); err != nil {
				t.Fatal(err)
			}
			check("after a delete", 0)
			ms, err := f.open(f.st, "").Manifests(ctx)
			if err != nil || len(ms) != 2 || ms[0].ID != b.ID {
				t.Fatalf("after deleting backup %d, listed %v (%v)", a.ID, ms, err)
			}

			// Newer than the catalog: listed, read from the store.
			d := f.backup(1, "web-1")
			check("a backup newer than the catalog", 1)

			// Changed (planted: dropback never rewrites a manifest):
			// another size, then the same size at another time.
			other := *b
			other.HostName = "web-2-longer"
			data, err := seal(other)
			if err != nil {
				t.Fatal(err)
			}
			f.plant(objectName("backups", b.ID), data)
			check("a manifest of another size", 2)
			if !strings.Contains(f.listed(f.st, ""), "web-2-longer") {
				t.Fatal("the changed manifest was served from the catalog")
			}
			same := *c
			same.HostName = "web-X"
			data, err = seal(same)
			if err != nil {
				t.Fatal(err)
			}
			f.plant(objectName("backups", c.ID), data)
			check("a manifest of the same size at another time", 3)
			if !strings.Contains(f.listed(f.st, ""), "web-X") {
				t.Fatal("the changed manifest of the same size was served from the catalog")
			}

			// A new gc catalogs all of them again, and deletes the old
			// catalog.
			old := catalogNames(t, f.st)
			if _, err := f.gc(f.st); err != nil {
				t.Fatal(err)
			}
			now := catalogNames(t, f.st)
			if len(now) != 1 || now[0] == old[0] {
				t.Fatalf("catalogs %v after another gc, were %v: want one new one", now, old)
			}
			check("after another gc", 0)
			verifyClean := func(when string) {
				t.Helper()
				v, err := f.open(f.st, "").Verify(ctx, nil, nil)
				if err != nil || v.Damaged() {
					t.Fatalf("%s: verify: %v %v", when, err, v.Problems)
				}
			}
			verifyClean("after gc")

			// A forged row: the catalog names the manifest of d with its
			// listed size and time, but other bytes (one digit of its
			// body changed, so its seal does not match). A content-named
			// catalog, written with the key when encrypted.
			catName := now[0]
			r := f.open(f.st, "")
			info, err := r.st.Stat(ctx, catName)
			if err != nil {
				t.Fatal(err)
			}
			rows, err := r.readCatalog(ctx, info, false)
			if err != nil {
				t.Fatal(err)
			}
			forged := false
			for i, row := range rows {
				if row.name == objectName("backups", d.ID) {
					data := bytes.Clone(row.data)
					k := bytes.Index(data, []byte(`"new_chunks": `)) + len(`"new_chunks": `)
					data[k] = '0' + (data[k]-'0'+1)%10
					rows[i].data = data
					forged = true
				}
			}
			if !forged {
				t.Fatalf("the catalog has no row of backup %d", d.ID)
			}
			enc := encodeCatalog(rows)
			forgedName := "catalog/" + r.contentID(enc).String()
			if err := f.st.Delete(ctx, catName); err != nil {
				t.Fatal(err)
			}
			if err := r.st.Put(ctx, forgedName, enc); err != nil {
				t.Fatal(err)
			}
			check("with a forged row", 1)
			v, err := f.open(f.st, "").Verify(ctx, nil, nil)
			if err != nil || !v.Damaged() || !strings.Contains(strings.Join(v.Problems, "\n"), forgedName) {
				t.Fatalf("verify of a forged catalog: %v, problems %v; want it named", err, v.Problems)
			}

			// A damaged catalog: ignored whole by list, named by verify.
			stored, err := f.st.Get(ctx, forgedName, 0, -1)
			if err != nil {
				t.Fatal(err)
			}
			stored[len(stored)/2] ^= 1
			f.st.Set(forgedName, stored, f.clk.Now())
			check("with a damaged catalog", 3)
			v, err = f.open(f.st, "").Verify(ctx, nil, nil)
			if err != nil || !v.Damaged() || !strings.Contains(strings.Join(v.Problems, "\n"), forgedName) {
				t.Fatalf("verify of a damaged catalog: %v, problems %v; want it named", err, v.Problems)
			}
			// gc replaces it.
			if _, err := f.gc(f.st); err != nil {
				t.Fatal(err)
			}
			if names := catalogNames(t, f.st); len(names) != 1 || names[0] == forgedName {
				t.Fatalf("catalogs after gc: %v", names)
			}
			check("after the gc after damage", 0)
			verifyClean("after the gc after damage")
		})
	}
}

// gc killed before each of its writes and deletes in turn loses nothing:
// every list after it, and after the gc after that, is complete and
// correct.
func TestCatalogGCKilledAtEveryStep(t *testing.T) {
	ctx := context.Background()
	crashes := 0
	for left := 0; ; left++ {
		f := newCatalogFixture(t, true)
		r := f.open(f.st, "")
		for _, name := range []string{"web-1", "web-2"} {
			if _, err := r.AddHost(ctx, HostRecord{Name: name, Disks: []DiskSource{{Name: "disk0", Path: f.src}}}); err != nil {
				t.Fatal(err)
			}
		}
		var ms []*Manifest
		for i := range 4 {
			ms = append(ms, f.backup(1+i%2, fmt.Sprintf("web-%d", 1+i%2)))
		}
		if _, err := f.gc(f.st); err != nil {
			t.Fatal(err)
		}
		// Changes after the first catalog: a delete, a new backup, a
		// host updated.
		if err := r.DeleteBackup(ctx, ms[0].ID); err != nil {
			t.Fatal(err)
		}
		f.backup(2, "web-2")
		hs, err := r.Hosts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		hs[0].BackupEnabled = true
		if _, err := r.UpdateHost(ctx, hs[0]); err != nil {
			t.Fatal(err)
		}
		want := f.truth()
		cacheDir := t.TempDir()
		if got := f.listed(f.st, cacheDir); got != want {
			t.Fatalf("before the gc: listed\n%s\nwant\n%s", got, want)
		}

		cs := &crashStore{Store: f.st, left: left}
		_, err = f.gc(cs)
		if err == nil {
			break
		}
		if !cs.dead {
			t.Fatalf("gc failed without a crash: %v", err)
		}
		crashes++
		when := "gc killed before " + cs.at
		t.Log(when)
		f.clk.Advance(StaleAfter + clockSkew + time.Minute)
		for _, dir := range []string{"", cacheDir} {
			if got := f.listed(f.st, dir); got != want {
				t.Fatalf("%s: listed\n%s\nwant\n%s", when, got, want)
			}
		}
		if _, err := f.gc(f.st); err != nil {
			t.Fatalf("%s: the gc after it: %v", when, err)
		}
		if got := f.listed(f.st, cacheDir); got != want {
			t.Fatalf("%s, and another gc: listed\n%s\nwant\n%s", when, got, want)
		}
		if n := len(catalogNames(t, f.st)); n != 1 {
			t.Fatalf("%s, and another gc: %d catalogs, want 1", when, n)
		}
		if left > 500 {
			t.Fatal("gc never ends")
		}
	}
	t.Logf("%d crash points", crashes)
	if crashes < 3 {
		t.Fatalf("only %d crash points", crashes)
	}
}

// After a gc, listing the backups and hosts of a repository makes as many
// requests for 2 backups of a host as for 12, and one more a host (the
// Stat of its next revision).
func TestCatalogListRequestsDoNotGrowWithBackups(t *testing.T) {
	ctx := context.Background()
	requests := func(hosts, perHost int) int64 {
		f := newCatalogFixture(t, true)
		r := f.open(f.st, "")
		for h := range hosts {
			if _, err := r.AddHost(ctx, HostRecord{Name: fmt.Sprintf("web-%d", h+1), Disks: []DiskSource{{Name: "disk0", Path: f.src}}}); err != nil {
				t.Fatal(err)
			}
			for range perHost {
				f.backup(h+1, fmt.Sprintf("web-%d", h+1))
			}
		}
		if _, err := f.gc(f.st); err != nil {
			t.Fatal(err)
		}
		counted := &requestCounter{Store: f.st}
		if got, want := f.listed(counted, ""), f.truth(); got != want {
			t.Fatalf("listed\n%s\nwant\n%s", got, want)
		}
		return counted.requests.Load()
	}
	small, many, hosts := requests(1, 2), requests(1, 12), requests(6, 2)
	if small != many {
		t.Fatalf("listing 2 backups of 1 host took %d requests, 12 backups of it %d: want as many", small, many)
	}
	// Each host's next revision is asked for by name, whatever the
	// store's lag: one request a host more.
	if hosts != small+5 {
		t.Fatalf("listing 2 backups of 1 host took %d requests, 12 of 6 hosts %d: want one more a host", small, hosts)
	}
}

// Host records are read through the local cache, keyed by what the
// listing shows: a warm cache reads none from the store, and an updated
// host is read again.
func TestHostRecordsThroughTheCache(t *testing.T) {
	ctx := context.Background()
	f := newCatalogFixture(t, true)
	for _, name := range []string{"web-1", "web-2"} {
		if _, err := f.open(f.st, "").AddHost(ctx, HostRecord{Name: name, Disks: []DiskSource{{Name: "disk0", Path: f.src}}}); err != nil {
			t.Fatal(err)
		}
	}
	counted := &getCounter{Store: f.st, prefix: "hosts/"}
	cacheDir := t.TempDir()
	hosts := func() []HostRecord {
		t.Helper()
		hs, err := f.open(counted, cacheDir).Hosts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return hs
	}
	hosts()
	before := counted.n.Load()
	if hs := hosts(); len(hs) != 2 || counted.n.Load() != before {
		t.Fatalf("a warm cache: %d hosts with %d reads of host records, want 2 with none", len(hs), counted.n.Load()-before)
	}
	hs := hosts()
	hs[1].BackupEnabled = true
	if _, err := f.open(f.st, "").UpdateHost(ctx, hs[1]); err != nil {
		t.Fatal(err)
	}
	if hs := hosts(); !hs[1].BackupEnabled || hs[1].Rev != 2 {
		t.Fatalf("an updated host read from the cache: %+v", hs[1])
	}
}

// A catalog that does not fit in the memory budget is not read: the
// listing reads the manifests from the store instead, and is complete.
func TestCatalogPastTheMemoryBudgetIsNotRead(t *testing.T) {
	ctx := context.Background()
	f := newCatalogFixture(t, true)
	f.backup(1, "web-1")
	f.backup(1, "web-1")
	if _, err := f.gc(f.st); err != nil {
		t.Fatal(err)
	}
	// A planted catalog of 600 KiB: reading it, stored and opened, would
	// take more than a budget of 1 MiB.
	big := make([]byte, 600<<10)
	f.st.Set("catalog/"+contentID(big).String(), big, time.Time{})
	counted := &getCounter{Store: f.st, prefix: "catalog/"}
	r, err := Open(ctx, counted, Options{Now: f.clk.Now, After: f.clk.After, Password: testPassword, MaxMemory: MinMaxMemory})
	if err != nil {
		t.Fatal(err)
	}
	ms, err := r.Manifests(ctx)
	if err != nil || len(ms) != 2 {
		t.Fatalf("listed %d backups (%v), want 2", len(ms), err)
	}
	if n := counted.n.Load(); n != 1 {
		t.Fatalf("%d catalogs read with a budget of 1 MiB, want only the small one", n)
	}
}

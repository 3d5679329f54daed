package engine

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dropback/dropback/pkg/store"
)

// getCounter counts the Gets of a store under a prefix.
type getCounter struct {
	store.Store
	prefix string
	n      atomic.Int64
}

func (s *getCounter) Get(ctx context.Context, name string, off, n int64) ([]byte, error) {
	if strings.HasPrefix(name, s.prefix) {
		s.n.Add(1)
	}
	return s.Store.Get(ctx, name, off, n)
}

func (s *getCounter) ListLag() time.Duration { return 0 }

// The cache serves what a listing shows, as the store holds it (encrypted,
// when the tests run encrypted, as by default): a deleted
// backup is not listed from it, a changed manifest is read again, a damaged
// entry is read again from the store, and verify and gc read past it.
func TestCacheIsNeverTrustedOverTheStore(t *testing.T) {
	ctx := context.Background()
	_, st, clk := memRepo(t)
	counted := &getCounter{Store: st, prefix: "backups/"}
	cacheDir := t.TempDir()
	open := func() *Repo {
		t.Helper()
		r, err := Open(ctx, counted, Options{Now: clk.Now, After: clk.After, CacheDir: cacheDir, Password: testPassword})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := open()
	src := filepath.Join(t.TempDir(), "src.img")
	makeDisk(t, src, 4*testChunk, region{0, 4 * testChunk, "text"})
	a, b := backup(t, r, src), backup(t, r, src)
	list := func() []*Manifest {
		t.Helper()
		ms, err := open().Manifests(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return ms
	}
	list()
	before := counted.n.Load()
	if ms := list(); len(ms) != 2 || counted.n.Load() != before {
		t.Fatalf("a warm cache: %d backups listed with %d reads of manifests, want 2 with none", len(ms), counted.n.Load()-before)
	}

	// Index segments come through the cache too, twice: a restore reads
	// the same bytes whether the cache is cold or warm.
	for _, when := range []string{"cold", "warm"} {
		out := filepath.Join(t.TempDir(), "out.img")
		if _, err := open().Restore(ctx, b, []RestoreTarget{{Path: out}}, nil); err != nil {
			t.Fatalf("restore with a %s cache: %v", when, err)
		}
		if fileHash(t, out) != fileHash(t, src) {
			t.Fatalf("restore with a %s cache: other bytes", when)
		}
	}
	if n := countFiles(t, filepath.Join(cacheDir, r.cfg.ID, "index")); n == 0 {
		t.Fatal("no index segment in the cache after two restores")
	}

	// Encrypted, the cache holds what the store holds: no plaintext.
	if r.sec != nil {
		_ = filepath.Walk(cacheDir, func(p string, info os.FileInfo, err error) error {
			if err == nil && !info.IsDir() {
				if b, _ := os.ReadFile(p); strings.Contains(string(b), "web-1") || strings.Contains(string(b), "host_name") {
					t.Errorf("cache entry %s holds plaintext", p)
				}
			}
			return nil
		})
	}

	// Deleted: not listed, so not served.
	if err := r.DeleteBackup(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if ms := list(); len(ms) != 1 || ms[0].ID != b.ID {
		t.Fatalf("after deleting backup %d the cache listed %v", a.ID, ms)
	}

	// Changed (planted: dropback never rewrites a manifest), later by the
	// store's clock: read again.
	changed := *b
	changed.HostName = "web-2"
	data, err := seal(changed)
	if err != nil {
		t.Fatal(err)
	}
	name := objectName("backups", b.ID)
	clk.Advance(1e9)
	if err := st.Delete(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := r.st.Put(ctx, name, data); err != nil { // sealed as the repository writes
		t.Fatal(err)
	}
	if ms := list(); len(ms) != 1 || ms[0].HostName != "web-2" {
		t.Fatalf("a changed manifest was served from the cache: %+v", ms[0])
	}

	// A damaged entry is dropped and the manifest read from the store.
	var entries []string
	_ = filepath.Walk(cacheDir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && strings.Contains(p, "backups") {
			entries = append(entries, p)
		}
		return nil
	})
	for _, p := range entries {
		b, _ := os.ReadFile(p)
		b[len(b)/2] ^= 1
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	before = counted.n.Load()
	if ms := list(); len(ms) != 1 || ms[0].HostName != "web-2" || counted.n.Load() == before {
		t.Fatalf("with a damaged cache entry: %+v, %d reads of the store", ms, counted.n.Load()-before)
	}

	// Damaged in the store, with its size and time as they were: the
	// listing cannot tell, and verify, which reads past the cache, must.
	stored, err := st.Get(ctx, name, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), stored...)
	bad[len(bad)/2] ^= 1
	if err := st.Delete(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := st.Put(ctx, name, bad); err != nil {
		t.Fatal(err)
	}
	v, err := open().Verify(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Damaged() {
		t.Fatal("verify found nothing wrong with a damaged manifest the cache holds intact")
	}
}

func countFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	_ = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			n++
		}
		return nil
	})
	return n
}

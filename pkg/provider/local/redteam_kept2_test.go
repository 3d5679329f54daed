package local

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/dropback/dropback/pkg/provider"
)

// Held: `repo init` and `repo upgrade` now take the cache dir (init), the
// read parallelism and DROPBACK_MAX_MEMORY. A repository made by init on
// a provider with a cache, backed up twice and listed through that cache,
// then upgraded in the same process, restores each backup's own bytes,
// through the provider that upgraded it (opened again, encrypted, with the
// same cache dir) and through a fresh one.
func TestRedteamKept2InitAndUpgradeWithCacheRestoreTheirBytes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	t.Setenv(readParallelismEnv, "1")
	t.Setenv(MaxMemoryEnv, "64MiB")
	pw := func(context.Context) ([]byte, error) { return []byte("correct horse"), nil }
	opts := Options{Repo: filepath.Join(dir, "repo"), CacheDir: filepath.Join(dir, "cache"), Password: pw}
	p, err := New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.InitRepo(ctx, provider.RepoInitOptions{}); err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(dir, "web-1.img")
	if err := os.WriteFile(disk, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := p.AddHost(ctx, provider.HostSpec{Name: "web-1", Disks: []string{disk}}); err != nil {
		t.Fatal(err)
	}
	want := map[int][]byte{}
	for i, text := range []string{"the first day, these bytes.\n", "the second day, other bytes\n"} {
		data := []byte(strings.Repeat(text, 40000))
		if err := os.WriteFile(disk, data, 0o600); err != nil {
			t.Fatal(err)
		}
		res, err := p.CreateBackup(ctx, "web-1", provider.CreateOptions{})
		if err != nil {
			t.Fatalf("backup %d: %v", i, err)
		}
		want[res.Backup.ID] = data
		if _, err := p.ListBackups(ctx, "web-1"); err != nil { // through the cache
			t.Fatal(err)
		}
	}
	if ents, err := os.ReadDir(opts.CacheDir); err != nil || len(ents) == 0 {
		t.Fatalf("the repository init made has no cache (%v): init did not take the cache dir", err)
	}
	check := func(p *Provider, when string) {
		t.Helper()
		for id, data := range want {
			out := filepath.Join(dir, when+"-"+strconv.Itoa(id))
			if _, err := p.RestoreBackup(ctx, provider.RestoreRequest{Host: "web-1", Backup: strconv.Itoa(id), To: out}); err != nil {
				t.Fatalf("%s: restore backup %d: %v", when, id, err)
			}
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("%s: backup %d restores other bytes", when, id)
			}
		}
	}
	check(p, "init")
	if _, err := p.UpgradeRepo(ctx, provider.RepoUpgradeOptions{Password: []byte("correct horse"), KDF: "t=1,m=64KiB,p=1"}); err != nil {
		t.Fatal(err)
	}
	check(p, "upgraded")
	fresh, err := New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	check(fresh, "fresh")
}

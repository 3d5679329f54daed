package local

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/dropback/dropback/pkg/engine"
	"github.com/dropback/dropback/pkg/key"
	"github.com/dropback/dropback/pkg/provider"
	"github.com/dropback/dropback/pkg/store/mem"
)

// `repo upgrade` (UpgradeRepo) calls engine.Upgrade with
// engine.Options{Now} alone: it runs under the default memory budget
// whatever DROPBACK_MAX_MEMORY says. Since d047e21 an upgrade holds the
// image it reads and the one it writes, and both indexes, under one
// budget, and a refusal comes after upgrade/config is written, when the
// repository opens for nothing but `repo upgrade` (no restore, no backup).
// The refusal tells the user to set DROPBACK_MAX_MEMORY higher, which
// changes nothing: on a machine whose default budget cannot hold two
// images of its largest disk, the repository stays unopenable there. The
// test shows the setting ignored: under 1 MiB the engine refuses to copy
// a disk of 24000 chunks, and `repo upgrade` with DROPBACK_MAX_MEMORY=1MiB
// copies it regardless.
func TestRedteamKeptUpgradeHonoursMaxMemory(t *testing.T) {
	ctx := context.Background()
	st := mem.New(nil)
	const chunk = engine.MinChunkSize
	r, err := engine.Init(ctx, st, engine.InitOptions{ChunkSize: chunk})
	if err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(disk)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(24000 * chunk); err != nil { // sparse: 750 KiB of chunk IDs an image
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("some data"), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := r.Backup(ctx, engine.BackupRequest{HostID: 1, HostName: "web-1", Disks: []engine.DiskSource{{Name: "vda", Path: disk}}}); err != nil {
		t.Fatal(err)
	}
	// An upgrade the budget refuses (as a small machine's default budget
	// would) has begun: the repository opens for nothing but the upgrade.
	_, err = engine.Upgrade(ctx, st, engine.UpgradeOptions{Password: []byte("correct horse"), KDF: key.Params{Time: 1, MemoryKiB: 64, Threads: 1},
		Options: engine.Options{MaxMemory: 1 << 20}})
	if !errors.Is(err, engine.ErrMemory) {
		t.Fatalf("upgrade under a budget of 1 MiB: %v, want refused", err)
	}
	if _, err := engine.Open(ctx, st, engine.Options{}); !errors.Is(err, engine.ErrLocked) {
		t.Fatalf("open after the refused upgrade: %v, want refused until the upgrade ends", err)
	}
	t.Setenv(MaxMemoryEnv, "1MiB")
	p, err := New(ctx, Options{Repo: "mem", Store: st})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.UpgradeRepo(ctx, provider.RepoUpgradeOptions{Password: []byte("correct horse"), KDF: "t=1,m=64KiB,p=1"})
	if !errors.Is(err, engine.ErrMemory) {
		t.Fatalf("repo upgrade with %s=1MiB and two images of 750 KiB: %v; want refused by the budget the variable sets", MaxMemoryEnv, err)
	}
}

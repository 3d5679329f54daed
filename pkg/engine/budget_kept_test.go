package engine

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/dropback/dropback/pkg/store/faulty"
	"github.com/dropback/dropback/pkg/store/mem"
)

// What a command keeps of a list after the list returns is counted: the
// manifests, host records and actions returned stay reserved until the
// next list of their kind, so what the command reserves next cannot take
// the budget's whole limit beside them.
func TestListsKeptStayReserved(t *testing.T) {
	dir := t.TempDir()
	r, _ := initPlainRepo(t, dir)
	ctx := context.Background()
	disk := filepath.Join(dir, "disk.img")
	makeDisk(t, disk, 4*testChunk, region{0, 4 * testChunk, "random"})
	for i := range 3 {
		if _, err := r.AddHost(ctx, HostRecord{Name: fmt.Sprintf("web-%d", i+1), Disks: []DiskSource{{Name: "disk0", Path: disk}}}); err != nil {
			t.Fatal(err)
		}
		backup(t, r, disk)
		if _, err := r.StartAction(ctx, "backup", "host", i+1); err != nil {
			t.Fatal(err)
		}
	}
	keptOf := func(kind string) int64 {
		r.mem.mu.Lock()
		defer r.mem.mu.Unlock()
		return r.mem.kept[kind].size()
	}

	ms, _, err := r.ManifestsAndDamage(ctx)
	if err != nil || len(ms) != 3 {
		t.Fatalf("list manifests: %d, %v", len(ms), err)
	}
	var wantM int64
	for _, m := range ms {
		wantM += manifestMemory(m)
	}
	if kept := keptOf("manifests"); kept != wantM {
		t.Fatalf("%d bytes reserved while the caller keeps %d manifests, want %d", kept, len(ms), wantM)
	}
	// A second list replaces the first: a command that lists again has
	// let go of the first list, or keeps both within twice the budget.
	if _, _, err := r.ManifestsAndDamage(ctx); err != nil {
		t.Fatal(err)
	}
	if kept := keptOf("manifests"); kept != wantM {
		t.Fatalf("%d bytes reserved after listing twice, want %d", kept, wantM)
	}
	hosts, _, err := r.HostsAndDamage(ctx)
	if err != nil || len(hosts) != 3 {
		t.Fatalf("list hosts: %d, %v", len(hosts), err)
	}
	var wantH int64
	for _, h := range hosts {
		wantH += hostMemory(h)
	}
	if kept := keptOf("hosts"); kept != wantH {
		t.Fatalf("%d bytes reserved while the caller keeps %d hosts, want %d", kept, len(hosts), wantH)
	}
	actions, _, _, err := r.ActionsPage(ctx, 1, 0)
	if err != nil || len(actions) != 3 {
		t.Fatalf("list actions: %d, %v", len(actions), err)
	}
	want := wantM + wantH + 3*actionMemory
	if held, kept := r.mem.Held(), r.mem.Kept(); held != want || kept != want {
		t.Fatalf("%d bytes reserved (%d kept) with the three lists kept, want %d", held, kept, want)
	}

	// What the command reserves next sees the lists it keeps.
	if _, err := r.mem.reserve(r.mem.limit-want+1, "a structure"); !errors.Is(err, ErrMemory) {
		t.Fatalf("a reservation past the budget beside the kept lists: %v, want refused", err)
	}
	h, err := r.mem.reserve(r.mem.limit-want, "a structure")
	if err != nil {
		t.Fatalf("a reservation up to the budget beside the kept lists: %v", err)
	}
	h.release()
	// repo stats gives back its index when it is done with it.
	if _, err := r.Stats(ctx); err != nil {
		t.Fatal(err)
	}
	if held := r.mem.Held() - r.mem.Kept(); held != 0 {
		t.Errorf("repo stats left %d bytes reserved beside the lists kept", held)
	}
	runtime.KeepAlive(ms)
	runtime.KeepAlive(hosts)
	runtime.KeepAlive(actions)
}

// A live backup reserves the image of the disk it reads before allocating
// it: a guest's disk of 1 TiB needs 32 MiB of chunk IDs, which a budget of
// 1 MiB refuses, naming the disk's size.
func TestLiveBackupReservesItsImage(t *testing.T) {
	dir := t.TempDir()
	r, st := initPlainRepo(t, dir)
	r, err := Open(context.Background(), st, Options{Password: testPassword, MaxMemory: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	rd := &hugeReader{size: 1 << 40}
	_, err = r.Backup(context.Background(), BackupRequest{
		HostID: 1, HostName: "vm", Disks: []DiskSource{{Name: "vda", Path: "/dev/null"}},
		Live: []LiveDisk{{Reader: rd}}, Consistency: ConsistencyCrash,
	})
	var me *MemoryError
	if !errors.As(err, &me) || me.Need != 32*(1<<40/testChunk) {
		t.Fatalf("live backup of a 1 TiB disk under a 1 MiB budget: %v, want refused for its image", err)
	}
	if held := r.mem.Held(); held != 0 {
		t.Errorf("%d bytes still reserved after the refusal", held)
	}
}

// hugeReader is a LiveReader of a disk that holds no data.
type hugeReader struct{ size int64 }

func (r *hugeReader) Size() int64 { return r.size }
func (r *hugeReader) ReadAt(_ context.Context, p []byte, _ int64) (int, error) {
	clear(p)
	return len(p), nil
}
func (r *hugeReader) DataRegions(context.Context) ([][2]int64, error) { return nil, nil }

// repo upgrade holds the image it reads and the image it writes under one
// budget: a disk whose two images pass the budget together stops the
// upgrade, which the next upgrade under a larger budget finishes, the
// backup restoring to its disk.
func TestUpgradeCopiesImagesUnderOneBudget(t *testing.T) {
	ctx := context.Background()
	st := mem.New(nil)
	r, err := Init(ctx, st, InitOptions{ChunkSize: testChunk})
	if err != nil {
		t.Fatal(err)
	}
	r.cfg.Version = 1 // written as version 1 was
	data, _ := seal(r.cfg)
	st.Set("config", data, r.now())
	const chunks = 24000 // 750 KiB of chunk IDs an image
	disk := filepath.Join(t.TempDir(), "disk.img")
	makeDisk(t, disk, chunks*testChunk, region{0, 2 * testChunk, "random"})
	m := backup(t, r, disk)

	opts := func(limit int64) UpgradeOptions {
		upgrades++
		return UpgradeOptions{Password: []byte(testPasswordText), KDF: testKDF,
			Options: Options{MaxMemory: limit, Machine: upgradeProcess{pid: 100000 + upgrades}}}
	}
	_, err = Upgrade(ctx, st, opts(1<<20))
	var me *MemoryError
	if !errors.As(err, &me) || me.Need != 32*chunks {
		t.Fatalf("upgrade with two images of %d KiB under a budget of 1 MiB: %v, want refused", 32*chunks>>10, err)
	}
	if res, err := Upgrade(ctx, st, opts(4<<20)); err != nil || !res.Finished || res.Backups != 1 {
		t.Fatalf("upgrade under 4 MiB: %+v, %v", res, err)
	}
	nr, err := Open(ctx, st, Options{Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}
	got, err := nr.Manifest(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out.img")
	restoreTo(t, nr, got, false, out)
	if fileHash(t, disk) != fileHash(t, out) {
		t.Fatal("the upgraded backup restores other bytes")
	}
}

// A list that fails before it reads the catalogs it started loading gives
// back what they hold: a long-running agent whose listings fail now and
// then does not lose budget to them.
func TestFailedListGivesBackItsCatalogs(t *testing.T) {
	dir := t.TempDir()
	r, st := initPlainRepo(t, dir)
	ctx := context.Background()
	disk := filepath.Join(dir, "disk.img")
	makeDisk(t, disk, 4*testChunk, region{0, 4 * testChunk, "random"})
	if _, err := r.AddHost(ctx, HostRecord{Name: "web-1", Disks: []DiskSource{{Name: "disk0", Path: disk}}}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		backup(t, r, disk)
	}
	if res, err := r.GC(ctx, noMinAge); err != nil || res.Catalogs == 0 {
		t.Fatalf("gc to write a catalog: %+v, %v", res, err)
	}
	for _, prefix := range []string{"backups/", "hosts/"} {
		fs := faulty.New(st, faulty.Rule{Op: faulty.List, Pattern: prefix})
		fr, err := Open(ctx, fs, Options{Password: testPassword})
		if err != nil {
			t.Fatal(err)
		}
		var listErr error
		if prefix == "backups/" {
			_, _, listErr = fr.ManifestsAndDamage(ctx)
		} else {
			_, _, listErr = fr.HostsAndDamage(ctx)
		}
		if !errors.Is(listErr, faulty.ErrInjected) {
			t.Fatalf("list with %s failing: %v", prefix, listErr)
		}
		// Whatever the list left running has had time to end.
		time.Sleep(500 * time.Millisecond)
		if held := fr.mem.Held(); held != 0 {
			t.Errorf("a list whose listing of %s failed left %d bytes reserved", prefix, held)
		}
	}
}

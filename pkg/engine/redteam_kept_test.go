package engine

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dropback/dropback/internal/fakeclock"

	"github.com/dropback/dropback/pkg/store/mem"
)

// kept is a repository of one real backup, m, plus copies of its
// manifest under other IDs: s is what the manifests reserve when kept, l
// what the listing of their names takes beside them.
type kept struct {
	st   *mem.Store
	clk  *fakeclock.Clock
	m    *Manifest
	s, l int64
}

// open opens the repository under a memory budget of limit (0: the
// default), as a process does.
func (k *kept) open(limit int64) *Repo {
	r, err := Open(context.Background(), k.st, Options{Password: testPassword, MaxMemory: limit, Now: k.clk.Now, After: k.clk.After})
	if err != nil {
		panic(err)
	}
	return r
}

func newKept(t *testing.T, n int) *kept {
	t.Helper()
	ctx := context.Background()
	r, st, clk := memRepo(t)
	disk := filepath.Join(t.TempDir(), "disk.img")
	makeDisk(t, disk, 4*testChunk, region{0, 4 * testChunk, "random"})
	m := backup(t, r, disk)
	for id := m.ID + 1; id < m.ID+n; id++ {
		c := *m
		c.ID = id
		data, err := seal(&c)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.st.Put(ctx, objectName("backups", id), data); err != nil {
			t.Fatal(err)
		}
	}
	ms, _, err := r.ManifestsAndDamage(ctx)
	if err != nil || len(ms) != n {
		t.Fatalf("list %d manifests: %d, %v", n, len(ms), err)
	}
	k := &kept{st: st, clk: clk, m: m, l: int64((n+63)/64) * 64 * listEntryMemory}
	for _, m := range ms {
		k.s += manifestMemory(m)
	}
	return k
}

// A long-lived Repo (the agent's, `backups serve`'s) lists the backups
// once; the second list of the same kind is reserved beside the first,
// which stays kept until a list succeeds, so once one list takes more than
// half of what the budget leaves, every later list on that Repo is refused
// for good, though one list fits and a process started anew lists at once:
// the agent's pass (which lists the backups before anything) takes no
// backup and expires nothing until it is restarted, and gc stops too.
func TestRedteamKeptSecondListRefusedForGood(t *testing.T) {
	ctx := context.Background()
	k := newKept(t, 600)
	limit := 2 * k.s // one list (s + l) fits, two (2s + l) do not
	if k.s+k.l > limit {
		t.Fatalf("setup: a list of %d bytes and its listing of %d do not fit %d", k.s, k.l, limit)
	}
	long := k.open(limit)
	if _, _, err := long.ManifestsAndDamage(ctx); err != nil {
		t.Fatalf("first list under a budget that fits it: %v", err)
	}
	var refusals []error
	for range 3 { // passes of the agent, pages of `backups serve`
		if _, _, err := long.ManifestsAndDamage(ctx); err != nil {
			refusals = append(refusals, err)
		}
	}
	fresh := k.open(limit)
	if _, _, err := fresh.ManifestsAndDamage(ctx); err != nil {
		t.Fatalf("a fresh process under the same budget: %v", err)
	}
	if _, err := long.GC(ctx, noMinAge); errors.Is(err, ErrMemory) {
		refusals = append(refusals, err)
	}
	if len(refusals) > 0 {
		t.Fatalf("after one list, %d later lists and gc on the same Repo are refused though one list fits (a fresh process lists at once); first: %v; %d bytes still held",
			len(refusals), refusals[0], long.mem.Held())
	}
}

// One `dropback gc` that condemns something with no grace period (the
// default, on a store whose listings do not lag) surveys twice: to mark,
// then to sweep. The second survey's list of the backups is reserved
// beside the first, kept since, so a gc whose one survey fits the budget
// is refused half-way, after it condemned, every time it finds garbage.
func TestRedteamKeptGCRefusedAtItsSecondSurvey(t *testing.T) {
	ctx := context.Background()
	k := newKept(t, 600)
	big := k.open(0)
	// A backup of other data, deleted an hour ago: its pack is garbage.
	disk := filepath.Join(t.TempDir(), "other.img")
	makeDisk(t, disk, 5*testChunk, region{0, 5 * testChunk, "random"}) // other bytes: another size seeds them
	gone := backup(t, big, disk)
	if err := big.DeleteBackup(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	k.clk.Advance(time.Hour)
	limit := 2 * k.s
	if k.s+k.l > limit {
		t.Fatalf("setup: %d + %d > %d", k.s, k.l, limit)
	}
	res, err := k.open(limit).GC(ctx, GCOptions{})
	if err != nil {
		t.Fatalf("one gc under a budget that fits its survey: %v (%+v)", err, res)
	}
	if res.DeletedPacks == 0 {
		t.Errorf("gc deleted no pack: %+v", res)
	}
}

// Held: a delete refused by the budget (what the command holds already
// leaves no room for the list that checks the host keeps a backup) fails
// with one line naming the budget, and deletes nothing: the backup still
// restores.
func TestRedteamKeptRefusedDeleteDeletesNothing(t *testing.T) {
	ctx := context.Background()
	k := newKept(t, 600)
	r := k.open(2 * k.s)
	other, err := r.mem.reserve(3*k.s/2, "the command's other structures")
	if err != nil {
		t.Fatal(err)
	}
	defer other.release()
	err = r.DeleteBackupUnlessLast(ctx, k.m.ID)
	if !errors.Is(err, ErrMemory) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("delete with the budget taken by the kept list: %v; want one line, refused by the budget", err)
	}
	if err := r.ExpireUnlessLast(ctx, k.m.ID); !errors.Is(err, ErrMemory) {
		t.Fatalf("retention's expiry with the budget taken: %v; want refused by the budget", err)
	}
	big := k.open(0)
	got, err := big.Manifest(ctx, k.m.ID)
	if err != nil {
		t.Fatalf("the backup a refused delete named: %v", err)
	}
	if ms, _, err := big.ManifestsAndDamage(ctx); err != nil || len(ms) != 600 {
		t.Fatalf("%d backups after the refused deletes, want 600: %v", len(ms), err)
	}
	out := filepath.Join(t.TempDir(), "out.img")
	restoreTo(t, big, got, false, out)
}

// Held: lists of every kind, index loads and image loads at once on one
// Repo, under a budget that refuses some of them, neither deadlock nor
// leave the budget's accounting wrong: once they end, what is held is what
// the lists last returned keep, and with the lists listed again one by
// one, exactly those.
func TestRedteamKeptConcurrentListsKeepTheAccounting(t *testing.T) {
	ctx := context.Background()
	k := newKept(t, 40)
	setup := k.open(0)
	for i := range 5 {
		if _, err := setup.AddHost(ctx, HostRecord{Name: fmt.Sprintf("h%d", i), Disks: []DiskSource{{Name: "vda", Path: "/dev/null"}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := setup.StartAction(ctx, "backup", "host", i+1); err != nil {
			t.Fatal(err)
		}
	}
	for _, limit := range []int64{0, k.s + 64*listEntryMemory} {
		r := k.open(limit)
		var wg sync.WaitGroup
		var refused atomic.Int64
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 30 {
					var err error
					switch (g + i) % 5 {
					case 0:
						_, _, err = r.ManifestsAndDamage(ctx)
					case 1:
						_, _, err = r.HostsAndDamage(ctx)
					case 2:
						_, _, _, err = r.ActionsPage(ctx, 1+i%2, 3)
					case 3:
						var idx *Index
						if idx, _, err = r.LoadIndex(ctx); err == nil {
							idx.release()
						}
					case 4:
						var im *Image
						if im, err = r.LoadDiskImage(ctx, k.m, 0); err == nil {
							im.release()
						}
					}
					if errors.Is(err, ErrMemory) {
						refused.Add(1)
					} else if err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(2 * time.Minute):
			t.Fatal("lists, index and image loads at once did not end: deadlock")
		}
		if held, kept := r.mem.Held(), r.mem.Kept(); held != kept || held < 0 {
			t.Fatalf("budget %d: %d bytes held after everything ended, %d kept (%d refusals)", limit, held, kept, refused.Load())
		}
		r.mem.keep("manifests", &memHold{b: r.mem}, 0) // a command that let its lists go
		r.mem.keep("hosts", &memHold{b: r.mem}, 0)
		r.mem.keep("actions", &memHold{b: r.mem}, 0)
		if held := r.mem.Held(); held != 0 {
			t.Fatalf("budget %d: %d bytes held with no list kept", limit, held)
		}
		t.Logf("budget %d: %d refusals", limit, refused.Load())
	}
}

// Held: a live incremental backup whose base image does not fit beside
// the new image it reserved first reads the disk whole, and restores the
// disk's bytes: the refusal is not taken for a base to trust.
func TestRedteamKeptLiveBaseRefusedReadsWhole(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	r, st := newRepo(t)
	const chunks = 2000 // 62.5 KiB of chunk IDs an image
	disk := filepath.Join(dir, "vda.img")
	makeDisk(t, disk, chunks*testChunk, region{0, 4 * testChunk, "random"}, region{100 * testChunk, 2 * testChunk, "text"})
	first, _, _ := liveBackup(t, r, disk, "b1", nil)
	changed := [][2]int64{{testChunk + 10, testChunk + 20}}
	writeAt(t, disk, changed[0][0], []byte("0123456789"))
	small, err := Open(ctx, st, Options{Password: testPassword, MaxMemory: 2 * 32 * chunks})
	if err != nil {
		t.Fatal(err)
	}
	second, rd, notices := liveBackup(t, small, disk, "b2", &Changes{Bitmap: "b1", Regions: changed})
	if second.Disks[0].Since != nil || len(notices) != 1 || !strings.Contains(notices[0], "memory budget") {
		t.Fatalf("since %+v, notices %q: want a whole read, the budget named", second.Disks[0].Since, notices)
	}
	if got := rd.read.Load(); got != 6*testChunk {
		t.Errorf("read %d bytes, want the disk's data whole (%d)", got, 6*testChunk)
	}
	out := filepath.Join(dir, "out.img")
	restoreTo(t, r, second, false, out)
	if fileHash(t, out) != fileHash(t, disk) {
		t.Fatal("the live backup taken beside a refused base restores other bytes")
	}
	_ = first
}

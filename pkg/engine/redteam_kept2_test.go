package engine

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Held: on one Repo whose budget fits two lists of the backups but not
// three, lists of the backups run at once with the keep-last guard (delete
// and retention's expiry of a host's only backup), deletes of another
// host's backups and gc, as the agent, `backups serve` and a delete share
// a Repo. listAgain gives back only lists already returned, so a list
// being read is never released under another: the guard either refuses
// (last backup, or the budget) or never runs on a partial list; the held
// count never goes below zero; nothing deadlocks; and the only backup of
// the host restores its disk's bytes afterwards, after a gc under the
// default budget (the gc runs beside the lists were refused by the budget
// or the lease each time they were measured).
func TestRedteamKept2GuardAndGCUnderConcurrentLists(t *testing.T) {
	ctx := context.Background()
	const n = 60
	k := newKept(t, 1)
	setup := k.open(0)
	disk := filepath.Join(t.TempDir(), "disk.img")
	makeDisk(t, disk, 4*testChunk, region{0, 4 * testChunk, "random"})
	// k.m is host A's only backup; n copies of its manifest are host B's.
	for id := k.m.ID + 1; id <= k.m.ID+n; id++ {
		c := *k.m
		c.ID, c.HostID, c.HostName = id, k.m.HostID+1, "other"
		data, err := seal(&c)
		if err != nil {
			t.Fatal(err)
		}
		if err := setup.st.Put(ctx, objectName("backups", id), data); err != nil {
			t.Fatal(err)
		}
	}
	ms, _, err := setup.ManifestsAndDamage(ctx)
	if err != nil || len(ms) != n+1 {
		t.Fatalf("setup: %d manifests, %v", len(ms), err)
	}
	var s int64
	for _, m := range ms {
		s += manifestMemory(m)
	}
	l := int64((n+1+63)/64) * 64 * listEntryMemory
	limit := 2*(s+l) + s // two lists being read at once fit; three do not
	r := k.open(limit)

	var wg sync.WaitGroup
	var refused, deleted, negative, gcs atomic.Int64
	stop := make(chan struct{})
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, _, err := r.ManifestsAndDamage(ctx)
				if errors.Is(err, ErrMemory) {
					refused.Add(1)
				} else if err != nil {
					t.Error(err)
					return
				}
				if r.mem.Held() < 0 {
					negative.Add(1)
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	var guardErrs []error
	var mu sync.Mutex
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 40 {
			var err error
			if i%2 == 0 {
				err = r.DeleteBackupUnlessLast(ctx, k.m.ID)
			} else {
				err = r.ExpireUnlessLast(ctx, k.m.ID)
			}
			if err == nil || !(errors.Is(err, ErrLastBackup) || errors.Is(err, ErrMemory)) {
				mu.Lock()
				guardErrs = append(guardErrs, err)
				mu.Unlock()
			}
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for id := k.m.ID + 1; id <= k.m.ID+n/2; id++ {
			if err := r.DeleteBackupUnlessLast(ctx, id); err == nil {
				deleted.Add(1)
			} else if !errors.Is(err, ErrMemory) {
				t.Error(err)
				return
			}
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 3 {
			_, err := r.GC(ctx, noMinAge)
			if err == nil {
				gcs.Add(1)
			} else if !errors.Is(err, ErrMemory) && !errors.As(err, new(*LockedError)) {
				t.Errorf("gc: %v", err)
				return
			}
		}
	}()
	done := make(chan struct{})
	go func() {
		time.Sleep(3 * time.Second)
		close(stop)
	}()
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Minute):
		t.Fatal("lists, guarded deletes and gc at once did not end: deadlock")
	}
	if len(guardErrs) > 0 {
		t.Fatalf("the guard on host A's only backup: %v; want refused (last backup, or the budget) every time", guardErrs[0])
	}
	if negative.Load() > 0 {
		t.Fatalf("held went below zero %d times", negative.Load())
	}
	if held, kept := r.mem.Held(), r.mem.Kept(); held != kept {
		t.Fatalf("%d bytes held after everything ended, %d kept", held, kept)
	}
	t.Logf("%d lists refused, %d of host B's backups deleted, %d gc runs ended", refused.Load(), deleted.Load(), gcs.Load())
	big := k.open(0)
	if _, err := big.GC(ctx, noMinAge); err != nil {
		t.Fatal(err)
	}
	got, err := big.Manifest(ctx, k.m.ID)
	if err != nil {
		t.Fatalf("host A's only backup: %v", err)
	}
	out := filepath.Join(t.TempDir(), "out.img")
	restoreTo(t, big, got, false, out)
	if fileHash(t, out) != fileHash(t, disk) {
		t.Fatal("host A's only backup restores other bytes")
	}
}

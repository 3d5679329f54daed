package engine

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dropback/dropback/pkg/store/faulty"
)

// advanceWithHeartbeats moves the clock d in steps of a minute, each time
// waiting for every heartbeat to refresh its marker and sleep again, as
// real time would let it.
func advanceWithHeartbeats(t *testing.T, clk interface {
	Advance(time.Duration)
	Waiters() int
}, d time.Duration, sleepers int) {
	t.Helper()
	for step := time.Duration(0); step < d; step += time.Minute {
		clk.Advance(time.Minute)
		deadline := time.Now().Add(10 * time.Second)
		for clk.Waiters() < sleepers {
			if time.Now().After(deadline) {
				t.Fatalf("the heartbeats did not go back to sleep after %s", step)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// A backup that runs for 12 hours keeps gc from deleting what it uses: its
// marker is refreshed all along, so gc marks the data of a deleted backup
// the running one reuses, but keeps it, and the backup restores.
func TestTwelveHourBackupKeepsItsProtection(t *testing.T) {
	ctx := context.Background()
	r, st, clk := memRepo(t)
	fs := faulty.New(st)
	r.st = fs
	src := filepath.Join(t.TempDir(), "src.img")
	makeDisk(t, src, 8*testChunk, region{0, 8 * testChunk, "random"})
	old := backup(t, r, src)
	clk.Advance(24 * time.Hour)
	var gcRes *GCResult
	var gcErr error
	fs.Set(faulty.Rule{Op: faulty.Put, Pattern: "images/", Times: 1, Hook: func() {
		// The backup has read its disk against the index, and now takes
		// 12 hours; meanwhile its source backup is deleted and collected.
		if err := r.DeleteBackup(ctx, old.ID); err != nil {
			t.Error(err)
		}
		advanceWithHeartbeats(t, clk, 12*time.Hour, 1)
		gcRes, gcErr = r.GC(ctx, GCOptions{})
	}})
	m, err := r.Backup(ctx, BackupRequest{HostID: 1, HostName: "web-1", Disks: []DiskSource{{Name: "vda", Path: src}}})
	if err != nil {
		t.Fatalf("the 12-hour backup: %v", err)
	}
	if gcErr != nil || gcRes.CondemnedPacks == 0 || gcRes.DeletedPacks != 0 || !strings.Contains(gcRes.DeferredFor, "backup") {
		t.Fatalf("gc during the backup: %+v, %v; want the old packs condemned and kept for the backup", gcRes, gcErr)
	}
	if m.NewChunks != 0 {
		t.Fatalf("the backup stored %d chunks; it should have reused the old backup's", m.NewChunks)
	}
	fs.Set()
	if _, err := r.GC(ctx, GCOptions{}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out.img")
	restoreTo(t, r, m, false, out)
	if fileHash(t, out) != fileHash(t, src) {
		t.Fatal("the 12-hour backup does not restore byte-identical after gc")
	}
}

// An operation that cannot refresh its marker stops before gc may count it
// as gone, and a backup so stopped leaves no backup behind.
func TestOperationThatCannotRefreshStops(t *testing.T) {
	ctx := context.Background()
	r, st, clk := memRepo(t)
	fs := faulty.New(st)
	r.st = fs
	src := filepath.Join(t.TempDir(), "src.img")
	makeDisk(t, src, 4*testChunk, region{0, 4 * testChunk, "random"})
	fs.Set(faulty.Rule{Op: faulty.Put, Pattern: "images/", Times: 1, Hook: func() {
		fs.Set(faulty.Rule{Op: faulty.Put, Pattern: "running/"}) // every refresh fails
		for range 6 {
			clk.Advance(time.Minute)
			time.Sleep(20 * time.Millisecond) // let the heartbeat try
		}
	}})
	_, err := r.Backup(ctx, BackupRequest{HostID: 1, HostName: "web-1", Disks: []DiskSource{{Name: "vda", Path: src}}})
	if !errors.Is(err, ErrLostProtection) {
		t.Fatalf("a backup that could not refresh its marker for 6 minutes: %v, want ErrLostProtection", err)
	}
	fs.Set()
	if ms, err := r.Manifests(ctx); err != nil || len(ms) != 0 {
		t.Fatalf("backups after the stopped one: %v, %v; want none", ms, err)
	}
}

// Only one gc runs at a time: a second one is refused, naming the holder,
// until the holder lets go, or its process ended here, or its marker went
// stale elsewhere.
func TestGCLeaseIsExclusive(t *testing.T) {
	ctx := context.Background()
	r, st, clk := memRepo(t)
	other := openedRepo(st, r.cfg, r.key, r.sec, Options{Now: clk.Now, After: clk.After,
		Machine: fixedMachine{processID{Hostname: "elsewhere", PID: 7, BootID: "b2", PIDNS: "pid:[2]"}}})
	op, err := other.Begin(ctx, OpGC, 0)
	if err != nil {
		t.Fatal(err)
	}
	gen, err := other.acquireLease(ctx, op, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.GC(ctx, GCOptions{})
	var locked *LockedError
	if !errors.As(err, &locked) || !strings.Contains(locked.Holder, "elsewhere (PID 7)") {
		t.Fatalf("gc while another holds the lease: %v, want a LockedError naming elsewhere (PID 7)", err)
	}
	other.releaseLease(ctx, gen)
	op.End()
	if _, err := r.GC(ctx, GCOptions{}); err != nil {
		t.Fatalf("gc after the holder let go: %v", err)
	}

	// A holder of another machine that died without letting go: its lease
	// counts until its marker went StaleAfter unrefreshed.
	op, _ = other.Begin(ctx, OpGC, 0)
	if _, err := other.acquireLease(ctx, op, 0); err != nil {
		t.Fatal(err)
	}
	op.stopHeartbeat() // killed: the marker stays, unrefreshed
	clk.Advance(StaleAfter - time.Minute)
	if _, err := r.GC(ctx, GCOptions{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("gc before the dead holder went stale: %v, want ErrLocked", err)
	}
	clk.Advance(3 * time.Minute)
	if _, err := r.GC(ctx, GCOptions{}); err != nil {
		t.Fatalf("gc after the dead holder went stale: %v", err)
	}
}

// fixedMachine is a process of another machine: nothing of it is known to
// end.
type fixedMachine struct{ self processID }

func (m fixedMachine) Self() processID        { return m.self }
func (m fixedMachine) Ended(p processID) bool { return false }

// stopHeartbeat stops refreshing the marker and leaves it, as a process
// killed would.
func (o *Op) stopHeartbeat() {
	close(o.stop)
	<-o.done
}

// A verify whose reads are cut short by its end (its protection lost, or
// the user's Ctrl-C) while it notes damage fails; it never reports the cut
// as damage found in a sound repository.
func TestVerifyCutShortReportsNoDamage(t *testing.T) {
	r, st, _ := memRepo(t)
	src := filepath.Join(t.TempDir(), "src.img")
	makeDisk(t, src, 4*testChunk, region{0, 4 * testChunk, "random"})
	backup(t, r, src)
	fs := faulty.New(st)
	rv := openedRepo(fs, r.cfg, r.key, r.sec, Options{Now: r.now, After: r.after})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The index lists the damage records first; noteDamage lists them again.
	fs.Set(faulty.Rule{Op: faulty.List, Pattern: "damaged/", After: 1, Hook: cancel, Err: context.Canceled})
	res, err := rv.Verify(ctx, nil, nil)
	if err == nil {
		t.Fatalf("verify cut short succeeded with problems %q", res.Problems)
	}
}

package engine

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/dropback/dropback/pkg/store"
)

// hookStore runs hook once, before or after the Put of the object named at.
type hookStore struct {
	store.Store
	at     string
	before bool
	hook   func()
	done   bool
}

func (h *hookStore) Put(ctx context.Context, name string, data []byte) error {
	fire := !h.done && name == h.at
	if fire && h.before {
		h.done = true
		h.hook()
	}
	err := h.Store.Put(ctx, name, data)
	if fire && !h.before {
		h.done = true
		h.hook()
	}
	return err
}

// TestDeleteBackupUnlessLastAgainstAnotherDeleter: two deleters each delete
// one of a host's last two backups; the second runs whole at each point of
// the first's writes. Whatever the order, the host keeps a backup, and a
// delete that reported success did delete.
// A is a user's delete, or retention's expire, which also decides the
// backup's fate; B is a user's delete.
func TestDeleteBackupUnlessLastAgainstAnotherDeleter(t *testing.T) {
	points := []struct {
		at     string
		before bool
	}{
		{"deleting/0000000001", true},
		{"deleting/0000000001", false},
		{"fate/0000000001", true}, // expire only: A has checked and decides the fate
		{"fate/0000000001", false},
		{"deleted/0000000001", true}, // A has checked and is about to delete
		{"deleted/0000000001", false},
	}
	for _, a := range []string{"delete", "expire"} {
		for _, pt := range points {
			if a == "delete" && pt.at == "fate/0000000001" {
				continue
			}
			t.Run(fmt.Sprintf("%s %s before=%v", a, pt.at, pt.before), func(t *testing.T) {
				ctx := context.Background()
				r, st := newRepo(t)
				disk := filepath.Join(t.TempDir(), "d.img")
				makeDisk(t, disk, 4*testChunk, region{0, testChunk, "random"})
				backup(t, r, disk)
				backup(t, r, disk)
				rB, err := Open(ctx, st, Options{Password: testPassword})
				if err != nil {
					t.Fatal(err)
				}
				var errB error
				hs := &hookStore{Store: st, at: pt.at, before: pt.before, hook: func() { errB = rB.DeleteBackupUnlessLast(ctx, 2) }}
				rA, err := Open(ctx, hs, Options{Password: testPassword})
				if err != nil {
					t.Fatal(err)
				}
				delA := rA.DeleteBackupUnlessLast
				if a == "expire" {
					delA = rA.ExpireUnlessLast
				}
				errA := delA(ctx, 1)
				if !hs.done {
					t.Fatalf("the second deleter never ran (no Put of %s)", pt.at)
				}
				left, err := r.Manifests(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if len(left) == 0 {
					t.Fatalf("the host has no backup left: A %v, B %v", errA, errB)
				}
				for id, e := range map[int]error{1: errA, 2: errB} {
					if e != nil && !errors.Is(e, ErrLastBackup) {
						t.Fatalf("delete %d: %v", id, e)
					}
					_, gone := r.Manifest(ctx, id)
					if (e == nil) != errors.Is(gone, ErrNotFound) {
						t.Fatalf("delete %d reported %v, but the backup is gone: %v", id, e, gone)
					}
				}
				if deleting, _ := r.listIDs(ctx, "deleting"); len(deleting) != 0 {
					t.Fatalf("deleting markers left: %v", deleting)
				}
			})
		}
	}
}

// TestDeleteBackupUnlessLastKeepsASnapshot: a snapshot counts as a backup
// the host keeps; the last one is refused.
func TestDeleteBackupUnlessLastKeepsASnapshot(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepo(t)
	disk := filepath.Join(t.TempDir(), "d.img")
	makeDisk(t, disk, 2*testChunk, region{0, testChunk, "text"})
	backup(t, r, disk)
	backup(t, r, disk)
	if err := r.MarkSnapshot(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := r.DeleteBackupUnlessLast(ctx, 2); err != nil {
		t.Fatalf("backup 2 with snapshot 1 beside it: %v", err)
	}
	if err := r.DeleteBackupUnlessLast(ctx, 1); !errors.Is(err, ErrLastBackup) {
		t.Fatalf("the last one: %v, want ErrLastBackup", err)
	}
}

// TestExpireUnlessLast: retention's delete keeps a host's last backup
// without deciding its fate, so it can still be converted; keeps a backup
// converted since retention read it; and expires one that has another
// backup beside it, deciding its fate so that convert then fails.
func TestExpireUnlessLast(t *testing.T) {
	ctx := context.Background()
	r, st := newRepo(t)
	disk := filepath.Join(t.TempDir(), "d.img")
	makeDisk(t, disk, 2*testChunk, region{0, testChunk, "text"})
	backup(t, r, disk)
	backup(t, r, disk)
	backup(t, r, disk)
	if err := r.DeleteBackup(ctx, 3); err != nil { // a user deletes the newest
		t.Fatal(err)
	}
	if err := r.MarkSnapshot(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if err := r.ExpireUnlessLast(ctx, 2); !errors.Is(err, ErrKept) {
		t.Fatalf("expire of snapshot 2: %v, want ErrKept", err)
	}
	if err := r.ExpireUnlessLast(ctx, 1); err != nil {
		t.Fatalf("expire of backup 1 beside snapshot 2: %v", err)
	}
	if err := r.MarkSnapshot(ctx, 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("convert of expired backup 1: %v, want ErrNotFound", err)
	}
	if err := r.DeleteBackup(ctx, 2); err != nil {
		t.Fatal(err)
	}
	backup(t, r, disk) // 4, the host's only backup
	if err := r.ExpireUnlessLast(ctx, 4); !errors.Is(err, ErrLastBackup) {
		t.Fatalf("expire of the last backup: %v, want ErrLastBackup", err)
	}
	if _, err := st.Stat(ctx, objectName("fate", 4)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a kept last backup has a fate: %v", err)
	}
	if err := r.MarkSnapshot(ctx, 4); err != nil {
		t.Fatalf("convert of the kept last backup: %v", err)
	}
}

// A guarded delete goes on only under a marker of its own: another
// deleter's deleting/ marker refuses it, however old (that deleter
// decides); gc removes one left by a deleter that died StaleAfter ago, and
// the delete then goes through.
func TestGuardedDeleteNeedsAMarkerOfItsOwn(t *testing.T) {
	ctx := context.Background()
	r, st, clk := memRepo(t)
	disk := filepath.Join(t.TempDir(), "disk.img")
	makeDisk(t, disk, 2*testChunk, region{0, 2 * testChunk, "random"})
	a := backup(t, r, disk)
	backup(t, r, disk)
	if err := st.Put(ctx, objectName("deleting", a.ID), []byte("{}\n")); err != nil {
		t.Fatal(err)
	}
	if err := r.ExpireUnlessLast(ctx, a.ID); !errors.Is(err, ErrBeingDeleted) {
		t.Fatalf("expire beside another deleter's marker: %v, want ErrBeingDeleted", err)
	}
	clk.Advance(StaleAfter + clockSkew + time.Minute)
	if err := r.DeleteBackupUnlessLast(ctx, a.ID); !errors.Is(err, ErrBeingDeleted) {
		t.Fatalf("delete beside a marker left %s ago: %v, want ErrBeingDeleted", StaleAfter+clockSkew+time.Minute, err)
	}
	if _, err := r.Manifest(ctx, a.ID); err != nil {
		t.Fatalf("the refused deletes deleted backup %d: %v", a.ID, err)
	}
	if _, err := r.GC(ctx, noMinAge); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Stat(ctx, objectName("deleting", a.ID)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("gc left the marker of a deleter that died: %v", err)
	}
	if err := r.DeleteBackupUnlessLast(ctx, a.ID); err != nil {
		t.Fatalf("delete once gc removed the marker left behind: %v", err)
	}
}

// gc leaves a deleting/ marker younger than StaleAfter: its deleter may
// still be at work.
func TestGCKeepsAFreshDeletingMarker(t *testing.T) {
	ctx := context.Background()
	r, st, clk := memRepo(t)
	if err := st.Put(ctx, objectName("deleting", 7), []byte("{}\n")); err != nil {
		t.Fatal(err)
	}
	clk.Advance(StaleAfter - time.Minute)
	if _, err := r.GC(ctx, noMinAge); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Stat(ctx, objectName("deleting", 7)); err != nil {
		t.Fatalf("gc removed a marker %s old: %v", StaleAfter-time.Minute, err)
	}
}

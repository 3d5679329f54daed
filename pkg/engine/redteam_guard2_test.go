package engine

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dropback/dropback/pkg/store"
)

// A host has backups a and b. a's image index is lost (bit rot, a pack
// store that dropped an object), and a guarded delete of a (a user's
// `backups delete`, or retention) died after it wrote deleting/a: killed,
// or its deferred Delete failed with the network, as its delete did. Only
// gc removes that marker now (dropStaleDeleting), but gc stops at a's
// damage ("gc stopped, run `dropback backups verify`") before it gets
// there, every day. The damage is removed by deleting a, and the marker
// refuses that delete for good: "being deleted by another command".
// Retention never expires a either, and the host's other backup b can
// never be expired while a stands (a being "deleted" does not count).
func TestRedteamGuard2DamagedBackupsLeftMarkerBlocksItsDeleteForGood(t *testing.T) {
	ctx := context.Background()
	f := newCatalogFixture(t, false)
	a := f.backup(1, "web-1")
	other := filepath.Join(t.TempDir(), "other.img")
	makeDisk(t, other, 4*testChunk, region{0, 4 * testChunk, "random"})
	f.src = other
	b := f.backup(1, "web-1")
	if a.Disks[0].Image == b.Disks[0].Image {
		t.Fatal("a and b share their image index; the test needs them apart")
	}
	img, err := ParseID(a.Disks[0].Image)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.st.Delete(ctx, imageName(img)); err != nil { // the damage
		t.Fatal(err)
	}
	if err := f.st.Put(ctx, objectName("deleting", a.ID), []byte("{}\n")); err != nil { // the deleter that died
		t.Fatal(err)
	}
	for day := 1; day <= 3; day++ {
		f.clk.Advance(24 * time.Hour)
		_, gcErr := f.open(f.st, "").GC(ctx, noMinAge)
		t.Logf("day %d: gc: %v", day, gcErr)
	}
	err = f.open(f.st, "").DeleteBackupUnlessLast(ctx, a.ID)
	if _, serr := f.st.Stat(ctx, objectName("deleting", a.ID)); serr == nil {
		t.Errorf("three days and three gcs later deleting/%d is still there (gc stops at the damage before dropStaleDeleting)", a.ID)
	}
	if err != nil {
		t.Fatalf("three days after a delete of damaged backup %d died, `backups delete %d`, the way to remove the damage that stops gc: %v (host 1 still has %v)",
			a.ID, a.ID, err, f.left(1))
	}
}

// listHook runs hook once, after a List of prefix returned: between gc's
// listing of deleting/ and its checked delete of what it listed.
type listHook struct {
	store.Store
	prefix string
	once   sync.Once
	hook   func()
}

func (l *listHook) List(ctx context.Context, prefix string, fn func(store.Info) error) error {
	err := l.Store.List(ctx, prefix, fn)
	if prefix == l.prefix {
		l.once.Do(l.hook)
	}
	return err
}

// Held: gc judges a deleting/ marker by the store's time of its own lease,
// and by the marker's time again at its delete. A marker a deleter that
// died left is dropped; one written again between gc's listing and its
// delete (the old one removed by its paused owner, a new deleter's written
// since) is kept, as is one younger than StaleAfter before a lease taken
// long ago; and a guarded delete then goes through under the new marker's
// owner only.
func TestRedteamGuard2GCKeepsAMarkerWrittenAgainAfterItsListing(t *testing.T) {
	ctx := context.Background()
	f := newCatalogFixture(t, false)
	a := f.backup(1, "web-1")
	b := f.backup(1, "web-1")
	delA, delB := objectName("deleting", a.ID), objectName("deleting", b.ID)
	if err := f.st.Put(ctx, delA, []byte("{}\n")); err != nil {
		t.Fatal(err)
	}
	if err := f.st.Put(ctx, delB, []byte("{}\n")); err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(StaleAfter + clockSkew + time.Minute)
	lh := &listHook{Store: f.st, prefix: "deleting/", hook: func() {
		// Both were listed as stale. a's is written again meanwhile.
		if err := f.st.Delete(ctx, delA); err != nil {
			t.Error(err)
		}
		f.clk.Advance(time.Second)
		if err := f.st.Put(ctx, delA, []byte("{}\n")); err != nil {
			t.Error(err)
		}
	}}
	if _, err := f.open(lh, "").GC(ctx, noMinAge); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.Stat(ctx, delA); err != nil {
		t.Fatalf("gc deleted deleting/%d written again after its listing: %v", a.ID, err)
	}
	if _, err := f.st.Stat(ctx, delB); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("gc left the stale deleting/%d: %v", b.ID, err)
	}
	// b's delete must not count a, whose marker stands.
	if err := f.open(f.st, "").ExpireUnlessLast(ctx, b.ID); !errors.Is(err, ErrLastBackup) {
		t.Fatalf("expire of %d while %d is being deleted: %v", b.ID, a.ID, err)
	}
	if got := f.left(1); len(got) != 2 {
		t.Fatalf("left %v", got)
	}
}

package engine

// Red-team tests of the roll-up of deleted/ markers into deleted-ranges
// records (deletedranges.go): each takes what a user would notice (a backup
// that no longer opens or restores, an ID given twice, a verify that reports
// backups lost that were deleted) and fails while the change allows it.

import (
	"context"
	"errors"
	"testing"
)

// A plain repository whose one deleted-ranges record is damaged (a flipped
// byte: bit rot, or a write cut short by the disk) is upgraded. The upgrade
// copies every backup, swaps the encrypted objects in and deletes the plain
// packs, and only then reads the record to write its markers back: it
// fails there, on every run, and the repository is left half upgraded.
// Nothing deletes a deleted-ranges record ("never deleted"), so no command
// gets the user past it: every backup stays unreachable. A damaged manifest,
// by contrast, stops the upgrade before it changes anything. An upgrade
// must either finish, keeping every backup, or stop before it writes.
func TestRedteamUpgradeWithADamagedDeletedRangesRecordStrandsEveryBackup(t *testing.T) {
	ctx := context.Background()
	h := newPlainHistory(t)
	const rec = "deleted-ranges/00000000000000000001-0123456789abcdef"
	data, err := h.st.Get(ctx, rec, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	if !isPlain(data) {
		t.Fatal("setup: the record is not plain")
	}
	data[len(data)/2] ^= 1 // still plain, no longer sealed right
	info, err := h.st.Stat(ctx, rec)
	if err != nil {
		t.Fatal(err)
	}
	h.st.Set(rec, data, info.ModTime)

	_, err = upgrade(ctx, h.st)
	if err == nil {
		h.check(t) // it went through: every backup must be there
		return
	}
	t.Logf("upgrade: %v", err)
	if _, err := upgrade(ctx, h.st); err == nil {
		h.check(t)
		return
	} else {
		t.Logf("upgrade again: %v", err)
	}
	// It refuses: the repository must then be as it was, a plain one
	// whose backups restore.
	r, err := Open(ctx, h.st, Options{})
	if err != nil {
		t.Fatalf("repo upgrade fails for a damaged deleted-ranges record, again and again, and the repository no longer opens: %v", err)
	}
	ms, damaged, err := r.ManifestsAndDamage(ctx)
	if err != nil || len(damaged) > 0 || len(ms) != len(h.disks) {
		t.Fatalf("after a refused upgrade: %d backups, damaged %v, %v; want %d", len(ms), damaged, err, len(h.disks))
	}
	if _, _, err := r.LoadIndex(ctx); err != nil && !errors.Is(err, ErrNotFound) {
		t.Fatalf("after a refused upgrade: load the index: %v", err)
	}
}

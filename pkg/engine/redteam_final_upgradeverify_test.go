package engine

import (
	"context"
	"testing"

	"github.com/dropback/dropback/pkg/store/faulty"
)

// Found by review (failed before BeginReader refused as Begin does): a
// process that opened the plain repository before an upgrade began (a
// long-lived agent, or a `backups verify` that opened it a moment before)
// runs a verify while the upgrade copies. Its Begin refuses (upgrade/config
// is there), but Verify goes through BeginReader, which then goes on
// unannounced: the verify runs beside the upgrade. It finds the encrypted
// segments the upgrade just wrote under index/ unreadable with the plain
// config, and its index repair deletes them (idx has the plain segments,
// so the new guard does not apply). The upgrade ends "finished"; the
// encrypted repository's backups then lack their index.
func TestRedteamFinalVerifyBesideUpgradeDeletesEncryptedIndex(t *testing.T) {
	ctx := context.Background()
	h := newPlainHistory(t)
	old, err := Open(ctx, h.st, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var vres *VerifyResult
	var verr error
	hook := func() {
		vres, verr = old.Verify(ctx, nil, nil)
	}
	fs := faulty.New(h.st, faulty.Rule{Op: faulty.Put, Pattern: "upgrade/backups/*", Times: 1, Hook: hook})
	upgrades++
	if _, err := Upgrade(ctx, fs, UpgradeOptions{Password: []byte(testPasswordText), KDF: testKDF,
		Options: Options{Machine: upgradeProcess{pid: 100000 + upgrades}}}); err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	if vres != nil {
		t.Logf("the verify beside the upgrade: err %v, problems %q, notices %q", verr, vres.Problems, vres.Notices)
	} else {
		t.Logf("the verify beside the upgrade: err %v", verr)
	}
	h.check(t)
}

// The same, then what the user would do: a verify of the encrypted
// repository (to repair), or a gc. Does the repository come back?
func TestRedteamFinalVerifyBesideUpgradeAfterRepair(t *testing.T) {
	ctx := context.Background()
	h := newPlainHistory(t)
	old, err := Open(ctx, h.st, Options{})
	if err != nil {
		t.Fatal(err)
	}
	hook := func() { _, _ = old.Verify(ctx, nil, nil) }
	fs := faulty.New(h.st, faulty.Rule{Op: faulty.Put, Pattern: "upgrade/backups/*", Times: 1, Hook: hook})
	upgrades++
	if _, err := Upgrade(ctx, fs, UpgradeOptions{Password: []byte(testPasswordText), KDF: testKDF,
		Options: Options{Machine: upgradeProcess{pid: 100000 + upgrades}}}); err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	r, err := Open(ctx, h.st, Options{Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.GC(ctx, GCOptions{MinAge: -1}); err != nil {
		t.Logf("gc: %v", err)
	}
	res, err := r.Verify(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("verify of the encrypted repository: problems %q", res.Problems)
	h.check(t)
}

package engine

import (
	"context"
	"testing"

	"github.com/dropback/dropback/pkg/crypt"
	"github.com/dropback/dropback/pkg/store/faulty"
)

// An upgrade begun with --encryption xchacha20-poly1305 and cut short at
// any write or delete, then run again with the default (XAES-256-GCM),
// goes on with XChaCha20-Poly1305: every backup restores, nothing is left
// in plain, and the config names the AEAD the objects are sealed with.
// Holds (the result's Encryption is checked by
// TestRedteamXAESUpgradeResultNamesItsAEAD).
func TestRedteamXAESUpgradeResumedWithAnotherAEAD(t *testing.T) {
	ctx := context.Background()
	for _, op := range []faulty.Op{faulty.Put, faulty.Delete} {
		for after := 0; ; after++ {
			h := newPlainHistory(t)
			fs := faulty.New(h.st, faulty.Rule{Op: op, After: after, Times: 0})
			upgrades++
			_, err := Upgrade(ctx, fs, UpgradeOptions{Password: []byte(testPasswordText), KDF: testKDF,
				Cipher: crypt.XChaCha20Poly1305, Options: Options{Machine: upgradeProcess{pid: 100000 + upgrades}}})
			if err == nil {
				break
			}
			started := false
			if _, err := h.st.Stat(ctx, upgradeConfigName); err == nil {
				started = true
			}
			upgrades++
			if _, err := Upgrade(ctx, h.st, UpgradeOptions{Password: []byte(testPasswordText), KDF: testKDF,
				Cipher: crypt.XAES256GCM, Options: Options{Machine: upgradeProcess{pid: 100000 + upgrades}}}); err != nil {
				t.Fatalf("%s %d: the upgrade again with another AEAD: %v", op, after, err)
			}
			h.check(t)
			r, err := Open(ctx, h.st, Options{Password: testPassword})
			if err != nil {
				t.Fatal(err)
			}
			if started && r.cfg.Encryption != crypt.XChaCha20Poly1305 {
				t.Fatalf("%s %d: an upgrade begun with XChaCha20-Poly1305 ended as %s", op, after, r.cfg.Encryption)
			}
		}
	}
}

// What `repo upgrade` reports is the AEAD that seals the repository, on
// every path that finishes one, so that the user learns which it is (found
// by review: an upgrade resumed after the old config was deleted, or one
// that only removed a leftover upgrade/config, reported none).
func TestRedteamXAESUpgradeResultNamesItsAEAD(t *testing.T) {
	ctx := context.Background()
	for after := 0; ; after++ {
		h := newPlainHistory(t)
		fs := faulty.New(h.st, faulty.Rule{Op: faulty.Put, After: after, Times: 0})
		upgrades++
		_, err := Upgrade(ctx, fs, UpgradeOptions{Password: []byte(testPasswordText), KDF: testKDF,
			Cipher: crypt.XChaCha20Poly1305, Options: Options{Machine: upgradeProcess{pid: 100000 + upgrades}}})
		if err == nil {
			break
		}
		upgrades++
		res, err := Upgrade(ctx, h.st, UpgradeOptions{Password: []byte(testPasswordText), KDF: testKDF,
			Options: Options{Machine: upgradeProcess{pid: 100000 + upgrades}}})
		if err != nil {
			t.Fatalf("put %d: %v", after, err)
		}
		r, err := Open(ctx, h.st, Options{Password: testPassword})
		if err != nil {
			t.Fatal(err)
		}
		if res.Finished && res.Encryption != r.cfg.Encryption {
			t.Errorf("put %d failed; the upgrade that finished it reports encryption %q, the repository is sealed with %s",
				after, res.Encryption, r.cfg.Encryption)
		}
	}
}

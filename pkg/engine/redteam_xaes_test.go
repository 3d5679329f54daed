package engine

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/dropback/dropback/pkg/crypt"
)

// The config is stored plain, under an unkeyed seal. Found by review: when
// nothing but the config said which AEAD seals a repository (a key object
// bound the master key to the repository's ID only), anyone who could write
// to the store could rewrite the config's `encryption` to the other AEAD,
// and dropback then opened the repository with the right password and the
// wrong encryption key: nothing it held opened, and everything it wrote a
// right config could not open. A key object now binds the AEAD too, and
// such a config is refused before anything is read or written.

// otherAEAD is the AEAD a repository sealed with aead is not.
func otherAEAD(aead string) string {
	if aead == crypt.XAES256GCM {
		return crypt.XChaCha20Poly1305
	}
	return crypt.XAES256GCM
}

// swapAEAD rewrites the config of e's repository to name aead, sealed as a
// config is, and returns the config's bytes as they were.
func (e *cryptEnv) swapAEAD(aead string) []byte {
	e.t.Helper()
	orig, err := os.ReadFile(e.path("config"))
	if err != nil {
		e.t.Fatal(err)
	}
	cfg := e.r.cfg
	cfg.Encryption = aead
	data, err := seal(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.putConfig(data)
	return orig
}

func (e *cryptEnv) putConfig(data []byte) {
	e.t.Helper()
	if err := os.WriteFile(e.path("config"), data, 0o600); err != nil {
		e.t.Fatal(err)
	}
}

// restores checks that backup id restores from r to the bytes of disk.
func (e *cryptEnv) restores(r *Repo, id int, disk []byte, what string) {
	e.t.Helper()
	m, err := r.Manifest(e.ctx, id)
	if err != nil {
		e.t.Errorf("%s: backup %d: %v", what, id, err)
		return
	}
	out := filepath.Join(e.t.TempDir(), "out.img")
	if _, err := r.Restore(e.ctx, m, []RestoreTarget{{Path: out}}, nil); err != nil {
		e.t.Errorf("%s: restore backup %d: %v", what, id, err)
		return
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, disk) {
		e.t.Errorf("%s: backup %d restores to other bytes", what, id)
	}
}

// Found by review (failed before the AEAD was bound into the key objects):
// a whole-repository verify run while the config names the other AEAD found every index segment "damaged" (none opens), rebuilds nothing
// (no pack trailer opens either), writes an index-replaced/ marker for each
// sealed under the wrong key, and deletes every index segment. Once the
// config is put back, no backup restores ("chunk ... is missing from the
// repository") until a verify rebuilds the index from the packs, and gc
// stops for good: the markers it wrote never open, and verify does not
// clear them. Damage records that verify cannot open are deleted as well.
func TestRedteamXAESSwappedAEADVerifyDeletesTheIndex(t *testing.T) {
	forEachAEAD(t, func(t *testing.T, aead string) {
		e := newCryptEnvWith(t, aead)
		disk, err := os.ReadFile(e.webDisk)
		if err != nil {
			t.Fatal(err)
		}
		segs := e.names("index/")
		// A blob of the other host's backup damaged, and recorded so by
		// a verify under the right config.
		idx, _, err := e.r.LoadIndex(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		im, err := e.r.LoadDiskImage(e.ctx, e.db, 0)
		if err != nil {
			t.Fatal(err)
		}
		pack, loc, _ := idx.lookup(im.Chunks[0])
		idx.release()
		im.release()
		e.rewrite(packName(pack), func(b []byte) []byte { b[loc.offset+crypt.NonceSize+5] ^= 1; return b })
		if res, err := e.reopen().Verify(e.ctx, nil, nil); err != nil || !res.Damaged() {
			t.Fatalf("verify of a flipped blob: %+v, %v", res, err)
		}
		recs := e.names("damaged/")
		if len(recs) != 1 {
			t.Fatalf("damage records: %v", recs)
		}
		rec := recs[0]
		orig := e.swapAEAD(otherAEAD(aead))
		if r, err := Open(e.ctx, e.st, Options{Password: testPassword}); err == nil {
			if _, err := r.Verify(e.ctx, nil, nil); err != nil {
				t.Logf("verify under the swapped config: %v", err)
			}
		} else {
			t.Logf("a config that names the other AEAD is refused: %v", err)
		}
		e.putConfig(orig)
		if got := e.names("index/"); !slices.Equal(got, segs) {
			t.Errorf("index segments were %v; after a verify under a config naming %s: %v", segs, otherAEAD(aead), got)
		}
		if got := e.names("damaged/"); !slices.Contains(got, rec) {
			t.Errorf("the damage record %s was deleted by a verify under a config naming %s (left: %v)", rec, otherAEAD(aead), got)
		}
		if m := e.names("index-replaced/"); len(m) > 0 {
			t.Errorf("index-replaced/ markers written under the wrong key: %v", m)
		}
		r := e.reopen()
		e.restores(r, e.web.ID, disk, "config put back")
		for range 2 { // the second finds nothing left to repair
			if _, err := r.Verify(e.ctx, nil, nil); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := r.GC(e.ctx, GCOptions{}); err != nil {
			t.Errorf("gc, after the config is put back and two verifies: %v", err)
		}
	})
}

// Found by review (failed before the AEAD was bound into the key objects):
// a backup made while the config names the other AEAD succeeded
// (it deduplicates against nothing, since no segment opens, and seals
// everything under the other key), and writes an image-repaired/ marker
// for each image it finds "damaged". Put the config back and that backup
// does not open: the backup dropback reported made is lost, and gc stops
// on it, telling the user to delete it. Either way round (config left or
// put back) one set of backups is unreadable.
func TestRedteamXAESSwappedAEADBackupIsUnreadable(t *testing.T) {
	forEachAEAD(t, func(t *testing.T, aead string) {
		e := newCryptEnvWith(t, aead)
		disk, err := os.ReadFile(e.webDisk)
		if err != nil {
			t.Fatal(err)
		}
		orig := e.swapAEAD(otherAEAD(aead))
		var made *Manifest
		if r, err := Open(e.ctx, e.st, Options{Password: testPassword}); err == nil {
			made, err = r.Backup(e.ctx, BackupRequest{HostID: e.web.HostID, HostName: e.web.HostName,
				Disks: []DiskSource{{Name: "vda", Path: e.webDisk}}})
			if err != nil {
				t.Logf("a backup under the swapped config: %v", err)
			}
		} else {
			t.Logf("a config that names the other AEAD is refused: %v", err)
		}
		e.putConfig(orig)
		r := e.reopen()
		e.restores(r, e.web.ID, disk, "the backup before")
		if made != nil {
			e.restores(r, made.ID, disk, "the backup made under a config naming "+otherAEAD(aead))
		}
		if _, err := r.GC(e.ctx, GCOptions{}); err != nil {
			t.Errorf("gc: %v", err)
		}
	})
}

// Holds: a config that names an AEAD this dropback does not know is
// refused before any key is tried, and a config of version 1 that names
// an AEAD is refused as damaged (version 1 knows only none), so neither
// opens in plain.
func TestRedteamXAESConfigOddAEADsRefused(t *testing.T) {
	e := newCryptEnv(t)
	for _, c := range []struct {
		version int
		aead    string
	}{{2, "XAES-256-GCM"}, {2, ""}, {1, crypt.XAES256GCM}, {1, crypt.XChaCha20Poly1305}} {
		cfg := e.r.cfg
		cfg.Version, cfg.Encryption = c.version, c.aead
		data, err := seal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		e.putConfig(data)
		if r, err := Open(e.ctx, e.st, Options{Password: testPassword}); err == nil {
			t.Errorf("version %d, encryption %q: opened, encrypted %v", c.version, c.aead, r.Encrypted())
		}
	}
}

// Found by review (failed before schedule/idle/ was sealed): a scheduling
// pass that finds nothing to do writes a schedule/idle/ hint holding each
// skipped host's name and why it was skipped, and it was stored in plain
// in an encrypted repository: the host names that docs/format.md says no
// stored byte holds ("Names never hold host names").
func TestRedteamXAESIdleHintHoldsNoHostName(t *testing.T) {
	e := newCryptEnv(t)
	tok, err := e.r.Changes(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	h := IdleHint{Until: e.r.now().Add(IdleHintFor),
		Skipped: []IdleSkipped{{HostID: e.web.HostID, HostName: e.web.HostName, Reason: "not due until 03:00"}}}
	if err := e.r.PutIdle(e.ctx, tok, h); err != nil {
		t.Fatal(err)
	}
	for _, name := range e.names("") {
		data, err := os.ReadFile(e.path(name))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, []byte(e.web.HostName)) {
			t.Errorf("%s holds the host name %q in plain", name, e.web.HostName)
		}
	}
}

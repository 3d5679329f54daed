package engine

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dropback/dropback/pkg/crypt"
	"github.com/dropback/dropback/pkg/key"
	"github.com/dropback/dropback/pkg/store"
	"github.com/dropback/dropback/pkg/store/local"
)

// cryptEnv is an encrypted repository (whatever -plain says) with two
// hosts, a backup of each, and an action.
type cryptEnv struct {
	t        *testing.T
	ctx      context.Context
	dir      string
	r        *Repo
	st       *local.Store
	web, db  *Manifest
	webDisk  string
	secret   []byte // text that is on the web disk
	hostPath string
}

func newCryptEnv(t *testing.T) *cryptEnv { return newCryptEnvWith(t, "") }

// aeads are the AEADs an encrypted repository can seal with.
var aeads = []string{crypt.XAES256GCM, crypt.XChaCha20Poly1305}

// forEachAEAD runs test on a repository of each AEAD.
func forEachAEAD(t *testing.T, test func(t *testing.T, aead string)) {
	for _, aead := range aeads {
		t.Run(aead, func(t *testing.T) { test(t, aead) })
	}
}

// newCryptEnvWith makes the repository of cryptEnv sealed with aead ("" for
// the default).
func newCryptEnvWith(t *testing.T, aead string) *cryptEnv {
	t.Helper()
	e := &cryptEnv{t: t, ctx: context.Background(), dir: t.TempDir()}
	o := InitOptions{ChunkSize: testChunk, Password: []byte(testPasswordText), KDF: testKDF, Cipher: aead,
		Options: Options{Password: testPassword}}
	e.r, e.st = initRepoWith(t, e.dir, o)
	e.webDisk = filepath.Join(e.dir, "web-secret-disk.img")
	e.secret = []byte("the launch codes are 0000; the database password is hunter2. ")
	makeDisk(t, e.webDisk, 8*testChunk, region{0, 3 * testChunk, "random"})
	f, err := os.OpenFile(e.webDisk, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Text that compresses, and a chunk of it that is stored raw.
	if _, err := f.WriteAt(bytes.Repeat(e.secret, 3*testChunk/len(e.secret)), 4*testChunk); err != nil {
		t.Fatal(err)
	}
	f.Close()
	dbDisk := filepath.Join(e.dir, "db.img")
	makeDisk(t, dbDisk, 4*testChunk, region{0, 2 * testChunk, "random"})
	web, err := e.r.AddHost(e.ctx, HostRecord{Name: "web-secret-host", Disks: []DiskSource{{Name: "vda", Path: e.webDisk}}})
	if err != nil {
		t.Fatal(err)
	}
	db, err := e.r.AddHost(e.ctx, HostRecord{Name: "db-1", Disks: []DiskSource{{Name: "vda", Path: dbDisk}}})
	if err != nil {
		t.Fatal(err)
	}
	e.hostPath = e.webDisk
	if e.web, err = e.r.Backup(e.ctx, BackupRequest{HostID: web.ID, HostName: web.Name, Disks: web.Disks}); err != nil {
		t.Fatal(err)
	}
	if e.db, err = e.r.Backup(e.ctx, BackupRequest{HostID: db.ID, HostName: db.Name, Disks: db.Disks}); err != nil {
		t.Fatal(err)
	}
	a, err := e.r.StartAction(e.ctx, "backup", "host", web.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.r.FinishAction(e.ctx, a, e.web.ID, nil); err != nil {
		t.Fatal(err)
	}
	return e
}

// names lists the stored objects under prefix.
func (e *cryptEnv) names(prefix string) []string {
	var out []string
	err := e.st.List(e.ctx, prefix, func(i store.Info) error { out = append(out, i.Name); return nil })
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func (e *cryptEnv) path(name string) string {
	return filepath.Join(e.dir, "repo", filepath.FromSlash(name))
}

func (e *cryptEnv) rewrite(name string, change func([]byte) []byte) {
	e.t.Helper()
	data, err := os.ReadFile(e.path(name))
	if err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(e.path(name), change(bytes.Clone(data)), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

// reopen opens the repository again, as another process would.
func (e *cryptEnv) reopen() *Repo {
	e.t.Helper()
	r, err := Open(e.ctx, e.st, Options{Password: testPassword})
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// restoreFails restores backup m and checks that it fails with damage
// naming want, and leaves no file.
func (e *cryptEnv) restoreFails(r *Repo, m *Manifest, what, want string) {
	e.t.Helper()
	out := filepath.Join(e.t.TempDir(), "out.img")
	_, err := r.Restore(e.ctx, m, []RestoreTarget{{Path: out}}, nil)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), want) {
		e.t.Errorf("%s: restore: %v, want damage naming %q", what, err, want)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		e.t.Errorf("%s: a failed restore left its target", what)
	}
}

// Nothing a disk holds, no host name and no disk path is in the
// repository's bytes: the grep an attacker with the bucket would run.
func TestEncryptedRepositoryHoldsNoPlaintext(t *testing.T) {
	forEachAEAD(t, testEncryptedRepositoryHoldsNoPlaintext)
}

func testEncryptedRepositoryHoldsNoPlaintext(t *testing.T, aead string) {
	e := newCryptEnvWith(t, aead)
	if e.r.cfg.Encryption != aead {
		t.Fatalf("the config says %q, want %q", e.r.cfg.Encryption, aead)
	}
	disk, err := os.ReadFile(e.webDisk)
	if err != nil {
		t.Fatal(err)
	}
	needles := map[string][]byte{
		"the disk's text":     e.secret[:32],
		"a random chunk":      disk[testChunk+100 : testChunk+164],
		"the host name":       []byte("web-secret-host"),
		"the other host name": []byte("db-1"),
		"the disk path":       []byte(e.hostPath),
		"the disk file name":  []byte("web-secret-disk"),
		// Markers and actions name this machine in JSON.
		"the hostname": []byte(`"hostname"`),
	}
	n := 0
	err = filepath.Walk(filepath.Join(e.dir, "repo"), func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		n++
		for what, needle := range needles {
			if bytes.Contains(data, needle) || strings.Contains(p, string(needle)) {
				t.Errorf("%s is in %s", what, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Fatalf("only %d objects in the repository", n)
	}
	// The marker of a running operation names this machine, encrypted.
	op, err := e.r.Begin(e.ctx, OpVerify, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer op.End()
	for _, name := range e.names("running/") {
		data, _ := os.ReadFile(e.path(name))
		if bytes.Contains(data, needles["the hostname"]) || !crypt.IsObject(data) {
			t.Errorf("marker %s is not encrypted", name)
		}
	}
}

// A flipped byte in any encrypted object is found, named, and never
// decrypted into wrong data.
func TestEncryptedObjectWithAFlippedByteIsDamage(t *testing.T) {
	kinds := []struct {
		name   string
		object func(e *cryptEnv) string
		check  func(e *cryptEnv, r *Repo) error
	}{
		{"manifest", func(e *cryptEnv) string { return objectName("backups", e.web.ID) },
			func(e *cryptEnv, r *Repo) error { _, err := r.Manifest(e.ctx, e.web.ID); return err }},
		{"host record", func(e *cryptEnv) string { return e.names("hosts/0000000001/")[0] },
			func(e *cryptEnv, r *Repo) error { _, d, err := r.HostsAndDamage(e.ctx); return firstErr(err, d[1]) }},
		{"action", func(e *cryptEnv) string { return e.names("actions/")[0] },
			func(e *cryptEnv, r *Repo) error { _, d, err := r.ActionsAndDamage(e.ctx); return firstErr(err, d[1]) }},
		{"image index", func(e *cryptEnv) string { return imageName(mustImages(e.web)[0]) },
			func(e *cryptEnv, r *Repo) error { _, err := r.LoadDiskImage(e.ctx, e.web, 0); return err }},
		{"index segment", func(e *cryptEnv) string { return "index/" + e.web.IndexSegments[0] },
			func(e *cryptEnv, r *Repo) error {
				_, problems, err := r.LoadIndex(e.ctx)
				return firstErr(err, problems...)
			}},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			e := newCryptEnv(t)
			name := k.object(e)
			for _, at := range []int{0, len(crypt.ObjectMagic) + 3, -1} {
				e.rewrite(name, func(b []byte) []byte {
					i := at
					if i < 0 {
						i = len(b) - 1
					}
					b[i] ^= 0x20
					return b
				})
				err := k.check(e, e.reopen())
				if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), name) {
					t.Errorf("byte %d of %s flipped: %v, want damage naming it", at, name, err)
				}
				e.rewrite(name, func(b []byte) []byte { // flip it back
					i := at
					if i < 0 {
						i = len(b) - 1
					}
					b[i] ^= 0x20
					return b
				})
			}
			if err := k.check(e, e.reopen()); err != nil {
				t.Fatalf("flipped back: %v", err)
			}
		})
	}
}

// A flipped byte in a blob or in a pack's trailer is found by verify and
// fails a restore, which writes nothing.
func TestEncryptedPackWithAFlippedByteIsDamage(t *testing.T) {
	forEachAEAD(t, testEncryptedPackWithAFlippedByteIsDamage)
}

func testEncryptedPackWithAFlippedByteIsDamage(t *testing.T, aead string) {
	for _, where := range []string{"blob", "trailer"} {
		t.Run(where, func(t *testing.T) {
			e := newCryptEnvWith(t, aead)
			idx, _, err := e.r.LoadIndex(e.ctx)
			if err != nil {
				t.Fatal(err)
			}
			im, err := e.r.LoadDiskImage(e.ctx, e.web, 0)
			if err != nil {
				t.Fatal(err)
			}
			pack, loc, _ := idx.lookup(im.Chunks[4]) // text, compressed
			e.rewrite(packName(pack), func(b []byte) []byte {
				if where == "blob" {
					b[loc.offset+crypt.NonceSize+5] ^= 1
				} else {
					b[len(b)-14] ^= 1
				}
				return b
			})
			r := e.reopen()
			res, err := r.Verify(e.ctx, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Damaged() {
				t.Fatalf("verify of a flipped %s: %+v, want damage", where, res)
			}
			if where == "blob" {
				e.restoreFails(r, e.web, "a flipped blob", "does not decrypt")
			} else if !strings.Contains(strings.Join(res.Problems, "\n"), "trailer") {
				t.Errorf("verify of a flipped trailer: problems %q, want the trailer named", res.Problems)
			}
		})
	}
}

// Objects swapped with each other, or a blob moved to another chunk, do
// not decrypt: the associated data binds each to its name.
func TestSwappedObjectsAreDamage(t *testing.T) { forEachAEAD(t, testSwappedObjectsAreDamage) }

func testSwappedObjectsAreDamage(t *testing.T, aead string) {
	e := newCryptEnvWith(t, aead)
	swap := func(a, b string) {
		t.Helper()
		da, _ := os.ReadFile(e.path(a))
		db, _ := os.ReadFile(e.path(b))
		if err := os.WriteFile(e.path(a), db, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(e.path(b), da, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	a, b := objectName("backups", e.web.ID), objectName("backups", e.db.ID)
	swap(a, b)
	_, damaged, err := e.reopen().ManifestsAndDamage(e.ctx)
	if err != nil || damaged[e.web.ID] == nil || damaged[e.db.ID] == nil {
		t.Fatalf("swapped manifests: %v, %v; want both damaged", damaged, err)
	}
	swap(a, b)
	ia, ib := imageName(mustImages(e.web)[0]), imageName(mustImages(e.db)[0])
	swap(ia, ib)
	if _, err := e.reopen().LoadDiskImage(e.ctx, e.web, 0); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("swapped image indexes: %v, want damage", err)
	}
	swap(ia, ib)

	// Two blobs of one pack trade places, lengths kept: each opens under
	// its own chunk ID only.
	r := e.reopen()
	idx, _, _ := r.LoadIndex(e.ctx)
	im, _ := r.LoadDiskImage(e.ctx, e.web, 0)
	p1, l1, _ := idx.lookup(im.Chunks[0])
	p2, l2, _ := idx.lookup(im.Chunks[1])
	if p1 != p2 || l1.length != l2.length {
		t.Skip("the two chunks are not in one pack with one length")
	}
	e.rewrite(packName(p1), func(b []byte) []byte {
		x := bytes.Clone(b[l1.offset : l1.offset+l1.length])
		copy(b[l1.offset:], b[l2.offset:l2.offset+l2.length])
		copy(b[l2.offset:], x)
		return b
	})
	e.restoreFails(e.reopen(), e.web, "swapped blobs", "does not decrypt")
}

// A wrong password, a removed key and a truncated key object: each says so,
// and nothing is read.
func TestKeys(t *testing.T) {
	e := newCryptEnv(t)
	open := func(pw string) error {
		_, err := Open(e.ctx, e.st, Options{Password: func(context.Context) ([]byte, error) { return []byte(pw), nil }})
		return err
	}
	if err := open("wrong"); !errors.Is(err, ErrPassword) || !strings.Contains(err.Error(), "wrong password") {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := Open(e.ctx, e.st, Options{}); !errors.Is(err, ErrPassword) {
		t.Fatalf("no password: %v", err)
	}
	second, err := e.r.AddKey(e.ctx, []byte("second"), testKDF)
	if err != nil {
		t.Fatal(err)
	}
	if err := open("second"); err != nil {
		t.Fatalf("the second key: %v", err)
	}
	first := e.r.sec.keyID
	if err := e.r.RemoveKey(e.ctx, first); !errors.Is(err, ErrInvalid) {
		t.Fatalf("removing the key in use: %v, want it refused", err)
	}
	r2, err := Open(e.ctx, e.st, Options{Password: func(context.Context) ([]byte, error) { return []byte("second"), nil }})
	if err != nil {
		t.Fatal(err)
	}
	if err := r2.RemoveKey(e.ctx, first); err != nil {
		t.Fatalf("removing the first key with the second: %v", err)
	}
	if err := open(testPasswordText); !errors.Is(err, ErrPassword) {
		t.Fatalf("the password of a removed key: %v, want a wrong password", err)
	}
	if err := r2.RemoveKey(e.ctx, second); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "") {
		t.Fatalf("removing the last key: %v, want it refused", err)
	}
	if _, err := r2.ChangePassword(e.ctx, []byte("third"), testKDF); err != nil {
		t.Fatal(err)
	}
	if err := open("second"); !errors.Is(err, ErrPassword) {
		t.Fatalf("the old password after passwd: %v", err)
	}
	if err := open("third"); err != nil {
		t.Fatalf("the new password after passwd: %v", err)
	}
	keys, err := r2.Keys(e.ctx)
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys after passwd: %+v, %v; want one", keys, err)
	}
	// A truncated key object is no key: the repository cannot be opened,
	// and says why.
	e.rewrite(keyName(keys[0].ID), func(b []byte) []byte { return b[:len(b)/2] })
	if err := open("third"); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "none of its 1 keys can be read") {
		t.Fatalf("a truncated key: %v", err)
	}
}

// An encrypted repository's config replaced by one that says it is not
// encrypted is refused: backups would be written in plain.
func TestDowngradedConfigIsRefused(t *testing.T) {
	e := newCryptEnv(t)
	cfg := e.r.cfg
	cfg.Encryption, cfg.ChunkKey = EncryptionNone, strings.Repeat("ab", 32)
	data, err := seal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.path("config"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(e.ctx, e.st, Options{}); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "holds keys") {
		t.Fatalf("a downgraded config: %v", err)
	}
}

// The default AEAD is XAES-256-GCM; an unknown one is refused by init, and
// a config that names one this dropback does not know is refused with a
// line that says so, not read as damage.
func TestAEADOfARepository(t *testing.T) {
	e := newCryptEnv(t)
	if e.r.cfg.Encryption != crypt.XAES256GCM {
		t.Fatalf("a new repository seals with %q, want %s", e.r.cfg.Encryption, crypt.XAES256GCM)
	}
	dir := filepath.Join(t.TempDir(), "repo")
	st, _ := local.Open(dir)
	_, err := Init(e.ctx, st, InitOptions{Password: []byte("pw"), KDF: testKDF, Cipher: "aes-128-ecb"})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `unknown encryption "aes-128-ecb"`) {
		t.Fatalf("init with an unknown AEAD: %v", err)
	}
	if names, _ := os.ReadDir(dir); len(names) != 0 {
		t.Fatalf("a refused init left %v", names)
	}
	cfg := e.r.cfg
	cfg.Encryption = "aes-512-gcm"
	data, err := seal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.path("config"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(e.ctx, e.st, Options{Password: testPassword}); !errors.Is(err, ErrFormat) ||
		!strings.Contains(err.Error(), `encrypted with "aes-512-gcm", which this dropback does not know`) {
		t.Fatalf("a config of an unknown AEAD: %v", err)
	}
}

// A key object made by an init that died before its config opens nothing:
// a new init there goes ahead.
func TestInitOverAKeyOfADeadInit(t *testing.T) {
	st, err := local.Open(filepath.Join(t.TempDir(), "repo"))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := key.NewMaster()
	data, _ := key.Wrap(m, []byte("pw"), testKDF, "otherrepo", key.NewID(), crypt.XAES256GCM, nowUTC())
	if err := st.Put(context.Background(), keyName(key.NewID()), data); err != nil {
		t.Fatal(err)
	}
	o := InitOptions{ChunkSize: testChunk, Password: []byte("pw"), KDF: testKDF}
	if _, err := Init(context.Background(), st, o); err != nil {
		t.Fatalf("init over a dead init's key: %v", err)
	}
	if _, err := Open(context.Background(), st, Options{Password: func(context.Context) ([]byte, error) { return []byte("pw"), nil }}); err != nil {
		t.Fatal(err)
	}
}

func firstErr(err error, more ...error) error {
	if err != nil {
		return err
	}
	for _, e := range more {
		if e != nil {
			return e
		}
	}
	return nil
}

func mustImages(m *Manifest) []ID {
	ids, err := m.Images()
	if err != nil {
		panic(err)
	}
	return ids
}

func nowUTC() time.Time { return time.Now().UTC() }

// FuzzSealedPackTrailer: the trailer of an encrypted pack is read only when
// it opens with the key, and then every entry lies in the pack.
func FuzzSealedPackTrailer(f *testing.F) {
	st := newFzStore()
	r, err := Init(context.Background(), st, InitOptions{ChunkSize: testChunk, Password: []byte("pw"), KDF: testKDF})
	if err != nil {
		f.Fatal(err)
	}
	b := newPackBuilder(testChunk)
	b.add(fzID(1), r.sec.cipher.SealBlob(nil, fzID(1), []byte("hello")), 5, flagEncrypted)
	pack, id := b.finish(r)
	if entries, plain, err := r.parsePackTrailer(pack); err != nil || len(entries) != 1 || r.contentID(plain) != id {
		f.Fatalf("a good sealed pack: %v", err)
	}
	f.Add(bytes.Clone(pack))
	f.Add(bytes.Clone(pack[:len(pack)-13]))
	f.Add([]byte(packMagic + "\xff\xff\xff\xff" + packSealedMagic))
	f.Add([]byte(packMagic + "\x00\x00\x00\x00" + packEndMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, _, err := r.parsePackTrailer(data)
		if err != nil {
			return
		}
		for _, e := range entries {
			if int(e.Offset) < len(packMagic) || int(e.Offset)+int(e.Length) > len(data) {
				t.Fatalf("entry %+v lies outside the pack of %d bytes", e, len(data))
			}
		}
	})
}

// Every object of an encrypted repository that says anything is sealed
// under its name: after backups, a gc that replaced an index segment (its
// index-replaced/ marker names the new one), a convert and a retention
// (their fate/ objects), the objects left in plain are the config, the
// key objects, packs (whose blobs and trailer are sealed) and markers whose
// name is all they say.
func TestEveryObjectThatSaysAnythingIsSealed(t *testing.T) {
	if *plainRepos {
		t.Skip("-plain")
	}
	ctx := context.Background()
	r, st, clk := memRepo(t)
	b, _ := twoPacks(t, r, clk)
	clk.Advance(2 * time.Hour)
	grace := GCOptions{Grace: 3 * time.Minute}
	if res, err := r.GC(ctx, grace); err != nil || res.CondemnedPacks != 1 {
		t.Fatalf("setup: mark %+v, %v", res, err)
	}
	clk.Advance(3 * time.Minute)
	if res, err := r.GC(ctx, grace); err != nil || res.DeletedPacks != 1 {
		t.Fatalf("setup: sweep %+v, %v", res, err)
	}
	if err := r.MarkSnapshot(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "src.img")
	makeDisk(t, src, 2*testChunk, region{0, testChunk, "random"})
	old := backup(t, r, src)
	backup(t, r, src)
	if err := r.Expire(ctx, old.ID); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	err := st.List(ctx, "", func(info store.Info) error {
		data, err := st.Get(ctx, info.Name, 0, -1)
		if err != nil {
			return err
		}
		kind, _, _ := strings.Cut(info.Name, "/")
		seen[kind] = true
		switch {
		case info.Name == "config" || kind == "keys":
		case kind == "packs":
			if !bytes.HasSuffix(data, []byte(packSealedMagic)) {
				t.Errorf("%s: the trailer is not sealed", info.Name)
			}
		case len(data) == 0 || string(data) == "{}\n":
			// a marker whose name is all it says
		default:
			if _, err := r.sec.cipher.OpenObject(info.Name, data); err != nil {
				t.Errorf("%s is not sealed under its name: %q", info.Name, data[:min(len(data), 40)])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"index-replaced", "fate", "snapshots", "deleted", "gc", "backups", "images", "index"} {
		if !seen[kind] {
			t.Errorf("no %s/ object was made: the test shows nothing of them", kind)
		}
	}
}

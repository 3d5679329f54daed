package key

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/zeebo/blake3"
	"golang.org/x/crypto/argon2"

	"github.com/dropback/dropback/pkg/crypt"
)

// refXAESOpen opens a box (nonce, ciphertext, tag) of XAES-256-GCM with
// key and associated data ad. pkg/crypt's XAES-256-GCM is checked against
// the specification's vectors and a reference of its own; what this file
// checks is the rest: the keys and associated data as docs/format.md
// documents them.
func refXAESOpen(key, box, ad []byte) ([]byte, error) {
	c, err := crypt.New(crypt.XAES256GCM, key)
	if err != nil {
		return nil, err
	}
	return c.Open(nil, ad, box)
}

// Another implementation that reads only docs/format.md and the file
// opens the file's XAES-256-GCM boxes: the encryption key is BLAKE3
// derive_key of the documented context and the file's master key, and the
// boxes are the specification's XAES-256-GCM with the documented
// associated data; its key object opens with the associated data
// documented for a repository sealed with XAES-256-GCM. Holds.
func TestRedteamXAESVectorsOpenIndependently(t *testing.T) {
	v := readVectors(t)
	if v.XAES == nil {
		t.Fatal("no XAES-256-GCM vectors")
	}
	master, _ := hex.DecodeString(v.MasterKey)
	var enc [32]byte
	blake3.DeriveKey("dropback 2026-12-02 xaes-256-gcm object encryption key", master, enc[:])
	if hex.EncodeToString(enc[:]) != v.XAES.Encryption {
		t.Fatalf("the documented context gives %x, the file says %s", enc, v.XAES.Encryption)
	}
	var old [32]byte
	blake3.DeriveKey("dropback 2026-11-25 object encryption key", master, old[:])
	if hex.EncodeToString(old[:]) != v.Encryption {
		t.Fatalf("XChaCha20-Poly1305's key moved: %x, the file says %s", old, v.Encryption)
	}
	obj, _ := hex.DecodeString(v.XAES.Object)
	if !bytes.HasPrefix(obj, []byte("DBENC001")) {
		t.Fatal("the object has no magic")
	}
	plain, err := refXAESOpen(enc[:], obj[8:], append([]byte("DBENC001"), v.Object.Name...))
	if err != nil || string(plain) != v.Object.Plaintext {
		t.Fatalf("object: %q, %v", plain, err)
	}
	id, _ := hex.DecodeString(v.Blob.ChunkID)
	blob, _ := hex.DecodeString(v.XAES.Blob)
	want, _ := hex.DecodeString(v.Blob.Plaintext)
	plain, err = refXAESOpen(enc[:], blob, append([]byte("DBBLOB01"), id...))
	if err != nil || !bytes.Equal(plain, want) {
		t.Fatalf("blob: %v", err)
	}
	tr, _ := hex.DecodeString(v.XAES.Trailer)
	want, _ = hex.DecodeString(v.Trailer.Plaintext)
	plain, err = refXAESOpen(enc[:], tr, []byte("DBPKENC1"))
	if err != nil || !bytes.Equal(plain, want) {
		t.Fatalf("trailer: %v", err)
	}
	ko, err := Decode(v.XAES.KeyObject)
	if err != nil {
		t.Fatal(err)
	}
	kek := argon2.IDKey([]byte(v.Password), ko.Salt, ko.Params.Time, ko.Params.MemoryKiB, ko.Params.Threads, 32)
	wrap, _ := crypt.New(crypt.XChaCha20Poly1305, kek)
	ad := "dropback key\x00" + v.RepositoryID + "\x00" + v.KeyID + "\x00xaes-256-gcm"
	if got, err := wrap.Open(nil, []byte(ad), ko.Wrapped); err != nil || hex.EncodeToString(got) != v.MasterKey {
		t.Fatalf("the XAES-256-GCM repository's key object does not open to the master key with the documented associated data: %v", err)
	}
	// Under XChaCha20-Poly1305's key the same boxes do not open.
	if _, err := refXAESOpen(old[:], obj[8:], append([]byte("DBENC001"), v.Object.Name...)); err == nil {
		t.Fatal("the XAES object opens under the other AEAD's key")
	}
}

package key

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"testing"
	"time"

	"github.com/zeebo/blake3"

	"github.com/dropback/dropback/pkg/crypt"
)

var update = flag.Bool("update", false, "write what testdata/vectors.json lacks (all of it if there is no file)")

// vectors is testdata/vectors.json: a key object, the keys it opens, and an
// object, a blob and a pack trailer sealed with them, with each AEAD, so
// that another implementation can check itself against dropback
// (docs/format.md, "Encryption"). The boxes at the top are
// XChaCha20-Poly1305's; XAES holds the same plaintexts sealed with
// XAES-256-GCM.
type vectors struct {
	Comment      string          `json:"comment"`
	Password     string          `json:"password"`
	RepositoryID string          `json:"repository_id"`
	KeyID        string          `json:"key_id"`
	KeyObject    json.RawMessage `json:"key_object"`
	MasterKey    string          `json:"master_key"`
	Encryption   string          `json:"encryption_key"`
	ChunkIDKey   string          `json:"chunk_id_key"`
	NameKey      string          `json:"name_key"`
	Object       struct {
		Name      string `json:"name"`
		Plaintext string `json:"plaintext"`
		Stored    string `json:"stored"`
	} `json:"object"`
	Blob struct {
		Plaintext string `json:"plaintext"`
		ChunkID   string `json:"chunk_id"`
		Stored    string `json:"stored"`
	} `json:"blob"`
	Trailer struct {
		Plaintext string `json:"plaintext"`
		PackID    string `json:"pack_id"`
		Stored    string `json:"stored"`
	} `json:"trailer"`
	XAES *sealedSet `json:"xaes_256_gcm,omitempty"`
}

// sealedSet is a key object of a repository sealed with one AEAD (the
// same master key and password, the AEAD bound in), its encryption key, and
// the boxes of vectors' object, blob and trailer sealed with it.
type sealedSet struct {
	KeyObject  json.RawMessage `json:"key_object"`
	Encryption string          `json:"encryption_key"`
	Object     string          `json:"object_stored"`
	Blob       string          `json:"blob_stored"`
	Trailer    string          `json:"trailer_stored"`
}

const vectorsFile = "testdata/vectors.json"

func keyed(k [32]byte, data []byte) string {
	h, _ := blake3.NewKeyed(k[:])
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil))
}

func makeVectors(t *testing.T) vectors {
	var v vectors
	v.Comment = "dropback repository format 2: see docs/format.md, Encryption. Hex unless said; key_object is keys/<key_id> as stored."
	v.Password, v.RepositoryID, v.KeyID = "correct horse battery staple", "5d0b0b3a1f2e4c6d8e9fa0b1c2d3e4f5", NewID()
	m, err := NewMaster()
	if err != nil {
		t.Fatal(err)
	}
	obj, err := Wrap(m, []byte(v.Password), Params{Time: 1, MemoryKiB: 64, Threads: 1}, v.RepositoryID, v.KeyID,
		crypt.XChaCha20Poly1305, time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	v.KeyObject = bytes.TrimSpace(obj)
	sub := m.Derive(crypt.XChaCha20Poly1305)
	c, _ := crypt.New(crypt.XChaCha20Poly1305, sub.Encryption[:])
	v.Object.Name = "backups/0000000042"
	v.Object.Plaintext = `{"blake3": "…", "body": {"id": 42}}`
	v.Object.Stored = hex.EncodeToString(c.SealObject(v.Object.Name, []byte(v.Object.Plaintext)))
	chunk := bytes.Repeat([]byte("dropback "), 100)
	var id [32]byte
	idHex := keyed(sub.Chunk, chunk)
	hex.Decode(id[:], []byte(idHex))
	v.Blob.Plaintext, v.Blob.ChunkID = hex.EncodeToString(chunk), idHex
	v.Blob.Stored = hex.EncodeToString(c.SealBlob(nil, id, chunk))
	trailer := append(append(id[:], 8, 0, 0, 0, 40, 4, 0, 0, 132, 3, 0, 0, 2), 1, 0, 0, 0)
	trailer = append(trailer, "DBPKEND1"...)
	v.Trailer.Plaintext, v.Trailer.PackID = hex.EncodeToString(trailer), keyed(sub.Name, trailer)
	v.Trailer.Stored = hex.EncodeToString(c.SealTrailer(nil, trailer))
	return v
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readVectors reads testdata/vectors.json.
func readVectors(t *testing.T) vectors {
	t.Helper()
	data, err := os.ReadFile(vectorsFile)
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestKnownAnswers opens what testdata/vectors.json holds, as another
// implementation would, and checks every answer.
func TestKnownAnswers(t *testing.T) {
	if _, err := os.Stat(vectorsFile); *update && err != nil {
		data, _ := json.MarshalIndent(makeVectors(t), "", "  ")
		if err := os.WriteFile(vectorsFile, append(data, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	v := readVectors(t)
	o, err := Decode(v.KeyObject)
	if err != nil {
		t.Fatal(err)
	}
	m, err := o.Unwrap([]byte(v.Password), v.RepositoryID, v.KeyID, crypt.XChaCha20Poly1305)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.Unwrap([]byte(v.Password+"!"), v.RepositoryID, v.KeyID, crypt.XChaCha20Poly1305); err != ErrWrongPassword {
		t.Errorf("another password: %v, want ErrWrongPassword", err)
	}
	if _, err := o.Unwrap([]byte(v.Password), v.RepositoryID, NewID(), crypt.XChaCha20Poly1305); err != ErrWrongPassword {
		t.Errorf("the key object under another name: %v, want ErrWrongPassword", err)
	}
	if _, err := o.Unwrap([]byte(v.Password), v.RepositoryID, v.KeyID, crypt.XAES256GCM); !errors.Is(err, ErrOtherAEAD) {
		t.Errorf("the key object of an XChaCha20-Poly1305 repository in one sealed with XAES-256-GCM: %v, want ErrOtherAEAD", err)
	}
	sub := m.Derive(crypt.XChaCha20Poly1305)
	for what, got := range map[string][2]string{
		"master key":     {hex.EncodeToString(m[:]), v.MasterKey},
		"encryption key": {hex.EncodeToString(sub.Encryption[:]), v.Encryption},
		"chunk id key":   {hex.EncodeToString(sub.Chunk[:]), v.ChunkIDKey},
		"name key":       {hex.EncodeToString(sub.Name[:]), v.NameKey},
	} {
		if *update {
			continue
		}
		if got[0] != got[1] {
			t.Errorf("%s: %s, the file says %s", what, got[0], got[1])
		}
	}
	c, _ := crypt.New(crypt.XChaCha20Poly1305, sub.Encryption[:])
	checkBoxes(t, v, sub, c, v.Object.Stored, v.Blob.Stored, v.Trailer.Stored)
	if *update && (v.XAES == nil || v.XAES.KeyObject == nil) {
		v.XAES = sealXAES(t, m, v)
	}
	if v.XAES == nil {
		t.Fatal("the file has no XAES-256-GCM boxes")
	}
	xo, err := Decode(v.XAES.KeyObject)
	if err != nil {
		t.Fatal(err)
	}
	if xm, err := xo.Unwrap([]byte(v.Password), v.RepositoryID, v.KeyID, crypt.XAES256GCM); err != nil || xm != m {
		t.Errorf("the key object of the XAES-256-GCM repository: %v, or another master key", err)
	}
	if _, err := xo.Unwrap([]byte(v.Password), v.RepositoryID, v.KeyID, crypt.XChaCha20Poly1305); !errors.Is(err, ErrOtherAEAD) {
		t.Errorf("the key object of an XAES-256-GCM repository in one sealed with XChaCha20-Poly1305: %v, want ErrOtherAEAD", err)
	}
	xsub := m.Derive(crypt.XAES256GCM)
	if got := hex.EncodeToString(xsub.Encryption[:]); got != v.XAES.Encryption {
		t.Errorf("XAES-256-GCM encryption key: %s, the file says %s", got, v.XAES.Encryption)
	}
	xc, _ := crypt.New(crypt.XAES256GCM, xsub.Encryption[:])
	checkBoxes(t, v, xsub, xc, v.XAES.Object, v.XAES.Blob, v.XAES.Trailer)
	if _, err := c.OpenObject(v.Object.Name, unhex(t, v.XAES.Object)); err == nil {
		t.Error("an XAES-256-GCM object opens with XChaCha20-Poly1305")
	}
	if *update {
		v.MasterKey, v.Encryption = hex.EncodeToString(m[:]), hex.EncodeToString(sub.Encryption[:])
		v.ChunkIDKey, v.NameKey = hex.EncodeToString(sub.Chunk[:]), hex.EncodeToString(sub.Name[:])
		data, _ := json.MarshalIndent(v, "", "  ")
		if err := os.WriteFile(vectorsFile, append(data, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// sealXAES wraps m for a repository sealed with XAES-256-GCM and seals v's
// plaintexts with it.
func sealXAES(t *testing.T, m Master, v vectors) *sealedSet {
	obj, err := Wrap(m, []byte(v.Password), Params{Time: 1, MemoryKiB: 64, Threads: 1}, v.RepositoryID, v.KeyID,
		crypt.XAES256GCM, time.Date(2026, 12, 2, 2, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	sub := m.Derive(crypt.XAES256GCM)
	c, _ := crypt.New(crypt.XAES256GCM, sub.Encryption[:])
	var id [32]byte
	hex.Decode(id[:], []byte(v.Blob.ChunkID))
	chunk, _ := hex.DecodeString(v.Blob.Plaintext)
	trailer, _ := hex.DecodeString(v.Trailer.Plaintext)
	return &sealedSet{
		KeyObject:  bytes.TrimSpace(obj),
		Encryption: hex.EncodeToString(sub.Encryption[:]),
		Object:     hex.EncodeToString(c.SealObject(v.Object.Name, []byte(v.Object.Plaintext))),
		Blob:       hex.EncodeToString(c.SealBlob(nil, id, chunk)),
		Trailer:    hex.EncodeToString(c.SealTrailer(nil, trailer)),
	}
}

// checkBoxes opens the stored object, blob and trailer with c and checks
// them against v's plaintexts.
func checkBoxes(t *testing.T, v vectors, sub Subkeys, c *crypt.Cipher, object, blob, trailerBox string) {
	t.Helper()
	plain, err := c.OpenObject(v.Object.Name, unhex(t, object))
	if err != nil || string(plain) != v.Object.Plaintext {
		t.Errorf("the object: %q, %v", plain, err)
	}
	if _, err := c.OpenObject("backups/0000000043", unhex(t, object)); err == nil {
		t.Error("the object opens under another name")
	}
	chunk := unhex(t, v.Blob.Plaintext)
	if got := keyed(sub.Chunk, chunk); got != v.Blob.ChunkID {
		t.Errorf("chunk ID %s, the file says %s", got, v.Blob.ChunkID)
	}
	var id [32]byte
	copy(id[:], unhex(t, v.Blob.ChunkID))
	if got, err := c.OpenBlob(nil, id, unhex(t, blob)); err != nil || !bytes.Equal(got, chunk) {
		t.Errorf("the blob: %v", err)
	}
	trailer, err := c.OpenTrailer(unhex(t, trailerBox))
	if err != nil || hex.EncodeToString(trailer) != v.Trailer.Plaintext || keyed(sub.Name, trailer) != v.Trailer.PackID {
		t.Errorf("the trailer: %x, %v", trailer, err)
	}
}

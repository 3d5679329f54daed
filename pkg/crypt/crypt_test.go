package crypt

import (
	"bytes"
	"encoding/hex"
	"testing"
)

var aeads = []string{XAES256GCM, XChaCha20Poly1305}

func testCipher(tb testing.TB, name string) *Cipher {
	c, err := New(name, bytes.Repeat([]byte{7}, KeySize))
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// TestXAESVectors checks XAES-256-GCM against the test vectors of its
// specification, c2sp.org/XAES-256-GCM.
func TestXAESVectors(t *testing.T) {
	nonce := []byte("ABCDEFGHIJKLMNOPQRSTUVWX")
	for _, v := range []struct {
		key        byte
		ad, sealed string
	}{
		{1, "", "ce546ef63c9cc60765923609b33a9a1974e96e52daf2fcf7075e2271"},
		{3, "c2sp.org/XAES-256-GCM", "986ec1832593df5443a179437fd083bf3fdb41abd740a21f71eb769d"},
	} {
		x, err := newXAES(bytes.Repeat([]byte{v.key}, KeySize))
		if err != nil {
			t.Fatal(err)
		}
		got := x.Seal(nil, nonce, []byte("XAES-256-GCM"), []byte(v.ad))
		if hex.EncodeToString(got) != v.sealed {
			t.Errorf("key %#x: sealed %x, the specification says %s", v.key, got, v.sealed)
		}
		if plain, err := x.Open(nil, nonce, got, []byte(v.ad)); err != nil || string(plain) != "XAES-256-GCM" {
			t.Errorf("key %#x: opened %q, %v", v.key, plain, err)
		}
	}
}

// TestAEADsDiffer: a box sealed with one AEAD does not open with the
// other under the same key.
func TestAEADsDiffer(t *testing.T) {
	box := testCipher(t, XAES256GCM).SealObject("config", []byte("x"))
	if _, err := testCipher(t, XChaCha20Poly1305).OpenObject("config", box); err != ErrOpen {
		t.Fatalf("an XAES-256-GCM box opened with XChaCha20-Poly1305: %v", err)
	}
	if _, err := New("aes-128-ctr", make([]byte, KeySize)); err == nil {
		t.Fatal("an unknown AEAD was made")
	}
}

func TestBoxesOpenOnlyWhereTheyWereSealed(t *testing.T) {
	for _, name := range aeads {
		t.Run(name, func(t *testing.T) { testBoxesOpenOnlyWhereTheyWereSealed(t, name) })
	}
}

func testBoxesOpenOnlyWhereTheyWereSealed(t *testing.T, name string) {
	c := testCipher(t, name)
	other, _ := New(name, bytes.Repeat([]byte{8}, KeySize))
	plain := []byte("a manifest")
	obj := c.SealObject("backups/0000000001", plain)
	if len(obj) != len(plain)+ObjectOverhead || !IsObject(obj) {
		t.Fatalf("an object of %d bytes sealed to %d", len(plain), len(obj))
	}
	if got, err := c.OpenObject("backups/0000000001", obj); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("open: %q, %v", got, err)
	}
	for what, open := range map[string]func() ([]byte, error){
		"another name": func() ([]byte, error) { return c.OpenObject("backups/0000000002", obj) },
		"another key":  func() ([]byte, error) { return other.OpenObject("backups/0000000001", obj) },
		"truncated":    func() ([]byte, error) { return c.OpenObject("backups/0000000001", obj[:len(obj)-1]) },
		"as a blob":    func() ([]byte, error) { return c.OpenBlob(nil, [32]byte{}, obj[len(ObjectMagic):]) },
		"as a trailer": func() ([]byte, error) { return c.OpenTrailer(obj[len(ObjectMagic):]) },
	} {
		if got, err := open(); err != ErrOpen || got != nil {
			t.Errorf("%s: %q, %v; want ErrOpen", what, got, err)
		}
	}
	// Two seals of the same bytes differ: the nonces are random.
	if bytes.Equal(obj, c.SealObject("backups/0000000001", plain)) {
		t.Error("two seals are equal")
	}
}

func TestSealBlobInPlace(t *testing.T) {
	for _, name := range aeads {
		t.Run(name, func(t *testing.T) { testSealBlobInPlace(t, name) })
	}
}

func testSealBlobInPlace(t *testing.T, name string) {
	c := testCipher(t, name)
	chunk := [32]byte{1}
	plain := []byte("compressed bytes of a chunk")
	buf := make([]byte, NonceSize+len(plain), NonceSize+len(plain)+BlobOverhead)
	copy(buf[NonceSize:], plain)
	box := c.SealBlob(buf[:0], chunk, buf[NonceSize:])
	if &box[0] != &buf[0] || len(box) != len(plain)+BlobOverhead {
		t.Fatal("not sealed in place")
	}
	if got, err := c.OpenBlob(nil, chunk, box); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("open: %q, %v", got, err)
	}
	if _, err := c.OpenBlob(nil, [32]byte{2}, box); err != ErrOpen {
		t.Fatalf("the blob of another chunk: %v", err)
	}
}

// FuzzOpenObject: no bytes but those sealed under the name open, and what
// is sealed opens to itself.
func FuzzOpenObject(f *testing.F) {
	c := testCipher(f, Default)
	f.Add("hosts/0000000001/0000000001", []byte("x"), c.SealObject("hosts/0000000001/0000000001", []byte("x")))
	f.Add("", []byte{}, []byte(ObjectMagic))
	f.Fuzz(func(t *testing.T, name string, plain, stored []byte) {
		if got, err := c.OpenObject(name, stored); err == nil {
			// Only a box sealed with the key opens; the fuzzer cannot
			// make one, so this is one of the seeds.
			if again, err := c.OpenObject(name, stored); err != nil || !bytes.Equal(again, got) {
				t.Fatal("an object opens once only")
			}
		}
		box := c.SealObject(name, plain)
		if got, err := c.OpenObject(name, box); err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("a sealed object does not open to itself: %v", err)
		}
	})
}

// FuzzOpenBlob: random boxes never open, never panic, with either AEAD.
func FuzzOpenBlob(f *testing.F) {
	var ciphers []*Cipher
	for _, name := range aeads {
		c := testCipher(f, name)
		ciphers = append(ciphers, c)
		f.Add([]byte{}, c.SealBlob(nil, [32]byte{}, []byte("chunk")))
	}
	f.Add([]byte{1, 2}, []byte{})
	f.Fuzz(func(t *testing.T, chunk, box []byte) {
		var id [32]byte
		copy(id[:], chunk)
		for _, c := range ciphers {
			if _, err := c.OpenBlob(nil, id, box); err != nil && err != ErrOpen {
				t.Fatalf("error %v is not ErrOpen", err)
			}
			if _, err := c.OpenTrailer(box); err != nil && err != ErrOpen {
				t.Fatalf("error %v is not ErrOpen", err)
			}
		}
	})
}

// BenchmarkSealBlob seals a 1 MiB blob with each AEAD (docs/benchmarks.md).
func BenchmarkSealBlob(b *testing.B) {
	for _, name := range aeads {
		b.Run(name, func(b *testing.B) {
			c := testCipher(b, name)
			plain := make([]byte, 1<<20)
			box := make([]byte, 0, len(plain)+BlobOverhead)
			b.SetBytes(int64(len(plain)))
			for b.Loop() {
				box = c.SealBlob(box[:0], [32]byte{}, plain)
			}
		})
	}
}

// BenchmarkOpenBlob opens a 1 MiB blob with each AEAD.
func BenchmarkOpenBlob(b *testing.B) {
	for _, name := range aeads {
		b.Run(name, func(b *testing.B) {
			c := testCipher(b, name)
			box := c.SealBlob(nil, [32]byte{}, make([]byte, 1<<20))
			plain := make([]byte, 0, 1<<20)
			b.SetBytes(1 << 20)
			for b.Loop() {
				var err error
				if plain, err = c.OpenBlob(plain[:0], [32]byte{}, box); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

package crypt

import (
	"bytes"
	"testing"
)

func testCipher(tb testing.TB) *Cipher {
	c, err := New(bytes.Repeat([]byte{7}, KeySize))
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func TestBoxesOpenOnlyWhereTheyWereSealed(t *testing.T) {
	c := testCipher(t)
	other, _ := New(bytes.Repeat([]byte{8}, KeySize))
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
	c := testCipher(t)
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
	c := testCipher(f)
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

// FuzzOpenBlob: random boxes never open, never panic.
func FuzzOpenBlob(f *testing.F) {
	c := testCipher(f)
	f.Add([]byte{}, c.SealBlob(nil, [32]byte{}, []byte("chunk")))
	f.Add([]byte{1, 2}, []byte{})
	f.Fuzz(func(t *testing.T, chunk, box []byte) {
		var id [32]byte
		copy(id[:], chunk)
		if _, err := c.OpenBlob(nil, id, box); err != nil && err != ErrOpen {
			t.Fatalf("error %v is not ErrOpen", err)
		}
		if _, err := c.OpenTrailer(box); err != nil && err != ErrOpen {
			t.Fatalf("error %v is not ErrOpen", err)
		}
	})
}

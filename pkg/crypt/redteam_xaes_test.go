package crypt

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha3"
	"encoding/hex"
	"testing"
)

// The specification's accumulated vector (c2sp.org/XAES-256-GCM): 10,000
// random keys, nonces, plaintexts and associated data from SHAKE-128, so
// that both branches of K1 (L's top bit set and not) and every length of
// plaintext up to 255 are covered, where the two fixed vectors cover two
// keys. Holds.
func TestRedteamXAESAccumulated(t *testing.T) {
	const want = "e6b9edf2df6cec60c8cbd864e2211b597fb69a529160cd040d56c0c210081939"
	s, d := sha3.NewSHAKE128(), sha3.NewSHAKE128()
	msb := [2]int{}
	for range 10_000 {
		key := make([]byte, 32)
		s.Read(key)
		nonce := make([]byte, 24)
		s.Read(nonce)
		n := make([]byte, 1)
		s.Read(n)
		plain := make([]byte, int(n[0]))
		s.Read(plain)
		s.Read(n)
		ad := make([]byte, int(n[0]))
		s.Read(ad)
		x, err := newXAES(key)
		if err != nil {
			t.Fatal(err)
		}
		var l [16]byte
		x.block.Encrypt(l[:], l[:])
		msb[l[0]>>7]++
		box := x.Seal(nil, nonce, plain, ad)
		got, err := x.Open(nil, nonce, box, ad)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("opened %x, %v", got, err)
		}
		d.Write(box)
	}
	sum := make([]byte, 32)
	d.Read(sum)
	if hex.EncodeToString(sum) != want {
		t.Fatalf("accumulated %x, the specification says %s", sum, want)
	}
	if msb[0] == 0 || msb[1] == 0 {
		t.Fatalf("K1's branches not both covered: %v", msb)
	}
}

// refXAES is XAES-256-GCM written out from the specification with a
// whole CMAC (K1 from L by the doubling of SP 800-38B), not sharing code
// with xaes.go.
func refXAES(key, nonce []byte) cipher.AEAD {
	b, _ := aes.NewCipher(key)
	var l, k1 [16]byte
	b.Encrypt(l[:], l[:])
	carry := byte(0)
	for i := 15; i >= 0; i-- {
		k1[i] = l[i]<<1 | carry
		carry = l[i] >> 7
	}
	if l[0]&0x80 != 0 {
		k1[15] ^= 0x87
	}
	var kx [32]byte
	for i := range 2 {
		m := append([]byte{0, byte(i + 1), 'X', 0}, nonce[:12]...)
		for j := range m {
			m[j] ^= k1[j]
		}
		b.Encrypt(kx[16*i:16*i+16], m)
	}
	gb, _ := aes.NewCipher(kx[:])
	g, _ := cipher.NewGCM(gb)
	return g
}

// Seal in place (plaintext aliasing the destination right after the
// nonce, as SealBlob is used by storeChunk), and Open into the box itself
// (dst the nonce, so the plaintext lands on the ciphertext), give what the
// reference gives. Holds.
func TestRedteamXAESInPlaceAgainstReference(t *testing.T) {
	key := bytes.Repeat([]byte{0x5a}, KeySize)
	c, err := New(XAES256GCM, key)
	if err != nil {
		t.Fatal(err)
	}
	id := [32]byte{9}
	for _, n := range []int{0, 1, 15, 16, 17, 4096, 65537} {
		plain := bytes.Repeat([]byte{0xc3}, n)
		for i := range plain {
			plain[i] ^= byte(i * 7)
		}
		buf := make([]byte, NonceSize+n, NonceSize+n+TagSize)
		copy(buf[NonceSize:], plain)
		box := c.SealBlob(buf[:0], id, buf[NonceSize:NonceSize+n])
		if &box[0] != &buf[0] || len(box) != n+BlobOverhead {
			t.Fatalf("%d: not sealed in place", n)
		}
		ref := refXAES(key, box[:NonceSize])
		want := ref.Seal(nil, box[12:NonceSize], plain, blobAD(id))
		if !bytes.Equal(box[NonceSize:], want) {
			t.Fatalf("%d: in-place box differs from the reference", n)
		}
		saved := bytes.Clone(box)
		got, err := c.OpenBlob(box[:NonceSize], id, box)
		if err != nil || !bytes.Equal(got[NonceSize:], plain) {
			t.Fatalf("%d: open into the box: %v", n, err)
		}
		// A box that does not open (wrong chunk) opened in place: the
		// error, and the caller's buffer is not trusted afterwards.
		if _, err := c.OpenBlob(saved[:NonceSize], [32]byte{8}, bytes.Clone(saved)); err != ErrOpen {
			t.Fatalf("%d: a box for another chunk: %v", n, err)
		}
	}
}

// One Cipher sealing and opening from many goroutines at once (as the
// engine's pack writers and restore workers share it): every box opens to
// its own plaintext, under -race too. Holds.
func TestRedteamXAESConcurrentUse(t *testing.T) {
	c, err := New(XAES256GCM, bytes.Repeat([]byte{1}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 8)
	for g := range 8 {
		go func() {
			for i := range 200 {
				var id [32]byte
				id[0], id[1] = byte(g), byte(i)
				plain := bytes.Repeat([]byte{byte(g), byte(i)}, 100+i)
				box := c.SealBlob(nil, id, plain)
				got, err := c.OpenBlob(nil, id, box)
				if err != nil || !bytes.Equal(got, plain) {
					done <- ErrOpen
					return
				}
			}
			done <- nil
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

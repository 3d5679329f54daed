// Package crypt is the authenticated encryption of an encrypted dropback
// repository: boxes sealed with XAES-256-GCM (the default) or
// XChaCha20-Poly1305, each with a random 24-byte nonce and associated data
// that binds it to where it belongs. Both AEADs take a 32-byte key and a
// 24-byte nonce and add a 16-byte tag, so a box is laid out the same way
// whichever the repository names.
//
// Three kinds of box are made (docs/format.md, "Encryption"):
//
//   - an object: "DBENC001", nonce, ciphertext and tag; its associated data
//     is "DBENC001" followed by the object's name, so that its bytes open
//     only under the name they were written to;
//   - a blob, one stored chunk inside a pack: nonce, ciphertext and tag; its
//     associated data is "DBBLOB01" followed by the chunk's 32-byte ID;
//   - a pack trailer: nonce, ciphertext and tag, with the associated data
//     "DBPKENC1".
//
// Random 192-bit nonces do not repeat in any number of boxes a repository
// can hold, so no counter has to be kept between processes or machines.
// A Cipher is safe for concurrent use.
package crypt

import (
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// Sizes of keys and of what a box adds to its plaintext, the same for
// both AEADs.
const (
	KeySize   = 32
	NonceSize = 24
	TagSize   = 16

	// ObjectMagic starts every encrypted object.
	ObjectMagic = "DBENC001"
	// ObjectOverhead is what an object box adds: magic, nonce and tag.
	ObjectOverhead = len(ObjectMagic) + NonceSize + TagSize
	// BlobOverhead is what a blob or trailer box adds: nonce and tag.
	BlobOverhead = NonceSize + TagSize

	blobDomain    = "DBBLOB01"
	trailerDomain = "DBPKENC1"
)

// The AEADs, by the names a repository's config and a key object give
// them.
const (
	// XAES256GCM is XAES-256-GCM (c2sp.org/XAES-256-GCM): AES-256-GCM under
	// a key derived for each box from its key and the first 12 bytes of
	// its nonce, the last 12 being GCM's nonce. Where the processor has AES
	// instructions it seals about 1.6 times as fast as XChaCha20-Poly1305.
	XAES256GCM = "xaes-256-gcm"
	// XChaCha20Poly1305 is RFC 8439's ChaCha20-Poly1305 with XChaCha20's
	// 24-byte nonce. Key objects are sealed with it.
	XChaCha20Poly1305 = "xchacha20-poly1305"
	// Default is the AEAD of a new repository.
	Default = XAES256GCM
)

// Known reports whether name is an AEAD this package seals with.
func Known(name string) bool { return name == XAES256GCM || name == XChaCha20Poly1305 }

// ErrOpen means a box did not open: it was damaged, changed, moved to
// another name or chunk, or sealed with another key.
var ErrOpen = errors.New("does not decrypt")

// Cipher seals and opens boxes with one key.
type Cipher struct{ aead cipher.AEAD }

// New returns a Cipher of the AEAD name for a 32-byte key.
func New(name string, key []byte) (*Cipher, error) {
	var aead cipher.AEAD
	var err error
	switch name {
	case XAES256GCM:
		aead, err = newXAES(key)
	case XChaCha20Poly1305:
		aead, err = chacha20poly1305.NewX(key)
	default:
		err = fmt.Errorf("unknown AEAD %q", name)
	}
	if err != nil {
		return nil, fmt.Errorf("new cipher: %w", err)
	}
	return &Cipher{aead: aead}, nil
}

// Seal appends to dst a box of plain (nonce, ciphertext, tag) with the
// associated data ad. plain may be dst[len(dst)+NonceSize:] cut to its
// length, sealed in place, when dst has room for BlobOverhead more bytes.
func (c *Cipher) Seal(dst []byte, ad, plain []byte) []byte { return c.seal(dst, ad, plain) }

// Open appends to dst the plaintext of box, sealed with the associated data
// ad, or fails with ErrOpen.
func (c *Cipher) Open(dst []byte, ad, box []byte) ([]byte, error) { return c.open(dst, ad, box) }

func (c *Cipher) seal(dst []byte, ad, plain []byte) []byte {
	n := len(dst)
	dst = append(dst[:n], make([]byte, NonceSize)...)
	if _, err := rand.Read(dst[n:]); err != nil {
		panic(fmt.Sprintf("crypt: read random nonce: %v", err)) // crypto/rand never fails on Linux
	}
	return c.aead.Seal(dst, dst[n:], plain, ad)
}

func (c *Cipher) open(dst []byte, ad, box []byte) ([]byte, error) {
	if len(box) < BlobOverhead {
		return nil, ErrOpen
	}
	out, err := c.aead.Open(dst, box[:NonceSize], box[NonceSize:], ad)
	if err != nil {
		return nil, ErrOpen
	}
	return out, nil
}

func objectAD(name string) []byte { return append([]byte(ObjectMagic), name...) }

// SealObject returns the stored bytes of the object name holding plain.
func (c *Cipher) SealObject(name string, plain []byte) []byte {
	out := make([]byte, 0, len(plain)+ObjectOverhead)
	out = append(out, ObjectMagic...)
	return c.seal(out, objectAD(name), plain)
}

// OpenObject returns the plaintext of stored, the bytes of the object name.
// It fails with ErrOpen unless they were sealed under that name with this
// key and are unchanged.
func (c *Cipher) OpenObject(name string, stored []byte) ([]byte, error) {
	if !IsObject(stored) {
		return nil, ErrOpen
	}
	return c.open(nil, objectAD(name), stored[len(ObjectMagic):])
}

// IsObject reports whether data starts as an encrypted object does.
func IsObject(data []byte) bool {
	return len(data) >= ObjectOverhead && string(data[:len(ObjectMagic)]) == ObjectMagic
}

func blobAD(chunk [32]byte) []byte { return append([]byte(blobDomain), chunk[:]...) }

// SealBlob appends to dst the box of a chunk's stored bytes, plain, bound to
// the chunk's ID. To seal in place, plain is dst[len(dst)+NonceSize:] cut
// to its length, and dst has room for BlobOverhead more bytes.
func (c *Cipher) SealBlob(dst []byte, chunk [32]byte, plain []byte) []byte {
	return c.seal(dst, blobAD(chunk), plain)
}

// OpenBlob appends to dst the stored bytes of the chunk whose box is box.
// It fails with ErrOpen unless box was sealed for that chunk with this key.
func (c *Cipher) OpenBlob(dst []byte, chunk [32]byte, box []byte) ([]byte, error) {
	return c.open(dst, blobAD(chunk), box)
}

// SealTrailer returns the box of a pack's trailer.
func (c *Cipher) SealTrailer(dst, plain []byte) []byte {
	return c.seal(dst, []byte(trailerDomain), plain)
}

// OpenTrailer returns the plaintext of a pack trailer's box.
func (c *Cipher) OpenTrailer(box []byte) ([]byte, error) {
	return c.open(nil, []byte(trailerDomain), box)
}

package crypt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"errors"
)

// xaes is XAES-256-GCM as c2sp.org/XAES-256-GCM specifies it: for each box,
// the counter-mode KDF of NIST SP 800-108r1 with AES-256-CMAC as its PRF
// derives a 256-bit key from the first 12 bytes of the 24-byte nonce, and
// AES-256-GCM seals under that key with the last 12 bytes as its nonce.
// Random nonces are then safe for 2^80 boxes under one key, where GCM's own
// 12-byte nonces are safe for 2^32.
type xaes struct {
	block cipher.Block
	k1    [aes.BlockSize]byte // CMAC's subkey K1 of the key
}

func newXAES(key []byte) (*xaes, error) {
	if len(key) != KeySize {
		return nil, errors.New("xaes-256-gcm: the key is not 32 bytes")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	x := &xaes{block: block}
	// K1 = L·x in GF(2^128), L = AES(key, 0^128): L shifted left by one
	// bit, and 0x87 added to its last byte when a bit is shifted out.
	block.Encrypt(x.k1[:], x.k1[:])
	msb := x.k1[0] >> 7
	for i := range len(x.k1) - 1 {
		x.k1[i] = x.k1[i]<<1 | x.k1[i+1]>>7
	}
	x.k1[len(x.k1)-1] = x.k1[len(x.k1)-1]<<1 ^ byte(subtle.ConstantTimeSelect(int(msb), 0x87, 0))
	return x, nil
}

// gcm returns AES-256-GCM under the key the first 12 bytes of nonce derive.
// Each half of the key is one CMAC block: AES(key, M_i ⊕ K1) with M_i =
// 0x00, i, "X", 0x00 and the 12 bytes.
func (x *xaes) gcm(nonce []byte) cipher.AEAD {
	var k [KeySize]byte
	for i, half := range [][]byte{k[:16], k[16:]} {
		m := [aes.BlockSize]byte{0, byte(i + 1), 'X', 0}
		copy(m[4:], nonce[:12])
		subtle.XORBytes(m[:], m[:], x.k1[:])
		x.block.Encrypt(half, m[:])
	}
	block, err := aes.NewCipher(k[:])
	if err != nil {
		panic("xaes-256-gcm: " + err.Error()) // a 32-byte key is always taken
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		panic("xaes-256-gcm: " + err.Error()) // AES has GCM's block size
	}
	return g
}

func (x *xaes) NonceSize() int { return NonceSize }
func (x *xaes) Overhead() int  { return TagSize }

func (x *xaes) Seal(dst, nonce, plaintext, additionalData []byte) []byte {
	if len(nonce) != NonceSize {
		panic("xaes-256-gcm: the nonce is not 24 bytes")
	}
	return x.gcm(nonce).Seal(dst, nonce[12:], plaintext, additionalData)
}

func (x *xaes) Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error) {
	if len(nonce) != NonceSize {
		return nil, errors.New("xaes-256-gcm: the nonce is not 24 bytes")
	}
	return x.gcm(nonce).Open(dst, nonce[12:], ciphertext, additionalData)
}

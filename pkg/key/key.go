// Package key holds the keys of an encrypted dropback repository: a random
// master key, the subkeys derived from it, and the key objects (keys/<id>)
// that each wrap the master key under a password, through Argon2id with
// parameters stored in the key object itself (docs/format.md, "Keys").
package key

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/zeebo/blake3"
	"golang.org/x/crypto/argon2"

	"github.com/dropback/dropback/pkg/crypt"
)

// Master is a repository's master key. Every key object wraps the same one.
type Master [32]byte

// NewMaster returns a random master key.
func NewMaster() (Master, error) {
	var m Master
	if _, err := rand.Read(m[:]); err != nil {
		return m, fmt.Errorf("make a master key: %w", err)
	}
	return m, nil
}

// Contexts of the subkeys, BLAKE3's derive_key mode over the master key.
// Each AEAD has an encryption key of its own, so that no key is ever used
// with two.
const (
	encryptionContext     = "dropback 2026-11-25 object encryption key"
	xaesEncryptionContext = "dropback 2026-12-02 xaes-256-gcm object encryption key"
	chunkContext          = "dropback 2026-11-25 chunk id key"
	nameContext           = "dropback 2026-11-25 object id key"
)

// wrapCipher seals the master key in every key object, whatever AEAD the
// repository seals its objects with.
const wrapCipher = crypt.XChaCha20Poly1305

// Subkeys are the keys a repository uses, each derived from the master key.
type Subkeys struct {
	// Encryption is the key of every box, for the repository's AEAD.
	Encryption [32]byte
	// Chunk keys the BLAKE3 of a chunk's plain bytes, its ID.
	Chunk [32]byte
	// Name keys the BLAKE3 that names image indexes, index segments and
	// packs by their plaintext.
	Name [32]byte
}

// Derive returns the subkeys of m for a repository whose boxes are sealed
// with the AEAD aead (a crypt name).
func (m Master) Derive(aead string) Subkeys {
	var s Subkeys
	context := encryptionContext
	if aead == crypt.XAES256GCM {
		context = xaesEncryptionContext
	}
	blake3.DeriveKey(context, m[:], s.Encryption[:])
	blake3.DeriveKey(chunkContext, m[:], s.Chunk[:])
	blake3.DeriveKey(nameContext, m[:], s.Name[:])
	return s
}

// Params are Argon2id's parameters for one key object.
type Params struct {
	Time      uint32 `json:"time"`
	MemoryKiB uint32 `json:"memory_kib"`
	Threads   uint8  `json:"threads"`
}

// DefaultParams are those of a new key: the second recommendation of RFC
// 9106 (3 passes over 64 MiB, 4 lanes), about 0.4 s on a 2-core machine.
var DefaultParams = Params{Time: 3, MemoryKiB: 64 << 10, Threads: 4}

// Bounds of the parameters a key object may have, so that a planted key
// cannot make dropback allocate or compute without end.
const (
	maxTime      = 64
	maxMemoryKiB = 4 << 20 // 4 GiB
)

// Check reports whether p is within what a key object may have.
func (p Params) Check() error {
	switch {
	case p.Threads < 1:
		return errors.New("argon2id threads must be at least 1")
	case p.Time < 1 || p.Time > maxTime:
		return fmt.Errorf("argon2id time %d is not from 1 to %d", p.Time, maxTime)
	case p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > maxMemoryKiB:
		return fmt.Errorf("argon2id memory %d KiB is not from %d KiB to 4 GiB", p.MemoryKiB, 8*uint32(p.Threads))
	}
	return nil
}

// Cost orders parameters by the work they take.
func (p Params) Cost() uint64 { return uint64(p.Time) * uint64(p.MemoryKiB) }

// String writes p as ParseParams reads it.
func (p Params) String() string {
	return fmt.Sprintf("t=%d,m=%dKiB,p=%d", p.Time, p.MemoryKiB, p.Threads)
}

// ParseParams reads "t=3,m=64MiB,p=4" (any of them may be left out, and
// take their default); m takes KiB, MiB or GiB.
func ParseParams(s string) (Params, error) {
	p := DefaultParams
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return p, fmt.Errorf("argon2id parameters %q: want t=N,m=SIZE,p=N", s)
		}
		var err error
		switch k {
		case "t":
			var n uint64
			n, err = strconv.ParseUint(v, 10, 32)
			p.Time = uint32(n)
		case "m":
			p.MemoryKiB, err = parseKiB(v)
		case "p":
			var n uint64
			n, err = strconv.ParseUint(v, 10, 8)
			p.Threads = uint8(n)
		default:
			err = fmt.Errorf("unknown parameter %q", k)
		}
		if err != nil {
			return p, fmt.Errorf("argon2id parameters %q: %v", s, err)
		}
	}
	return p, p.Check()
}

func parseKiB(v string) (uint32, error) {
	mult := uint64(1)
	for suffix, m := range map[string]uint64{"KiB": 1, "MiB": 1 << 10, "GiB": 1 << 20} {
		if rest, ok := strings.CutSuffix(v, suffix); ok {
			v, mult = rest, m
			break
		}
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil || n*mult > maxMemoryKiB {
		return 0, fmt.Errorf("memory %q: want a size such as 64MiB, at most 4GiB", v)
	}
	return uint32(n * mult), nil
}

// Object is the content of keys/<id>: the master key, wrapped with a key
// derived from a password.
type Object struct {
	Version   int       `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	KDF       string    `json:"kdf"`
	Params    Params    `json:"params"`
	Salt      []byte    `json:"salt"`
	Cipher    string    `json:"cipher"`
	// Wrapped is a box (nonce, ciphertext and tag) of the 32-byte master
	// key; see ad for its associated data.
	Wrapped []byte `json:"wrapped"`
}

// Key object constants.
const (
	objectVersion = 1
	kdfName       = "argon2id"
	saltSize      = 32
	// MaxObjectSize is the most of a key object that is read.
	MaxObjectSize = 64 << 10
)

// ErrWrongPassword means a key object does not open with the password.
var ErrWrongPassword = errors.New("wrong password")

// NewID returns the ID of a new key object: 16 random bytes in hex.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ad binds a wrapped master key to its repository, its key object and the
// AEAD the repository seals with, so that a config changed to name another
// AEAD opens no key. A repository sealed with XChaCha20-Poly1305, the
// first AEAD, adds nothing for it, as before there was a second.
func ad(repoID, keyID, aead string) []byte {
	s := "dropback key\x00" + repoID + "\x00" + keyID
	if aead != crypt.XChaCha20Poly1305 {
		s += "\x00" + aead
	}
	return []byte(s)
}

// ErrOtherAEAD means the password is right, but the key was made for a
// repository that seals with another AEAD than the one asked for: the
// repository's config was changed.
var ErrOtherAEAD = errors.New("the key was made for a repository sealed with another AEAD")

// Wrap returns the bytes of a new key object, keys/<keyID> of repository
// repoID, whose boxes are sealed with aead, that opens master with
// password.
func Wrap(master Master, password []byte, p Params, repoID, keyID, aead string, now time.Time) ([]byte, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	o := Object{Version: objectVersion, CreatedAt: now.UTC().Truncate(time.Second), KDF: kdfName,
		Params: p, Salt: make([]byte, saltSize), Cipher: wrapCipher}
	if _, err := rand.Read(o.Salt); err != nil {
		return nil, fmt.Errorf("make a key: %w", err)
	}
	c, err := crypt.New(wrapCipher, o.derive(password))
	if err != nil {
		return nil, err
	}
	o.Wrapped = c.Seal(nil, ad(repoID, keyID, aead), master[:])
	data, err := json.MarshalIndent(o, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

func (o *Object) derive(password []byte) []byte {
	k := argon2.IDKey(password, o.Salt, o.Params.Time, o.Params.MemoryKiB, o.Params.Threads, crypt.KeySize)
	// The KDF's memory (64 MiB by default) is garbage now: hand it back to
	// the system at once, so that what the command does next, whose large
	// buffers live outside Go's heap, adds to a small process, not to one
	// that still holds the KDF's pages.
	debug.FreeOSMemory()
	return k
}

// Decode reads a key object and checks everything in it but the password.
func Decode(data []byte) (*Object, error) {
	if len(data) > MaxObjectSize {
		return nil, fmt.Errorf("key object of %d bytes is larger than %d", len(data), MaxObjectSize)
	}
	var o Object
	if err := json.Unmarshal(data, &o); err != nil {
		return nil, errors.New("key object is not JSON")
	}
	switch {
	case o.Version != objectVersion:
		return nil, fmt.Errorf("key object version %d is not %d", o.Version, objectVersion)
	case o.KDF != kdfName:
		return nil, fmt.Errorf("key object KDF %q is not %s", o.KDF, kdfName)
	case o.Cipher != wrapCipher:
		return nil, fmt.Errorf("key object cipher %q is not %s", o.Cipher, wrapCipher)
	case len(o.Salt) < 16 || len(o.Salt) > 64:
		return nil, fmt.Errorf("key object salt of %d bytes", len(o.Salt))
	case len(o.Wrapped) != len(Master{})+crypt.BlobOverhead:
		return nil, fmt.Errorf("key object wraps %d bytes, not a master key", len(o.Wrapped))
	}
	if err := o.Params.Check(); err != nil {
		return nil, fmt.Errorf("key object: %w", err)
	}
	return &o, nil
}

// Unwrap returns the master key o wraps for keys/<keyID> of repository
// repoID sealed with aead, or ErrWrongPassword, or an error that wraps
// ErrOtherAEAD and names the AEAD the key was made for.
func (o *Object) Unwrap(password []byte, repoID, keyID, aead string) (Master, error) {
	var m Master
	c, err := crypt.New(wrapCipher, o.derive(password))
	if err != nil {
		return m, err
	}
	plain, err := c.Open(nil, ad(repoID, keyID, aead), o.Wrapped)
	if err != nil {
		for _, other := range []string{crypt.XAES256GCM, crypt.XChaCha20Poly1305} {
			if _, err := c.Open(nil, ad(repoID, keyID, other), o.Wrapped); other != aead && err == nil {
				return m, fmt.Errorf("%w: %s, not %s", ErrOtherAEAD, other, aead)
			}
		}
		return m, ErrWrongPassword
	}
	copy(m[:], plain)
	return m, nil
}

package engine

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

func TestLooksRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	random := make([]byte, 1<<20)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	text := bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog\n"), 1<<20/44+1)[:1<<20]
	cases := []struct {
		name string
		data []byte
		want bool
	}{
		{"random", random, true},
		{"text", text, false},
		{"zeros", make([]byte, 1<<20), false},
		{"small", random[:1000], false},
		{"binary with zero bytes", func() []byte {
			b := bytes.Clone(random)
			for i := 1; i < len(b); i += 8 {
				b[i] = 0
			}
			return b
		}(), false},
	}
	for _, tc := range cases {
		if got := looksRandom(tc.data); got != tc.want {
			t.Errorf("%s: looksRandom = %v, want %v", tc.name, got, tc.want)
		}
	}
	// Whatever looksRandom says, compress never loses data.
	for _, tc := range cases {
		blob, flags := compress(tc.data, nil)
		plain, err := decompress(blob, flags, len(tc.data), nil)
		if err != nil || !bytes.Equal(plain, tc.data) {
			t.Errorf("%s: round trip failed: %v", tc.name, err)
		}
	}
}

// Chunk and object names are part of the repository format: whatever BLAKE3
// implementation computes them, they must not change. The expected values
// are the BLAKE3 of the input, keyed and not, over sizes that cross the
// implementation's block, chunk and SIMD-batch boundaries.
func TestHashesAreStable(t *testing.T) {
	var key [32]byte
	for i := range key {
		key[i] = byte(i)
	}
	h := newChunkHasher(key)
	for _, c := range []struct {
		n            int
		keyed, plain string
	}{
		{0,
			"73492b19995d71cdb1e9d74decc09809eb732f1b00bc95c27cb15f9dd4d6478f",
			"af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"},
		{1,
			"d08b45c6b127ee94f3f8527a0b82a5f80be1695a0eaec6022e772c0eb95a7e8b",
			"2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213"},
		{1024,
			"f45a9249a627fdf1fcf13c0e6376f6a9a9b2056d6e1b5693a4b119a3453665f9",
			"42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7"},
		{1025,
			"82223147a9b804a0c3f9a921b8d8aee250d1a51bb76be72152e6d5e8f27349b3",
			"d00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444"},
		{64 << 10,
			"ca2a089711002f4987989e5fab9c11ca9940e94ee258ea062d2bcb402de11ca9",
			"68d647e619a930e7b1082f74f334b0c65a315725569bdc123f0ee11881717bfe"},
		{1<<20 + 4097,
			"6bd841c48f46c666aedbcb63724ac619d33795e15fea5439313a32bdab8b7854",
			"09eef6e91e59c497947100285e05d9700c081180137e6f8a97fee86559f2a66c"},
	} {
		data := make([]byte, c.n)
		for i := range data {
			data[i] = byte(i % 251)
		}
		if got := h.sum(data).String(); got != c.keyed {
			t.Errorf("keyed BLAKE3 of %d bytes = %s, want %s", c.n, got, c.keyed)
		}
		if got := contentID(data).String(); got != c.plain {
			t.Errorf("BLAKE3 of %d bytes = %s, want %s", c.n, got, c.plain)
		}
	}
}

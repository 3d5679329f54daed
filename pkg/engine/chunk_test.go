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

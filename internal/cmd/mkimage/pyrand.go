package main

import (
	"encoding/binary"
	"math/bits"
)

// pyRand is CPython's random.Random: MT19937, seeded from an integer the way
// CPython seeds it, with randbytes, randrange, random and choices drawing
// from it exactly as CPython's do. So an image made here has the same bytes
// as one made by the Python generator this command was ported from.
//
// A pyRand is not safe for concurrent use.
type pyRand struct {
	mt  [mtN]uint32
	idx int
}

const (
	mtN       = 624
	mtM       = 397
	mtMatrixA = 0x9908b0df
	mtUpper   = 0x80000000
	mtLower   = 0x7fffffff
)

// newPyRand is random.Random(seed): init_by_array over the 32-bit words of
// |seed|, least significant first.
func newPyRand(seed int64) *pyRand {
	u := uint64(seed)
	if seed < 0 {
		u = uint64(-seed)
	}
	key := []uint32{uint32(u)}
	if u>>32 != 0 {
		key = append(key, uint32(u>>32))
	}
	r := &pyRand{}
	r.initByArray(key)
	return r
}

func (r *pyRand) initGenrand(s uint32) {
	r.mt[0] = s
	for i := 1; i < mtN; i++ {
		r.mt[i] = 1812433253*(r.mt[i-1]^(r.mt[i-1]>>30)) + uint32(i)
	}
	r.idx = mtN
}

func (r *pyRand) initByArray(key []uint32) {
	r.initGenrand(19650218)
	i, j := 1, 0
	for k := max(mtN, len(key)); k > 0; k-- {
		r.mt[i] = (r.mt[i] ^ ((r.mt[i-1] ^ (r.mt[i-1] >> 30)) * 1664525)) + key[j] + uint32(j)
		i, j = i+1, j+1
		if i >= mtN {
			r.mt[0], i = r.mt[mtN-1], 1
		}
		if j >= len(key) {
			j = 0
		}
	}
	for k := mtN - 1; k > 0; k-- {
		r.mt[i] = (r.mt[i] ^ ((r.mt[i-1] ^ (r.mt[i-1] >> 30)) * 1566083941)) - uint32(i)
		i++
		if i >= mtN {
			r.mt[0], i = r.mt[mtN-1], 1
		}
	}
	r.mt[0] = 0x80000000
}

// twist makes the next mtN words of state.
func (r *pyRand) twist() {
	mag := func(y uint32) uint32 { return (y >> 1) ^ (-(y & 1) & mtMatrixA) }
	kk := 0
	for ; kk < mtN-mtM; kk++ {
		r.mt[kk] = r.mt[kk+mtM] ^ mag((r.mt[kk]&mtUpper)|(r.mt[kk+1]&mtLower))
	}
	for ; kk < mtN-1; kk++ {
		r.mt[kk] = r.mt[kk+mtM-mtN] ^ mag((r.mt[kk]&mtUpper)|(r.mt[kk+1]&mtLower))
	}
	r.mt[mtN-1] = r.mt[mtM-1] ^ mag((r.mt[mtN-1]&mtUpper)|(r.mt[0]&mtLower))
	r.idx = 0
}

func temper(y uint32) uint32 {
	y ^= y >> 11
	y ^= (y << 7) & 0x9d2c5680
	y ^= (y << 15) & 0xefc60000
	return y ^ (y >> 18)
}

// uint32 is genrand_uint32.
func (r *pyRand) uint32() uint32 {
	if r.idx >= mtN {
		r.twist()
	}
	y := r.mt[r.idx]
	r.idx++
	return temper(y)
}

// read fills b with random.randbytes(len(b)), whose length must be a
// multiple of 4: getrandbits(8n) as little-endian bytes, which is the
// generator's words in order, each little-endian.
func (r *pyRand) read(b []byte) {
	if len(b)%4 != 0 {
		panic("pyRand.read: length not a multiple of 4")
	}
	for len(b) > 0 {
		if r.idx >= mtN {
			r.twist()
		}
		n := min(mtN-r.idx, len(b)/4)
		for i, y := range r.mt[r.idx : r.idx+n] {
			binary.LittleEndian.PutUint32(b[4*i:], temper(y))
		}
		r.idx += n
		b = b[4*n:]
	}
}

// skip draws n words and throws them away, as read of 4n bytes would.
func (r *pyRand) skip(n int) {
	for n > 0 {
		if r.idx >= mtN {
			r.twist()
		}
		k := min(mtN-r.idx, n)
		r.idx += k
		n -= k
	}
}

// bits is getrandbits(k) for 1 <= k <= 64.
func (r *pyRand) bits(k int) uint64 {
	if k <= 32 {
		return uint64(r.uint32() >> (32 - k))
	}
	lo := uint64(r.uint32())
	hi := uint64(r.uint32() >> (64 - k))
	return lo | hi<<32
}

// below is randrange(n) for n >= 1: getrandbits of n's bit length, drawn
// again until it is below n.
func (r *pyRand) below(n int64) int64 {
	k := bits.Len64(uint64(n))
	v := r.bits(k)
	for v >= uint64(n) {
		v = r.bits(k)
	}
	return int64(v)
}

// float is random(): 53 random bits in [0, 1).
func (r *pyRand) float() float64 {
	a, b := r.uint32()>>5, r.uint32()>>6
	return (float64(a)*67108864.0 + float64(b)) * (1.0 / 9007199254740992.0)
}

// choice is choices(range(len(weights)), weights)[0]: the index whose
// cumulative weight is the first above random() * total.
func (r *pyRand) choice(weights []int) int {
	cum := make([]int, len(weights))
	total := 0
	for i, w := range weights {
		total += w
		cum[i] = total
	}
	x := r.float() * float64(total)
	for i, c := range cum[:len(cum)-1] {
		if float64(c) > x {
			return i
		}
	}
	return len(cum) - 1
}

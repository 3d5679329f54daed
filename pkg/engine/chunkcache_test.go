package engine

import (
	"context"
	"testing"
)

// A full cache loads a chunk into the buffer of one it pushed out, rather
// than into a new one that leaves the old to the collector: a client that
// reads a disk front to back through it makes the cache's buffers, and no
// more, however many chunks it reads.
func TestChunkCacheReusesBuffers(t *testing.T) {
	const max, loads = 4, 2
	c := newChunkCache(max, 8, loads)
	for i := range 100 {
		e, err := c.get(context.Background(), ID{byte(i), 1}, func(b []byte) ([]byte, error) {
			return append(b[:0], "chunk..."...), nil
		})
		if err != nil || string(e.data) != "chunk..." {
			t.Fatalf("get: %q, %v", e.data, err)
		}
		c.release(e)
	}
	if c.stats.loads != 100 || c.stats.buffers > max+loads {
		t.Fatalf("100 chunks read once each through a cache of %d: %d loads into %d new buffers", max, c.stats.loads, c.stats.buffers)
	}
}

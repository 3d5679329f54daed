package engine

import (
	"container/list"
	"context"
	"errors"
	"sync"
)

// chunkCache keeps the plain bytes of the chunks read last, at most max of
// them, for readers that ask for the same chunk again (a client reading 4
// KiB at a time reads each chunk many times). It loads each chunk once
// however many readers ask for it at the same moment.
//
// Its buffers are reused: an entry pushed out while a reader still copies
// from it keeps its buffer until that reader releases it, then the buffer
// serves the next load. So its memory is about max chunks, plus one for
// each reader holding an evicted entry, plus the loads, of which at most
// a few run at once; whatever the disk size and however long it runs. A
// cache that is full makes no new buffer for a load: it takes the one of
// an entry pushed out.
type chunkCache struct {
	max, chunkSize int
	loads          chan struct{} // a token for each load that runs

	mu      sync.Mutex
	entries map[ID]*cacheEntry
	lru     list.List // of *cacheEntry, most recently used first
	loading map[ID]*cacheLoad
	free    [][]byte
	stats   cacheStats
}

// cacheStats counts what the cache did, for tests and benchmarks.
type cacheStats struct {
	hits, loads, waits int64
	buffers            int64 // buffers made
}

type cacheEntry struct {
	id      ID
	data    []byte
	refs    int // readers holding it, under chunkCache.mu
	elem    *list.Element
	evicted bool
}

// cacheLoad is a load in progress; done is closed once err is set or the
// entry is in the cache.
type cacheLoad struct {
	done chan struct{}
	err  error
}

func newChunkCache(max, chunkSize, loads int) *chunkCache {
	return &chunkCache{max: max, chunkSize: chunkSize, loads: make(chan struct{}, loads),
		entries: map[ID]*cacheEntry{}, loading: map[ID]*cacheLoad{}}
}

// get returns the entry of chunk id, loaded with load (into a buffer of
// chunkSize bytes it is given) if it is not cached. The caller reads
// entry.data and then calls release.
func (c *chunkCache) get(ctx context.Context, id ID, load func(buf []byte) ([]byte, error)) (*cacheEntry, error) {
	for {
		c.mu.Lock()
		if e, ok := c.entries[id]; ok {
			e.refs++
			c.lru.MoveToFront(e.elem)
			c.stats.hits++
			c.mu.Unlock()
			return e, nil
		}
		if l, ok := c.loading[id]; ok {
			c.stats.waits++
			c.mu.Unlock()
			select {
			case <-l.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			if l.err != nil && !isCancel(l.err) {
				return nil, l.err
			}
			// Cached now, unless pushed out already; or the reader that
			// loaded it gave up, and this one loads it itself.
			continue
		}
		l := &cacheLoad{done: make(chan struct{})}
		c.loading[id] = l
		c.stats.loads++
		c.mu.Unlock()
		return c.fill(ctx, id, l, load)
	}
}

// fill runs load for the chunk that l loads, once a load may run, and
// caches its result.
func (c *chunkCache) fill(ctx context.Context, id ID, l *cacheLoad, load func(buf []byte) ([]byte, error)) (*cacheEntry, error) {
	var data, buf []byte
	var err error
	select {
	case c.loads <- struct{}{}:
		c.mu.Lock()
		buf = c.buffer()
		c.mu.Unlock()
		data, err = load(buf)
		<-c.loads
	case <-ctx.Done():
		err = ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.loading, id)
	l.err = err
	defer close(l.done)
	if err != nil {
		if buf != nil {
			c.recycle(buf)
		}
		return nil, err
	}
	e := &cacheEntry{id: id, data: data, refs: 1}
	e.elem = c.lru.PushFront(e)
	c.entries[id] = e
	for c.lru.Len() > c.max {
		c.evict(c.lru.Back().Value.(*cacheEntry))
	}
	return e, nil
}

// release ends a reader's use of e.
func (c *chunkCache) release(e *cacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.refs--
	if e.evicted && e.refs == 0 {
		c.recycle(e.data)
	}
}

// evict takes e out of the cache; its buffer is reused once no reader holds
// it. Under mu.
func (c *chunkCache) evict(e *cacheEntry) {
	c.lru.Remove(e.elem)
	delete(c.entries, e.id)
	e.evicted = true
	if e.refs == 0 {
		c.recycle(e.data)
	}
}

// buffer returns a buffer for a load. Under mu.
func (c *chunkCache) buffer() []byte {
	if n := len(c.free); n > 0 {
		b := c.free[n-1]
		c.free = c.free[:n-1]
		return b
	}
	c.stats.buffers++
	return make([]byte, c.chunkSize)
}

// recycle keeps buf for a later load, unless the cache and its spare
// buffers already hold max of them and one for each load that may run.
// Under mu.
func (c *chunkCache) recycle(buf []byte) {
	if cap(buf) >= c.chunkSize && c.lru.Len()+len(c.free) < c.max+cap(c.loads) {
		c.free = append(c.free, buf[:c.chunkSize])
	}
}

func isCancel(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

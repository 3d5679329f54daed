package engine

import (
	"context"
	"runtime"
	"testing"
)

// A reader opens blob after blob without allocating for each, even when
// collections empty every sync.Pool between them, as they do all the time
// under the soft memory limit of export and serve: a compressed blob of an
// encrypted repository is decrypted into the reader's own buffer, not into
// one the pool has to make again (it used to make MaxChunkSize bytes, 16
// MiB, for each 64 KiB chunk).
func TestReadRunAllocatesNothingPerBlob(t *testing.T) {
	r, _ := newRepo(t)
	if r.sec == nil {
		t.Skip("the repository is not encrypted")
	}
	path, want := readerDisk(t)
	m := backup(t, r, path)
	b := openReader(t, r, m, ReadOptions{})
	i := 10 // a chunk of text: stored compressed
	id := imageOf(t, r, m).Chunks[i]
	if _, loc, _ := b.idx.lookup(id); loc.flags&flagZstd == 0 {
		t.Fatalf("chunk %d is not stored compressed (flags %#x)", i, loc.flags)
	}
	s := &readState{h: newChunkHasher(r.key)}
	plain := [][]byte{make([]byte, 0, testChunk)}
	read := func() {
		t.Helper()
		err := b.readRun(context.Background(), s, b.runOf(id), plain, func(_ int, data []byte) error {
			if string(data) != string(want[i*testChunk:(i+1)*testChunk]) {
				t.Fatal("the chunk read wrong")
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	read() // the reader's buffers grow to fit
	const reads = 20
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range reads {
		runtime.GC() // twice: a pool keeps what it held for one collection
		runtime.GC()
		read()
	}
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > reads*testChunk/4 {
		t.Fatalf("%d reads of a %d-byte chunk, with collections between them, allocated %d bytes", reads, testChunk, n)
	}
}

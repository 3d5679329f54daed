package engine

import (
	"context"
	"fmt"
	"runtime"
	"sync"

	"github.com/dropback/dropback/pkg/progress"
)

const (
	// streamRead is the most a stream reads from a pack at once, and
	// streamPlain the most plain bytes one of its runs holds (one chunk at
	// least).
	streamRead  = 4 << 20
	streamPlain = 4 << 20
	// streamRunChunks bounds the chunks of one run.
	streamRunChunks = 64
)

// streamRun is chunks of the disk, consecutive among its data chunks,
// whose blobs are read with one ranged get.
type streamRun struct {
	blobRun
	chunks []int // the image's chunk indexes, one per blob
	raw    int   // plain bytes of the run
}

// streamBufs holds one run's bytes from its read until it was delivered.
type streamBufs struct {
	read, plain []byte
}

// streamJob is one run on its way: a worker fills res and closes done.
type streamJob struct {
	run  streamRun
	bufs *streamBufs
	data [][]byte // plain bytes of each chunk
	err  error
	done chan struct{}
}

// Stream calls fn with every data chunk of the disk, at its offset, in
// ascending order: a chunk's bytes are valid during the call only. Zero
// chunks are left out: what fn is not given reads as zeros. prog, if not
// nil, counts the data chunks as read and the zero chunks as skipped, in
// the current job (Stream does not start one).
//
// Chunks are read, decompressed and checked by several goroutines ahead of
// the one fn is called with, neighbouring blobs of a pack with one ranged
// get, so that a disk streams at the speed of a restore; fn is called from
// the goroutine that called Stream. The bytes in flight are bounded (a few
// runs of at most 4 MiB each), whatever the disk's size. An error of fn or
// of a read stops the stream and is returned.
func (d *DiskReader) Stream(ctx context.Context, fn func(off int64, data []byte) error, prog *progress.Counter) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	workers := 2 * runtime.GOMAXPROCS(0)
	free := make(chan *streamBufs, workers+2)
	for range cap(free) {
		free <- &streamBufs{}
	}
	order := make(chan *streamJob, cap(free))
	jobs := make(chan *streamJob)
	go d.planStream(ctx, free, order, jobs)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := &readState{h: newChunkHasher(d.b.r.key)}
			for j := range jobs {
				d.readStreamRun(ctx, s, j)
			}
		}()
	}
	err := d.deliver(ctx, order, free, fn, prog)
	cancel()
	for range order { // the planner stops and closes it
	}
	wg.Wait()
	return err
}

// deliver calls fn with the chunks of each run in order, and counts the
// zero chunks between them as skipped.
func (d *DiskReader) deliver(ctx context.Context, order <-chan *streamJob, free chan<- *streamBufs, fn func(int64, []byte) error, prog *progress.Counter) error {
	cs := int64(d.im.ChunkSize)
	next := 0 // the first chunk not yet accounted for
	skip := func(to int) {
		for ; next < to; next++ {
			prog.AddSkipped(int64(d.im.chunkLen(next)))
		}
	}
	for j := range order {
		select {
		case <-j.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if j.err != nil {
			return j.err
		}
		for k, i := range j.run.chunks {
			skip(i)
			if err := fn(int64(i)*cs, j.data[k]); err != nil {
				return err
			}
			prog.AddRead(int64(len(j.data[k])))
			next = i + 1
		}
		free <- j.bufs
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	skip(d.im.count())
	return nil
}

// planStream cuts the disk's data chunks into runs and sends each, with
// buffers for it, to order and then to jobs, so that order has them in
// the disk's order. It stops when the buffers run out until one is freed,
// which bounds how far it reads ahead.
func (d *DiskReader) planStream(ctx context.Context, free <-chan *streamBufs, order, jobs chan<- *streamJob) {
	defer close(order)
	defer close(jobs)
	send := func(run streamRun) bool {
		var bufs *streamBufs
		select {
		case bufs = <-free:
		case <-ctx.Done():
			return false
		}
		j := &streamJob{run: run, bufs: bufs, done: make(chan struct{})}
		order <- j // room for every job that holds buffers
		select {
		case jobs <- j:
			return true
		case <-ctx.Done():
			j.err = ctx.Err()
			close(j.done)
			return false
		}
	}
	var run *streamRun
	for i := range d.im.count() {
		if d.im.zero(i) {
			continue
		}
		id := d.im.id(i)
		pack, loc, _ := d.b.idx.lookup(id)
		s, e, raw := int64(loc.offset), int64(loc.offset)+int64(loc.length), int(loc.raw)
		if run != nil && run.pack == pack && s >= run.start && e-run.start <= streamRead &&
			run.raw+raw <= streamPlain && len(run.ids) < streamRunChunks {
			run.end = max(run.end, e)
			run.ids = append(run.ids, id)
			run.chunks = append(run.chunks, i)
			run.raw += raw
			continue
		}
		if run != nil && !send(*run) {
			return
		}
		run = &streamRun{blobRun: blobRun{pack: pack, start: s, end: e, ids: []ID{id}}, chunks: []int{i}, raw: raw}
	}
	if run != nil {
		send(*run)
	}
}

// readStreamRun reads, opens and checks the blobs of j's run into j's
// buffers, with the hasher and scratch buffer of the worker's s.
func (d *DiskReader) readStreamRun(ctx context.Context, s *readState, j *streamJob) {
	defer close(j.done)
	b := j.bufs
	// Only compressed blobs need room of their own: a blob stored raw is
	// its chunk, in the bytes read.
	locs := make([]location, len(j.run.ids))
	need := 0
	for k, id := range j.run.ids {
		_, locs[k], _ = d.b.idx.lookup(id)
		if locs[k].flags != 0 {
			need += int(locs[k].raw)
		}
	}
	if cap(b.plain) < need {
		b.plain = make([]byte, need)
	}
	plain := make([][]byte, len(j.run.ids))
	at := 0
	for k, l := range locs {
		if l.flags != 0 {
			plain[k] = b.plain[at:at:min(at+int(l.raw), cap(b.plain))]
			at += int(l.raw)
		}
	}
	j.data = make([][]byte, len(j.run.ids))
	s.buf = b.read
	j.err = d.b.readRun(ctx, s, j.run.blobRun, plain, func(k int, data []byte) error {
		if len(data) != d.im.chunkLen(j.run.chunks[k]) {
			return fmt.Errorf("%w: chunk %s has %d bytes, not %d", ErrCorrupt, j.run.ids[k], len(data), d.im.chunkLen(j.run.chunks[k]))
		}
		j.data[k] = data
		return nil
	})
	b.read, s.buf = s.buf, nil
	if j.err != nil {
		j.err = fmt.Errorf("read disk %s of backup %d: %w", d.name, d.b.m.ID, j.err)
	}
}

package engine

import (
	"context"
	"sync"

	"github.com/dropback/dropback/pkg/store"
)

// readParallelism is how many reads the repository has in flight at once:
// Options.ReadParallelism, else what its store says (store.Paralleler).
func (r *Repo) readParallelism() int {
	if r.parallel > 0 {
		return r.parallel
	}
	return store.DefaultReadParallelism
}

// forEach calls fn(i) for i from 0 to n-1, at most r.readParallelism() at
// once, and returns the first error any call returned (the calls not yet
// started then are not made). fn must be safe for concurrent use.
func (r *Repo) forEach(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	if n == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	workers := min(r.readParallelism(), n)
	next := make(chan int)
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		}()
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

package nbd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// benchSize is the export the benchmarks read whole, in 1 MiB reads.
const benchSize = 64 << 20

func benchData() []byte {
	data := make([]byte, benchSize)
	for i := range data {
		data[i] = byte(i*31 + i>>12 | 1)
	}
	return data
}

// readAll reads the export of c whole with workers goroutines, in reads of
// 1 MiB.
func readAll(b *testing.B, c *Client, workers int) {
	var wg sync.WaitGroup
	next := make(chan int64, benchSize>>20)
	for off := int64(0); off < benchSize; off += 1 << 20 {
		next <- off
	}
	close(next)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := make([]byte, 1<<20)
			for off := range next {
				if _, err := c.ReadAt(context.Background(), p, off); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// BenchmarkRoundTrip reads through this package's client from this
// package's server, over a unix socket.
func BenchmarkRoundTrip(b *testing.B) {
	sock := serve(b, NewServer(map[string]Export{"d": &memExport{data: benchData()}}, ServerOptions{}))
	for _, simple := range []bool{false, true} {
		for _, workers := range []int{1, 4} {
			b.Run(fmt.Sprintf("simple=%v/workers=%d", simple, workers), func(b *testing.B) {
				c := dialTest(b, "unix", sock, clientConfig{export: "d", simpleOnly: simple})
				b.SetBytes(benchSize)
				for b.Loop() {
					readAll(b, c, workers)
				}
			})
		}
	}
}

// BenchmarkClientQemuNBD reads through this package's client from qemu-nbd.
func BenchmarkClientQemuNBD(b *testing.B) {
	path := filepath.Join(b.TempDir(), "disk.img")
	if err := os.WriteFile(path, benchData(), 0o644); err != nil {
		b.Fatal(err)
	}
	sock := qemuNBD(b, "raw", path)
	for _, workers := range []int{1, 4} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			c := dialTest(b, "unix", sock, clientConfig{export: "disk"})
			b.SetBytes(benchSize)
			for b.Loop() {
				readAll(b, c, workers)
			}
		})
	}
}

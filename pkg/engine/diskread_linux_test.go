package engine

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/dropback/dropback/internal/directio"
	"golang.org/x/sys/unix"
)

// BenchmarkDiskRead reads the data chunks of the image as backupDisk does,
// with 1 to 12 parallel readers, around the page cache (direct) and through
// it (cached), to show what the disk gives. Each run first drops the image's
// pages from the page cache (posix_fadvise DONTNEED), so it reads from the
// disk.
func BenchmarkDiskRead(b *testing.B) {
	img := benchImage(b)
	for _, direct := range []bool{true, false} {
		for _, readers := range []int{1, 2, 4, diskReaders, 8, 12} {
			b.Run(fmt.Sprintf("direct=%v/readers=%d", direct, readers), func(b *testing.B) {
				of, size, err := OpenDisk(img)
				if err != nil {
					b.Fatal(err)
				}
				f := &directio.File{File: of}
				if direct {
					f = directio.Wrap(of)
				}
				defer f.Close()
				chunks := dataChunks(dataRegions(of, size), 1<<20)
				b.SetBytes(int64(len(chunks)) << 20)
				for b.Loop() {
					b.StopTimer()
					_ = f.Sync()
					_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
					b.StartTimer()
					var next atomic.Int64
					var wg sync.WaitGroup
					for range readers {
						wg.Add(1)
						go func() {
							defer wg.Done()
							buf := directio.Alloc(1 << 20)
							for i := next.Add(1) - 1; i < int64(len(chunks)); i = next.Add(1) - 1 {
								off := int64(chunks[i]) << 20
								_, _ = f.ReadAt(buf[:min(1<<20, size-off)], off)
							}
						}()
					}
					wg.Wait()
				}
			})
		}
	}
}

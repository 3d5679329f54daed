package engine

import (
	"fmt"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkDiskRead reads the whole image in 1 MiB chunks with 1, 2 and 6
// parallel readers, as backupDisk does, to show what the disk gives. Each
// run first drops the image's pages from the page cache (posix_fadvise
// DONTNEED), so it reads from the disk.
func BenchmarkDiskRead(b *testing.B) {
	img := benchImage(b)
	for _, readers := range []int{1, 2, diskReaders} {
		b.Run(fmt.Sprintf("readers=%d", readers), func(b *testing.B) {
			f, size, err := OpenDisk(img)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			b.SetBytes(size)
			for b.Loop() {
				b.StopTimer()
				_ = f.Sync()
				_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
				b.StartTimer()
				var wg sync.WaitGroup
				for w := range readers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						buf := make([]byte, 1<<20)
						for off := int64(w) << 20; off < size; off += int64(readers) << 20 {
							_, _ = f.ReadAt(buf, off)
						}
					}()
				}
				wg.Wait()
			}
		})
	}
}

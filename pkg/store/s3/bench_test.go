package s3_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/dropback/dropback/internal/miniotest"
)

// BenchmarkPutPack puts pack-sized objects from two goroutines, as the
// engine's uploaders do, in one PUT each or in parts.
func BenchmarkPutPack(b *testing.B) {
	srv := miniotest.Start(b)
	for _, tc := range []struct {
		name     string
		partSize int64
	}{{"single", 0}, {"parts-8MiB", 8 << 20}} {
		b.Run(tc.name, func(b *testing.B) {
			opts := options(srv, srv.Endpoint)
			opts.PartSize = tc.partSize
			s := open(b, "s3://"+srv.Bucket(b)+"/bench", opts)
			data := content(1, 16<<20+300<<10)
			var n atomic.Int64
			b.SetBytes(int64(len(data)))
			b.SetParallelism(1)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := s.Put(context.Background(), fmt.Sprintf("packs/%d", n.Add(1)), data); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

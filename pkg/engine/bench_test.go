package engine

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/dropback/dropback/pkg/store/local"
)

// Benchmarks on a real image: DROPBACK_BENCH_IMAGE=/path/disk.img
// go test -run X -bench . -benchtime 1x ./pkg/engine (make bench compares
// the whole tool with restic and borg; these are for profiling).
func benchImage(b *testing.B) string {
	img := os.Getenv("DROPBACK_BENCH_IMAGE")
	if img == "" {
		b.Skip("set DROPBACK_BENCH_IMAGE to a disk image")
	}
	return img
}

func BenchmarkBackupRestore(b *testing.B) {
	img := benchImage(b)
	ctx := context.Background()
	fi, err := os.Stat(img)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		dir := b.TempDir()
		st, _ := local.Open(filepath.Join(dir, "repo"))
		r, err := Init(ctx, st, encrypt(InitOptions{}))
		if err != nil {
			b.Fatal(err)
		}
		src := []DiskSource{{Name: "disk", Path: img}}
		b.Run("first", func(b *testing.B) {
			b.SetBytes(fi.Size())
			if _, err := r.Backup(ctx, BackupRequest{HostID: 1, HostName: "h", Disks: src}); err != nil {
				b.Fatal(err)
			}
		})
		var m *Manifest
		b.Run("second", func(b *testing.B) {
			b.SetBytes(fi.Size())
			if m, err = r.Backup(ctx, BackupRequest{HostID: 1, HostName: "h", Disks: src}); err != nil {
				b.Fatal(err)
			}
		})
		b.Run("restore", func(b *testing.B) {
			b.SetBytes(fi.Size())
			if _, err := r.Restore(ctx, m, []RestoreTarget{{Path: filepath.Join(dir, "out.img")}}, nil); err != nil {
				b.Fatal(err)
			}
		})
		b.Run("verify", func(b *testing.B) {
			if _, err := r.Verify(ctx, nil, nil); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkProtocolCost measures what the deletion-safety protocol adds to
// an operation, on a repository on disk: the marker a backup, restore or
// verify writes and deletes, one heartbeat (every minute), and the gc
// lease with the look at the running operations it takes. docs/benchmarks.md
// sets them against a backup's time.
func BenchmarkProtocolCost(b *testing.B) {
	ctx := context.Background()
	st, err := local.Open(filepath.Join(b.TempDir(), "repo"))
	if err != nil {
		b.Fatal(err)
	}
	r, err := Init(ctx, st, encrypt(InitOptions{}))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("marker", func(b *testing.B) {
		for b.Loop() {
			op, err := r.Begin(ctx, OpBackup, 1)
			if err != nil {
				b.Fatal(err)
			}
			op.End()
		}
	})
	b.Run("heartbeat", func(b *testing.B) {
		op, err := r.Begin(ctx, OpBackup, 1)
		if err != nil {
			b.Fatal(err)
		}
		defer op.End()
		for b.Loop() {
			op.refresh()
		}
	})
	b.Run("lease", func(b *testing.B) {
		op, err := r.Begin(ctx, OpGC, 0)
		if err != nil {
			b.Fatal(err)
		}
		defer op.End()
		for b.Loop() {
			gen, err := r.acquireLease(ctx, op, 0)
			if err != nil {
				b.Fatal(err)
			}
			r.releaseLease(ctx, gen)
		}
	})
}

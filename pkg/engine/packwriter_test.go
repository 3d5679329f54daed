package engine

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/dropback/dropback/pkg/store/faulty"
	"github.com/dropback/dropback/pkg/store/local"
)

// TestFailedPackUploadNeverHangsTheBackup fails every pack upload while a
// backup still has many packs to hand over: the backup must end with the
// error, each time, rather than hang with two uploaders holding one pack.
func TestFailedPackUploadNeverHangsTheBackup(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	makeDisk(t, src, 256<<20, region{0, 256 << 20, "random"})
	for round := range 10 {
		inner, err := local.Open(filepath.Join(dir, "repo", string(rune('a'+round))))
		if err != nil {
			t.Fatal(err)
		}
		st := faulty.New(inner)
		r, err := Init(ctx, st, encrypt(InitOptions{ChunkSize: testChunk}))
		if err != nil {
			t.Fatal(err)
		}
		// Uploads fail slowly, as against a store that went away, while
		// the backup keeps filling packs.
		st.Set(faulty.Rule{Op: faulty.Put, Pattern: "packs/*/*", After: round % 3,
			Hook: func() { time.Sleep(20 * time.Millisecond) }, Err: faulty.EIO})
		done := make(chan error, 1)
		go func() {
			_, err := r.Backup(ctx, BackupRequest{HostID: 1, HostName: "h", Disks: []DiskSource{{Name: "d", Path: src}}})
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil {
				t.Fatalf("round %d: the backup succeeded although every pack upload failed", round)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("round %d: the backup hung after a pack upload failed", round)
		}
	}
}

package local

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dropback/dropback/pkg/provider"
	"github.com/dropback/dropback/pkg/store/mem"
)

// A disk whose size differs from its last backup fails the backup, on
// demand and in a scheduled pass, until a backup accepts the new size.
func TestResizeNeedsAcceptResize(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 23, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	clock := func() time.Time { return now }
	p, err := New(ctx, Options{Repo: "memory", Now: clock, Store: mem.New(clock)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.InitRepo(ctx, provider.RepoInitOptions{}); err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(dir, "web-1.img")
	if err := os.WriteFile(disk, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := p.AddHost(ctx, provider.HostSpec{Name: "web-1", Disks: []string{disk}}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.CreateBackup(ctx, "web-1", provider.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.EnableBackups(ctx, "web-1", provider.PolicyRequest{Plan: ptr("daily"), Hour: ptr(0)}); err != nil {
		t.Fatal(err)
	}

	for _, size := range []int64{2 << 20, 0} {
		if err := os.Truncate(disk, size); err != nil {
			t.Fatal(err)
		}
		_, err := p.CreateBackup(ctx, "web-1", provider.CreateOptions{})
		if !errors.Is(err, provider.ErrConfirm) || !strings.Contains(err.Error(), "--accept-resize") {
			t.Fatalf("size %d: CreateBackup = %v, want ErrConfirm naming --accept-resize", size, err)
		}
		now = now.Add(24 * time.Hour) // the next day's window is due
		rep, err := p.RunDue(ctx, provider.RunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Backups) != 0 || len(rep.Errors) != 1 || !strings.Contains(rep.Errors[0], "web-1") || !strings.Contains(rep.Errors[0], "--accept-resize") {
			t.Fatalf("size %d: the pass took %d backups and reported %q", size, len(rep.Backups), rep.Errors)
		}
		if _, err := p.CreateBackup(ctx, "web-1", provider.CreateOptions{AcceptResize: true}); err != nil {
			t.Fatalf("size %d with AcceptResize: %v", size, err)
		}
		if _, err := p.CreateBackup(ctx, "web-1", provider.CreateOptions{}); err != nil {
			t.Fatalf("size %d, as the last backup: %v", size, err)
		}
	}
	backups, err := p.ListBackups(ctx, "web-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(backups) != 5 {
		t.Fatalf("%d backups, want 5", len(backups))
	}
}

package local

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dropback/dropback/internal/fakeclock"
	"github.com/dropback/dropback/pkg/engine"
	"github.com/dropback/dropback/pkg/nbd"
	"github.com/dropback/dropback/pkg/provider"
	"github.com/dropback/dropback/pkg/store/faulty"
	"github.com/dropback/dropback/pkg/store/mem"
)

// A serve whose marker cannot be refreshed stops serving, with an error
// that says why, before gc may count it as gone; until then it serves.
func TestServeStopsWhenItLosesProtection(t *testing.T) {
	ctx := context.Background()
	clk := fakeclock.New(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	st := faulty.New(mem.New(clk.Now))
	p, err := New(ctx, Options{Repo: "memory", Now: clk.Now, After: clk.After, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.InitRepo(ctx, provider.RepoInitOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	disk := filepath.Join(dir, "vda")
	want := bytes.Repeat([]byte("dropback"), 1<<18) // 2 MiB
	if err := os.WriteFile(disk, want, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := p.AddHost(ctx, provider.HostSpec{Name: "web-1", Disks: []string{disk}}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.CreateBackup(ctx, "web-1", provider.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sockDir, err := os.MkdirTemp("", "serve")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(sockDir)
	sock := filepath.Join(sockDir, "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan provider.ServedBackup, 1)
	done := make(chan error, 1)
	go func() {
		done <- p.ServeBackup(ctx, provider.ServeRequest{Host: "web-1", Backup: "latest", Listener: ln,
			Ready: func(s provider.ServedBackup) { ready <- s }})
	}()
	select {
	case s := <-ready:
		if len(s.Disks) != 1 || s.Disks[0].Name != "vda" || s.Disks[0].SizeBytes != int64(len(want)) {
			t.Fatalf("served %+v", s)
		}
	case err := <-done:
		t.Fatalf("the serve ended before it was ready: %v", err)
	}
	c, err := nbd.Dial(ctx, "unix", sock, "vda", nbd.ContextBaseAllocation)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := make([]byte, len(want))
	if _, err := c.ReadAt(ctx, got, 0); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read through the serve: %v", err)
	}

	// Every refresh of the marker fails from now on; the clock moves a
	// minute at a time, as the heartbeat tries each minute.
	st.Set(faulty.Rule{Op: faulty.Put, Pattern: "running/"})
	var serveErr error
	for i := 0; serveErr == nil; i++ {
		select {
		case serveErr = <-done:
			if serveErr == nil {
				t.Fatal("the serve that lost its protection ended without an error")
			}
		default:
			if i > 2000 {
				t.Fatal("the serve kept serving without refreshing its marker")
			}
			clk.Advance(time.Minute)
			time.Sleep(5 * time.Millisecond)
		}
	}
	if !errors.Is(serveErr, engine.ErrLostProtection) || !strings.Contains(serveErr.Error(), "stopped serving backup 1") ||
		!strings.Contains(serveErr.Error(), "could not refresh its marker") {
		t.Fatalf("the serve stopped with %v; want a lost protection, said", serveErr)
	}
	if _, err := c.ReadAt(ctx, got[:4096], 0); err == nil {
		t.Fatal("a read after the serve stopped succeeded")
	}
}

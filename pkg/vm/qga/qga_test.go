package qga_test

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/dropback/dropback/pkg/vm/qga"
	"github.com/dropback/dropback/pkg/vm/qga/qgatest"
)

func startAgent(t *testing.T) *qgatest.Agent {
	t.Helper()
	a, err := qgatest.Start(filepath.Join(t.TempDir(), "qga.sock"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func TestFreezeThaw(t *testing.T) {
	ctx := context.Background()
	a := startAgent(t)
	c, err := qga.Dial(ctx, a.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	steps := []struct {
		do         func(context.Context) (int, error)
		wantFrozen bool
		wantStatus string
	}{
		{c.Freeze, true, "frozen"},
		{c.Thaw, false, "thawed"},
		{c.Thaw, false, "thawed"},
	}
	for i, s := range steps {
		if _, err := s.do(ctx); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if a.Frozen() != s.wantFrozen {
			t.Fatalf("step %d: frozen %v, want %v", i, a.Frozen(), s.wantFrozen)
		}
		if st, err := c.Status(ctx); err != nil || st != s.wantStatus {
			t.Fatalf("step %d: status %q (%v), want %q", i, st, err, s.wantStatus)
		}
	}
	if h := a.History(); !slices.Equal(h, []string{"freeze", "thaw", "thaw"}) {
		t.Fatalf("history %q", h)
	}
}

func TestFreezeErrorIsTheAgents(t *testing.T) {
	a := startAgent(t)
	a.FailFreeze("failed to freeze /data: Device or resource busy")
	c, err := qga.Dial(context.Background(), a.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Freeze(context.Background())
	var re *qga.RemoteError
	if !errors.As(err, &re) || re.Desc != "failed to freeze /data: Device or resource busy" {
		t.Fatalf("freeze: %v, want the agent's error", err)
	}
	if a.Frozen() {
		t.Fatal("frozen after a failed freeze")
	}
}

// A socket nobody answers on is what QEMU's chardev is when the guest runs
// no agent: the connection is accepted and the sync is never answered.
func TestNoAgentAnswers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "qga.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			defer conn.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = qga.Dial(ctx, path)
	if !errors.Is(err, qga.ErrNoAgent) && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dial: %v, want ErrNoAgent", err)
	}
}

// A reply left in the channel by an earlier client that gave up (its
// freeze answered late) is skipped by the sync, not taken for the answer
// to the next command.
func TestSyncSkipsStaleReplies(t *testing.T) {
	a := startAgent(t)
	a.HoldFreeze(true)
	ctx := context.Background()
	c, err := qga.Dial(ctx, a.Path)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err = c.Freeze(short)
	cancel()
	if err == nil {
		t.Fatal("a freeze never answered returned no error")
	}
	c.Close()
	a.HoldFreeze(false)
	c, err = qga.Dial(ctx, a.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Thaw(ctx); err != nil {
		t.Fatal(err)
	}
	if a.Frozen() {
		t.Fatal("still frozen after a thaw on a new session")
	}
}

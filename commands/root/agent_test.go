package root

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/dropback/dropback/commands/cmdutil"
)

func TestAgentLoopsUntilTheContextEnds(t *testing.T) {
	c := newCLI(t)
	c.fake.RunReport.Backups = c.fake.Backups[:1]
	ctx, cancel := context.WithCancelCause(context.Background())
	c.ctx = ctx
	c.fake.OnCall = afterCalls("RunDue", 3, func() { cancel(cmdutil.ErrInterrupted) })
	r := c.run(t, "agent", "--interval", "5ms", "-o", "json")
	wantCode(t, r, 0)
	if passes := len(c.calls("RunDue")); passes != 3 {
		t.Fatalf("%d passes, want 3 before the interruption", passes)
	}
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	for _, l := range lines {
		var v map[string]any
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("not one JSON report per line: %q", l)
		}
	}
	if !strings.Contains(r.err, "agent stopped") || !strings.Contains(r.err, "1 backup taken") {
		t.Fatalf("stderr = %q", r.err)
	}
}

func TestAgentKeepsGoingAfterAFailedPass(t *testing.T) {
	c := newCLI(t)
	c.fake.Errs = map[string]error{"RunDue": context.DeadlineExceeded}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.ctx = ctx
	c.fake.OnCall = afterCalls("RunDue", 3, cancel)
	r := c.run(t, "agent", "--interval", "5ms")
	wantCode(t, r, 0)
	if n := strings.Count(r.err, "pass failed"); n < 2 {
		t.Fatalf("%d failed passes logged, want several: %q", n, r.err)
	}
}

// afterCalls returns an OnCall that runs f once the method was called n
// times: a loop ended by what it did, not by the time it took.
func afterCalls(method string, n int, f func()) func(string) {
	var mu sync.Mutex
	count := 0
	return func(name string) {
		if name != method {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if count++; count == n {
			f()
		}
	}
}

func TestAgentRejectsABadInterval(t *testing.T) {
	c := newCLI(t)
	wantCode(t, c.run(t, "agent", "--interval", "0s"), 2)
}

func TestVersion(t *testing.T) {
	c := newCLI(t)
	r := c.run(t, "version", "-o", "json")
	wantCode(t, r, 0)
	var v map[string]string
	if err := json.Unmarshal([]byte(r.out), &v); err != nil || v["version"] != "1.2.3" || v["go_version"] == "" {
		t.Fatalf("version = %s (%v)", r.out, err)
	}
	r = c.run(t, "version")
	if !strings.HasPrefix(r.out, "Version     1.2.3\n") {
		t.Fatalf("version text = %q", r.out)
	}
}

func TestCompletion(t *testing.T) {
	c := newCLI(t)
	for _, sh := range []string{"bash", "zsh", "fish", "powershell"} {
		r := c.run(t, "completion", sh)
		wantCode(t, r, 0)
		if !strings.Contains(r.out, "dropback") {
			t.Fatalf("%s completion looks empty", sh)
		}
	}
	wantCode(t, c.run(t, "completion", "tcsh"), 2)
}

func TestEveryCommandHasExampleAndArgs(t *testing.T) {
	f := cmdutil.New("test", nil, func(string) string { return "" }, nil)
	root := NewCmdRoot(f)
	for _, cmd := range allCommands(root) {
		if cmd.Example == "" {
			t.Errorf("%s has no Example", cmd.CommandPath())
		}
		if cmd.Args == nil {
			t.Errorf("%s has no Args validation", cmd.CommandPath())
		}
		if cmd.Short == "" {
			t.Errorf("%s has no Short", cmd.CommandPath())
		}
	}
}

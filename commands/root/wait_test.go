package root

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestWaitPollsUntilCompleted(t *testing.T) {
	for _, verb := range [][]string{
		{"backups", "enable", "web-1"},
		{"backups", "disable", "web-1", "--keep-backups"},
		{"backups", "convert", "101"},
		{"policy", "set", "web-1", "--plan", "weekly"},
		{"backups", "restore", "web-1", "latest", "--force"},
	} {
		t.Run(verb[0]+" "+verb[1], func(t *testing.T) {
			c := newCLI(t)
			c.fake.ActionPolls = 3
			r := c.run(t, append(verb, "--wait", "-o", "json")...)
			wantCode(t, r, 0)
			if c.fake.Polls != 3 {
				t.Fatalf("polled %d times, want 3", c.fake.Polls)
			}
			if !strings.Contains(r.out, `"status": "completed"`) {
				t.Fatalf("final action not printed: %s", r.out)
			}
		})
	}
}

func TestWithoutWaitTheActionIsPrintedInProgress(t *testing.T) {
	c := newCLI(t)
	c.fake.ActionPolls = 3
	r := c.run(t, "backups", "enable", "web-1", "-o", "json")
	wantCode(t, r, 0)
	var a map[string]any
	if err := json.Unmarshal([]byte(r.out), &a); err != nil || a["status"] != "in-progress" {
		t.Fatalf("stdout = %s (%v)", r.out, err)
	}
	if c.fake.Polls != 0 {
		t.Fatal("polled without --wait")
	}
	if !strings.Contains(r.err, "dropback actions get") {
		t.Fatalf("no hint on stderr: %q", r.err)
	}
}

func TestWaitErroredActionExits1AndNamesIt(t *testing.T) {
	c := newCLI(t)
	c.fake.ActionPolls = 2
	c.fake.ActionError = "image is locked"
	r := c.run(t, "backups", "convert", "102", "--wait")
	wantCode(t, r, 1)
	wantOneLineError(t, r, "action 5001 (convert) errored", "image is locked")
	if !strings.Contains(r.out, "errored") {
		t.Fatalf("final action not printed: %q", r.out)
	}
}

func TestWaitTimeoutExits5(t *testing.T) {
	c := newCLI(t)
	c.fake.ActionPolls = -1
	r := c.run(t, "backups", "restore", "web-1", "latest", "--force", "--wait", "--wait-timeout", "30ms")
	wantCode(t, r, 5)
	wantOneLineError(t, r, "still in-progress", "--wait-timeout 30ms")
}

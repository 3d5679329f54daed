package root

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dropback/dropback/commands/cmdutil"
	"github.com/dropback/dropback/pkg/provider"
)

func TestExitCodes(t *testing.T) {
	tests := []struct {
		name  string
		setup func(c *cli)
		args  []string
		code  int
		parts []string
	}{
		{"ok", nil, []string{"hosts", "list"}, 0, nil},
		{"unknown command", nil, []string{"hsts"}, 2, []string{`unknown command "hsts"`, `"hosts"`}},
		{"unknown verb", nil, []string{"hosts", "lst"}, 2, []string{`unknown command "lst"`, `"list"`}},
		{"unknown flag", nil, []string{"hosts", "list", "--bogus"}, 2, []string{"unknown flag: --bogus"}},
		{"missing argument", nil, []string{"hosts", "get"}, 2, []string{"missing the host"}},
		{"too many arguments", nil, []string{"hosts", "get", "a", "b"}, 2, []string{"too many arguments"}},
		{"bad ID", nil, []string{"backups", "get", "abc"}, 2, []string{`invalid backup ID "abc"`}},
		{"bad output", nil, []string{"hosts", "list", "-o", "yaml"}, 2, []string{`invalid --output "yaml"`}},
		{"hosts add without disk", nil, []string{"hosts", "add", "x"}, 2, []string{"--disk"}},
		{"hosts add --device without a guest", nil, []string{"hosts", "add", "x", "--device", "vda"}, 2, []string{"--device", "need a running guest: give --qemu or --libvirt"}},
		{"invalid value from the provider", nil, []string{"policy", "set", "web-1", "--hour", "5"}, 2, []string{"hour 5", "valid hours"}},
		{"not found", nil, []string{"hosts", "get", "nope"}, 1, []string{"get host nope", "not found"}},
		{"auth", func(c *cli) { c.fake.Errs = map[string]error{"ListHosts": fmt.Errorf("401: %w", provider.ErrAuth)} },
			[]string{"hosts", "list"}, 4, []string{"list hosts", "authentication failed"}},
		{"corrupt", func(c *cli) {
			c.fake.Errs = map[string]error{"RestoreBackup": fmt.Errorf("chunk abc: %w", provider.ErrCorrupt)}
		},
			[]string{"backups", "restore", "web-1", "101", "--to", "/tmp/x"}, 7, []string{"restore backup 101 of host web-1", "damaged"}},
		{"declined", nil, []string{"backups", "restore", "web-1", "101"}, 6, []string{"--force"}},
		{"damaged list", func(c *cli) {
			c.fake.Errs = map[string]error{"ListBackups": provider.Errorf(provider.ErrCorrupt, "backup 7 cannot be read")}
		}, []string{"backups", "list"}, 7, []string{"list backups", "backup 7 cannot be read"}},
		{"no repository", func(c *cli) {
			c.fake.Errs = map[string]error{"ListBackups": provider.Errorf(provider.ErrNoRepo, "repository not initialised at /r")}
		}, []string{"backups", "list"}, 10, []string{"list backups", "not initialised"}},
		{"locked", func(c *cli) {
			c.fake.Errs = map[string]error{"GC": provider.Errorf(provider.ErrLocked, "gc lease held by host b, PID 7, since 10:00")}
		}, []string{"repo", "gc"}, 11, []string{"gc lease held by host b"}},
		{"unsupported format", func(c *cli) {
			c.fake.Errs = map[string]error{"ListHosts": provider.Errorf(provider.ErrFormat, "/r is not a dropback repository")}
		}, []string{"hosts", "list"}, 13, []string{"not a dropback repository"}},
		{"unsupported", func(c *cli) {
			c.fake.Errs = map[string]error{"CreateBackup": &provider.UnsupportedError{Verb: "backups create", Context: "digitalocean", Alternative: "take a snapshot"}}
		}, []string{"backups", "create", "1"}, 1, []string{"not supported", "take a snapshot"}},
		{"action errored", func(c *cli) { c.fake.ActionError = "disk full" }, []string{"backups", "convert", "101"}, 1, []string{"errored", "disk full"}},
		{"partial run", func(c *cli) {
			c.fake.RunReport.Backups = c.fake.Backups[:1]
			c.fake.RunReport.Errors = []string{"host db-1: disk unreadable"}
		}, []string{"run", "--due"}, 3, []string{"1 error", "db-1"}},
		{"failed run", func(c *cli) { c.fake.RunReport.Errors = []string{"host db-1: disk unreadable"} }, []string{"run", "--due"}, 1, []string{"db-1"}},
		{"run without --due", nil, []string{"run"}, 2, []string{"--due"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCLI(t)
			if tt.setup != nil {
				tt.setup(c)
			}
			r := c.run(t, tt.args...)
			wantCode(t, r, tt.code)
			if tt.code != 0 {
				wantOneLineError(t, r, tt.parts...)
			}
		})
	}
}

func TestNoUsageDumpOnErrors(t *testing.T) {
	c := newCLI(t)
	for _, args := range [][]string{{"hosts", "get", "nope"}, {"hosts", "list", "--bogus"}} {
		r := c.run(t, args...)
		if len(r.err) > 200 || r.out != "" {
			t.Fatalf("%v printed more than one error line:\nstdout %q\nstderr %q", args, r.out, r.err)
		}
	}
}

func TestInterruptedWaitExits130AtOnce(t *testing.T) {
	c := newCLI(t)
	c.fake.ActionPolls = -1
	ctx, cancel := context.WithCancelCause(context.Background())
	c.ctx = ctx
	time.AfterFunc(30*time.Millisecond, func() { cancel(cmdutil.ErrInterrupted) })
	start := time.Now()
	r := c.run(t, "backups", "convert", "101", "--wait", "--wait-timeout", "1h")
	wantCode(t, r, 130)
	// Only the waiting stopped: the line says that the action goes on, and
	// how to follow it (found by a walkthrough: it said "interrupted").
	wantOneLineError(t, r, "interrupted: action 5001 (convert) goes on", "dropback actions get 5001 --wait")
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("interrupt took %s", d)
	}
}

func TestLongArgumentsAreShortenedInErrors(t *testing.T) {
	c := newCLI(t)
	long := strings.Repeat("x", 5000)
	r := c.run(t, "backups", "restore", "web-1", long)
	wantCode(t, r, 2)
	if len(r.err) > 300 {
		t.Fatalf("error line is %d bytes long", len(r.err))
	}
}

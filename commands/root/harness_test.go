package root

import (
	"context"
	"flag"
	"github.com/spf13/cobra"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dropback/dropback/commands/cmdutil"
	"github.com/dropback/dropback/commands/internal/fakeprovider"
	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// cli is one run of dropback against a fake provider.
type cli struct {
	fake  *fakeprovider.Fake
	cloud string // when set, the fake is a DigitalOcean context of this name (as it is in any context but local)
	tty   bool
	width int // stderr's columns when tty; 0 means the default
	stdin string
	env   map[string]string
	ctx   context.Context

	// Recorded.
	pc *cmdutil.ProviderConfig
}

type result struct {
	out, err string
	code     int
}

func newCLI(t *testing.T) *cli {
	t.Helper()
	return &cli{fake: fakeprovider.New(), env: map[string]string{"HOME": t.TempDir(), "DROPBACK_PASSWORD": "golden"}}
}

func (c *cli) run(t *testing.T, args ...string) result {
	t.Helper()
	ios, in, out, errOut := output.Test()
	ios.SetTTY(c.tty)
	ios.SetTerminalWidth(c.width)
	in.WriteString(c.stdin)
	newProvider := func(ctx context.Context, pc cmdutil.ProviderConfig) (provider.Provider, error) {
		c.pc = &pc
		if c.cloud != "" {
			return c.fake.DigitalOcean(c.cloud), nil
		}
		if pc.Context != provider.ContextLocal {
			return c.fake.DigitalOcean(pc.Context), nil
		}
		return c.fake, nil
	}
	f := cmdutil.New("1.2.3", ios, func(k string) string { return c.env[k] }, newProvider)
	f.PollInterval = time.Millisecond
	ctx := c.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	code := Execute(ctx, f, args)
	return result{out: out.String(), err: errOut.String(), code: code}
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test -update to create it): %v", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it)\n--- got\n%s--- want\n%s", name, got, want)
	}
}

func wantCode(t *testing.T, r result, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit code = %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.out, r.err)
	}
}

// wantOneLineError checks stderr is exactly one "Error: ..." line holding
// every part.
func wantOneLineError(t *testing.T, r result, parts ...string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(r.err, "\n"), "\n")
	last := lines[len(lines)-1]
	// A prompt answered from a buffer is not followed by the echoed newline
	// a terminal would print, so the Error line may follow it directly.
	i := strings.Index(last, "Error: ")
	if i < 0 || strings.Count(r.err, "Error: ") != 1 || !strings.HasSuffix(r.err, "\n") {
		t.Fatalf("stderr does not end in one Error line: %q", r.err)
	}
	last = last[i:]
	for _, p := range parts {
		if !strings.Contains(last, p) {
			t.Errorf("error %q does not mention %q", last, p)
		}
	}
}

func (c *cli) calls(method string) []string {
	var out []string
	for _, call := range c.fake.Calls {
		if strings.HasPrefix(call, method+" ") {
			out = append(out, call)
		}
	}
	return out
}

// allCommands lists the tree's commands, leaving out cobra's own help.
func allCommands(cmd *cobra.Command) []*cobra.Command {
	var out []*cobra.Command
	if cmd.Name() != "help" && !cmd.Hidden {
		out = append(out, cmd)
	}
	for _, sub := range cmd.Commands() {
		out = append(out, allCommands(sub)...)
	}
	return out
}

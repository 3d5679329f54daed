package auth

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dropback/dropback/commands/cmdutil"
	"github.com/dropback/dropback/commands/internal/fakeprovider"
	"github.com/dropback/dropback/pkg/config"
	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

// endless is stdin that never ends a line, as /dev/zero; it counts what
// was read from it.
type endless struct{ n int64 }

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 0
	}
	e.n += int64(len(p))
	return len(p), nil
}

// blocked is stdin that never answers, as a pipe whose writer waits.
type blocked struct{ done chan struct{} }

func (b blocked) Read([]byte) (int, error) {
	<-b.done
	return 0, io.EOF
}

func TestReadLine(t *testing.T) {
	tests := []struct {
		name, in, want string
		tooLong, eof   bool
	}{
		{name: "line", in: "dop_v1_abc\n", want: "dop_v1_abc"},
		{name: "crlf", in: "dop_v1_abc\r\n", want: "dop_v1_abc"},
		{name: "no newline", in: "dop_v1_abc", want: "dop_v1_abc"},
		{name: "only the first line", in: "dop_v1_abc\nmore\n", want: "dop_v1_abc"},
		{name: "empty", in: "", eof: true},
		{name: "at the limit", in: strings.Repeat("t", MaxTokenLen) + "\n", want: strings.Repeat("t", MaxTokenLen)},
		{name: "at the limit, crlf", in: strings.Repeat("t", MaxTokenLen) + "\r\n", want: strings.Repeat("t", MaxTokenLen)},
		{name: "past the limit", in: strings.Repeat("t", MaxTokenLen+1) + "\n", tooLong: true},
		{name: "past the limit, no newline", in: strings.Repeat("t", MaxTokenLen+1), tooLong: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readLine(context.Background(), strings.NewReader(tc.in), MaxTokenLen)
			switch {
			case tc.tooLong:
				if !errors.Is(err, errTooLong) {
					t.Fatalf("readLine = %q, %v; want it refused", got, err)
				}
			case tc.eof:
				if !errors.Is(err, io.EOF) {
					t.Fatalf("readLine = %q, %v; want io.EOF", got, err)
				}
			case err != nil || got != tc.want:
				t.Fatalf("readLine = %.40q, %v", got, err)
			}
		})
	}
}

func TestReadLineFromAnEndlessPipeReadsABoundedAmount(t *testing.T) {
	in := &endless{}
	_, err := readLine(context.Background(), in, MaxTokenLen)
	if !errors.Is(err, errTooLong) {
		t.Fatalf("err = %v", err)
	}
	if in.n > 2*MaxTokenLen+64 {
		t.Errorf("read %d bytes from a pipe with no line end", in.n)
	}
}

func TestReadLineGivesUpWhenInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(cmdutil.ErrInterrupted)
	b := blocked{done: make(chan struct{})}
	defer close(b.done)
	_, err := readLine(ctx, b, MaxTokenLen)
	if !errors.Is(err, cmdutil.ErrInterrupted) {
		t.Fatalf("err = %v", err)
	}
}

// cloud builds every context as a fake DigitalOcean account.
func cloud(ctx context.Context, pc cmdutil.ProviderConfig) (provider.Provider, error) {
	return fakeprovider.New().DigitalOcean(pc.Context), nil
}

func TestAuthInitRefusesAnEndlessLineAndEscapesNames(t *testing.T) {
	home := t.TempDir()
	env := func(k string) string { return map[string]string{"HOME": home}[k] }
	run := func(stdin io.Reader, context string) (string, error) {
		ios, _, _, errOut := output.Test()
		ios.In = stdin
		f := cmdutil.New("1.2.3", ios, env, cloud)
		f.Flags.Context = context
		cmd := NewCmdInit(f, nil)
		cmd.SetArgs(nil)
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		err := cmd.Execute()
		return errOut.String(), err
	}
	_, err := run(&endless{}, "work")
	var flagErr *cmdutil.FlagError
	if !errors.As(err, &flagErr) || !strings.Contains(err.Error(), "longer than 4096 bytes") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(home, ".config", "dropback", "config.yaml")); !os.IsNotExist(err) {
		t.Errorf("a config file was written: %v", err)
	}

	// A token pasted with spaces, or from a file with CRLF, is stored
	// without them (found by a walkthrough: `auth token` gave them back).
	if _, err := run(strings.NewReader("  dop_v1_trimmed  \r\n"), "trim"); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(filepath.Join(home, ".config", "dropback", "config.yaml"))
	if err != nil || !strings.Contains(string(cfg), "dop_v1_trimmed") || strings.Contains(string(cfg), " dop_v1_trimmed ") || strings.Contains(string(cfg), "dop_v1_trimmed ") {
		t.Fatalf("config (%v): %q", err, cfg)
	}

	stderr, err := run(strings.NewReader("dop_v1_x\n"), "evil\x1b]0;owned\x07")
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(stderr, "\x1b\x07") || !strings.Contains(stderr, `evil\x1b]0;owned\a`) {
		t.Errorf("stderr = %q", stderr)
	}
	file, err := config.Load(filepath.Join(home, ".config", "dropback", "config.yaml"))
	if err != nil || file.AuthContexts["evil\x1b]0;owned\x07"] != "dop_v1_x" {
		t.Errorf("config = %+v, %v", file, err)
	}
}

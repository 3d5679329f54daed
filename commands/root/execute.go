package root

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/dropback/dropback/commands/cmdutil"
	"github.com/dropback/dropback/internal/safetext"
	"github.com/dropback/dropback/pkg/output"
)

// Execute runs the command tree with args on f's streams, prints an error as
// one line "Error: <message>" on stderr, with every URL in it redacted
// (user information and token-like query parameters), and returns the exit
// code. When ctx was cancelled with cmdutil.ErrInterrupted as its cause (a
// signal), a failed command exits as interrupted.
//
// With -o json, a failed command that printed nothing on stdout prints the
// error there too, as doctl does: {"errors":[{"detail":"<message>"}]}.
func Execute(ctx context.Context, f *cmdutil.Factory, args []string) int {
	stdout := &countingWriter{w: f.IOStreams.Out}
	f.IOStreams.Out = stdout
	defer func() { f.IOStreams.Out = stdout.w }()

	cmd := NewCmdRoot(f)
	cmd.SetArgs(args)
	cmd.SetIn(f.IOStreams.In)
	cmd.SetOut(stdout)
	cmd.SetErr(f.IOStreams.ErrOut)
	err := cmd.ExecuteContext(ctx)
	if err != nil && errors.Is(context.Cause(ctx), cmdutil.ErrInterrupted) {
		err = cmdutil.Interrupted(err)
	}
	if err != nil {
		err = withContextHint(f, err)
		msg := oneLine(safetext.Redact(err.Error()))
		fmt.Fprintf(f.IOStreams.ErrOut, "Error: %s\n", msg)
		if f.Flags.Output == output.FormatJSON && stdout.n == 0 {
			writeJSONError(stdout, msg)
		}
	}
	return cmdutil.ExitCode(err)
}

// jsonErrors is doctl's error object in JSON mode.
type jsonErrors struct {
	Errors []jsonError `json:"errors"`
}

type jsonError struct {
	Detail string `json:"detail"`
}

func writeJSONError(w io.Writer, msg string) {
	b, err := json.Marshal(jsonErrors{Errors: []jsonError{{Detail: msg}}})
	if err == nil {
		fmt.Fprintf(w, "%s\n", b)
	}
}

// countingWriter counts what is written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

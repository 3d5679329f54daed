package root

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/dropback/dropback/commands/cmdutil"
	"github.com/dropback/dropback/internal/safetext"
)

// Execute runs the command tree with args on f's streams, prints an error as
// one line "Error: <message>" on stderr, with every URL in it redacted
// (user information and token-like query parameters), and returns the exit
// code. When
// ctx was cancelled with cmdutil.ErrInterrupted as its cause (a signal), a
// failed command exits as interrupted.
func Execute(ctx context.Context, f *cmdutil.Factory, args []string) int {
	cmd := NewCmdRoot(f)
	cmd.SetArgs(args)
	cmd.SetIn(f.IOStreams.In)
	cmd.SetOut(f.IOStreams.Out)
	cmd.SetErr(f.IOStreams.ErrOut)
	err := cmd.ExecuteContext(ctx)
	if err != nil && errors.Is(context.Cause(ctx), cmdutil.ErrInterrupted) {
		err = cmdutil.Interrupted(err)
	}
	if err != nil {
		fmt.Fprintf(f.IOStreams.ErrOut, "Error: %s\n", oneLine(safetext.Redact(err.Error())))
	}
	return cmdutil.ExitCode(err)
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

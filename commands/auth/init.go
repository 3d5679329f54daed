package auth

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dropback/dropback/commands/cmdutil"
	"github.com/dropback/dropback/internal/safetext"
	"github.com/dropback/dropback/pkg/config"
	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

// MaxTokenLen bounds the token read from stdin: a DigitalOcean token is
// about 70 bytes, and a pipe that never ends a line (< /dev/zero) must not
// fill the memory.
const MaxTokenLen = 4096

// InitOptions are the inputs of `auth init`.
type InitOptions struct {
	IO         *output.IOStreams
	Config     func() (*config.File, error)
	ConfigPath func() (string, error)
	Printer    func() *output.Printer

	Context string
	Token   string // from -t; "" means read it
	// Ctx ends a read from a pipe that blocks (SIGINT cancels it).
	Ctx context.Context
}

// NewCmdInit returns `auth init`.
func NewCmdInit(f *cmdutil.Factory, runF func(*InitOptions) error) *cobra.Command {
	opts := &InitOptions{IO: f.IOStreams, Config: f.Config, ConfigPath: f.ConfigPath, Printer: f.Printer}
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Store a DigitalOcean token for a context",
		Long: `Store a DigitalOcean API token under a context: the one named by --context, or
"digitalocean". The token is read at a prompt that does not echo it, or from
stdin when stdin is not a terminal (one line of at most 4096 bytes), or
taken from -t. It is not checked against the API until a command uses it.

This does not change the current context; see ` + "`dropback auth switch`" + `.`,
		Example: `  dropback auth init
  dropback auth init --context work
  printf '%s\n' "$TOKEN" | dropback auth init`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Context = f.Flags.Context
			if opts.Context == "" {
				opts.Context = provider.ContextDigitalOcean
			}
			if opts.Context == provider.ContextLocal {
				return cmdutil.FlagErrorf("auth init: the local context needs no token; name a DigitalOcean context with --context")
			}
			opts.Token = f.Flags.AccessToken
			opts.Ctx = cmd.Context()
			if runF != nil {
				return runF(opts)
			}
			return runInit(opts)
		},
	}
	return cmd
}

func runInit(opts *InitOptions) error {
	token, err := readToken(opts)
	if err != nil {
		return err
	}
	path, err := opts.ConfigPath()
	if err != nil {
		return err
	}
	file, err := opts.Config()
	if err != nil {
		return err
	}
	file.SetToken(opts.Context, token)
	if err := file.Save(path); err != nil {
		return fmt.Errorf("save token of context %s: %w", cmdutil.Short(opts.Context), err)
	}
	pr := opts.Printer()
	name := safetext.Escape(opts.Context)
	pr.Noticef("Token saved for context %s in %s", name, safetext.Escape(path))
	if file.Context != opts.Context {
		pr.Noticef("Use it with --context %s, or make it the current context: dropback auth switch %s", name, name)
	}
	return nil
}

func readToken(opts *InitOptions) (string, error) {
	token := opts.Token
	if token == "" {
		if opts.IO.IsStdinTTY() {
			fmt.Fprintf(opts.IO.ErrOut, "DigitalOcean access token for context %s: ", safetext.Escape(opts.Context))
		}
		var err error
		if opts.IO.IsStdinTTY() {
			token, err = opts.IO.ReadSecret()
			fmt.Fprintln(opts.IO.ErrOut)
		} else {
			token, err = readLine(opts.Ctx, opts.IO.In, MaxTokenLen)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
	}
	if len(token) > MaxTokenLen {
		return "", errTooLong
	}
	if token == "" {
		return "", cmdutil.FlagErrorf("auth init: no token given")
	}
	return token, nil
}

var errTooLong = cmdutil.FlagErrorf("auth init: the token is longer than %d bytes; give one line with the token alone", MaxTokenLen)

// readLine reads one line of at most max bytes from r, without its line
// ending, reading no more than max+2 bytes; a longer line is refused. The
// read is abandoned (it ends with the process) when ctx is done.
func readLine(ctx context.Context, r io.Reader, max int) (string, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	type result struct {
		line string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		line, err := bufio.NewReader(io.LimitReader(r, int64(max)+2)).ReadString('\n')
		ch <- result{line, err}
	}()
	select {
	case <-ctx.Done():
		return "", fmt.Errorf("read token: %w", context.Cause(ctx))
	case res := <-ch:
		line := strings.TrimSuffix(strings.TrimSuffix(res.line, "\n"), "\r")
		if len(line) > max {
			return "", errTooLong
		}
		if res.err != nil && !(errors.Is(res.err, io.EOF) && line != "") {
			if errors.Is(res.err, io.EOF) {
				return "", io.EOF
			}
			return "", fmt.Errorf("read token: %w", res.err)
		}
		return line, nil
	}
}

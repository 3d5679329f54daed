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

	// Check validates a token of a context with one API request and
	// returns the account's e-mail address.
	Check func(ctx context.Context, context, token string) (string, error)

	Context string
	Token   string // from -t; "" means read it
	// Ctx ends a read from a pipe that blocks (SIGINT cancels it), and the
	// check.
	Ctx context.Context
}

// NewCmdInit returns `auth init`.
func NewCmdInit(f *cmdutil.Factory, runF func(*InitOptions) error) *cobra.Command {
	opts := &InitOptions{IO: f.IOStreams, Config: f.Config, ConfigPath: f.ConfigPath, Printer: f.Printer,
		Check: func(ctx context.Context, name, token string) (string, error) { return checkToken(ctx, f, name, token) }}
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Check a DigitalOcean token, store it for a context and make that context current",
		Long: `Store a DigitalOcean API token under a context, as doctl auth init does: the
context named by --context (lowercase), or "digitalocean". The token is read at
a prompt that does not echo it, or from stdin when stdin is not a terminal (one
line of at most 4096 bytes), or taken from -t.

The token is checked first with one API request (GET /v2/account); a token
the API refuses is not stored (exit code 4). Once stored, the context becomes
the current one, so the next command runs against DigitalOcean; go back to
the engine with ` + "`dropback auth switch local`" + `.`,
		Example: `  dropback auth init
  dropback auth init --context work
  printf '%s\n' "$TOKEN" | dropback auth init`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Context = config.Normalize(f.Flags.Context)
			if opts.Context == "" {
				opts.Context = provider.ContextDigitalOcean
			}
			if opts.Context == provider.ContextLocal {
				return cmdutil.FlagErrorf("auth init: the local context needs no token; name a DigitalOcean context with --context")
			}
			opts.Token = f.Flags.AccessToken
			opts.Ctx = cmd.Context()
			if opts.Ctx == nil {
				opts.Ctx = context.Background()
			}
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
	email, err := opts.Check(opts.Ctx, opts.Context, token)
	if err != nil {
		return fmt.Errorf("check the token of context %s, not stored: %w", cmdutil.Short(opts.Context), err)
	}
	file.SetToken(opts.Context, token)
	file.Context = opts.Context
	if err := file.Save(path); err != nil {
		return fmt.Errorf("save token of context %s: %w", cmdutil.Short(opts.Context), err)
	}
	pr := opts.Printer()
	name := safetext.Escape(opts.Context)
	pr.Noticef("Token of %s saved for context %s in %s", safetext.Escape(email), name, safetext.Escape(path))
	pr.Noticef("Now using context %s; go back to the engine with `dropback auth switch local`", name)
	return nil
}

// checkToken asks the API of context name, with token, for its account.
func checkToken(ctx context.Context, f *cmdutil.Factory, name, token string) (string, error) {
	if f.NewProvider == nil {
		return "", errors.New("no way to reach the API here")
	}
	pc, err := f.ProviderConfigOf(name)
	if err != nil {
		return "", err
	}
	pc.Token = token
	p, err := f.NewProvider(ctx, pc)
	if err != nil {
		return "", err
	}
	account, err := cmdutil.As[provider.Account](p, "auth init")
	if err != nil {
		return "", err
	}
	return account.CheckAccount(ctx)
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
	token = strings.TrimSpace(token) // pasted with spaces, or a file with CRLF
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

package auth

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/dropback/dropback/commands/cmdutil"
	"github.com/dropback/dropback/pkg/config"
	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

// InitOptions are the inputs of `auth init`.
type InitOptions struct {
	IO         *output.IOStreams
	Config     func() (*config.File, error)
	ConfigPath func() (string, error)
	Printer    func() *output.Printer

	Context string
	Token   string // from -t; "" means read it
}

// NewCmdInit returns `auth init`.
func NewCmdInit(f *cmdutil.Factory, runF func(*InitOptions) error) *cobra.Command {
	opts := &InitOptions{IO: f.IOStreams, Config: f.Config, ConfigPath: f.ConfigPath, Printer: f.Printer}
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Store a DigitalOcean token for a context",
		Long: `Store a DigitalOcean API token under a context: the one named by --context, or
"digitalocean". The token is read at a prompt that does not echo it, or from
stdin when stdin is not a terminal, or taken from -t. It is not checked
against the API until a command uses it.

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
	pr.Noticef("Token saved for context %s in %s", opts.Context, path)
	if file.Context != opts.Context {
		pr.Noticef("Use it with --context %s, or make it the current context: dropback auth switch %s", opts.Context, opts.Context)
	}
	return nil
}

func readToken(opts *InitOptions) (string, error) {
	token := opts.Token
	if token == "" {
		if opts.IO.IsStdinTTY() {
			fmt.Fprintf(opts.IO.ErrOut, "DigitalOcean access token for context %s: ", opts.Context)
		}
		var err error
		token, err = opts.IO.ReadSecret()
		if opts.IO.IsStdinTTY() {
			fmt.Fprintln(opts.IO.ErrOut)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read token: %w", err)
		}
	}
	if token == "" {
		return "", cmdutil.FlagErrorf("auth init: no token given")
	}
	return token, nil
}

package auth

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dropback/dropback/commands/cmdutil"
	"github.com/dropback/dropback/pkg/config"
	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

// TokenOptions are the inputs of `auth token`.
type TokenOptions struct {
	IO *output.IOStreams
	// Context and Token resolve the context and its token as every command
	// does.
	Context func() (string, error)
	Token   func(context string) (string, error)
}

// NewCmdToken returns `auth token`.
func NewCmdToken(f *cmdutil.Factory, runF func(*TokenOptions) error) *cobra.Command {
	opts := &TokenOptions{IO: f.IOStreams, Context: f.Context,
		Token: func(name string) (string, error) { return config.Token(f.Flags.AccessToken, name, f.Sources()) }}
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Print the token of the current context",
		Long: `Print the DigitalOcean token the current context (or --context) uses, as doctl
auth token does, for a script that calls the API itself. It is found as every
command finds it: -t, $DIGITALOCEAN_ACCESS_TOKEN, dropback's config file, then
doctl's. Anyone who sees the output can use the account.`,
		Example: `  curl -H "Authorization: Bearer $(dropback auth token)" https://api.digitalocean.com/v2/account
  dropback auth token --context work`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runToken(opts)
		},
	}
	return cmd
}

func runToken(opts *TokenOptions) error {
	name, err := opts.Context()
	if err != nil {
		return err
	}
	if name == provider.ContextLocal {
		return cmdutil.FlagErrorf("auth token: the local context has no token; name a DigitalOcean context with --context")
	}
	token, err := opts.Token(name)
	if err != nil {
		return err
	}
	if token == "" {
		return fmt.Errorf("auth token: no token for context %s: run `dropback auth init --context %s`: %w",
			cmdutil.Short(name), cmdutil.Short(name), provider.ErrAuth)
	}
	_, err = fmt.Fprintln(opts.IO.Out, token)
	return err
}

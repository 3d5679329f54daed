// Package auth holds the `auth` commands: DigitalOcean tokens stored per
// context in the config file, and the current context.
package auth

import (
	"github.com/spf13/cobra"

	"github.com/dropback/dropback/commands/cmdutil"
)

// NewCmdAuth returns the `auth` command and its verbs.
func NewCmdAuth(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "auth <command>",
		Short: "Manage contexts and their DigitalOcean tokens",
		Long: `A context decides what dropback drives: "local" is the embedded engine and
needs no account; any other context is a DigitalOcean account whose token is
stored in the config file ($XDG_CONFIG_HOME/dropback/config.yaml, mode 0600).
The context is --context, else $DROPBACK_CONTEXT, else $DIGITALOCEAN_CONTEXT,
else the config file's current context, else local. Context names are
lowercase, as doctl's are.

doctl's config file ($XDG_CONFIG_HOME/doctl/config.yaml) is read as a fallback
for tokens, never written: the "digitalocean" context uses the account doctl
uses now, and doctl's other contexts ("default", or those of auth-contexts)
work by name.`,
		Example: `  dropback auth init
  dropback auth init --context work
  dropback auth list
  dropback auth switch digitalocean
  dropback auth remove --context work
  dropback auth token`,
		Args: cmdutil.NounArgs,
		RunE: cmdutil.NounRunE,
	}
	cmd.AddCommand(NewCmdInit(f, nil), NewCmdList(f, nil), NewCmdSwitch(f, nil), NewCmdRemove(f, nil), NewCmdToken(f, nil))
	return cmd
}

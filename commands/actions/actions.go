// Package actions holds the `actions` commands: asynchronous operations,
// DigitalOcean actions or engine jobs.
package actions

import (
	"github.com/spf13/cobra"

	"github.com/dropback/dropback/commands/cmdutil"
)

// NewCmdActions returns the `actions` command and its verbs.
func NewCmdActions(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "actions <command>",
		Short: "Inspect asynchronous operations",
		Long: `Every enable, disable, restore, convert and policy change is an action, as
DigitalOcean has them; on the engine, every backup, restore, convert and gc is
recorded as one too. An action is in-progress, completed or errored.`,
		Example: `  dropback actions list
  dropback actions get 17`,
		Args: cmdutil.NounArgs,
		RunE: cmdutil.NounRunE,
	}
	cmd.AddCommand(NewCmdGet(f, nil), NewCmdList(f, nil))
	return cmd
}

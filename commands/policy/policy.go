// Package policy holds the `policy` commands: a host's backup plan, window
// and retention, and the plans a context supports.
package policy

import (
	"github.com/spf13/cobra"

	"github.com/dropback/dropback/commands/cmdutil"
	"github.com/dropback/dropback/pkg/provider"
)

// NewCmdPolicy returns the `policy` command and its verbs.
func NewCmdPolicy(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy <command>",
		Short: "Show and change backup policies",
		Long: `A backup policy is a plan (daily, weekly, or a more frequent one), a 4-hour
window starting at 0, 4, 8, 12, 16 or 20 h UTC, a weekday for weekly plans, and
a retention in days. The names and defaults are DigitalOcean's in every context.`,
		Example: `  dropback policy supported
  dropback policy get web-1
  dropback policy set web-1 --plan weekly --weekday SUN`,
		Args: cmdutil.NounArgs,
		RunE: cmdutil.NounRunE,
	}
	cmd.AddCommand(NewCmdSet(f, nil), NewCmdGet(f, nil), NewCmdList(f, nil), NewCmdSupported(f, nil))
	return cmd
}

// setter is what `policy set` needs: the policy, and the action to follow.
type setter interface {
	provider.Policies
	provider.Actions
}

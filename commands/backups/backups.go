// Package backups holds the `backups` commands: scheduled backups on and
// off, listing, on-demand backups, restore, convert to snapshot, verify, and
// reading a backup in place (serve over NBD, export as an image, mount).
package backups

import (
	"github.com/spf13/cobra"

	"github.com/dropback/dropback/commands/cmdutil"
	"github.com/dropback/dropback/pkg/provider"
)

// NewCmdBackups returns the `backups` command and its verbs.
func NewCmdBackups(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backups <command>",
		Short: "Enable, list, take, restore and verify backups",
		Long: `Backups are whole-disk images of a host, taken on a schedule (see the policy
commands) or on demand. They follow DigitalOcean's Droplet Backups: daily or
weekly plans in a 4-hour window, kept for a set time, restorable in place or to
something new, and convertible to snapshots that are kept until deleted.`,
		Example: `  dropback backups enable web-1 --plan weekly --weekday SUN --hour 4
  dropback backups create web-1
  dropback backups list web-1
  dropback backups restore web-1 latest --to /tmp/web-1.img`,
		Args: cmdutil.NounArgs,
		RunE: cmdutil.NounRunE,
	}
	cmd.AddCommand(
		NewCmdEnable(f, nil), NewCmdDisable(f, nil),
		NewCmdList(f, nil), NewCmdGet(f, nil),
		NewCmdCreate(f, nil), NewCmdRestore(f, nil),
		NewCmdConvert(f, nil), NewCmdVerify(f, nil),
		NewCmdPrune(f, nil), NewCmdDelete(f, nil),
		NewCmdServe(f, nil), NewCmdExport(f, nil), NewCmdMount(f, nil),
	)
	return cmd
}

// The capabilities of the verbs that start an action, with Actions to
// follow it with --wait.
type (
	restorer interface {
		provider.Provider
		provider.Backups
		provider.Actions
	}
	converter interface {
		provider.Backups
		provider.Snapshots
		provider.Actions
	}
	enabler interface {
		provider.Provider
		provider.Policies
		provider.Actions
	}
	disabler interface {
		provider.Provider
		provider.Policies
		provider.Backups
		provider.Actions
	}
)

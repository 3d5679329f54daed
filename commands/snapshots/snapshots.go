// Package snapshots holds the `snapshots` commands. A snapshot is a backup
// converted with `backups convert`, or taken on demand on DigitalOcean:
// exempt from retention, kept until deleted.
package snapshots

import (
	"github.com/spf13/cobra"

	"github.com/dropback/dropback/commands/cmdutil"
)

// NewCmdSnapshots returns the `snapshots` command and its verbs.
func NewCmdSnapshots(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshots <command>",
		Short: "Take, list and delete snapshots",
		Long: `A snapshot is a backup turned into a snapshot by ` + "`backups convert`" + `, or on
DigitalOcean one taken on demand by ` + "`snapshots create`" + `. It is exempt from retention,
survives ` + "`backups disable` and `hosts remove`" + ` (on DigitalOcean, its Droplet), and is
restored with ` + "`backups restore`" + ` like any backup.`,
		Example: `  dropback snapshots list web-1
  dropback snapshots delete 42 43 --force
  dropback --context digitalocean snapshots create web-1 --wait`,
		Args: cmdutil.NounArgs,
		RunE: cmdutil.NounRunE,
	}
	cmd.AddCommand(NewCmdCreate(f, nil), NewCmdList(f, nil), NewCmdDelete(f, nil))
	return cmd
}

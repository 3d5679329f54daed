// Package repo holds the `repo` commands of the engine's repository.
package repo

import (
	"github.com/spf13/cobra"

	"github.com/dropback/dropback/commands/cmdutil"
)

// NewCmdRepo returns the `repo` command and its verbs.
func NewCmdRepo(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "repo <command>",
		Short: "Manage the engine's repository",
		Long: `The repository is where the engine keeps backups: a directory, or
s3://bucket/prefix. It is --repo, else $DROPBACK_REPO, else
$XDG_DATA_HOME/dropback/repo. Engine only.`,
		Example: `  dropback repo init
  dropback --repo /srv/backups repo stats
  dropback repo gc`,
		Args: cmdutil.NounArgs,
		RunE: cmdutil.NounRunE,
	}
	cmd.AddCommand(NewCmdInit(f, nil), NewCmdStats(f, nil), NewCmdGC(f, nil), NewCmdKey(f), NewCmdUpgrade(f, nil))
	return cmd
}

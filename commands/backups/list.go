package backups

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dropback/dropback/commands/cmdutil"
	"github.com/dropback/dropback/commands/display"
	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

// ListOptions are the inputs of `backups list`.
type ListOptions struct {
	IO       *output.IOStreams
	Provider func(context.Context) (provider.Backups, error)
	Printer  func() *output.Printer

	Host string // "" lists every host's backups
	// Orphaned lists the backups and snapshots of removed hosts instead
	// (engine only).
	Orphaned bool
	// Deleter gives the orphaned list.
	Deleter func(context.Context) (provider.BackupDeleter, error)
}

// NewCmdList returns `backups list`.
func NewCmdList(f *cmdutil.Factory, runF func(*ListOptions) error) *cobra.Command {
	opts := &ListOptions{IO: f.IOStreams, Provider: cmdutil.Capability[provider.Backups](f, "backups list"), Printer: f.Printer,
		Deleter: cmdutil.Capability[provider.BackupDeleter](f, "backups list --orphaned")}
	cmd := &cobra.Command{
		Use:     "list [<host>]",
		Aliases: []string{"ls"},
		Short:   "List backups, oldest first",
		Long: `List the backups of one host, or of every host. Snapshots are listed by
` + "`snapshots list`" + `.

--orphaned lists instead the backups and snapshots of hosts that were removed,
which ` + "`dropback backups delete <id>...`" + ` deletes (engine only).`,
		Example: `  dropback backups list
  dropback backups list --orphaned
  dropback backups list web-1 --format ID,Created,Size
  dropback --context digitalocean backups list 123456 -o json`,
		Args:              cmdutil.RangeArgs(0, 1, "at most one host"),
		ValidArgsFunction: cmdutil.CompleteHosts(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Host = args[0]
			}
			if opts.Orphaned && opts.Host != "" {
				return cmdutil.FlagErrorf("--orphaned lists the backups of removed hosts: it takes no host")
			}
			if runF != nil {
				return runF(opts)
			}
			return runList(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Orphaned, "orphaned", false, "list the backups and snapshots of removed hosts (engine only)")
	cmdutil.DescribeColumns(cmd, output.Infos(display.BackupColumns))
	return cmd
}

func runList(ctx context.Context, opts *ListOptions) error {
	bs, err := listBackups(ctx, opts)
	if err != nil {
		if opts.Orphaned {
			err = fmt.Errorf("list the backups of removed hosts: %w", err)
		} else if opts.Host != "" {
			err = fmt.Errorf("list backups of host %s: %w", cmdutil.Short(opts.Host), err)
		} else {
			err = fmt.Errorf("list backups: %w", err)
		}
		if bs == nil {
			return err
		}
	}
	// Damage that hides some backups still shows the rest, then fails.
	if perr := opts.Printer().Print(display.Backups(bs)); perr != nil {
		return perr
	}
	return err
}

func listBackups(ctx context.Context, opts *ListOptions) ([]provider.Backup, error) {
	if opts.Orphaned {
		p, err := opts.Deleter(ctx)
		if err != nil {
			return nil, err
		}
		return p.ListOrphaned(ctx)
	}
	p, err := opts.Provider(ctx)
	if err != nil {
		return nil, err
	}
	return p.ListBackups(ctx, opts.Host)
}

package snapshots

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dropback/dropback/commands/cmdutil"
	"github.com/dropback/dropback/commands/display"
	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

// ListOptions are the inputs of `snapshots list`.
type ListOptions struct {
	IO       *output.IOStreams
	Provider func(context.Context) (provider.Snapshots, error)
	Printer  func() *output.Printer

	Host string // "" lists every host's snapshots
}

// NewCmdList returns `snapshots list`.
func NewCmdList(f *cmdutil.Factory, runF func(*ListOptions) error) *cobra.Command {
	opts := &ListOptions{IO: f.IOStreams, Provider: cmdutil.Capability[provider.Snapshots](f, "snapshots list"), Printer: f.Printer}
	cmd := &cobra.Command{
		Use:     "list [<host>]",
		Aliases: []string{"ls"},
		Short:   "List snapshots, oldest first",
		Long: `List the snapshots of one host, or every snapshot. On DigitalOcean the list of
every snapshot is the account's (/v2/snapshots?resource_type=droplet): it holds
those of destroyed Droplets too, whose Host is the old Droplet's ID; list one of
them by that ID, and restore it to a new Droplet with
` + "`dropback backups restore <old-droplet-id> <snapshot-id> --to-new NAME`" + `.`,
		Example: `  dropback snapshots list
  dropback snapshots list web-1 -o json`,
		Args:              cmdutil.RangeArgs(0, 1, "at most one host"),
		ValidArgsFunction: cmdutil.CompleteHosts(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Host = args[0]
			}
			if runF != nil {
				return runF(opts)
			}
			return runList(cmd.Context(), opts)
		},
	}
	cmdutil.DescribeColumns(cmd, output.Infos(display.BackupColumns))
	return cmd
}

func runList(ctx context.Context, opts *ListOptions) error {
	p, err := opts.Provider(ctx)
	if err != nil {
		return err
	}
	ss, err := p.ListSnapshots(ctx, opts.Host)
	if err != nil {
		if opts.Host != "" {
			err = fmt.Errorf("list snapshots of host %s: %w", cmdutil.Short(opts.Host), err)
		} else {
			err = fmt.Errorf("list snapshots: %w", err)
		}
		if ss == nil {
			return err
		}
	}
	// Damage that hides some snapshots still shows the rest, then fails.
	if perr := opts.Printer().Print(display.Backups(ss)); perr != nil {
		return perr
	}
	return err
}

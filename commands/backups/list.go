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
}

// NewCmdList returns `backups list`.
func NewCmdList(f *cmdutil.Factory, runF func(*ListOptions) error) *cobra.Command {
	opts := &ListOptions{IO: f.IOStreams, Provider: cmdutil.Capability[provider.Backups](f, "backups list"), Printer: f.Printer}
	cmd := &cobra.Command{
		Use:     "list [<host>]",
		Aliases: []string{"ls"},
		Short:   "List backups, oldest first",
		Long:    "List the backups of one host, or of every host. Snapshots are listed by `snapshots list`.",
		Example: `  dropback backups list
  dropback backups list web-1 --format ID,Created,Size
  dropback --context digitalocean backups list 123456 -o json`,
		Args: cmdutil.RangeArgs(0, 1, "at most one host"),
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
	bs, err := p.ListBackups(ctx, opts.Host)
	if err != nil {
		if opts.Host != "" {
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

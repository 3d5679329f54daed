package actions

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dropback/dropback/commands/cmdutil"
	"github.com/dropback/dropback/commands/display"
	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

// ListOptions are the inputs of `actions list`.
type ListOptions struct {
	IO       *output.IOStreams
	Provider func(context.Context) (provider.Actions, error)
	Printer  func() *output.Printer

	Host string // "" lists every action
}

// NewCmdList returns `actions list`.
func NewCmdList(f *cmdutil.Factory, runF func(*ListOptions) error) *cobra.Command {
	opts := &ListOptions{IO: f.IOStreams, Provider: cmdutil.Capability[provider.Actions](f, "actions list"), Printer: f.Printer}
	cmd := &cobra.Command{
		Use:     "list [<host>]",
		Aliases: []string{"ls"},
		Short:   "List actions, newest first",
		Long: `List every action, or those of one host (on DigitalOcean, the Droplet's actions,
as doctl compute droplet actions lists them).`,
		Example: `  dropback actions list
  dropback actions list web-1 --format ID,Type,Status,Error`,
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
	cmdutil.DescribeColumns(cmd, output.Infos(display.ActionColumns))
	return cmd
}

func runList(ctx context.Context, opts *ListOptions) error {
	p, err := opts.Provider(ctx)
	if err != nil {
		return err
	}
	if opts.Host != "" {
		as, err := p.ListHostActions(ctx, opts.Host)
		if err != nil {
			return fmt.Errorf("list actions of host %s: %w", cmdutil.Short(opts.Host), err)
		}
		return opts.Printer().Print(display.Actions(as))
	}
	as, err := p.ListActions(ctx)
	if err != nil {
		err = fmt.Errorf("list actions: %w", err)
		if as == nil {
			return err
		}
	}
	// Damage that hides some actions still shows the rest, then fails.
	if perr := opts.Printer().Print(display.Actions(as)); perr != nil {
		return perr
	}
	return err
}

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

	Host    string // "" lists every action
	Page    int
	PerPage int
}

// NewCmdList returns `actions list`.
func NewCmdList(f *cmdutil.Factory, runF func(*ListOptions) error) *cobra.Command {
	opts := &ListOptions{IO: f.IOStreams, Provider: cmdutil.Capability[provider.Actions](f, "actions list"), Printer: f.Printer}
	cmd := &cobra.Command{
		Use:     "list [<host>]",
		Aliases: []string{"ls"},
		Short:   "List actions, newest first",
		Long: `List every action, or those of one host (on DigitalOcean, the Droplet's actions,
as doctl compute droplet actions lists them).

The list comes in pages of --per-page actions (100 by default, 0 for all),
newest first; a note on stderr says when there are more. In the engine only
the actions of the page are read, however many the repository keeps.`,
		Example: `  dropback actions list
  dropback actions list --page 2
  dropback actions list --per-page 0 -o json
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
	cmd.Flags().IntVar(&opts.Page, "page", 1, "the page to list, from 1")
	cmd.Flags().IntVar(&opts.PerPage, "per-page", 100, "actions a page, 0 for every action")
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
	if opts.Page < 1 || opts.PerPage < 0 {
		return cmdutil.FlagErrorf("invalid --page %d or --per-page %d: pages count from 1, and a page holds 0 (all) or more actions", opts.Page, opts.PerPage)
	}
	as, total, err := listPage(ctx, p, opts.Page, opts.PerPage)
	if err != nil {
		err = fmt.Errorf("list actions: %w", err)
		if as == nil {
			return err
		}
	}
	// Damage that hides some actions still shows the rest, then fails.
	pr := opts.Printer()
	if perr := pr.Print(display.Actions(as)); perr != nil {
		return perr
	}
	if opts.PerPage > 0 && opts.Page*opts.PerPage < total && !pr.Quiet {
		fmt.Fprintf(opts.IO.ErrOut, "%d of %d actions; the next page: --page %d\n", len(as), total, opts.Page+1)
	}
	return err
}

// listPage lists one page of actions: through the provider's pager when it
// has one, else from the whole list.
func listPage(ctx context.Context, p provider.Actions, page, perPage int) ([]provider.Action, int, error) {
	if pg, ok := p.(provider.ActionPager); ok {
		return pg.ListActionsPage(ctx, page, perPage)
	}
	as, err := p.ListActions(ctx)
	total := len(as)
	if perPage > 0 {
		from := min((page-1)*perPage, total)
		as = as[from:min(from+perPage, total)]
	}
	return as, total, err
}

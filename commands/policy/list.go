package policy

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dropback/dropback/commands/cmdutil"
	"github.com/dropback/dropback/commands/display"
	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

// ListOptions are the inputs of `policy list`.
type ListOptions struct {
	IO       *output.IOStreams
	Provider func(context.Context) (provider.Policies, error)
	Printer  func() *output.Printer
}

// NewCmdList returns `policy list`.
func NewCmdList(f *cmdutil.Factory, runF func(*ListOptions) error) *cobra.Command {
	opts := &ListOptions{IO: f.IOStreams, Provider: cmdutil.Capability[provider.Policies](f, "policy list"), Printer: f.Printer}
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the backup policies of every host",
		Example: `  dropback policy list
  dropback policy list --format Host,Plan,NextWindow --no-header`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runList(cmd.Context(), opts)
		},
	}
	cmdutil.DescribeColumns(cmd, output.Infos(display.PolicyColumns))
	return cmd
}

func runList(ctx context.Context, opts *ListOptions) error {
	p, err := opts.Provider(ctx)
	if err != nil {
		return err
	}
	ps, err := p.ListPolicies(ctx)
	if err != nil {
		err = fmt.Errorf("list backup policies: %w", err)
		if ps == nil {
			return err
		}
	}
	// Damage that hides some hosts still shows the rest, then fails.
	if perr := opts.Printer().Print(display.Policies(ps)); perr != nil {
		return perr
	}
	return err
}

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
}

// NewCmdList returns `actions list`.
func NewCmdList(f *cmdutil.Factory, runF func(*ListOptions) error) *cobra.Command {
	opts := &ListOptions{IO: f.IOStreams, Provider: cmdutil.Capability[provider.Actions](f, "actions list"), Printer: f.Printer}
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List actions",
		Example: `  dropback actions list
  dropback actions list --format ID,Type,Status,Error`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
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
	as, err := p.ListActions(ctx)
	if err != nil {
		return fmt.Errorf("list actions: %w", err)
	}
	return opts.Printer().Print(display.Actions(as))
}

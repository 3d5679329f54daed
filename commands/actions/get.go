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

// GetOptions are the inputs of `actions get`.
type GetOptions struct {
	IO       *output.IOStreams
	Provider func(context.Context) (provider.Actions, error)
	Printer  func() *output.Printer

	ID   int
	Wait cmdutil.WaitFlags
}

// NewCmdGet returns `actions get`.
func NewCmdGet(f *cmdutil.Factory, runF func(*GetOptions) error) *cobra.Command {
	opts := &GetOptions{IO: f.IOStreams, Provider: cmdutil.Capability[provider.Actions](f, "actions get"), Printer: f.Printer}
	cmd := &cobra.Command{
		Use:   "get <id>",
		Short: "Show an action",
		Example: `  dropback actions get 17
  dropback --context digitalocean actions get 2345678901 --wait -o json`,
		Args: cmdutil.ExactArgs(1, "the action ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := cmdutil.ParseID("action ID", args[0])
			if err != nil {
				return err
			}
			opts.ID = id
			if runF != nil {
				return runF(opts)
			}
			return runGet(cmd.Context(), opts)
		},
	}
	cmdutil.AddWaitFlags(cmd, f, &opts.Wait)
	cmdutil.DescribeColumns(cmd, output.Infos(display.ActionColumns))
	return cmd
}

func runGet(ctx context.Context, opts *GetOptions) error {
	pr := opts.Printer()
	if err := pr.Check(output.Infos(display.ActionColumns)); err != nil {
		return err
	}
	p, err := opts.Provider(ctx)
	if err != nil {
		return err
	}
	a, err := p.GetAction(ctx, opts.ID)
	if err != nil {
		return fmt.Errorf("get action %d: %w", opts.ID, err)
	}
	if !opts.Wait.Wait {
		return pr.Print(display.Action(a))
	}
	return cmdutil.FinishAction(ctx, p, pr, a, opts.Wait)
}

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

// GetOptions are the inputs of `policy get`.
type GetOptions struct {
	IO       *output.IOStreams
	Provider func(context.Context) (provider.Policies, error)
	Printer  func() *output.Printer

	Host string
}

// NewCmdGet returns `policy get`.
func NewCmdGet(f *cmdutil.Factory, runF func(*GetOptions) error) *cobra.Command {
	opts := &GetOptions{IO: f.IOStreams, Provider: cmdutil.Capability[provider.Policies](f, "policy get"), Printer: f.Printer}
	cmd := &cobra.Command{
		Use:   "get <host>",
		Short: "Show a host's backup policy and next window",
		Example: `  dropback policy get web-1
  dropback policy get web-1 -o json | jq .next_backup_window.start`,
		Args:              cmdutil.ExactArgs(1, "the host (name or ID)"),
		ValidArgsFunction: cmdutil.CompleteHosts(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Host = args[0]
			if runF != nil {
				return runF(opts)
			}
			return runGet(cmd.Context(), opts)
		},
	}
	cmdutil.DescribeColumns(cmd, output.Infos(display.PolicyColumns))
	return cmd
}

func runGet(ctx context.Context, opts *GetOptions) error {
	p, err := opts.Provider(ctx)
	if err != nil {
		return err
	}
	hp, err := p.GetPolicy(ctx, opts.Host)
	if err != nil {
		return fmt.Errorf("get the backup policy of host %s: %w", cmdutil.Short(opts.Host), err)
	}
	return opts.Printer().Print(display.Policy(hp))
}

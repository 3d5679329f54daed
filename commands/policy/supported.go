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

// SupportedOptions are the inputs of `policy supported`.
type SupportedOptions struct {
	IO       *output.IOStreams
	Provider func(context.Context) (provider.Policies, error)
	Printer  func() *output.Printer
}

// NewCmdSupported returns `policy supported`.
func NewCmdSupported(f *cmdutil.Factory, runF func(*SupportedOptions) error) *cobra.Command {
	opts := &SupportedOptions{IO: f.IOStreams, Provider: cmdutil.Capability[provider.Policies](f, "policy supported"), Printer: f.Printer}
	cmd := &cobra.Command{
		Use:   "supported",
		Short: "List the plans, windows, weekdays and retentions on offer",
		Example: `  dropback policy supported
  dropback --context digitalocean policy supported -o json`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runSupported(cmd.Context(), opts)
		},
	}
	cmdutil.DescribeColumns(cmd, output.Infos(display.SupportedColumns))
	return cmd
}

func runSupported(ctx context.Context, opts *SupportedOptions) error {
	p, err := opts.Provider(ctx)
	if err != nil {
		return err
	}
	ss, err := p.SupportedPolicies(ctx)
	if err != nil {
		return fmt.Errorf("list supported backup policies: %w", err)
	}
	return opts.Printer().Print(display.Supported(ss))
}

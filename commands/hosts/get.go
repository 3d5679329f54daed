package hosts

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dropback/dropback/commands/cmdutil"
	"github.com/dropback/dropback/commands/display"
	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

// GetOptions are the inputs of `hosts get`.
type GetOptions struct {
	IO       *output.IOStreams
	Provider func(context.Context) (provider.Hosts, error)
	Printer  func() *output.Printer

	Host string
}

// NewCmdGet returns `hosts get`.
func NewCmdGet(f *cmdutil.Factory, runF func(*GetOptions) error) *cobra.Command {
	opts := &GetOptions{IO: f.IOStreams, Provider: cmdutil.Capability[provider.Hosts](f, "hosts get"), Printer: f.Printer}
	cmd := &cobra.Command{
		Use:   "get <host>",
		Short: "Show a host",
		Example: `  dropback hosts get web-1
  dropback hosts get 3 --format Name,Paths,Plan,NextWindow
  dropback --context digitalocean hosts get 123456 -o json`,
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
	cmdutil.DescribeColumns(cmd, output.Infos(display.HostColumns))
	return cmd
}

func runGet(ctx context.Context, opts *GetOptions) error {
	p, err := opts.Provider(ctx)
	if err != nil {
		return err
	}
	h, err := p.GetHost(ctx, opts.Host)
	if err != nil {
		return fmt.Errorf("get host %s: %w", cmdutil.Short(opts.Host), err)
	}
	return opts.Printer().Print(display.Host(h))
}

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

// ListOptions are the inputs of `hosts list`.
type ListOptions struct {
	IO       *output.IOStreams
	Provider func(context.Context) (provider.Hosts, error)
	Printer  func() *output.Printer
}

// NewCmdList returns `hosts list`.
func NewCmdList(f *cmdutil.Factory, runF func(*ListOptions) error) *cobra.Command {
	opts := &ListOptions{IO: f.IOStreams, Provider: cmdutil.Capability[provider.Hosts](f, "hosts list"), Printer: f.Printer}
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List hosts",
		Example: `  dropback hosts list
  dropback hosts list --format ID,Name,Paths --no-header
  dropback --context digitalocean hosts list -o json`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runList(cmd.Context(), opts)
		},
	}
	cmdutil.DescribeColumns(cmd, output.Infos(display.HostColumns))
	return cmd
}

func runList(ctx context.Context, opts *ListOptions) error {
	p, err := opts.Provider(ctx)
	if err != nil {
		return err
	}
	hs, err := p.ListHosts(ctx)
	if err != nil {
		err = fmt.Errorf("list hosts: %w", err)
		if hs == nil {
			return err
		}
	}
	// Damage that hides some hosts still shows the rest, then fails.
	if perr := opts.Printer().Print(display.Hosts(hs)); perr != nil {
		return perr
	}
	return err
}

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

// SetOptions are the inputs of `policy set`.
type SetOptions struct {
	IO       *output.IOStreams
	Provider func(context.Context) (setter, error)
	Printer  func() *output.Printer

	Host    string
	Request provider.PolicyRequest
	Wait    cmdutil.WaitFlags
}

// NewCmdSet returns `policy set`.
func NewCmdSet(f *cmdutil.Factory, runF func(*SetOptions) error) *cobra.Command {
	opts := &SetOptions{IO: f.IOStreams, Provider: cmdutil.Capability[setter](f, "policy set"), Printer: f.Printer}
	var pf cmdutil.PolicyFlags
	cmd := &cobra.Command{
		Use:   "set <host> [--plan P] [--weekday D] [--hour H] [--retention-days N]",
		Short: "Change a host's backup policy",
		Long:  "Change only the parts of a host's backup policy that are given; at least one flag is needed.",
		Example: `  dropback policy set web-1 --hour 16
  dropback policy set web-1 --plan weekly --weekday TUE
  dropback --context digitalocean policy set 123456 --retention-days 14 --wait`,
		Args:              cmdutil.ExactArgs(1, "the host (name or ID)"),
		ValidArgsFunction: cmdutil.CompleteHosts(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Host = args[0]
			req, set := cmdutil.PolicyRequest(cmd, &pf)
			if !set {
				return cmdutil.FlagErrorf("policy set: nothing to change: give --plan, --weekday, --hour or --retention-days")
			}
			opts.Request = req
			if runF != nil {
				return runF(opts)
			}
			return runSet(cmd.Context(), opts)
		},
	}
	cmdutil.AddPolicyFlags(cmd, &pf)
	cmdutil.AddWaitFlags(cmd, f, &opts.Wait)
	cmdutil.DescribeColumns(cmd, output.Infos(display.ActionColumns))
	return cmd
}

func runSet(ctx context.Context, opts *SetOptions) error {
	pr := opts.Printer()
	if err := pr.Check(output.Infos(display.ActionColumns)); err != nil {
		return err
	}
	p, err := opts.Provider(ctx)
	if err != nil {
		return err
	}
	a, err := p.SetPolicy(ctx, opts.Host, opts.Request)
	if err != nil {
		return fmt.Errorf("set the backup policy of host %s: %w", cmdutil.Short(opts.Host), err)
	}
	return cmdutil.FinishAction(ctx, p, pr, a, opts.Wait)
}

package backups

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dropback/dropback/commands/cmdutil"
	"github.com/dropback/dropback/commands/display"
	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

// EnableOptions are the inputs of `backups enable`.
type EnableOptions struct {
	IO       *output.IOStreams
	Provider func(context.Context) (enabler, error)
	Printer  func() *output.Printer

	Host    string
	Tag     string // every host with this tag, instead of Host
	Request provider.PolicyRequest
	Wait    cmdutil.WaitFlags
}

// NewCmdEnable returns `backups enable`.
func NewCmdEnable(f *cmdutil.Factory, runF func(*EnableOptions) error) *cobra.Command {
	opts := &EnableOptions{IO: f.IOStreams, Provider: cmdutil.Capability[enabler](f, "backups enable"), Printer: f.Printer}
	var pf cmdutil.PolicyFlags
	cmd := &cobra.Command{
		Use:   "enable {<host> | --tag TAG}",
		Short: "Turn on scheduled backups of a host",
		Long: `Turn on scheduled backups of a host. Without flags the plan is daily, in the
window starting at 0h UTC, with the plan's retention (daily: 7 days, weekly: 28
days). Only the flags given are sent; see ` + "`dropback policy supported`" + ` for the values.

--tag enables the backups of every Droplet with a tag, with DigitalOcean's
default policy, in one request as doctl's enable_backups by tag (DigitalOcean
only; the API takes no policy with it: set one per Droplet with
` + "`dropback policy set`" + `).`,
		Example: `  dropback backups enable web-1
  dropback backups enable web-1 --plan weekly --weekday TUE --hour 16
  dropback --context digitalocean backups enable 123456 --plan daily --hour 8 --wait
  dropback --context digitalocean backups enable --tag production --wait`,
		Args:              cmdutil.RangeArgs(0, 1, "the host (name or ID), or --tag"),
		ValidArgsFunction: cmdutil.CompleteHosts(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Host = args[0]
			}
			if err := hostOrTag(opts.Host, opts.Tag); err != nil {
				return err
			}
			var set bool
			opts.Request, set = cmdutil.PolicyRequest(cmd, &pf)
			if set && opts.Tag != "" {
				return cmdutil.FlagErrorf("--tag enables backups with the default policy: the API takes no --plan, --weekday, --hour or --retention-days with it; set them per Droplet with `dropback policy set`")
			}
			if runF != nil {
				return runF(opts)
			}
			return runEnable(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Tag, "tag", "", "every Droplet with this `tag` (DigitalOcean only)")
	cmdutil.AddPolicyFlags(cmd, &pf)
	cmdutil.AddWaitFlags(cmd, f, &opts.Wait)
	cmdutil.DescribeColumns(cmd, output.Infos(display.ActionColumns))
	return cmd
}

func runEnable(ctx context.Context, opts *EnableOptions) error {
	pr := opts.Printer()
	if err := pr.Check(output.Infos(display.ActionColumns)); err != nil {
		return err
	}
	p, err := opts.Provider(ctx)
	if err != nil {
		return err
	}
	if opts.Tag != "" {
		return enableByTag(ctx, p, pr, opts)
	}
	a, err := p.EnableBackups(ctx, opts.Host, opts.Request)
	if err != nil {
		return fmt.Errorf("enable backups of host %s: %w", cmdutil.Short(opts.Host), err)
	}
	return cmdutil.FinishAction(ctx, p, pr, a, opts.Wait)
}

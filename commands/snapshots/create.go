package snapshots

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dropback/dropback/commands/cmdutil"
	"github.com/dropback/dropback/commands/display"
	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

// CreateOptions are the inputs of `snapshots create`.
type CreateOptions struct {
	IO       *output.IOStreams
	Provider func(context.Context) (snapshotTaker, error)
	Printer  func() *output.Printer

	Host string
	Name string
	Wait cmdutil.WaitFlags
}

// snapshotTaker is what `snapshots create` needs: the snapshot, and the
// action to follow.
type snapshotTaker interface {
	provider.SnapshotTaker
	provider.Actions
}

// NewCmdCreate returns `snapshots create`.
func NewCmdCreate(f *cmdutil.Factory, runF func(*CreateOptions) error) *cobra.Command {
	opts := &CreateOptions{IO: f.IOStreams, Provider: cmdutil.Capability[snapshotTaker](f, "snapshots create"), Printer: f.Printer}
	cmd := &cobra.Command{
		Use:   "create <host>",
		Short: "Take a snapshot of a Droplet now",
		Long: `Take an on-demand snapshot of a Droplet with DigitalOcean's snapshot action, as
doctl compute droplet-action snapshot does. A snapshot is kept until deleted,
survives its Droplet, and restores like a backup. --name names it (default:
the Droplet's name and the time); --wait waits for it to complete.

DigitalOcean only: on the engine, take a backup with ` + "`dropback backups create`" + ` and keep
it with ` + "`dropback backups convert`" + `.`,
		Example: `  dropback --context digitalocean snapshots create web-1 --name before-upgrade --wait
  dropback --context digitalocean snapshots create 123456 -o json | jq .id`,
		Args:              cmdutil.ExactArgs(1, "the host (name or ID)"),
		ValidArgsFunction: cmdutil.CompleteHosts(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Host = args[0]
			if err := cmdutil.MutuallyExclusive(cmd, "name", "snapshot-name"); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return runCreate(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Name, "name", "", "the snapshot's `name` (default: the Droplet's name and the time)")
	cmd.Flags().StringVar(&opts.Name, "snapshot-name", "", "the snapshot's `name`, as doctl's flag")
	cmdutil.AddWaitFlags(cmd, f, &opts.Wait)
	cmdutil.DescribeColumns(cmd, output.Infos(display.ActionColumns))
	return cmd
}

func runCreate(ctx context.Context, opts *CreateOptions) error {
	pr := opts.Printer()
	if err := pr.Check(output.Infos(display.ActionColumns)); err != nil {
		return err
	}
	p, err := opts.Provider(ctx)
	if err != nil {
		return err
	}
	a, err := p.TakeSnapshot(ctx, opts.Host, opts.Name)
	if err != nil {
		return fmt.Errorf("take a snapshot of host %s: %w", cmdutil.Short(opts.Host), err)
	}
	return cmdutil.FinishAction(ctx, p, pr, a, opts.Wait)
}

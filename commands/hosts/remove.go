package hosts

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dropback/dropback/commands/cmdutil"
	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

// RemoveOptions are the inputs of `hosts remove`.
type RemoveOptions struct {
	IO       *output.IOStreams
	Provider func(context.Context) (provider.HostRegistry, error)
	Printer  func() *output.Printer

	Host          string
	Force         bool
	DeleteBackups bool
}

// NewCmdRemove returns `hosts remove`.
func NewCmdRemove(f *cmdutil.Factory, runF func(*RemoveOptions) error) *cobra.Command {
	opts := &RemoveOptions{IO: f.IOStreams, Provider: cmdutil.Capability[provider.HostRegistry](f, "hosts remove"), Printer: f.Printer}
	cmd := &cobra.Command{
		Use:     "remove <host>",
		Aliases: []string{"rm"},
		Short:   "Unregister a host",
		Long: `Unregister a host. Its backups are kept unless --delete-backups is given; its
snapshots are always kept. The host's disks are not touched.

On a terminal this asks for confirmation; otherwise it needs --force.`,
		Example: `  dropback hosts remove web-1
  dropback hosts remove web-1 --delete-backups --force`,
		Args: cmdutil.ExactArgs(1, "the host (name or ID)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Host = args[0]
			if runF != nil {
				return runF(opts)
			}
			return runRemove(cmd.Context(), opts)
		},
	}
	cmdutil.AddForceFlag(cmd, &opts.Force, "remove without asking")
	cmd.Flags().BoolVar(&opts.DeleteBackups, "delete-backups", false, "also delete the host's backups (snapshots are kept)")
	return cmd
}

func runRemove(ctx context.Context, opts *RemoveOptions) error {
	p, err := opts.Provider(ctx)
	if err != nil {
		return err
	}
	question := fmt.Sprintf("Remove host %s? Its backups are kept.", cmdutil.Short(opts.Host))
	if opts.DeleteBackups {
		question = fmt.Sprintf("Remove host %s and delete its backups? Snapshots are kept.", cmdutil.Short(opts.Host))
	}
	what := "remove host " + cmdutil.Short(opts.Host)
	if err := cmdutil.ConfirmDestructive(opts.IO, opts.Force, question, what); err != nil {
		return err
	}
	dopts := provider.DisableOptions{KeepBackups: !opts.DeleteBackups, DeleteBackups: opts.DeleteBackups}
	if err := p.RemoveHost(ctx, opts.Host, dopts); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	opts.Printer().Noticef("Removed host %s", opts.Host)
	return nil
}

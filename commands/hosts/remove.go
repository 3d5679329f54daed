package hosts

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/dropback/dropback/commands/cmdutil"
	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

// RemoveOptions are the inputs of `hosts remove`.
type RemoveOptions struct {
	IO       *output.IOStreams
	Provider func(context.Context) (remover, error)
	Printer  func() *output.Printer

	Host          string
	Force         bool
	DeleteBackups bool
}

// NewCmdRemove returns `hosts remove`.
func NewCmdRemove(f *cmdutil.Factory, runF func(*RemoveOptions) error) *cobra.Command {
	opts := &RemoveOptions{IO: f.IOStreams, Provider: cmdutil.Capability[remover](f, "hosts remove"), Printer: f.Printer}
	cmd := &cobra.Command{
		Use:     "remove <host>",
		Aliases: []string{"rm"},
		Short:   "Unregister a host",
		Long: `Unregister a host. Its backups are kept unless --delete-backups is given; its
snapshots are always kept. The host's disks are not touched.

On a terminal this asks for confirmation; otherwise it needs --force.`,
		Example: `  dropback hosts remove web-1
  dropback hosts remove web-1 --delete-backups --force`,
		Args:              cmdutil.ExactArgs(1, "the host (name or ID)"),
		ValidArgsFunction: cmdutil.CompleteHosts(f),
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

// remover is what hosts remove needs: the host, to check it before asking,
// and its removal.
type remover interface {
	provider.Hosts
	provider.HostRegistry
}

func runRemove(ctx context.Context, opts *RemoveOptions) error {
	p, err := opts.Provider(ctx)
	if err != nil {
		return err
	}
	h, err := p.GetHost(ctx, opts.Host)
	if err != nil {
		return fmt.Errorf("remove host %s: %w", cmdutil.Short(opts.Host), err)
	}
	name := fmt.Sprintf("%s (ID %d)", cmdutil.Short(h.Name), h.ID)
	question := fmt.Sprintf("Remove host %s? Its backups are kept; its disks are not touched.", name)
	if opts.DeleteBackups {
		question = fmt.Sprintf("Remove host %s and delete its backups? Snapshots are kept; its disks are not touched.", name)
	}
	what := "remove host " + cmdutil.Short(opts.Host)
	if err := cmdutil.ConfirmDestructive(opts.IO, opts.Force, question, what); err != nil {
		return err
	}
	dopts := provider.DisableOptions{KeepBackups: !opts.DeleteBackups, DeleteBackups: opts.DeleteBackups}
	// The host asked about, by its ID, even if its name is taken meanwhile.
	if err := p.RemoveHost(ctx, strconv.Itoa(h.ID), dopts); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	opts.Printer().Noticef("Removed host %s", name)
	return nil
}

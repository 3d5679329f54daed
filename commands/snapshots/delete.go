package snapshots

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dropback/dropback/commands/cmdutil"
	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

// DeleteOptions are the inputs of `snapshots delete`.
type DeleteOptions struct {
	IO       *output.IOStreams
	Provider func(context.Context) (provider.Snapshots, error)
	Printer  func() *output.Printer

	ID    int
	Force bool
}

// NewCmdDelete returns `snapshots delete`.
func NewCmdDelete(f *cmdutil.Factory, runF func(*DeleteOptions) error) *cobra.Command {
	opts := &DeleteOptions{IO: f.IOStreams, Provider: cmdutil.Capability[provider.Snapshots](f, "snapshots delete"), Printer: f.Printer}
	cmd := &cobra.Command{
		Use:     "delete <id>",
		Aliases: []string{"rm"},
		Short:   "Delete a snapshot",
		Long:    "Delete a snapshot. On a terminal this asks for confirmation; otherwise it needs --force.",
		Example: `  dropback snapshots delete 42
  dropback snapshots delete 42 --force`,
		Args: cmdutil.ExactArgs(1, "the snapshot ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := cmdutil.ParseID("snapshot ID", args[0])
			if err != nil {
				return err
			}
			opts.ID = id
			if runF != nil {
				return runF(opts)
			}
			return runDelete(cmd.Context(), opts)
		},
	}
	cmdutil.AddForceFlag(cmd, &opts.Force, "delete without asking")
	return cmd
}

func runDelete(ctx context.Context, opts *DeleteOptions) error {
	p, err := opts.Provider(ctx)
	if err != nil {
		return err
	}
	what := fmt.Sprintf("delete snapshot %d", opts.ID)
	question := fmt.Sprintf("Delete snapshot %d? This cannot be undone.", opts.ID)
	if err := cmdutil.ConfirmDestructive(opts.IO, opts.Force, question, what); err != nil {
		return err
	}
	if err := p.DeleteSnapshot(ctx, opts.ID); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	opts.Printer().Noticef("Deleted snapshot %d", opts.ID)
	return nil
}

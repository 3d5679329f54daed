package snapshots

import (
	"context"
	"errors"
	"fmt"
	"strings"

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

	IDs   []int
	Force bool
}

// NewCmdDelete returns `snapshots delete`.
func NewCmdDelete(f *cmdutil.Factory, runF func(*DeleteOptions) error) *cobra.Command {
	opts := &DeleteOptions{IO: f.IOStreams, Provider: cmdutil.Capability[provider.Snapshots](f, "snapshots delete"), Printer: f.Printer}
	cmd := &cobra.Command{
		Use:     "delete <id>...",
		Aliases: []string{"rm"},
		Short:   "Delete snapshots",
		Long: `Delete one or more snapshots, as doctl compute snapshot delete does. On a
terminal this asks for confirmation; otherwise it needs --force. Each is
deleted in turn; when some cannot be, the others still are, and the command
exits with code 3 (partial) and names those that failed.`,
		Example: `  dropback snapshots delete 42
  dropback snapshots delete 42 43 44 --force`,
		Args:              cmdutil.RangeArgs(1, 1<<20, "the snapshot IDs"),
		ValidArgsFunction: cmdutil.CompleteSnapshots(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			ids, err := cmdutil.ParseIDs("snapshot ID", args)
			if err != nil {
				return err
			}
			opts.IDs = ids
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
	list := idList(opts.IDs)
	what := fmt.Sprintf("delete snapshot %s", list)
	question := fmt.Sprintf("Delete snapshot %s? This cannot be undone.", list)
	if len(opts.IDs) > 1 {
		what = fmt.Sprintf("delete snapshots %s", list)
		question = fmt.Sprintf("Delete %d snapshots (%s)? This cannot be undone.", len(opts.IDs), list)
	}
	if err := cmdutil.ConfirmDestructive(opts.IO, opts.Force, question, what); err != nil {
		return err
	}
	pr := opts.Printer()
	var errs []error
	for _, id := range opts.IDs {
		if err := p.DeleteSnapshot(ctx, id); err != nil {
			errs = append(errs, fmt.Errorf("delete snapshot %d: %w", id, err))
			continue
		}
		pr.Noticef("Deleted snapshot %d", id)
	}
	switch {
	case len(errs) == 0:
		return nil
	case len(errs) == 1 && len(opts.IDs) == 1:
		return errs[0]
	case len(errs) == len(opts.IDs):
		return errors.Join(errs...)
	}
	return fmt.Errorf("%d of %d snapshots not deleted: %w: %w", len(errs), len(opts.IDs), cmdutil.ErrPartial, errors.Join(errs...))
}

func idList(ids []int) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = fmt.Sprint(id)
	}
	return strings.Join(s, ", ")
}

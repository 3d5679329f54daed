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

// GetOptions are the inputs of `backups get`.
type GetOptions struct {
	IO       *output.IOStreams
	Provider func(context.Context) (provider.Backups, error)
	Printer  func() *output.Printer

	ID int
}

// NewCmdGet returns `backups get`.
func NewCmdGet(f *cmdutil.Factory, runF func(*GetOptions) error) *cobra.Command {
	opts := &GetOptions{IO: f.IOStreams, Provider: cmdutil.Capability[provider.Backups](f, "backups get"), Printer: f.Printer}
	cmd := &cobra.Command{
		Use:   "get <id>",
		Short: "Show a backup or snapshot",
		Example: `  dropback backups get 42
  dropback backups get 42 -o json`,
		Args: cmdutil.ExactArgs(1, "the backup ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := cmdutil.ParseID("backup ID", args[0])
			if err != nil {
				return err
			}
			opts.ID = id
			if runF != nil {
				return runF(opts)
			}
			return runGet(cmd.Context(), opts)
		},
	}
	cmdutil.DescribeColumns(cmd, output.Infos(display.BackupColumns))
	return cmd
}

func runGet(ctx context.Context, opts *GetOptions) error {
	p, err := opts.Provider(ctx)
	if err != nil {
		return err
	}
	b, err := p.GetBackup(ctx, opts.ID)
	if err != nil {
		return fmt.Errorf("get backup %d: %w", opts.ID, err)
	}
	return opts.Printer().Print(display.Backup(b))
}

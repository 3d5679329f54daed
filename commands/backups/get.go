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

	Ref cmdutil.BackupRef
}

// NewCmdGet returns `backups get`.
func NewCmdGet(f *cmdutil.Factory, runF func(*GetOptions) error) *cobra.Command {
	opts := &GetOptions{IO: f.IOStreams, Provider: cmdutil.Capability[provider.Backups](f, "backups get"), Printer: f.Printer}
	cmd := &cobra.Command{
		Use:   "get " + cmdutil.BackupRefUse,
		Short: "Show a backup or snapshot",
		Long:  "Show a backup or snapshot.\n\n" + cmdutil.BackupRefHelp,
		Example: `  dropback backups get 42
  dropback backups get web-1 latest
  dropback backups get web-1 42 -o json`,
		Args:              cmdutil.BackupRefArgs,
		ValidArgsFunction: cmdutil.CompleteBackupRef(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := cmdutil.ParseBackupRef(args)
			if err != nil {
				return err
			}
			opts.Ref = ref
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
	b, err := p.FindBackup(ctx, opts.Ref.Host, opts.Ref.Backup)
	if err != nil {
		return fmt.Errorf("get %s: %w", opts.Ref, err)
	}
	return opts.Printer().Print(display.Backup(b))
}

package backups

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dropback/dropback/commands/cmdutil"
	"github.com/dropback/dropback/commands/display"
	"github.com/dropback/dropback/pkg/output"
)

// ConvertOptions are the inputs of `backups convert`.
type ConvertOptions struct {
	IO       *output.IOStreams
	Provider func(context.Context) (converter, error)
	Printer  func() *output.Printer

	Ref  cmdutil.BackupRef
	Wait cmdutil.WaitFlags
}

// NewCmdConvert returns `backups convert`.
func NewCmdConvert(f *cmdutil.Factory, runF func(*ConvertOptions) error) *cobra.Command {
	opts := &ConvertOptions{IO: f.IOStreams, Provider: cmdutil.Capability[converter](f, "backups convert"), Printer: f.Printer}
	cmd := &cobra.Command{
		Use:   "convert " + cmdutil.BackupRefUse,
		Short: "Turn a backup into a snapshot",
		Long: `Turn a backup into a snapshot. A snapshot is exempt from retention and survives
` + "`backups disable` and `hosts remove`" + `; it is kept until ` + "`snapshots delete`" + `.

` + cmdutil.BackupRefHelp,
		Example: `  dropback backups convert 42
  dropback backups convert web-1 latest
  dropback --context digitalocean backups convert 987654 --wait`,
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
			return runConvert(cmd.Context(), opts)
		},
	}
	cmdutil.AddWaitFlags(cmd, f, &opts.Wait)
	cmdutil.DescribeColumns(cmd, output.Infos(display.ActionColumns))
	return cmd
}

func runConvert(ctx context.Context, opts *ConvertOptions) error {
	pr := opts.Printer()
	if err := pr.Check(output.Infos(display.ActionColumns)); err != nil {
		return err
	}
	p, err := opts.Provider(ctx)
	if err != nil {
		return err
	}
	b, err := cmdutil.FindBackup(ctx, p, opts.Ref)
	if err != nil {
		return err
	}
	a, err := p.ConvertBackup(ctx, b.ID)
	if err != nil {
		return fmt.Errorf("convert %s to a snapshot: %w", cmdutil.DescribeBackup(b), err)
	}
	return cmdutil.FinishAction(ctx, p, pr, a, opts.Wait)
}

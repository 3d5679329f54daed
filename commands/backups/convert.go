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

	ID   int
	Wait cmdutil.WaitFlags
}

// NewCmdConvert returns `backups convert`.
func NewCmdConvert(f *cmdutil.Factory, runF func(*ConvertOptions) error) *cobra.Command {
	opts := &ConvertOptions{IO: f.IOStreams, Provider: cmdutil.Capability[converter](f, "backups convert"), Printer: f.Printer}
	cmd := &cobra.Command{
		Use:   "convert <id>",
		Short: "Turn a backup into a snapshot",
		Long: `Turn a backup into a snapshot. A snapshot is exempt from retention and survives
` + "`backups disable` and `hosts remove`" + `; it is kept until ` + "`snapshots delete`" + `.`,
		Example: `  dropback backups convert 42
  dropback --context digitalocean backups convert 987654 --wait`,
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
	a, err := p.ConvertBackup(ctx, opts.ID)
	if err != nil {
		return fmt.Errorf("convert backup %d to a snapshot: %w", opts.ID, err)
	}
	return cmdutil.FinishAction(ctx, p, pr, a, opts.Wait)
}

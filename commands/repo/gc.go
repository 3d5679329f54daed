package repo

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/dropback/dropback/commands/cmdutil"
	"github.com/dropback/dropback/commands/display"
	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

// GCOptions are the inputs of `repo gc`.
type GCOptions struct {
	IO       *output.IOStreams
	Provider func(context.Context) (provider.Provider, error)
	Printer  func() *output.Printer

	Grace time.Duration
}

// NewCmdGC returns `repo gc`.
func NewCmdGC(f *cmdutil.Factory, runF func(*GCOptions) error) *cobra.Command {
	opts := &GCOptions{IO: f.IOStreams, Provider: f.Provider, Printer: f.Printer}
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Reclaim the space of deleted backups",
		Long: `Reclaim the space of data no backup or snapshot references, and rewrite packs
that are at most half live. gc marks what nothing needs, and deletes it only
once no backup that started before the mark is still running and the mark is
older than --grace; no lock is taken (docs/format.md).

Engine only: DigitalOcean reclaims space itself.`,
		Example: `  dropback repo gc
  dropback repo gc --grace 2h`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Grace < 0 {
				return cmdutil.FlagErrorf("invalid --grace %s: must not be negative", opts.Grace)
			}
			if runF != nil {
				return runF(opts)
			}
			return runGC(cmd.Context(), opts)
		},
	}
	cmd.Flags().DurationVar(&opts.Grace, "grace", 0, "keep marked data at least this long before deleting it")
	cmdutil.DescribeColumns(cmd, output.Infos(display.GCColumns))
	return cmd
}

func runGC(ctx context.Context, opts *GCOptions) error {
	pr := opts.Printer()
	if err := pr.Check(output.Infos(display.GCColumns)); err != nil {
		return err
	}
	p, err := opts.Provider(ctx)
	if err != nil {
		return err
	}
	stop := pr.StartSpinner("Collecting garbage")
	res, err := p.GC(ctx, provider.GCOptions{Grace: opts.Grace})
	stop()
	if err != nil {
		return fmt.Errorf("collect garbage: %w", err)
	}
	if err := pr.Print(display.GC(res)); err != nil {
		return err
	}
	return cmdutil.CheckAction(&res.Action)
}

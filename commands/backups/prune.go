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

// PruneOptions are the inputs of `backups prune`.
type PruneOptions struct {
	IO       *output.IOStreams
	Provider func(context.Context) (provider.Pruner, error)
	Printer  func() *output.Printer

	Host       string
	KeepDaily  int
	KeepWeekly int
	DryRun     bool
	Force      bool
}

// NewCmdPrune returns `backups prune`.
func NewCmdPrune(f *cmdutil.Factory, runF func(*PruneOptions) error) *cobra.Command {
	opts := &PruneOptions{IO: f.IOStreams, Provider: cmdutil.Capability[provider.Pruner](f, "backups prune"), Printer: f.Printer}
	cmd := &cobra.Command{
		Use:   "prune [<host>]",
		Short: "Delete backups beyond a daily and weekly count",
		Long: `Keep, of each host's backups, the newest of each of the last --keep-daily days
and of the last --keep-weekly ISO weeks that have backups, and delete the rest,
as restic's forget and borg's prune do. Snapshots are always kept. Only
manifests are deleted; run ` + "`dropback repo gc`" + ` to reclaim the space.

On a terminal this asks for confirmation; otherwise it needs --force.
--dry-run lists what would go. Engine only.`,
		Example: `  dropback backups prune web-1 --keep-daily 7 --keep-weekly 4 --dry-run
  dropback backups prune --keep-daily 7 --keep-weekly 4 --force && dropback repo gc`,
		Args:              cmdutil.RangeArgs(0, 1, "at most one host (name or ID)"),
		ValidArgsFunction: cmdutil.CompleteHosts(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Host = args[0]
			}
			if opts.KeepDaily < 0 || opts.KeepWeekly < 0 || opts.KeepDaily+opts.KeepWeekly == 0 {
				return cmdutil.FlagErrorf("say what to keep: --keep-daily and --keep-weekly take counts of 1 or more")
			}
			if runF != nil {
				return runF(opts)
			}
			return runPrune(cmd.Context(), opts)
		},
	}
	cmd.Flags().IntVar(&opts.KeepDaily, "keep-daily", 0, "keep the newest backup of each of the last N days")
	cmd.Flags().IntVar(&opts.KeepWeekly, "keep-weekly", 0, "keep the newest backup of each of the last N weeks")
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "list what would be deleted, delete nothing")
	cmdutil.AddForceFlag(cmd, &opts.Force, "delete without asking")
	cmdutil.DescribeColumns(cmd, output.Infos(display.BackupColumns))
	return cmd
}

func runPrune(ctx context.Context, opts *PruneOptions) error {
	pr := opts.Printer()
	if err := pr.Check(output.Infos(display.BackupColumns)); err != nil {
		return err
	}
	p, err := opts.Provider(ctx)
	if err != nil {
		return err
	}
	what := "prune backups"
	if opts.Host != "" {
		what = "prune backups of host " + cmdutil.Short(opts.Host)
	}
	if !opts.DryRun {
		question := fmt.Sprintf("Delete the backups beyond %d daily and %d weekly? This cannot be undone.", opts.KeepDaily, opts.KeepWeekly)
		if err := cmdutil.ConfirmDestructive(opts.IO, opts.Force, question, what); err != nil {
			return err
		}
	}
	removed, err := p.PruneBackups(ctx, opts.Host, provider.PruneOptions{
		KeepDaily: opts.KeepDaily, KeepWeekly: opts.KeepWeekly, DryRun: opts.DryRun,
	})
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return pr.Print(display.Backups(removed))
}

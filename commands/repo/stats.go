package repo

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dropback/dropback/commands/cmdutil"
	"github.com/dropback/dropback/commands/display"
	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

// StatsOptions are the inputs of `repo stats`.
type StatsOptions struct {
	IO       *output.IOStreams
	Provider func(context.Context) (provider.Repository, error)
	Printer  func() *output.Printer
}

// NewCmdStats returns `repo stats`.
func NewCmdStats(f *cmdutil.Factory, runF func(*StatsOptions) error) *cobra.Command {
	opts := &StatsOptions{IO: f.IOStreams, Provider: cmdutil.Capability[provider.Repository](f, "repo stats"), Printer: f.Printer}
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Show what the repository holds and how well it deduplicates",
		Long: `Show the repository's logical size (all disks of all backups), the data in it,
what is stored after deduplication and compression, the ratios, and what gc
has reclaimed.`,
		Example: `  dropback repo stats
  dropback repo stats --format Stored,DedupRatio,CompressionRatio
  dropback repo stats -o json | jq .stored_bytes`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runStats(cmd.Context(), opts)
		},
	}
	cmdutil.DescribeColumns(cmd, output.Infos(display.RepoStatsColumns))
	return cmd
}

func runStats(ctx context.Context, opts *StatsOptions) error {
	p, err := opts.Provider(ctx)
	if err != nil {
		return err
	}
	stats, err := p.RepoStats(ctx)
	if err != nil {
		return fmt.Errorf("repository stats: %w", err)
	}
	return opts.Printer().Print(display.RepoStats(stats))
}

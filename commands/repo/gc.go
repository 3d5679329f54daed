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
	Provider func(context.Context) (provider.Repository, error)
	Printer  func() *output.Printer

	Grace    time.Duration
	MinAge   time.Duration
	WaitLock time.Duration
	History  time.Duration
}

// NewCmdGC returns `repo gc`.
func NewCmdGC(f *cmdutil.Factory, runF func(*GCOptions) error) *cobra.Command {
	opts := &GCOptions{IO: f.IOStreams, Provider: cmdutil.Capability[provider.Repository](f, "repo gc"), Printer: f.Printer}
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Reclaim the space of deleted backups",
		Long: `Reclaim the space of data no backup or snapshot references, and rewrite packs
that are at most half live. gc marks what nothing needs, and deletes it only
once no backup, restore or verify that started before the mark is still
running and the mark is older than --grace. Data younger than --min-age, or
than any operation still running, is not even marked.

One gc runs at a time on a repository: a second one waits up to --wait-lock
for the first, then exits with code 11 naming it. A gc whose process died
lets go after 10 minutes; nothing needs unlocking by hand
(docs/format.md, "Who may delete what").

Engine only: DigitalOcean reclaims space itself.`,
		Example: `  dropback repo gc
  dropback repo gc --grace 2h
  dropback repo gc --wait-lock 30m   # from cron, beside an agent`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			for name, d := range map[string]time.Duration{"grace": opts.Grace, "min-age": opts.MinAge, "wait-lock": opts.WaitLock, "keep-history": opts.History} {
				if d < 0 {
					return cmdutil.FlagErrorf("invalid --%s %s: must not be negative", name, d)
				}
			}
			if runF != nil {
				return runF(opts)
			}
			return runGC(cmd.Context(), opts)
		},
	}
	cmd.Flags().DurationVar(&opts.Grace, "grace", 0, "keep marked data at least this long before deleting it")
	cmd.Flags().DurationVar(&opts.MinAge, "min-age", cmdutil.GCMinAge, "mark only data at least this old")
	cmd.Flags().DurationVar(&opts.WaitLock, "wait-lock", 0, "wait this long for another gc to finish")
	cmd.Flags().DurationVar(&opts.History, "keep-history", 90*24*time.Hour, "keep action and gc records this long (0: for ever)")
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
	minAge := opts.MinAge
	if minAge == 0 {
		minAge = -1 // none, as asked
	}
	history := opts.History
	if history == 0 {
		history = -1 // for ever, as asked
	}
	res, err := p.GC(ctx, provider.GCOptions{Grace: opts.Grace, MinAge: minAge, WaitLock: opts.WaitLock, History: history})
	stop()
	if err != nil {
		return fmt.Errorf("collect garbage: %w", err)
	}
	if err := pr.Print(display.GC(res)); err != nil {
		return err
	}
	if res.DeferredFor != "" {
		pr.Noticef("some data is kept until this ends: %s", res.DeferredFor)
	}
	return cmdutil.CheckAction(&res.Action)
}

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

// VerifyOptions are the inputs of `backups verify`.
type VerifyOptions struct {
	IO       *output.IOStreams
	Provider func(context.Context) (provider.Verifier, error)
	Printer  func() *output.Printer

	IDs []int // empty checks the whole repository
}

// NewCmdVerify returns `backups verify`.
func NewCmdVerify(f *cmdutil.Factory, runF func(*VerifyOptions) error) *cobra.Command {
	opts := &VerifyOptions{IO: f.IOStreams, Provider: cmdutil.Capability[provider.Verifier](f, "backups verify"), Printer: f.Printer}
	cmd := &cobra.Command{
		Use:   "verify [<id>...]",
		Short: "Check the integrity of backups",
		Long: `Re-read, decompress and re-hash every chunk of the given backups, or of the
whole repository, and print each backup's verdict. Exits with code 7 if any
backup or object is damaged (see docs/exit-codes.md).

Engine only: DigitalOcean verifies its images itself.`,
		Example: `  dropback backups verify
  dropback backups verify 41 42
  dropback backups verify -o json | jq '.backups[] | select(.status == "damaged")'`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ids, err := cmdutil.ParseIDs("backup ID", args)
			if err != nil {
				return err
			}
			opts.IDs = ids
			if runF != nil {
				return runF(opts)
			}
			return runVerify(cmd.Context(), opts)
		},
	}
	cmdutil.DescribeColumns(cmd, output.Infos(display.VerifyColumns))
	return cmd
}

func runVerify(ctx context.Context, opts *VerifyOptions) error {
	pr := opts.Printer()
	if err := pr.Check(output.Infos(display.VerifyColumns)); err != nil {
		return err
	}
	p, err := opts.Provider(ctx)
	if err != nil {
		return err
	}
	counter, stop := pr.Progress()
	report, err := p.VerifyBackups(ctx, opts.IDs, provider.VerifyOptions{Progress: counter})
	stop()
	if err != nil {
		return fmt.Errorf("verify backups: %w", err)
	}
	if err := pr.Print(display.Verify(report)); err != nil {
		return err
	}
	for _, n := range report.Notices {
		pr.Noticef("%s", n)
	}
	if !pr.JSON {
		for _, problem := range report.Problems {
			fmt.Fprintf(opts.IO.ErrOut, "problem: %s\n", problem)
		}
	}
	return verdict(report)
}

// verdict is the error of a report that found damage.
func verdict(r *provider.VerifyReport) error {
	damaged := 0
	for _, b := range r.Backups {
		if b.Status != "ok" {
			damaged++
		}
	}
	switch {
	case damaged > 0:
		return fmt.Errorf("verify: %d of %s damaged: %w", damaged, cmdutil.Plural(len(r.Backups), "backup", "backups"), provider.ErrCorrupt)
	case len(r.Problems) > 0:
		return fmt.Errorf("verify: %s found: %w", cmdutil.Plural(len(r.Problems), "problem", "problems"), provider.ErrCorrupt)
	}
	return nil
}

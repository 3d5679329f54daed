// Package run holds `run --due`: one scheduling pass, for cron, systemd
// timers and CI.
package run

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dropback/dropback/commands/cmdutil"
	"github.com/dropback/dropback/commands/display"
	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

// RunOptions are the inputs of `run`.
type RunOptions struct {
	IO       *output.IOStreams
	Provider func(context.Context) (provider.Scheduler, error)
	Printer  func() *output.Printer

	Due bool
}

// NewCmdRun returns `run`.
func NewCmdRun(f *cmdutil.Factory, runF func(*RunOptions) error) *cobra.Command {
	opts := &RunOptions{IO: f.IOStreams, Provider: cmdutil.Capability[provider.Scheduler](f, "run --due"), Printer: f.Printer}
	cmd := &cobra.Command{
		Use:   "run --due",
		Short: "Take the backups that are due, apply retention, collect garbage",
		Long: `Make one scheduling pass: take every backup whose window has come (a window
missed while the machine was off is made up once), delete the backups that
retention no longer keeps, and collect garbage when it is worthwhile. This is
what a cron job, a systemd timer or a CI job calls; ` + "`dropback agent`" + ` does the same
in a loop.

Exits with code 3 when some hosts were backed up and others failed.`,
		Example: `  dropback run --due
  dropback run --due -o json
  # crontab: every 15 minutes
  */15 * * * * dropback run --due -q`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !opts.Due {
				return cmdutil.FlagErrorf("run: pass --due to run the backups that are due")
			}
			if runF != nil {
				return runF(opts)
			}
			return runRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Due, "due", false, "run what is due now (required)")
	cmdutil.DescribeColumns(cmd, output.Infos(display.BackupColumns))
	return cmd
}

func runRun(ctx context.Context, opts *RunOptions) error {
	pr := opts.Printer()
	if err := pr.Check(output.Infos(display.BackupColumns)); err != nil {
		return err
	}
	p, err := opts.Provider(ctx)
	if err != nil {
		return err
	}
	counter, stop := pr.Progress()
	report, err := p.RunDue(ctx, provider.RunOptions{Progress: counter})
	stop()
	if err != nil {
		return fmt.Errorf("run due backups: %w", err)
	}
	if err := pr.Print(display.Run(report)); err != nil {
		return err
	}
	pr.Noticef("%s", Summary(report))
	for _, sk := range report.Skipped {
		pr.Noticef("%s", Skip(sk))
	}
	for _, e := range report.Errors {
		fmt.Fprintf(opts.IO.ErrOut, "error: %s\n", e)
	}
	return Outcome(report)
}

// Skip says in one line why a pass left something alone.
func Skip(s provider.Skipped) string {
	if s.HostName == "" {
		return s.Reason
	}
	return s.HostName + ": " + s.Reason
}

// Summary is a one-line account of a pass.
func Summary(r *provider.RunReport) string {
	s := fmt.Sprintf("%s taken, %s expired",
		cmdutil.Plural(len(r.Backups), "backup", "backups"), cmdutil.Plural(len(r.Expired), "backup", "backups"))
	if r.GC != nil {
		s += fmt.Sprintf(", gc reclaimed %s", output.Bytes(r.GC.ReclaimedBytes))
	}
	if len(r.Errors) > 0 {
		s += ", " + cmdutil.Plural(len(r.Errors), "error", "errors")
	}
	return s
}

// Outcome is the error of a pass: nil when all went well, ErrPartial when
// some work was done and some failed, and a plain error when nothing was
// done, but one that matches provider.ErrAuth (exit 4) when the server
// refused the credentials or their writes: that fails every pass, not a
// host. A host's own failure (its disk gone) stays a plain error.
func Outcome(r *provider.RunReport) error {
	if len(r.Errors) == 0 {
		return nil
	}
	msg := fmt.Sprintf("run: %s; first: %s", cmdutil.Plural(len(r.Errors), "error", "errors"), r.Errors[0])
	if len(r.Backups) > 0 || len(r.Expired) > 0 || r.GC != nil {
		return fmt.Errorf("%s: %w", msg, cmdutil.ErrPartial)
	}
	var auth []error
	for _, err := range r.Failures {
		if errors.Is(err, provider.ErrAuth) {
			auth = append(auth, err)
		}
	}
	return &passError{msg: msg, errs: auth}
}

// passError is a pass that did nothing but fail: it reads as msg and
// matches each of errs.
type passError struct {
	msg  string
	errs []error
}

func (e *passError) Error() string   { return e.msg }
func (e *passError) Unwrap() []error { return e.errs }

// Package agent holds `agent`: the scheduling pass of `run --due`, in a loop
// until SIGTERM or SIGINT.
package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/dropback/dropback/commands/cmdutil"
	"github.com/dropback/dropback/commands/display"
	"github.com/dropback/dropback/commands/run"
	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

// AgentOptions are the inputs of `agent`.
type AgentOptions struct {
	IO       *output.IOStreams
	Provider func(context.Context) (scheduler, error)
	Printer  func() *output.Printer
	Now      func() time.Time

	Interval time.Duration
}

// NewCmdAgent returns `agent`.
func NewCmdAgent(f *cmdutil.Factory, runF func(*AgentOptions) error) *cobra.Command {
	opts := &AgentOptions{IO: f.IOStreams, Provider: cmdutil.Capability[scheduler](f, "agent"), Printer: f.Printer, Now: time.Now}
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run scheduled backups, retention and gc until stopped",
		Long: `Make a scheduling pass (see ` + "`dropback run --due`" + `) now and then every --interval,
until SIGTERM or SIGINT. On a signal it stops at once: a backup in flight is
left as garbage for gc, never as a broken backup. Passes never overlap.

Each pass is logged on stderr; with -o json each pass's report is also
written to stdout as one line of JSON.`,
		Example: `  dropback agent
  # as a systemd service
  ExecStart=/usr/local/bin/dropback agent --repo /srv/backups`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Interval <= 0 {
				return cmdutil.FlagErrorf("invalid --interval %s: must be positive", opts.Interval)
			}
			if runF != nil {
				return runF(opts)
			}
			return runAgent(cmd.Context(), opts)
		},
	}
	cmd.Flags().DurationVar(&opts.Interval, "interval", time.Minute, "time between passes")
	return cmd
}

func runAgent(ctx context.Context, opts *AgentOptions) error {
	p, err := opts.Provider(ctx)
	if err != nil {
		return err
	}
	pr := opts.Printer()
	pr.Noticef("%s agent started (context %s, a pass every %s)", stamp(opts.Now()), p.Context(), opts.Interval)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			pr.Noticef("%s agent stopped", stamp(opts.Now()))
			return nil
		case <-timer.C:
		}
		pass(ctx, p, pr, opts.Now)
		timer.Reset(opts.Interval)
	}
}

// pass runs one scheduling pass and logs it. Errors are logged, not
// returned: the agent keeps going.
func pass(ctx context.Context, p provider.Scheduler, pr *output.Printer, now func() time.Time) {
	report, err := p.RunDue(ctx, provider.RunOptions{})
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		fmt.Fprintf(pr.IO.ErrOut, "%s pass failed: %v\n", stamp(now()), err)
		return
	}
	if pr.JSON {
		if b, err := json.Marshal(display.Run(report).JSON()); err == nil {
			fmt.Fprintf(pr.IO.Out, "%s\n", b)
		}
	}
	pr.Noticef("%s pass: %s", stamp(now()), run.Summary(report))
	for _, e := range report.Errors {
		fmt.Fprintf(pr.IO.ErrOut, "%s error: %s\n", stamp(now()), e)
	}
}

// scheduler is what the agent needs: a context that runs its schedule.
type scheduler interface {
	provider.Provider
	provider.Scheduler
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

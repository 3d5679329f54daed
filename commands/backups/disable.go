package backups

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dropback/dropback/commands/cmdutil"
	"github.com/dropback/dropback/commands/display"
	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

// DisableOptions are the inputs of `backups disable`.
type DisableOptions struct {
	IO       *output.IOStreams
	Provider func(context.Context) (disabler, error)
	Printer  func() *output.Printer

	Host        string
	KeepBackups bool
	Force       bool // delete the existing backups
	Wait        cmdutil.WaitFlags
}

// NewCmdDisable returns `backups disable`.
func NewCmdDisable(f *cmdutil.Factory, runF func(*DisableOptions) error) *cobra.Command {
	opts := &DisableOptions{IO: f.IOStreams, Provider: cmdutil.Capability[disabler](f, "backups disable"), Printer: f.Printer}
	cmd := &cobra.Command{
		Use:   "disable <host>",
		Short: "Turn off scheduled backups of a host",
		Long: `Turn off scheduled backups of a host. What happens to its existing backups is
never silent: on a terminal you are asked; otherwise pass --keep-backups to keep
them or --force to delete them. Snapshots are always kept.`,
		Example: `  dropback backups disable web-1
  dropback backups disable web-1 --keep-backups
  dropback backups disable web-1 --force`,
		Args: cmdutil.ExactArgs(1, "the host (name or ID)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Host = args[0]
			if err := cmdutil.MutuallyExclusive(cmd, "keep-backups", "force"); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return runDisable(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.KeepBackups, "keep-backups", false, "keep the host's existing backups")
	cmdutil.AddForceFlag(cmd, &opts.Force, "delete the host's existing backups without asking")
	cmdutil.AddWaitFlags(cmd, f, &opts.Wait)
	cmdutil.DescribeColumns(cmd, output.Infos(display.ActionColumns))
	return cmd
}

func runDisable(ctx context.Context, opts *DisableOptions) error {
	pr := opts.Printer()
	if err := pr.Check(output.Infos(display.ActionColumns)); err != nil {
		return err
	}
	p, err := opts.Provider(ctx)
	if err != nil {
		return err
	}
	dopts, err := disableChoice(opts)
	if err != nil {
		return err
	}
	var a *provider.Action
	if dopts.KeepBackups {
		keeper, kerr := cmdutil.As[provider.BackupKeeper](p, "backups disable --keep-backups")
		if kerr != nil {
			return kerr
		}
		a, err = keeper.DisableKeepingBackups(ctx, opts.Host)
	} else {
		a, err = p.DisableBackups(ctx, opts.Host, dopts)
	}
	if err != nil {
		return fmt.Errorf("disable backups of host %s: %w", cmdutil.Short(opts.Host), err)
	}
	return cmdutil.FinishAction(ctx, p, pr, a, opts.Wait)
}

// disableChoice decides what happens to existing backups: from the flags, or
// by asking on a terminal.
func disableChoice(opts *DisableOptions) (provider.DisableOptions, error) {
	switch {
	case opts.KeepBackups:
		return provider.DisableOptions{KeepBackups: true}, nil
	case opts.Force:
		return provider.DisableOptions{DeleteBackups: true}, nil
	case !opts.IO.CanPrompt():
		return provider.DisableOptions{}, fmt.Errorf(
			"disable backups of host %s: say what happens to its backups: pass --keep-backups to keep them or --force to delete them: %w",
			opts.Host, provider.ErrConfirm)
	}
	answer, err := opts.IO.Prompt(fmt.Sprintf(
		"Disable backups of host %s. Keep or delete its existing backups? [keep/delete/cancel]: ", opts.Host))
	if err != nil {
		return provider.DisableOptions{}, err
	}
	switch strings.ToLower(answer) {
	case "k", "keep":
		return provider.DisableOptions{KeepBackups: true}, nil
	case "d", "delete":
		return provider.DisableOptions{DeleteBackups: true}, nil
	}
	return provider.DisableOptions{}, fmt.Errorf("disable backups of host %s: cancelled, nothing changed: %w",
		cmdutil.Short(opts.Host), provider.ErrConfirm)
}

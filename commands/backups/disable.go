package backups

import (
	"context"
	"errors"
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
	Tag         string // every host with this tag, instead of Host
	KeepBackups bool
	Force       bool // delete the existing backups
	Wait        cmdutil.WaitFlags
}

// NewCmdDisable returns `backups disable`.
func NewCmdDisable(f *cmdutil.Factory, runF func(*DisableOptions) error) *cobra.Command {
	opts := &DisableOptions{IO: f.IOStreams, Provider: cmdutil.Capability[disabler](f, "backups disable"), Printer: f.Printer}
	cmd := &cobra.Command{
		Use:   "disable {<host> | --tag TAG}",
		Short: "Turn off scheduled backups of a host",
		Long: `Turn off scheduled backups of a host, or of every Droplet with a tag (--tag,
DigitalOcean only, one request as doctl's disable_backups by tag). A host with
no backups is turned off at once. What happens to existing backups is never
silent: on a terminal you are asked; otherwise pass --force to delete them, or,
on the engine, --keep-backups to keep them. DigitalOcean deletes a Droplet's
backups when they are disabled: convert those you want to keep first with
` + "`dropback backups convert <id>`" + `. Snapshots are always kept.`,
		Example: `  dropback backups disable web-1
  dropback backups disable web-1 --keep-backups
  dropback backups disable web-1 --force
  dropback --context digitalocean backups disable --tag staging --force --wait`,
		Args:              cmdutil.RangeArgs(0, 1, "the host (name or ID), or --tag"),
		ValidArgsFunction: cmdutil.CompleteHosts(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Host = args[0]
			}
			if err := hostOrTag(opts.Host, opts.Tag); err != nil {
				return err
			}
			if err := cmdutil.MutuallyExclusive(cmd, "keep-backups", "force"); err != nil {
				return err
			}
			if err := cmdutil.MutuallyExclusive(cmd, "keep-backups", "tag"); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return runDisable(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Tag, "tag", "", "every Droplet with this `tag` (DigitalOcean only)")
	cmd.Flags().BoolVar(&opts.KeepBackups, "keep-backups", false, "keep the host's existing backups (engine only)")
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
	if opts.Tag != "" {
		return disableByTag(ctx, p, pr, opts)
	}
	what := "disable backups of host " + cmdutil.Short(opts.Host)
	var a *provider.Action
	if opts.KeepBackups {
		keeper, kerr := cmdutil.As[provider.BackupKeeper](p, "backups disable --keep-backups")
		if kerr != nil {
			return kerr
		}
		a, err = keeper.DisableKeepingBackups(ctx, opts.Host)
	} else {
		a, err = disable(ctx, p, opts)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return cmdutil.FinishAction(ctx, p, pr, a, opts.Wait)
}

// disable turns backups off, deleting the host's backups with --force, and
// otherwise as disableChoice decides.
func disable(ctx context.Context, p disabler, opts *DisableOptions) (*provider.Action, error) {
	if opts.Force {
		return p.DisableBackups(ctx, opts.Host, provider.DisableOptions{DeleteBackups: true})
	}
	keeper, canKeep := p.(provider.BackupKeeper)
	n, err := backupCount(ctx, p, opts.Host)
	if err != nil && !errors.Is(err, provider.ErrCorrupt) {
		// A host that does not exist, or a context that cannot answer,
		// is said before anything is asked.
		return nil, err
	}
	if err == nil && n == 0 {
		// Nothing to keep or delete: the context itself refuses, should a
		// backup appear meanwhile.
		if canKeep {
			return keeper.DisableKeepingBackups(ctx, opts.Host)
		}
		return p.DisableBackups(ctx, opts.Host, provider.DisableOptions{})
	}
	keep, err := disableChoice(opts, n, canKeep)
	if err != nil {
		return nil, err
	}
	if keep {
		return keeper.DisableKeepingBackups(ctx, opts.Host)
	}
	return p.DisableBackups(ctx, opts.Host, provider.DisableOptions{DeleteBackups: true})
}

// backupCount is how many backups the host has; an error when they cannot
// all be read.
func backupCount(ctx context.Context, p disabler, host string) (int, error) {
	bs, err := p.ListBackups(ctx, host)
	if err != nil {
		return -1, err
	}
	return len(bs), nil
}

// disableChoice decides, for a host with n backups (-1: unknown), whether to
// keep them (true) or delete them (false), by asking on a terminal. It
// offers to keep them only where the context can.
func disableChoice(opts *DisableOptions, n int, canKeep bool) (bool, error) {
	host := cmdutil.Short(opts.Host)
	these := "its backups"
	if n > 0 {
		these = "its " + cmdutil.Plural(n, "backup", "backups")
	}
	if !opts.IO.CanPrompt() {
		if canKeep {
			return false, fmt.Errorf("say what happens to %s: pass --keep-backups to keep them or --force to delete them: %w",
				these, provider.ErrConfirm)
		}
		return false, fmt.Errorf("DigitalOcean deletes %s when backups are disabled: convert any you want to keep with `dropback backups convert <id>`, then pass --force: %w",
			these, provider.ErrConfirm)
	}
	if !canKeep {
		question := fmt.Sprintf("Disable backups of host %s? DigitalOcean deletes %s.", host, these)
		return false, cmdutil.ConfirmDestructive(opts.IO, false, question, "disable backups of host "+host)
	}
	answer, err := opts.IO.Prompt(fmt.Sprintf(
		"Disable backups of host %s. Keep or delete %s? [keep/delete/cancel]: ", host, these))
	if err != nil {
		return false, err
	}
	switch strings.ToLower(answer) {
	case "k", "keep":
		return true, nil
	case "d", "delete":
		return false, nil
	}
	return false, fmt.Errorf("cancelled, nothing changed: %w", provider.ErrConfirm)
}

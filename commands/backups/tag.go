package backups

import (
	"context"
	"errors"
	"fmt"

	"github.com/dropback/dropback/commands/cmdutil"
	"github.com/dropback/dropback/commands/display"
	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

// hostOrTag checks that a verb names exactly one of a host and a tag.
func hostOrTag(host, tag string) error {
	switch {
	case host == "" && tag == "":
		return cmdutil.FlagErrorf("name the host (name or ID), or every Droplet with a tag with --tag")
	case host != "" && tag != "":
		return cmdutil.FlagErrorf("name a host or give --tag, not both")
	}
	return nil
}

// enableByTag enables backups of every Droplet tagged opts.Tag.
func enableByTag(ctx context.Context, p enabler, pr *output.Printer, opts *EnableOptions) error {
	tagger, err := cmdutil.As[provider.TagPolicies](p, "backups enable --tag")
	if err != nil {
		return err
	}
	as, err := tagger.EnableBackupsByTag(ctx, opts.Tag)
	if err != nil {
		return fmt.Errorf("enable backups of the Droplets tagged %s: %w", cmdutil.Short(opts.Tag), err)
	}
	return finishActions(ctx, p, pr, as, opts.Wait)
}

// disableByTag disables backups of every Droplet tagged opts.Tag. When they
// have backups, it needs --force, or a yes on a terminal.
func disableByTag(ctx context.Context, p disabler, pr *output.Printer, opts *DisableOptions) error {
	tagger, err := cmdutil.As[provider.TagPolicies](p, "backups disable --tag")
	if err != nil {
		return err
	}
	what := "disable backups of the Droplets tagged " + cmdutil.Short(opts.Tag)
	as, err := tagger.DisableBackupsByTag(ctx, opts.Tag, provider.DisableOptions{DeleteBackups: opts.Force})
	if errors.Is(err, provider.ErrConfirm) && opts.IO.CanPrompt() {
		question := fmt.Sprintf("Disable backups of every Droplet tagged %s? DigitalOcean deletes their backups.", cmdutil.Short(opts.Tag))
		if cerr := cmdutil.ConfirmDestructive(opts.IO, false, question, what); cerr != nil {
			return cerr
		}
		as, err = tagger.DisableBackupsByTag(ctx, opts.Tag, provider.DisableOptions{DeleteBackups: true})
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return finishActions(ctx, p, pr, as, opts.Wait)
}

// finishActions ends a verb that started several actions: with --wait it
// waits for each; it prints them all, and fails if any failed.
func finishActions(ctx context.Context, p provider.Actions, pr *output.Printer, as []provider.Action, w cmdutil.WaitFlags) error {
	var errs []error
	running := 0
	for i := range as {
		a, err := cmdutil.Settle(ctx, p, pr, &as[i], w)
		as[i] = *a
		errs = append(errs, err)
		if a.Status == provider.StatusInProgress {
			running++
		}
	}
	if !w.Wait && running > 0 {
		pr.Noticef("%s in progress: follow them with `dropback actions get <id>`, or pass --wait", cmdutil.Plural(running, "action is", "actions are"))
	}
	if err := pr.Print(display.Actions(as)); err != nil {
		return err
	}
	return errors.Join(errs...)
}

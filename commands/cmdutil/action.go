package cmdutil

import (
	"context"

	"github.com/dropback/dropback/commands/display"
	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

// FinishAction ends an asynchronous verb: with --wait it waits for the
// action (see Waiter); without, it says how to follow it. Either way it
// prints the last state of the action, and returns an error if the action
// errored, the wait timed out or was interrupted.
func FinishAction(ctx context.Context, p provider.Actions, pr *output.Printer, a *provider.Action, w WaitFlags) error {
	if a == nil {
		return nil
	}
	a, err := Settle(ctx, p, pr, a, w)
	if !w.Wait && a.Status == provider.StatusInProgress {
		pr.Noticef("Action %d (%s) is in progress: follow it with `dropback actions get %d`, or pass --wait", a.ID, a.Type, a.ID)
	}
	if perr := pr.Print(display.Action(a)); perr != nil && err == nil {
		err = perr
	}
	return err
}

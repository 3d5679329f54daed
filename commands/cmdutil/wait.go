package cmdutil

import (
	"context"
	"fmt"
	"time"

	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

// DefaultPollInterval is how often --wait asks for an action's status.
const DefaultPollInterval = 3 * time.Second

// Waiter polls an action until it is completed or errored.
type Waiter struct {
	Actions provider.Actions
	Printer *output.Printer
	// Timeout bounds the whole wait; 0 means no bound.
	Timeout time.Duration
	// Interval is the time between polls; 0 means DefaultPollInterval.
	Interval time.Duration
}

// Wait polls a until its status is completed (nil error) or errored (an
// error wrapping provider.ErrActionFailed that names the action). It gives
// up after Timeout with an error wrapping provider.ErrTimeout, and returns
// at once when ctx is cancelled (Ctrl-C). A spinner shows on a terminal. It
// always returns the last state of the action it saw.
func (w *Waiter) Wait(ctx context.Context, a *provider.Action) (*provider.Action, error) {
	if a == nil || a.Status == provider.StatusCompleted {
		return a, nil
	}
	if a.ID < 1 {
		return a, fmt.Errorf("wait for the %s action: the API gave no action to follow", a.Type)
	}
	interval := w.Interval
	if interval <= 0 {
		interval = DefaultPollInterval
	}
	wctx, cancel := ctx, context.CancelFunc(func() {})
	if w.Timeout > 0 {
		wctx, cancel = context.WithTimeout(ctx, w.Timeout)
	}
	defer cancel()
	stop := w.Printer.StartSpinner(fmt.Sprintf("Waiting for action %d (%s)", a.ID, a.Type))
	defer stop()

	cur := a
	for cur.Status != provider.StatusCompleted {
		if cur.Status == provider.StatusErrored {
			return cur, actionFailed(cur)
		}
		select {
		case <-wctx.Done():
			return cur, w.stopped(ctx, cur)
		case <-time.After(interval):
		}
		next, err := w.Actions.GetAction(wctx, cur.ID)
		if err != nil {
			if wctx.Err() != nil {
				return cur, w.stopped(ctx, cur)
			}
			return cur, fmt.Errorf("wait for action %d (%s): %w", cur.ID, cur.Type, err)
		}
		cur = next
	}
	return cur, nil
}

func (w *Waiter) stopped(parent context.Context, a *provider.Action) error {
	if err := parent.Err(); err != nil {
		// Only the waiting stops: the action goes on where it runs.
		return WithLeft(fmt.Errorf("wait for action %d (%s): %w", a.ID, a.Type, err),
			fmt.Sprintf("action %d (%s) goes on; follow it with `dropback actions get %d --wait`", a.ID, a.Type, a.ID))
	}
	return fmt.Errorf("action %d (%s) still %s after --wait-timeout %s: %w",
		a.ID, a.Type, a.Status, w.Timeout, provider.ErrTimeout)
}

func actionFailed(a *provider.Action) error {
	msg := fmt.Sprintf("action %d (%s) errored", a.ID, a.Type)
	if a.Error != "" {
		msg += ": " + a.Error
	}
	return fmt.Errorf("%s: %w", msg, provider.ErrActionFailed)
}

// Settle brings an action to the state a verb reports: with --wait it waits
// for it (see Waiter.Wait); without, it returns it as it is, with an error if
// it has already errored (see CheckAction).
func Settle(ctx context.Context, p provider.Actions, pr *output.Printer, a *provider.Action, w WaitFlags) (*provider.Action, error) {
	if !w.Wait {
		return a, CheckAction(a)
	}
	waiter := &Waiter{Actions: p, Printer: pr, Timeout: w.Timeout, Interval: w.Interval}
	return waiter.Wait(ctx, a)
}

// CheckAction returns the error of an action that has already errored, so
// that verbs without --wait still exit non-zero for a failed engine job.
func CheckAction(a *provider.Action) error {
	if a != nil && a.Status == provider.StatusErrored {
		return actionFailed(a)
	}
	return nil
}

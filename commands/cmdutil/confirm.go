package cmdutil

import (
	"errors"
	"fmt"

	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

// ConfirmDestructive lets a destructive verb go ahead: with --force at once;
// on a terminal when the user answers yes to question; otherwise (no
// terminal, or "no") it returns an error wrapping provider.ErrConfirm that
// says to pass --force. what names the action for that message, e.g.
// "restore backup 42 over host web-1".
func ConfirmDestructive(ios *output.IOStreams, force bool, question, what string) error {
	if force {
		return nil
	}
	ok, err := ios.Confirm(question)
	if errors.Is(err, output.ErrNoTerminal) {
		return fmt.Errorf("%s needs confirmation: pass --force to go ahead without a terminal: %w", what, provider.ErrConfirm)
	}
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%s: not confirmed, nothing changed: %w", what, provider.ErrConfirm)
	}
	return nil
}

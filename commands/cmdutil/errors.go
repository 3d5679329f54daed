package cmdutil

import (
	"context"
	"errors"
	"fmt"

	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

// Exit codes, documented in docs/exit-codes.md (a test checks that the two
// agree).
const (
	ExitOK          = 0
	ExitError       = 1
	ExitUsage       = 2   // a bad flag, argument or value
	ExitPartial     = 3   // some of the work was done, some failed
	ExitAuth        = 4   // no credentials, or refused
	ExitTimeout     = 5   // --wait gave up
	ExitDeclined    = 6   // a destructive verb was not confirmed
	ExitDamaged     = 7   // the repository is damaged
	ExitNoRepo      = 10  // no repository there, or not initialised
	ExitLocked      = 11  // another process holds the repository's gc lease
	ExitPassword    = 12  // no password for an encrypted repository, or a wrong one
	ExitFormat      = 13  // not a dropback repository, or a newer format
	ExitInUse       = 14  // a disk is in use by a running guest
	ExitInterrupted = 130 // SIGINT or SIGTERM
)

// Sentinels of the command layer.
var (
	// ErrPartial means some of the work was done and some failed.
	ErrPartial = errors.New("partly failed")
	// ErrInterrupted means a signal stopped the command.
	ErrInterrupted = errors.New("interrupted")
)

// FlagError is a usage error: a bad flag, a bad argument, a missing one.
type FlagError struct{ err error }

// FlagErrorf returns a usage error.
func FlagErrorf(format string, args ...any) error {
	return &FlagError{err: fmt.Errorf(format, args...)}
}

func (e *FlagError) Error() string { return e.err.Error() }
func (e *FlagError) Unwrap() error { return e.err }

// Interrupted marks err as the result of a signal.
func Interrupted(err error) error { return &interruptedError{err: err} }

type interruptedError struct{ err error }

// Error is "interrupted", and what the command left, when it said (see
// WithLeft): the one line a user reads after Ctrl-C.
func (e *interruptedError) Error() string {
	var l *leftError
	if errors.As(e.err, &l) {
		return "interrupted: " + l.left
	}
	return "interrupted"
}

// WithLeft adds to err, a command's failure, what it left behind and what
// finishes or reclaims it, in one sentence: "/srv/web-1.img is partly
// restored; finish it with `dropback backups restore web-1 42 --force`".
// After an interruption the sentence is all the error says; otherwise it
// follows the error's own message.
func WithLeft(err error, left string) error {
	if err == nil || left == "" {
		return err
	}
	return &leftError{err: err, left: left}
}

type leftError struct {
	err  error
	left string
}

func (e *leftError) Error() string          { return e.err.Error() + "; " + e.left }
func (e *leftError) Unwrap() error          { return e.err }
func (e *interruptedError) Unwrap() []error { return []error{e.err, ErrInterrupted} }

// ExitCode decides the process exit code of a command's error. It is the one
// place that does. An error that matches several sentinels takes the first
// code in this order: interrupted, declined, usage, auth, password, timeout,
// the repository's state (missing, locked, format), a disk in use, damaged,
// partial.
func ExitCode(err error) int {
	var flagErr *FlagError
	var formatErr *output.FormatError
	var templateErr *output.TemplateError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, ErrInterrupted):
		return ExitInterrupted
	case errors.Is(err, provider.ErrConfirm):
		return ExitDeclined
	case errors.As(err, &flagErr), errors.As(err, &formatErr), errors.As(err, &templateErr), errors.Is(err, provider.ErrInvalid):
		return ExitUsage
	case errors.Is(err, provider.ErrAuth):
		return ExitAuth
	case errors.Is(err, provider.ErrPassword):
		return ExitPassword
	case errors.Is(err, provider.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return ExitTimeout
	case errors.Is(err, provider.ErrNoRepo):
		return ExitNoRepo
	case errors.Is(err, provider.ErrLocked):
		return ExitLocked
	case errors.Is(err, provider.ErrFormat):
		return ExitFormat
	case errors.Is(err, provider.ErrInUse):
		return ExitInUse
	case errors.Is(err, provider.ErrCorrupt):
		return ExitDamaged
	case errors.Is(err, ErrPartial):
		return ExitPartial
	default:
		return ExitError
	}
}

package cmdutil

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

func TestExitCodeMapping(t *testing.T) {
	tests := []struct {
		err  error
		code int
	}{
		{nil, 0},
		{&output.FormatError{Key: "x"}, 2},
		{fmt.Errorf("print: %w", &output.FormatError{Key: "x"}), 2},
		{errors.New("boom"), 1},
		{fmt.Errorf("x: %w", provider.ErrActionFailed), 1},
		{fmt.Errorf("x: %w", provider.ErrCorrupt), 7},
		{fmt.Errorf("x: %w", provider.ErrNoRepo), 10},
		{fmt.Errorf("x: %w", provider.ErrLocked), 11},
		{fmt.Errorf("x: %w", provider.ErrFormat), 13},
		{fmt.Errorf("x: %w", provider.ErrExists), 1},
		{fmt.Errorf("x: %w", provider.ErrNotFound), 1},
		{FlagErrorf("bad flag"), 2},
		{fmt.Errorf("x: %w", provider.ErrInvalid), 2},
		{fmt.Errorf("x: %w", provider.ErrConfirm), 6},
		{errors.Join(provider.ErrConfirm, provider.ErrInvalid), 6},
		{errors.Join(provider.ErrCorrupt, ErrPartial), 7},
		{errors.Join(provider.ErrNoRepo, provider.ErrCorrupt), 10},
		{fmt.Errorf("x: %w", ErrPartial), 3},
		{fmt.Errorf("x: %w", provider.ErrAuth), 4},
		{fmt.Errorf("x: %w", provider.ErrTimeout), 5},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), 5},
		{Interrupted(context.Canceled), 130},
		{Interrupted(fmt.Errorf("x: %w", provider.ErrAuth)), 130},
	}
	for _, tt := range tests {
		if got := ExitCode(tt.err); got != tt.code {
			t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.code)
		}
	}
}

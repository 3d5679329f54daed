package local

import (
	"errors"
	"fmt"
	"testing"

	"github.com/dropback/dropback/pkg/engine"
	"github.com/dropback/dropback/pkg/provider"
)

// TestMapErr checks that each engine error reaches the commands as the
// provider sentinel its exit code is decided by (docs/exit-codes.md), with
// its message kept.
func TestMapErr(t *testing.T) {
	tests := []struct {
		err  error
		want error
	}{
		{fmt.Errorf("%w at /r", engine.ErrNotInitialised), provider.ErrNoRepo},
		{fmt.Errorf("open: %w", &engine.LockedError{Holder: "gc by b (PID 7) since 10:00"}), provider.ErrLocked},
		{fmt.Errorf("%w: /r is not a dropback repository", engine.ErrFormat), provider.ErrFormat},
		{fmt.Errorf("%w: pack 1f is missing", engine.ErrCorrupt), provider.ErrCorrupt},
		{fmt.Errorf("%w: bad host name", engine.ErrInvalid), provider.ErrInvalid},
		{fmt.Errorf("%w: backup 9", engine.ErrNotFound), provider.ErrNotFound},
		{engine.ErrInitialised, provider.ErrExists},
	}
	for _, tt := range tests {
		got := mapErr(tt.err)
		if !errors.Is(got, tt.want) || !errors.Is(got, tt.err) {
			t.Errorf("mapErr(%v) = %v, want it to match %v and the engine error", tt.err, got, tt.want)
		}
		if tt.want != provider.ErrNoRepo && got.Error() != tt.err.Error() {
			t.Errorf("mapErr(%v) reads %q", tt.err, got.Error())
		}
	}
	if err := errors.New("disk full"); mapErr(err) != err {
		t.Error("an error of no kind is not passed through")
	}
}

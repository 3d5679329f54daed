package local

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/dropback/dropback/pkg/engine"
	"github.com/dropback/dropback/pkg/provider"
)

// DROPBACK_MAX_MEMORY takes sizes as people write them, and a refusal by
// the budget names the variable and what to set it above.
func TestMaxMemoryFromTheEnvironment(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == MaxMemoryEnv {
				return v
			}
			return ""
		}
	}
	for v, want := range map[string]int64{"": 0, "512MiB": 512 << 20, "2GiB": 2 << 30, "3g": 3 << 30} {
		if got, err := maxMemory(env(v)); err != nil || got != want {
			t.Errorf("%s=%q: %d, %v; want %d", MaxMemoryEnv, v, got, err, want)
		}
	}
	if _, err := maxMemory(env("plenty")); !errors.Is(err, provider.ErrInvalid) || !strings.Contains(err.Error(), MaxMemoryEnv) {
		t.Errorf("a bad value: %v, want a usage error naming the variable", err)
	}
	err := mapErr(fmt.Errorf("restore backup 7: %w", &engine.MemoryError{What: "the image index of disk vda of backup 7", Need: 4 << 30, Held: 1 << 30, Limit: 2 << 30}))
	if !errors.Is(err, engine.ErrMemory) || !strings.HasSuffix(err.Error(), "; to allow it, set DROPBACK_MAX_MEMORY above 5 GiB") ||
		!strings.Contains(err.Error(), "disk vda of backup 7 would take 4 GiB of memory, over the memory budget of 2 GiB") {
		t.Errorf("a refusal reads %q", err)
	}
}

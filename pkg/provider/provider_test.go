package provider

import (
	"errors"
	"testing"
)

func TestErrorfReadsAsItsMessageAndMatchesBoth(t *testing.T) {
	cause := errors.New("disk /x is a directory")
	err := Errorf(ErrInvalid, "add host web-1: %w", cause)
	if got := err.Error(); got != "add host web-1: disk /x is a directory" {
		t.Fatalf("message %q", got)
	}
	if !errors.Is(err, ErrInvalid) || !errors.Is(err, cause) {
		t.Fatal("Errorf must match its sentinel and the error it wraps")
	}
	if errors.Is(Errorf(ErrNotFound, "no host named %q", "x"), ErrInvalid) {
		t.Fatal("Errorf matched a sentinel it was not given")
	}
}

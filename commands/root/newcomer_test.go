package root

import (
	"strings"
	"testing"
)

// TestVersionFlag: --version is accepted, as most tools accept it, and
// prints the version on stdout.
func TestVersionFlag(t *testing.T) {
	c := newCLI(t)
	r := c.run(t, "--version")
	wantCode(t, r, 0)
	if r.out != "dropback 1.2.3\n" || r.err != "" {
		t.Fatalf("--version: stdout %q, stderr %q", r.out, r.err)
	}
}

// TestNoHeaderOnKeyValueOutput: the labels of a key-value view are its
// header, so --no-header leaves the values alone, one a line, in the order
// --format names them.
func TestNoHeaderOnKeyValueOutput(t *testing.T) {
	c := newCLI(t)
	r := c.run(t, "repo", "stats", "--no-header")
	wantCode(t, r, 0)
	for _, label := range []string{"Location", "Hosts", "Dedup Ratio", "Stored"} {
		if strings.Contains(r.out, label) {
			t.Fatalf("repo stats --no-header prints the label %q:\n%s", label, r.out)
		}
	}
	with := c.run(t, "repo", "stats")
	if got, want := strings.Count(r.out, "\n"), strings.Count(with.out, "\n"); got != want || got == 0 {
		t.Fatalf("--no-header prints %d lines, without it %d", got, want)
	}
	r = c.run(t, "repo", "stats", "--no-header", "--format", "Hosts,Backups")
	wantCode(t, r, 0)
	if fields := strings.Fields(r.out); len(fields) != 2 || strings.Count(r.out, "\n") != 2 {
		t.Fatalf("repo stats --no-header --format Hosts,Backups: %q, want two values on two lines", r.out)
	}
}

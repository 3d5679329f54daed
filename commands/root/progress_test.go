package root

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/dropback/dropback/pkg/provider"
)

// TestProgressOnlyOnATerminal runs each verb that shows progress on a
// terminal of 60 and 120 columns: stderr holds one bar line, redrawn in
// place, never as wide as the terminal, ending at 100%; stdout is the same
// as without a terminal. In a pipe, with -o json or -q, no bar is drawn.
func TestProgressOnlyOnATerminal(t *testing.T) {
	verbs := []struct {
		phase string
		args  []string
	}{
		{"backup", []string{"backups", "create", "web-1"}},
		{"restore", []string{"backups", "restore", "web-1", "latest", "--to", "/tmp/x"}},
		{"verify", []string{"backups", "verify"}},
	}
	for _, v := range verbs {
		verb := v.args
		t.Run(verb[1], func(t *testing.T) {
			for _, width := range []int{60, 120} {
				c := newCLI(t)
				c.tty, c.width = true, width
				r := c.run(t, verb...)
				wantCode(t, r, 0)
				stderr := r.err
				if v.phase == "backup" {
					// The bar, then the backup's summary on a line of its own.
					bar, summary, _ := strings.Cut(stderr, "\n")
					want := "Read 768.0 MiB, new 60.0 MiB, stored 21.0 MiB in 2.0s (384.0 MiB/s)\n"
					if width == 60 { // the speed goes first, to fit
						want = "Read 768.0 MiB, new 60.0 MiB, stored 21.0 MiB in 2.0s\n"
					}
					if summary != want {
						t.Fatalf("width %d: no summary after the bar: %q", width, stderr)
					}
					stderr = bar + "\n"
				}
				line, ok := strings.CutSuffix(stderr, "\n")
				if !ok || strings.Contains(line, "\n") || !strings.HasPrefix(line, "\r") {
					t.Fatalf("width %d: stderr is not one redrawn line: %q", width, r.err)
				}
				draws := strings.Split(line, "\r")[1:]
				for _, d := range draws {
					d, ok := strings.CutSuffix(d, "\x1b[K")
					if !ok || utf8.RuneCountInString(d) >= width || !strings.HasPrefix(d, v.phase) {
						t.Fatalf("width %d: redraw %q does not fit or does not clear the line", width, d)
					}
				}
				if last := draws[len(draws)-1]; !strings.Contains(last, "] 100%") {
					t.Fatalf("width %d: the bar ends %q, not at 100%%", width, last)
				}
			}
			for _, extra := range [][]string{nil, {"-o", "json"}, {"-q"}} {
				c := newCLI(t)
				c.tty = extra != nil
				r := c.run(t, append(verb, extra...)...)
				if strings.Contains(r.err, "\r") || strings.Contains(r.err, "100%") {
					t.Fatalf("progress bar drawn (tty=%v, %v): %q", c.tty, extra, r.err)
				}
			}
		})
	}
}

// A backup named twice (by its ID and as latest, or its ID twice) is
// checked and listed once.
func TestVerifyChecksABackupNamedTwiceOnce(t *testing.T) {
	c := newCLI(t)
	wantCode(t, c.run(t, "backups", "verify", "101", "101"), 0)
	if got := c.calls("VerifyBackups"); len(got) != 1 || got[0] != "VerifyBackups [101]" {
		t.Fatalf("calls = %q", got)
	}
}

func TestVerifyDamagedExits7(t *testing.T) {
	c := newCLI(t)
	r := c.run(t, "backups", "verify")
	wantCode(t, r, 0)

	c = newCLI(t)
	c.fake.Verify = damagedReport()
	r = c.run(t, "backups", "verify", "101", "102")
	wantCode(t, r, 7)
	wantOneLineError(t, r, "1 of 2 backups damaged")
	if !strings.Contains(r.out, "damaged") || !strings.Contains(r.out, "chunk 7f3a") {
		t.Fatalf("verdict table missing: %q", r.out)
	}
	// The problems the table has no room for come before the error line,
	// as docs/exit-codes.md says.
	if want := "problem: pack 12: bad checksum\nError: "; !strings.HasPrefix(r.err, want) {
		t.Fatalf("stderr = %q, want it to start %q", r.err, want)
	}
	if got := c.calls("VerifyBackups"); len(got) != 1 || got[0] != "VerifyBackups [101 102]" {
		t.Fatalf("calls = %v", got)
	}

	// Problems without a damaged backup are damage too.
	c = newCLI(t)
	c.fake.Verify = &provider.VerifyReport{Backups: []provider.VerifiedBackup{{ID: 101, HostName: "web-1", Status: "ok"}},
		Problems: []string{"index segment 3f2a is unreadable"}}
	r = c.run(t, "backups", "verify", "-o", "json")
	wantCode(t, r, 7)
	wantOneLineError(t, r, "1 problem found")
}

func damagedReport() *provider.VerifyReport {
	return &provider.VerifyReport{
		Backups: []provider.VerifiedBackup{
			{ID: 101, HostName: "web-1", Status: "ok"},
			{ID: 102, HostName: "web-1", Status: "damaged", Problem: "chunk 7f3a fails its hash"},
		},
		Chunks: 200, Bytes: 200 << 20, Problems: []string{"pack 12: bad checksum"},
	}
}

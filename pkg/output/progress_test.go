package output

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/dropback/dropback/pkg/progress"
)

const mib = 1 << 20

func TestProgressLineFitsTheWidth(t *testing.T) {
	snaps := []progress.Snapshot{
		{Job: 1, Phase: "backup", Total: 4 << 30},
		{Job: 1, Phase: "backup", Total: 4 << 30, Read: 1 << 30, Skipped: 2 << 30},
		{Job: 1, Phase: "restore", Total: 999 << 40, Read: 1, Skipped: 5 << 40},
		{Job: 1, Phase: "verify", Total: 4 << 30, Read: 4 << 30},
		{Job: 1, Phase: "verify", Total: 0},
	}
	for _, width := range []int{1, 10, 20, 30, 40, 60, 80, 120, 300} {
		for _, s := range snaps {
			line := progressLine(s, 90*time.Minute, width)
			if n := utf8.RuneCountInString(line); n > max(width-1, 1) {
				t.Errorf("width %d: %d columns: %q", width, n, line)
			}
			if strings.ContainsAny(line, "\r\n") {
				t.Errorf("width %d: line breaks in %q", width, line)
			}
			if got := strings.Contains(line, "100%"); got != s.Complete() && width > 4 {
				t.Errorf("width %d: %q shows 100%% = %v for a job complete = %v", width, line, got, s.Complete())
			}
		}
	}
	// Wide enough for everything: bar, amounts, speed and ETA.
	line := progressLine(snaps[1], 2*time.Second, 120)
	for _, part := range []string{"backup", "[", "=>", "]", " 75%", "3.0 GiB / 4.0 GiB", "512.0 MiB/s", "ETA 2s"} {
		if !strings.Contains(line, part) {
			t.Errorf("width 120: %q lacks %q", line, part)
		}
	}
	// 60 columns keep the bar, the amounts and the ETA, and drop the speed.
	line = progressLine(snaps[1], 2*time.Second, 60)
	if !strings.Contains(line, "]  75%  3.0 GiB / 4.0 GiB  ETA 2s") || strings.Contains(line, "/s") {
		t.Errorf("width 60: %q", line)
	}
}

// TestProgressETAFromBytesRead is the sparse disk of the report: 63% of it
// is holes, counted at once. The ETA follows the pace of the bytes read.
func TestProgressETAFromBytesRead(t *testing.T) {
	s := progress.Snapshot{Job: 1, Phase: "backup", Total: 100 * mib, Skipped: 63 * mib, Read: mib}
	line := progressLine(s, time.Second, 120)
	for _, part := range []string{" 64%", "1.0 MiB/s", "ETA 36s"} {
		if !strings.Contains(line, part) {
			t.Errorf("%q lacks %q", line, part)
		}
	}
	s.Read = 0
	if line := progressLine(s, time.Second, 120); !strings.Contains(line, "ETA --") {
		t.Errorf("nothing read yet: %q, want no ETA", line)
	}
	s.Read = 37 * mib
	if line := progressLine(s, 37*time.Second, 120); !strings.Contains(line, "100%") || !strings.Contains(line, "done in 37s") {
		t.Errorf("complete: %q", line)
	}
}

// drawing is what the bar wrote, as the terminal would show it: the text
// after the last carriage return of each line.
func drawing(t *testing.T, out string, width int) []string {
	t.Helper()
	if !strings.HasSuffix(out, "\n") {
		t.Fatalf("the bar's line is not ended: %q", out)
	}
	var lines []string
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		draws := strings.Split(line, "\r")
		for _, d := range draws[1:] {
			if !strings.HasSuffix(d, "\x1b[K") {
				t.Errorf("a redraw does not clear the rest of the line: %q", d)
			}
			if n := utf8.RuneCountInString(strings.TrimSuffix(d, "\x1b[K")); n >= width {
				t.Errorf("a redraw is %d columns wide on a %d-column terminal: %q", n, width, d)
			}
		}
		if draws[0] != "" {
			t.Errorf("text before the first redraw: %q", draws[0])
		}
		lines = append(lines, strings.TrimSuffix(draws[len(draws)-1], "\x1b[K"))
	}
	return lines
}

// TestProgressBarDrawsOneLinePerJob draws, as the bar's goroutine does at
// each tick, with a clock the test moves.
func TestProgressBarDrawsOneLinePerJob(t *testing.T) {
	for _, width := range []int{60, 120} {
		var out bytes.Buffer
		var c progress.Counter
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		b := newProgressBar(&out, &c, func() int { return width }, func() time.Time { return now })

		b.draw() // no job yet: nothing drawn
		c.Start("backup", 100*mib)
		c.AddSkipped(60 * mib)
		b.draw()
		now = now.Add(time.Second)
		c.AddRead(10 * mib)
		b.draw()
		c.AddRead(30 * mib) // finished between two ticks
		c.Start("backup", 10*mib)
		now = now.Add(time.Second)
		c.AddRead(5 * mib)
		b.draw()
		c.AddRead(5 * mib)
		b.end()

		lines := drawing(t, out.String(), width)
		if len(lines) != 2 {
			t.Fatalf("width %d: %d lines for two jobs: %q", width, len(lines), out.String())
		}
		for i, line := range lines {
			if !strings.Contains(line, "100%") || !strings.HasPrefix(line, "backup") {
				t.Errorf("width %d: job %d ends %q, want 100%%", width, i+1, line)
			}
		}
		// After 1 s: 60 MiB of holes and 10 MiB read, 30 MiB to read
		// at 10 MiB/s.
		if !strings.Contains(out.String(), " 70%") || !strings.Contains(out.String(), "ETA 3s") {
			t.Errorf("width %d: the first job's pace is not from the bytes read: %q", width, out.String())
		}
	}
}

// TestPrinterProgress runs the bar as commands do, on fake streams that
// pretend stderr is a terminal, while workers add from many goroutines.
func TestPrinterProgress(t *testing.T) {
	for _, width := range []int{60, 120} {
		ios, _, _, errOut := Test()
		ios.SetStderrTTY(true)
		ios.SetTerminalWidth(width)
		p := &Printer{IO: ios}
		c, stop := p.Progress()
		if c == nil {
			t.Fatal("no counter on a terminal")
		}
		c.Start("restore", 64*mib)
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 8 {
					c.AddRead(mib)
				}
			}()
		}
		wg.Wait()
		stop()
		stop() // harmless twice
		lines := drawing(t, errOut.String(), width)
		if len(lines) != 1 || !strings.Contains(lines[0], "100%") {
			t.Fatalf("width %d: want one line ending at 100%%, got %q", width, errOut.String())
		}
	}
}

func TestProgressOnlyWhenInteractive(t *testing.T) {
	ios, _, _, errOut := Test()
	p := &Printer{IO: ios}
	check := func(what string, want bool) {
		t.Helper()
		c, stop := p.Progress()
		c.Start("backup", 1)
		c.AddRead(1)
		stop()
		if got := c != nil; got != want {
			t.Fatalf("%s: progress shown = %v, want %v", what, got, want)
		}
	}
	check("no terminal", false)
	ios.SetStderrTTY(true)
	check("a terminal", true)
	p.JSON = true
	check("JSON output", false)
	p.JSON, p.Quiet = false, true
	check("-q", false)
	if strings.Count(errOut.String(), "\n") != 1 {
		t.Fatalf("stderr = %q, want the one bar", errOut.String())
	}
}

func TestTerminalWidth(t *testing.T) {
	ios, _, _, _ := Test()
	if w := ios.TerminalWidth(); w != 80 {
		t.Fatalf("width of a buffer = %d, want 80", w)
	}
	ios.SetTerminalWidth(60)
	if w := ios.TerminalWidth(); w != 60 {
		t.Fatalf("width = %d, want 60", w)
	}
}

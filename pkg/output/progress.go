package output

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// ProgressBar draws a one-line progress bar with throughput and ETA on
// stderr. A nil *ProgressBar is valid and draws nothing, so callers need not
// check whether progress is shown.
type ProgressBar struct {
	w     io.Writer
	now   func() time.Time
	every time.Duration

	mu       sync.Mutex
	phase    string
	start    time.Time
	drawn    time.Time
	lastLine int
}

// NewProgressBar returns a bar drawing on w. now is the clock; nil means
// time.Now.
func NewProgressBar(w io.Writer, now func() time.Time) *ProgressBar {
	if now == nil {
		now = time.Now
	}
	return &ProgressBar{w: w, now: now, every: 100 * time.Millisecond}
}

// Progress returns a progress bar when progress may be shown: stderr is a
// terminal, output is not JSON and -q is not set. Otherwise it returns nil.
func (p *Printer) Progress() *ProgressBar {
	if !p.Interactive() {
		return nil
	}
	return NewProgressBar(p.IO.ErrOut, nil)
}

// Interactive reports whether live feedback (spinner, progress) may be drawn.
func (p *Printer) Interactive() bool {
	return p.IO.IsStderrTTY() && !p.JSON && !p.Quiet
}

// Update records that done of total bytes of phase are finished, and redraws
// at most ten times a second (always on the last update of a phase).
func (b *ProgressBar) Update(phase string, done, total int64) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if phase != b.phase || b.start.IsZero() {
		if b.lastLine > 0 {
			fmt.Fprint(b.w, "\n")
		}
		b.phase, b.start, b.drawn, b.lastLine = phase, now, time.Time{}, 0
	}
	if done < total && !b.drawn.IsZero() && now.Sub(b.drawn) < b.every {
		return
	}
	b.drawn = now
	line := progressLine(phase, done, total, now.Sub(b.start))
	fmt.Fprintf(b.w, "\r%s\x1b[K", line)
	b.lastLine = len(line)
}

// Finish ends the bar's line.
func (b *ProgressBar) Finish() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.lastLine > 0 {
		fmt.Fprint(b.w, "\n")
	}
	b.lastLine = 0
	b.phase, b.start = "", time.Time{}
}

const barWidth = 30

func progressLine(phase string, done, total int64, elapsed time.Duration) string {
	frac := 0.0
	if total > 0 {
		frac = float64(done) / float64(total)
	}
	frac = min(max(frac, 0), 1)
	filled := int(frac * barWidth)
	bar := strings.Repeat("=", filled)
	if filled < barWidth {
		bar += ">" + strings.Repeat(" ", barWidth-filled-1)
	}
	rate := 0.0
	if elapsed > 0 {
		rate = float64(done) / elapsed.Seconds()
	}
	eta := "--"
	if rate > 0 && total >= done {
		eta = FormatDuration(time.Duration(float64(total-done) / rate * float64(time.Second)))
	}
	return fmt.Sprintf("%-8s [%s] %3.0f%%  %s / %s  %s/s  ETA %s",
		phase, bar, frac*100, Bytes(done), Bytes(total), Bytes(int64(rate)), eta)
}

// FormatDuration prints d rounded to seconds, as 1h02m03s, 2m03s or 3s.
func FormatDuration(d time.Duration) string {
	d = d.Round(time.Second)
	h, m, s := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	switch {
	case h > 0:
		return fmt.Sprintf("%dh%02dm%02ds", h, m, s)
	case m > 0:
		return fmt.Sprintf("%dm%02ds", m, s)
	default:
		return fmt.Sprintf("%ds", s)
	}
}

package output

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/dropback/dropback/pkg/progress"
)

// progressEvery is how often the bar is redrawn.
const progressEvery = 100 * time.Millisecond

// Progress starts showing a progress bar on stderr, when progress may be
// shown: stderr is a terminal, output is not JSON and -q is not set. It
// returns the counter for the job to add to, and stop, which draws the
// counter's last state, ends the line and returns once nothing more is
// drawn; call it before printing anything else. When no progress is shown,
// the counter is nil (adding to it does nothing) and stop does nothing.
//
// One goroutine draws the bar, ten times a second, from the counter alone:
// the goroutines doing the work never draw.
func (p *Printer) Progress() (*progress.Counter, func()) {
	if !p.Interactive() {
		return nil, func() {}
	}
	c := &progress.Counter{}
	b := newProgressBar(p.IO.ErrOut, c, p.IO.TerminalWidth, time.Now)
	ticker := time.NewTicker(progressEvery)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		b.run(ticker.C, stop)
	}()
	return c, sync.OnceFunc(func() {
		close(stop)
		<-done
		ticker.Stop()
	})
}

// Interactive reports whether live feedback (spinner, progress) may be drawn.
func (p *Printer) Interactive() bool {
	return p.IO.IsStderrTTY() && !p.JSON && !p.Quiet
}

// progressBar draws a progress.Counter as one line on a terminal, redrawn in
// place ("\r", the line, clear to the end of the line) and never wider than
// the terminal, so that it never wraps. Each job of the counter gets a line
// of its own. Only the goroutine that runs it touches its fields.
type progressBar struct {
	w     io.Writer
	c     *progress.Counter
	width func() int
	now   func() time.Time

	job   uint64    // the job on the current line; 0 before the first
	start time.Time // when the bar first saw the job
	drawn bool      // the current line holds a drawing
}

func newProgressBar(w io.Writer, c *progress.Counter, width func() int, now func() time.Time) *progressBar {
	return &progressBar{w: w, c: c, width: width, now: now}
}

// run draws at every tick until stop is closed, then draws the last state
// and ends the line.
func (b *progressBar) run(tick <-chan time.Time, stop <-chan struct{}) {
	for {
		select {
		case <-tick:
			b.draw()
		case <-stop:
			b.end()
			return
		}
	}
}

// end draws the last state and ends the line.
func (b *progressBar) end() {
	b.draw()
	if b.drawn {
		fmt.Fprint(b.w, "\n")
		b.drawn = false
	}
}

// draw draws the counter's current job. When a new job has started since
// the last drawing, the previous job's line is first redrawn as that job
// ended and closed.
func (b *progressBar) draw() {
	s := b.c.Get()
	if s.Job == 0 {
		return
	}
	now := b.now()
	if s.Job != b.job {
		if b.drawn {
			if prev := b.c.Previous(); prev.Job == b.job {
				b.write(prev, now)
			}
			fmt.Fprint(b.w, "\n")
		}
		b.job, b.start, b.drawn = s.Job, now, false
	}
	b.write(s, now)
}

func (b *progressBar) write(s progress.Snapshot, now time.Time) {
	fmt.Fprintf(b.w, "\r%s\x1b[K", progressLine(s, now.Sub(b.start), b.width()))
	b.drawn = true
}

const (
	maxBar = 40 // widest bar drawn
	minBar = 10 // narrowest bar worth drawing
)

// progressLine renders s in at most width-1 columns (a line as wide as the
// terminal would leave the cursor in its last column, where some terminals
// wrap). The pace and the ETA come from the bytes actually read: holes and
// other skipped bytes finish instantly, so counting them would make the
// estimate jump. Parts are dropped, least useful first, until it fits.
func progressLine(s progress.Snapshot, elapsed time.Duration, width int) string {
	done := min(s.Done(), s.Total)
	frac := 1.0
	if s.Total > 0 {
		frac = float64(done) / float64(s.Total)
	}
	pct := fmt.Sprintf("%3d%%", int(frac*100)) // 100% only when complete
	rate := 0.0
	if elapsed > 0 {
		rate = float64(s.Read) / elapsed.Seconds()
	}
	var eta string
	switch {
	case s.Complete() && elapsed > 0:
		eta = "done in " + FormatDuration(elapsed)
	case s.Complete():
		eta = "done" // before the first tick: how long it took is unknown
	case rate > 0:
		eta = "ETA " + FormatDuration(time.Duration(float64(s.Total-done)/rate*float64(time.Second)))
	default:
		eta = "ETA --"
	}
	// A field of fixed width keeps the bar's width from changing as the
	// ETA does.
	eta = fmt.Sprintf("%-11s", eta)
	amount := Bytes(done) + " / " + Bytes(s.Total)
	infos := []string{
		strings.Join([]string{pct, amount, eta}, "  "),
		strings.Join([]string{pct, eta}, "  "),
		pct,
	}
	if elapsed > 0 {
		speed := Bytes(int64(rate)) + "/s"
		infos = append([]string{strings.Join([]string{pct, amount, speed, eta}, "  ")}, infos...)
	}
	room := max(width-1, 1)
	prefix := fmt.Sprintf("%-7s ", s.Phase)
	for _, info := range infos {
		if n := room - utf8.RuneCountInString(prefix+info) - 3; n >= minBar {
			return strings.TrimRight(prefix+"["+bar(frac, min(n, maxBar))+"] "+info, " ")
		}
	}
	for _, info := range append(infos, pct) {
		if line := strings.TrimRight(prefix+info, " "); utf8.RuneCountInString(line) <= room {
			return line
		}
	}
	if utf8.RuneCountInString(pct) <= room {
		return pct
	}
	return truncate(pct, room)
}

// bar draws frac of width as "=====>    ".
func bar(frac float64, width int) string {
	filled := int(frac * float64(width))
	if filled >= width {
		return strings.Repeat("=", width)
	}
	return strings.Repeat("=", filled) + ">" + strings.Repeat(" ", width-filled-1)
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
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

package schedule

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// simHost is one host in a simulated scheduler: what `dropback run --due`
// does to it, pass after pass, with the clock moved by the test.
type simHost struct {
	key     string
	p       Policy
	enabled time.Time
	keep    int // backups kept after each run: retention / period

	backups []Item  // what exists now: backups and snapshots
	taken   []taken // every backup ever taken, oldest first
}

type taken struct {
	item     Item
	decision Decision
}

func (h *simHost) last() time.Time {
	if len(h.taken) == 0 {
		return time.Time{}
	}
	return h.taken[len(h.taken)-1].item.Time
}

// pass is one scheduling pass at now: take the backup if it is due, then
// apply retention. It returns the decision when a backup was taken.
func (h *simHost) pass(t *testing.T, now time.Time) (Decision, bool) {
	t.Helper()
	d := Due(h.p, h.key, h.last(), h.enabled, now)
	if d.Due {
		it := Item{ID: len(h.taken) + 1, Time: now}
		h.backups = append(h.backups, it)
		h.taken = append(h.taken, taken{item: it, decision: d})
	}
	for _, id := range Expired(h.p, h.backups, now) {
		i := slices.IndexFunc(h.backups, func(it Item) bool { return it.ID == id })
		if h.backups[i].Snapshot {
			t.Fatalf("%s at %v: snapshot %d expired", h.p.Plan, now, id)
		}
		h.backups = slices.Delete(h.backups, i, i+1)
	}
	return d, d.Due
}

// convert turns backup id into a snapshot, as `backups convert` does.
func (h *simHost) convert(id int) {
	for i := range h.backups {
		if h.backups[i].ID == id {
			h.backups[i].Snapshot = true
		}
	}
}

func newSimHosts(t *testing.T, enabled time.Time) []*simHost {
	t.Helper()
	return []*simHost{
		{key: HostKey(1, "web-1"), p: daily20, enabled: enabled, keep: 7},
		{key: HostKey(2, "db-1"), p: weeklySat, enabled: enabled, keep: 4},
		{key: HostKey(3, "ci-1"), p: every4h, enabled: enabled, keep: 42},
	}
}

// Ninety days of passes every 15 minutes, the machine always on: every
// window gets exactly one backup, inside the window and at the first pass
// past the host's start point; after each pass exactly the expected number
// of backups exist (7 daily, 4 weekly, 42 intra_daily_4h, counting snapshots made
// from backups that would still be kept); snapshots are never expired. The
// passes run on the quarter hour, and again late by up to 5 minutes at
// random, as a timer's accuracy has them, so backups are not taken at the
// same time of day.
func TestSimulate90Days(t *testing.T) {
	for _, maxLate := range []time.Duration{0, 5 * time.Minute} {
		t.Run(fmt.Sprintf("late up to %v", maxLate), func(t *testing.T) {
			simulate90Days(t, maxLate)
		})
	}
}

func simulate90Days(t *testing.T, maxLate time.Duration) {
	start := at(t, "2025-01-01 00:00") // a Wednesday
	end := start.AddDate(0, 0, 90)
	const step = 15 * time.Minute
	rng := rand.New(rand.NewPCG(3, 4))
	hosts := newSimHosts(t, start)
	for tick := start; tick.Before(end); tick = tick.Add(step) {
		now := tick
		if maxLate > 0 {
			now = now.Add(time.Duration(rng.Int64N(int64(maxLate/time.Second))) * time.Second)
		}
		for _, h := range hosts {
			d, took := h.pass(t, now)
			if took {
				startPoint := StartAt(h.p, h.key, d.Window)
				if d.MakeUp || !d.Window.Contains(now) || now.Before(startPoint) {
					t.Fatalf("%s: backup at %v outside its window or before the start point: %+v", h.p.Plan, now, d)
				}
				if now.Sub(startPoint) >= step+maxLate {
					t.Fatalf("%s: backup at %v, more than one pass after the start point: %+v", h.p.Plan, now, d)
				}
				if n := len(h.taken); n > 1 && h.taken[n-2].decision.Window == d.Window {
					t.Fatalf("%s: second backup at %v in the window %v", h.p.Plan, now, d.Window)
				}
			}
			// A user converts every 5th backup to a snapshot a day after it
			// was taken.
			for _, it := range h.backups {
				if it.ID%5 == 0 && !it.Snapshot && now.Sub(it.Time) >= 24*time.Hour {
					h.convert(it.ID)
				}
			}
			h.check(t, now)
		}
	}
	for _, h := range hosts {
		// Exactly one backup in every window from the first to the last one
		// that ended, in order.
		var want []Window
		for w := NextWindow(h.p, h.enabled); !w.End.After(end); w = FollowingWindow(h.p, w) {
			want = append(want, w)
		}
		var got []Window
		for _, tk := range h.taken {
			got = append(got, tk.decision.Window)
		}
		if len(got) > len(want) {
			got = got[:len(want)] // a window still open at the end
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: backups in windows %v\nwant one in each of %v", h.p.Plan, got, want)
		}
		if h.snapshots() == 0 {
			t.Errorf("%s: no snapshots made", h.p.Plan)
		}
		t.Logf("%s: %d windows, %d backups taken, %d kept, %d of them snapshots",
			h.p.Plan, len(want), len(h.taken), len(h.backups), h.snapshots())
	}
}

// check asserts what exists after a pass at now.
func (h *simHost) check(t *testing.T, now time.Time) {
	t.Helper()
	// The newest h.keep backups taken are kept, as backups or snapshots.
	recent := h.taken[max(len(h.taken)-h.keep, 0):]
	inRecent := map[int]bool{}
	for _, tk := range recent {
		inRecent[tk.item.ID] = true
	}
	counted := 0
	for _, it := range h.backups {
		switch {
		case inRecent[it.ID]:
			counted++
		case !it.Snapshot:
			t.Fatalf("%s at %v: backup %d (%v) outlived retention; %d taken", h.p.Plan, now, it.ID, it.Time, len(h.taken))
		}
	}
	if counted != len(recent) {
		t.Fatalf("%s at %v: %d of the newest %d backups exist", h.p.Plan, now, counted, len(recent))
	}
	if len(h.taken) >= h.keep && counted != h.keep {
		t.Fatalf("%s at %v: %d backups, want %d", h.p.Plan, now, counted, h.keep)
	}
	// Every snapshot ever made still exists.
	for _, tk := range h.taken {
		if tk.item.ID%5 == 0 && now.Sub(tk.item.Time) >= 24*time.Hour &&
			!slices.ContainsFunc(h.backups, func(it Item) bool { return it.ID == tk.item.ID && it.Snapshot }) {
			t.Fatalf("%s at %v: snapshot %d is gone", h.p.Plan, now, tk.item.ID)
		}
	}
}

func (h *simHost) snapshots() int {
	n := 0
	for _, it := range h.backups {
		if it.Snapshot {
			n++
		}
	}
	return n
}

// The machine is off for three days: at the first pass after it is back one
// backup is taken, a make-up for the latest missed window only (or, past the
// start point of a window, that window's own), and the next backup waits for
// the next window's start point. (Offsets: web-1 1h45m, db-1 and ci-1 1h18m.)
func TestSimulateMachineOff(t *testing.T) {
	tests := []struct {
		name    string
		off, on string
		first   []Window // per host (daily20, weeklySat, every4h): the first backup's window
		makeUp  []bool   // and whether it is a make-up
	}{
		{"back in a gap", "2025-01-10 12:00", "2025-01-13 10:07", []Window{
			win(t, "2025-01-12 20:00", "2025-01-13 00:00"),
			win(t, "2025-01-11 20:00", "2025-01-12 00:00"),
			win(t, "2025-01-13 08:00", "2025-01-13 12:00"), // past the start point: a regular one
		}, []bool{true, true, false}},
		{"back inside a window before the start point", "2025-01-10 12:00", "2025-01-13 20:03", []Window{
			win(t, "2025-01-12 20:00", "2025-01-13 00:00"),
			win(t, "2025-01-11 20:00", "2025-01-12 00:00"),
			win(t, "2025-01-13 16:00", "2025-01-13 20:00"),
		}, []bool{true, true, true}},
		{"off across a week boundary", "2025-01-04 12:00", "2025-01-07 00:00", []Window{
			win(t, "2025-01-06 20:00", "2025-01-07 00:00"),
			win(t, "2025-01-04 20:00", "2025-01-05 00:00"),
			win(t, "2025-01-06 20:00", "2025-01-07 00:00"),
		}, []bool{true, true, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := at(t, "2025-01-01 00:00")
			off, on := at(t, tt.off), at(t, tt.on)
			hosts := newSimHosts(t, start)
			for now := start; now.Before(off); now = now.Add(15 * time.Minute) {
				for _, h := range hosts {
					h.pass(t, now)
				}
			}
			before := make([]int, len(hosts))
			for i, h := range hosts {
				before[i] = len(h.taken)
			}
			// Back on: passes every 15 minutes from `on`, which is off the
			// quarter-hour grid, until a day later.
			for now := on; now.Before(on.Add(24 * time.Hour)); now = now.Add(15 * time.Minute) {
				for _, h := range hosts {
					h.pass(t, now)
				}
			}
			for i, h := range hosts {
				after := h.taken[before[i]:]
				if len(after) == 0 {
					t.Fatalf("%s: no backup after the machine came back", h.p.Plan)
				}
				first := after[0]
				if !first.item.Time.Equal(on) || first.decision.MakeUp != tt.makeUp[i] || first.decision.Window != tt.first[i] {
					t.Errorf("%s: first backup after coming back at %v: %+v at %v; want one at once for %v, make-up %v",
						h.p.Plan, on, first.decision, first.item.Time, tt.first[i], tt.makeUp[i])
				}
				// Every later backup is a regular one, one per window, each
				// in a window that started after the make-up.
				for j, tk := range after[1:] {
					d := tk.decision
					if d.MakeUp || !d.Window.Contains(tk.item.Time) || !d.Window.Start.After(first.item.Time) {
						t.Errorf("%s: backup %d after coming back: %+v at %v", h.p.Plan, j+2, d, tk.item.Time)
					}
				}
				var wantN int
				for w := FollowingWindow(h.p, LatestWindow(h.p, on)); ; w = FollowingWindow(h.p, w) {
					if !StartAt(h.p, h.key, w).Before(on.Add(24 * time.Hour)) {
						break
					}
					wantN++
				}
				if len(after) != 1+wantN {
					t.Errorf("%s: %d backups in the day after coming back, want 1 make-up + %d", h.p.Plan, len(after), wantN)
				}
			}
		})
	}
}

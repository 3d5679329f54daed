package schedule

import (
	"math/rand/v2"
	"testing"
	"time"
)

// testHost starts 1h45m into each window (pinned in TestStartOffset).
const testHost = "1/web-1"

func TestDue(t *testing.T) {
	longAgo := "2024-01-01 00:00"
	tests := []struct {
		name    string
		p       Policy
		last    string // "" for none
		enabled string // "" for zero
		now     string
		due     bool
		makeUp  bool
		window  Window
		at      string
	}{
		// daily at 20: windows 20:00-24:00, this host's start point 21:45.
		{"enabled before the window, before the start point", daily20, "", "2025-01-04 10:00", "2025-01-04 20:30",
			false, false, win(t, "2025-01-04 20:00", "2025-01-05 00:00"), "2025-01-04 21:45"},
		{"a minute before the start point", daily20, "", "2025-01-04 10:00", "2025-01-04 21:44",
			false, false, win(t, "2025-01-04 20:00", "2025-01-05 00:00"), "2025-01-04 21:45"},
		{"at the start point", daily20, "", "2025-01-04 10:00", "2025-01-04 21:45",
			true, false, win(t, "2025-01-04 20:00", "2025-01-05 00:00"), "2025-01-04 21:45"},
		{"a minute before the window ends", daily20, "", "2025-01-04 10:00", "2025-01-04 23:59",
			true, false, win(t, "2025-01-04 20:00", "2025-01-05 00:00"), "2025-01-04 21:45"},
		{"at the window end, missed", daily20, "", "2025-01-04 10:00", "2025-01-05 00:00",
			true, true, win(t, "2025-01-04 20:00", "2025-01-05 00:00"), "2025-01-05 00:00"},
		{"taken in the window", daily20, "2025-01-04 21:45", "2025-01-04 10:00", "2025-01-04 23:00",
			false, false, win(t, "2025-01-05 20:00", "2025-01-06 00:00"), "2025-01-05 21:45"},
		{"taken, at the window end", daily20, "2025-01-04 21:45", "2025-01-04 10:00", "2025-01-05 00:00",
			false, false, win(t, "2025-01-05 20:00", "2025-01-06 00:00"), "2025-01-05 21:45"},
		{"taken yesterday, at today's start point", daily20, "2025-01-04 21:45", longAgo, "2025-01-05 21:45",
			true, false, win(t, "2025-01-05 20:00", "2025-01-06 00:00"), "2025-01-05 21:45"},
		{"taken yesterday, at today's window start", daily20, "2025-01-04 21:45", longAgo, "2025-01-05 20:00",
			false, false, win(t, "2025-01-05 20:00", "2025-01-06 00:00"), "2025-01-05 21:45"},
		{"enabled mid-window past the start point", daily20, "", "2025-01-04 22:00", "2025-01-04 22:00",
			true, false, win(t, "2025-01-04 20:00", "2025-01-05 00:00"), "2025-01-04 22:00"},
		{"enabled mid-window, pass after its end", daily20, "", "2025-01-04 22:00", "2025-01-05 00:10",
			true, true, win(t, "2025-01-04 20:00", "2025-01-05 00:00"), "2025-01-05 00:00"},
		{"enabled mid-window before the start point", daily20, "", "2025-01-04 21:00", "2025-01-04 21:00",
			false, false, win(t, "2025-01-04 20:00", "2025-01-05 00:00"), "2025-01-04 21:45"},
		{"enabled at the window end", daily20, "", "2025-01-05 00:00", "2025-01-05 00:00",
			false, false, win(t, "2025-01-05 20:00", "2025-01-06 00:00"), "2025-01-05 21:45"},
		{"enabled after the window", daily20, "", "2025-01-05 09:00", "2025-01-05 09:15",
			false, false, win(t, "2025-01-05 20:00", "2025-01-06 00:00"), "2025-01-05 21:45"},
		{"enabled later, in a window", daily20, "", "2025-01-04 22:30", "2025-01-04 10:00",
			false, false, win(t, "2025-01-04 20:00", "2025-01-05 00:00"), "2025-01-04 22:30"},
		{"enabled later, in a gap", daily20, "", "2025-01-05 09:00", "2025-01-04 10:00",
			false, false, win(t, "2025-01-05 20:00", "2025-01-06 00:00"), "2025-01-05 21:45"},
		{"never backed up, enabled long ago, in a gap", daily20, "", "", "2025-01-05 09:00",
			true, true, win(t, "2025-01-04 20:00", "2025-01-05 00:00"), "2025-01-05 00:00"},
		{"off 3 days, back in a gap: one make-up", daily20, "2025-01-01 21:45", longAgo, "2025-01-05 10:00",
			true, true, win(t, "2025-01-04 20:00", "2025-01-05 00:00"), "2025-01-05 00:00"},
		{"after the make-up", daily20, "2025-01-05 10:00", longAgo, "2025-01-05 10:15",
			false, false, win(t, "2025-01-05 20:00", "2025-01-06 00:00"), "2025-01-05 21:45"},
		{"off 3 days, back before the start point: make-up now", daily20, "2025-01-01 21:45", longAgo, "2025-01-04 20:15",
			true, true, win(t, "2025-01-03 20:00", "2025-01-04 00:00"), "2025-01-04 00:00"},
		{"the make-up also satisfies the window it was taken in", daily20, "2025-01-04 20:15", longAgo, "2025-01-04 21:45",
			false, false, win(t, "2025-01-05 20:00", "2025-01-06 00:00"), "2025-01-05 21:45"},
		{"a make-up in the gap satisfies the window before", daily20, "2025-01-04 10:00", longAgo, "2025-01-04 20:30",
			false, false, win(t, "2025-01-04 20:00", "2025-01-05 00:00"), "2025-01-04 21:45"},
		{"newest backup in the future (clock went back)", daily20, "2025-01-06 00:00", longAgo, "2025-01-04 22:00",
			false, false, win(t, "2025-01-05 20:00", "2025-01-06 00:00"), "2025-01-05 21:45"},

		// weekly SAT 20: Sat 20:00 - Sun 00:00, ending on the week boundary.
		{"weekly: taken, at the week boundary", weeklySat, "2025-01-04 21:45", longAgo, "2025-01-05 00:00",
			false, false, win(t, "2025-01-11 20:00", "2025-01-12 00:00"), "2025-01-11 21:45"},
		{"weekly: missed, at the week boundary", weeklySat, "2024-12-28 21:45", longAgo, "2025-01-05 00:00",
			true, true, win(t, "2025-01-04 20:00", "2025-01-05 00:00"), "2025-01-05 00:00"},
		{"weekly: last week's taken, before the start point", weeklySat, "2024-12-28 21:45", longAgo, "2025-01-04 21:00",
			false, false, win(t, "2025-01-04 20:00", "2025-01-05 00:00"), "2025-01-04 21:45"},
		{"weekly: at the start point", weeklySat, "2024-12-28 21:45", longAgo, "2025-01-04 21:45",
			true, false, win(t, "2025-01-04 20:00", "2025-01-05 00:00"), "2025-01-04 21:45"},
		{"weekly: midweek, nothing due", weeklySat, "2024-12-28 21:45", longAgo, "2025-01-01 12:00",
			false, false, win(t, "2025-01-04 20:00", "2025-01-05 00:00"), "2025-01-04 21:45"},
		{"weekly: off 3 weeks, one make-up for the latest", weeklySat, "2024-12-14 21:45", longAgo, "2025-01-08 12:00",
			true, true, win(t, "2025-01-04 20:00", "2025-01-05 00:00"), "2025-01-05 00:00"},
		{"weekly SUN 0: taken late Saturday is last week's", weeklySun, "2025-01-04 23:00", longAgo, "2025-01-05 01:45",
			true, false, win(t, "2025-01-05 00:00", "2025-01-05 04:00"), "2025-01-05 01:45"},

		// intra_daily_4h at 8: windows back to back, no gaps.
		{"intra_daily_4h: taken in the last window", every4h, "2025-01-04 09:45", longAgo, "2025-01-04 12:00",
			false, false, win(t, "2025-01-04 12:00", "2025-01-04 16:00"), "2025-01-04 13:45"},
		{"intra_daily_4h: last window missed", every4h, "2025-01-04 05:45", longAgo, "2025-01-04 12:00",
			true, true, win(t, "2025-01-04 08:00", "2025-01-04 12:00"), "2025-01-04 12:00"},
		{"intra_daily_6h: in the gap after a missed window", every6h, "2025-01-04 05:45", longAgo, "2025-01-04 14:30",
			true, true, win(t, "2025-01-04 10:00", "2025-01-04 14:00"), "2025-01-04 14:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var last, enabled time.Time
			if tt.last != "" {
				last = at(t, tt.last)
			}
			if tt.enabled != "" {
				enabled = at(t, tt.enabled)
			}
			d := Due(tt.p, testHost, last, enabled, at(t, tt.now))
			if d.Due != tt.due || d.MakeUp != tt.makeUp || d.Window != tt.window || !d.At.Equal(at(t, tt.at)) {
				t.Errorf("Due() = {due %v, make-up %v, window %v, at %v} (%s)\nwant  {due %v, make-up %v, window %v, at %v}",
					d.Due, d.MakeUp, d.Window, d.At.Format(time.RFC3339), d.Reason,
					tt.due, tt.makeUp, tt.window, at(t, tt.at).Format(time.RFC3339))
			}
			if d.Reason == "" {
				t.Error("Due() gives no reason")
			}
		})
	}
}

// For random states: when Due says not yet, it stays not due until At and is
// due at At; a regular backup is due only inside its window, past the start
// point.
func TestDueAtIsExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	base := at(t, "2025-01-01 00:00")
	minute := func(max int) time.Duration { return time.Duration(rng.IntN(max)) * time.Minute }
	for i := 0; i < 2000; i++ {
		plan := plans[rng.IntN(len(plans))].name
		hour := windowStarts[rng.IntN(len(windowStarts))]
		p, _ := New(Change{Plan: &plan, Hour: &hour})
		if plan == PlanWeekly {
			p.Weekday = weekdays[rng.IntN(7)]
		}
		key := HostKey(rng.IntN(100), "host")
		now := base.Add(minute(60 * 24 * 30))
		var last, enabled time.Time
		if rng.IntN(4) > 0 {
			last = now.Add(-minute(60 * 24 * 10))
		}
		if rng.IntN(4) > 0 {
			enabled = now.Add(-minute(60*24*10) + minute(60*24))
		}
		d := Due(p, key, last, enabled, now)
		if d.Due && !d.MakeUp {
			if !d.Window.Contains(now) || now.Before(StartAt(p, key, d.Window)) {
				t.Fatalf("%v %s last %v enabled %v now %v: regular backup due outside its window: %+v", p, key, last, enabled, now, d)
			}
		}
		if d.Due {
			continue
		}
		if !d.At.After(now) {
			t.Fatalf("%v %s last %v enabled %v now %v: not due, but At is not later: %+v", p, key, last, enabled, now, d)
		}
		for tm := now; tm.Before(d.At); tm = tm.Add(7 * time.Minute) {
			if e := Due(p, key, last, enabled, tm); e.Due {
				t.Fatalf("%v %s last %v enabled %v: due at %v before At %v: %+v", p, key, last, enabled, tm, d.At, e)
			}
		}
		if e := Due(p, key, last, enabled, d.At); !e.Due || e.Window != d.Window {
			t.Fatalf("%v %s last %v enabled %v now %v: not due at At %v: %+v, first said %+v", p, key, last, enabled, now, d.At, e, d)
		}
	}
}

package schedule

import (
	"testing"
	"time"
)

// at parses a UTC time like "2025-01-04 20:00".
func at(t testing.TB, s string) time.Time {
	t.Helper()
	tm, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func win(t testing.TB, start, end string) Window {
	return Window{Start: at(t, start), End: at(t, end)}
}

var (
	daily0    = Policy{Plan: "daily", Hour: 0, RetentionDays: 7}
	daily20   = Policy{Plan: "daily", Hour: 20, RetentionDays: 7}
	weeklySat = Policy{Plan: "weekly", Weekday: "SAT", Hour: 20, RetentionDays: 28}
	weeklySun = Policy{Plan: "weekly", Weekday: "SUN", Hour: 0, RetentionDays: 28}
	weeklyWed = Policy{Plan: "weekly", Weekday: "WED", Hour: 8, RetentionDays: 28}
	every12h  = Policy{Plan: "intra_daily_12h", Hour: 16, RetentionDays: 7}
	every6h   = Policy{Plan: "intra_daily_6h", Hour: 4, RetentionDays: 7}
	every4h   = Policy{Plan: "intra_daily_4h", Hour: 8, RetentionDays: 7}
)

// 2025-01-04 is a Saturday, 2025-01-05 a Sunday, 2025-01-08 a Wednesday.

func TestNextWindow(t *testing.T) {
	tests := []struct {
		name  string
		p     Policy
		now   string
		start string
		end   string
	}{
		{"daily before window", daily20, "2025-01-04 19:59", "2025-01-04 20:00", "2025-01-05 00:00"},
		{"daily at window start", daily20, "2025-01-04 20:00", "2025-01-04 20:00", "2025-01-05 00:00"},
		{"daily inside window", daily20, "2025-01-04 23:59", "2025-01-04 20:00", "2025-01-05 00:00"},
		{"daily at window end", daily20, "2025-01-05 00:00", "2025-01-05 20:00", "2025-01-06 00:00"},
		{"daily hour 0 at midnight", daily0, "2025-01-05 00:00", "2025-01-05 00:00", "2025-01-05 04:00"},
		{"daily hour 0 after window", daily0, "2025-01-05 04:00", "2025-01-06 00:00", "2025-01-06 04:00"},
		{"daily across year end", daily20, "2024-12-31 21:00", "2024-12-31 20:00", "2025-01-01 00:00"},
		{"weekly SAT 20 before", weeklySat, "2025-01-01 00:00", "2025-01-04 20:00", "2025-01-05 00:00"},
		{"weekly SAT 20 inside", weeklySat, "2025-01-04 23:00", "2025-01-04 20:00", "2025-01-05 00:00"},
		{"weekly SAT 20 ends at the week boundary", weeklySat, "2025-01-05 00:00", "2025-01-11 20:00", "2025-01-12 00:00"},
		{"weekly SUN 0 at the week boundary", weeklySun, "2025-01-05 00:00", "2025-01-05 00:00", "2025-01-05 04:00"},
		{"weekly SUN 0 just before", weeklySun, "2025-01-04 23:59", "2025-01-05 00:00", "2025-01-05 04:00"},
		{"weekly SUN 0 just after", weeklySun, "2025-01-05 04:00", "2025-01-12 00:00", "2025-01-12 04:00"},
		{"weekly WED 8", weeklyWed, "2025-01-05 12:00", "2025-01-08 08:00", "2025-01-08 12:00"},
		{"weekly before 1970", weeklyWed, "1969-12-29 00:00", "1969-12-31 08:00", "1969-12-31 12:00"},
		{"intra_daily_12h at 16: first of the day", every12h, "2025-01-04 00:00", "2025-01-04 04:00", "2025-01-04 08:00"},
		{"intra_daily_12h at 16: the 16 h window", every12h, "2025-01-04 08:00", "2025-01-04 16:00", "2025-01-04 20:00"},
		{"intra_daily_6h at 4: in the gap", every6h, "2025-01-04 08:30", "2025-01-04 10:00", "2025-01-04 14:00"},
		{"intra_daily_6h at 4: 22 h runs past midnight", every6h, "2025-01-04 23:00", "2025-01-04 22:00", "2025-01-05 02:00"},
		{"intra_daily_4h: back to back", every4h, "2025-01-04 03:59", "2025-01-04 00:00", "2025-01-04 04:00"},
		{"intra_daily_4h: at a boundary", every4h, "2025-01-04 04:00", "2025-01-04 04:00", "2025-01-04 08:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := NextWindow(tt.p, at(t, tt.now))
			if want := win(t, tt.start, tt.end); got != want {
				t.Errorf("NextWindow(%v, %s) = %v, want %v", tt.p, tt.now, got, want)
			}
		})
	}
}

func TestWindowAtAndNeighbours(t *testing.T) {
	tests := []struct {
		name   string
		p      Policy
		t      string
		in     bool
		latest Window
		prev   Window
		next   Window
	}{
		{"daily inside", daily20, "2025-01-04 21:00", true,
			win(t, "2025-01-04 20:00", "2025-01-05 00:00"),
			win(t, "2025-01-03 20:00", "2025-01-04 00:00"),
			win(t, "2025-01-05 20:00", "2025-01-06 00:00")},
		{"daily in the gap", daily20, "2025-01-05 00:00", false,
			win(t, "2025-01-04 20:00", "2025-01-05 00:00"),
			win(t, "2025-01-03 20:00", "2025-01-04 00:00"),
			win(t, "2025-01-05 20:00", "2025-01-06 00:00")},
		{"weekly across the week boundary", weeklySat, "2025-01-06 12:00", false,
			win(t, "2025-01-04 20:00", "2025-01-05 00:00"),
			win(t, "2024-12-28 20:00", "2024-12-29 00:00"),
			win(t, "2025-01-11 20:00", "2025-01-12 00:00")},
		{"intra_daily_4h always inside", every4h, "2025-01-04 00:00", true,
			win(t, "2025-01-04 00:00", "2025-01-04 04:00"),
			win(t, "2025-01-03 20:00", "2025-01-04 00:00"),
			win(t, "2025-01-04 04:00", "2025-01-04 08:00")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := at(t, tt.t)
			w, in := WindowAt(tt.p, now)
			if in != tt.in || w != tt.latest {
				t.Errorf("WindowAt = %v, %v; want %v, %v", w, in, tt.latest, tt.in)
			}
			if got := LatestWindow(tt.p, now); got != tt.latest {
				t.Errorf("LatestWindow = %v, want %v", got, tt.latest)
			}
			if got := PrevWindow(tt.p, tt.latest); got != tt.prev {
				t.Errorf("PrevWindow = %v, want %v", got, tt.prev)
			}
			if got := FollowingWindow(tt.p, tt.latest); got != tt.next {
				t.Errorf("FollowingWindow = %v, want %v", got, tt.next)
			}
		})
	}
}

// Every plan, every hour and weekday: windows are 4 hours long, start at the
// chosen hour (intra_daily_Nh: every N hours from it) in UTC, follow each other by the plan's period, and
// NextWindow never goes backwards.
func TestWindowSeries(t *testing.T) {
	from := at(t, "2024-12-20 00:00")
	for _, plan := range Plans() {
		for _, hour := range WindowStarts() {
			p, _ := New(Change{Plan: &plan, Hour: &hour})
			days := []string{""}
			if plan == PlanWeekly {
				days = Weekdays()
			}
			for _, day := range days {
				if day != "" {
					p.Weekday = day
				}
				prev := NextWindow(p, from)
				for now := from; now.Before(from.AddDate(0, 0, 30)); now = now.Add(5 * time.Minute) {
					w := NextWindow(p, now)
					if w.End.Sub(w.Start) != WindowLength || w.Start.Location() != time.UTC {
						t.Fatalf("%v: window %v", p, w)
					}
					n := int(p.Period() / time.Hour)
					if w.Start.Minute() != 0 || ((w.Start.Hour()-hour)%n+n)%n != 0 {
						t.Fatalf("%v: window %v starts off the grid", p, w)
					}
					if plan == PlanWeekly && weekdays[w.Start.Weekday()] != day {
						t.Fatalf("%v: window %v on %v", p, w, w.Start.Weekday())
					}
					if w.End.Before(now) || w.End == now {
						t.Fatalf("%v: NextWindow(%v) = %v, already over", p, now, w)
					}
					if w != prev {
						if d := w.Start.Sub(prev.Start); d != p.Period() {
							t.Fatalf("%v: window %v follows %v by %v", p, w, prev, d)
						}
						prev = w
					}
				}
			}
		}
	}
}

func TestWindowsOfZeroAndFarTimes(t *testing.T) {
	for _, tm := range []time.Time{{}, time.Date(9999, 12, 31, 23, 0, 0, 0, time.UTC)} {
		w := NextWindow(weeklyWed, tm)
		if !w.Start.After(tm.Add(-WindowLength)) || w.Start.Weekday() != time.Wednesday || w.Start.Hour() != 8 {
			t.Errorf("NextWindow(%v) = %v", tm, w)
		}
	}
}

func TestNonUTCInput(t *testing.T) {
	tokyo := time.FixedZone("JST", 9*3600)
	now := time.Date(2025, 1, 5, 5, 30, 0, 0, tokyo) // 2025-01-04 20:30 UTC
	got := NextWindow(daily20, now)
	if want := win(t, "2025-01-04 20:00", "2025-01-05 00:00"); got != want {
		t.Errorf("NextWindow = %v, want %v", got, want)
	}
}

func TestStartOffset(t *testing.T) {
	seen := map[time.Duration]bool{}
	for id := 1; id <= 1000; id++ {
		key := HostKey(id, "web-1")
		off := StartOffset(daily0, key)
		if off < 0 || off >= WindowLength-StartMargin || off%time.Minute != 0 {
			t.Fatalf("StartOffset(%q) = %v, outside [0, 3h) or not whole minutes", key, off)
		}
		if again := StartOffset(weeklySat, key); again != off {
			t.Fatalf("StartOffset(%q) differs by plan: %v, %v", key, off, again)
		}
		seen[off] = true
	}
	// 1000 hosts over 180 minutes: nearly every minute is used.
	if len(seen) < 160 {
		t.Errorf("1000 hosts start at only %d distinct minutes", len(seen))
	}
	// Stable across runs and machines: pinned values.
	for key, want := range map[string]time.Duration{
		HostKey(1, "web-1"): 105 * time.Minute,
		HostKey(2, "web-2"): 85 * time.Minute,
		HostKey(42, "db"):   91 * time.Minute,
	} {
		if got := StartOffset(daily0, key); got != want {
			t.Errorf("StartOffset(%q) = %v, want %v", key, got, want)
		}
	}
	if HostKey(42, "db") != "42/db" {
		t.Errorf("HostKey(42, db) = %q", HostKey(42, "db"))
	}
	w := win(t, "2025-01-04 20:00", "2025-01-05 00:00")
	if got := StartAt(daily20, "h", w); got != w.Start.Add(StartOffset(daily20, "h")) {
		t.Errorf("StartAt = %v", got)
	}
}

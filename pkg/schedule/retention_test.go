package schedule

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// series returns n items, one per period from first, IDs 1..n.
func series(first time.Time, period time.Duration, n int) []Item {
	items := make([]Item, n)
	for i := range items {
		items[i] = Item{ID: i + 1, Time: first.Add(time.Duration(i) * period)}
	}
	return items
}

func idRange(from, to int) []int {
	var out []int
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

func concat(parts ...[]int) []int {
	var out []int
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestExpired(t *testing.T) {
	day := 24 * time.Hour
	first := at(t, "2025-01-01 21:45") // daily20's windows, this host's start point
	tenDays := series(first, day, 10)  // Jan 1..10
	jitter := series(first, day, 10)
	jitter[2].Time = at(t, "2025-01-03 23:50") // taken late in its window
	withSnapshots := series(first, day, 10)
	withSnapshots[0].Snapshot = true
	withSnapshots[5].Snapshot = true
	makeUp := series(first, day, 10)
	makeUp[2].Time = at(t, "2025-01-04 10:00") // make-up of Jan 3's window, taken the next morning
	customRetention := daily20
	customRetention.RetentionDays = 3
	tests := []struct {
		name  string
		p     Policy
		items []Item
		now   time.Time
		want  []int
	}{
		{"none", daily20, nil, first, nil},
		{"daily: right after the 10th backup, 7 remain", daily20, tenDays, at(t, "2025-01-10 21:45"), idRange(1, 3)},
		{"daily: right before the 10th, 7 remain", daily20, tenDays[:9], at(t, "2025-01-10 21:44"), idRange(1, 2)},
		{"daily: at the window start, 7 remain", daily20, tenDays[:9], at(t, "2025-01-10 20:00"), idRange(1, 2)},
		{"daily: 7 days older than the newest expires", daily20, []Item{tenDays[0], {ID: 2, Time: at(t, "2025-01-08 21:45")}}, at(t, "2025-01-08 21:45"), []int{1}},
		{"daily: a lone backup never expires", daily20, tenDays[:1], at(t, "2025-03-08 21:45"), nil},
		{"daily: taken late in its window still goes with its day", daily20, jitter, at(t, "2025-01-10 21:45"), idRange(1, 3)},
		{"daily: a make-up ages with the window it made up", daily20, makeUp, at(t, "2025-01-10 21:45"), idRange(1, 3)},
		{"daily: backups stopped, 7 stay however late", daily20, tenDays, at(t, "2025-01-30 00:00"), idRange(1, 3)},
		{"daily: backups stopped after one, it stays", daily20, tenDays[:1], at(t, "2026-01-30 00:00"), nil},
		{"snapshots never expire", daily20, withSnapshots, at(t, "2025-01-30 00:00"), []int{2, 3}},
		{"a backup dated in the future neither expires nor expires the rest", daily20,
			append(series(first, day, 8), Item{ID: 9, Time: first.Add(365 * day)}), at(t, "2025-01-08 21:45"), []int{1}},
		{"the newest backup stays behind a newer snapshot", daily20,
			[]Item{{ID: 1, Time: first}, {ID: 2, Time: first.Add(30 * day), Snapshot: true}}, at(t, "2025-03-01 00:00"), nil},
		{"weekly: 4 remain", weeklySat, series(at(t, "2024-12-07 21:45"), 7*day, 5), at(t, "2025-01-04 21:45"), []int{1}},
		{"weekly: before the 5th, 4 remain", weeklySat, series(at(t, "2024-12-07 21:45"), 7*day, 4), at(t, "2025-01-04 21:00"), nil},
		{"intra_daily_4h: 42 remain", every4h, series(at(t, "2025-01-01 09:45"), 4*time.Hour, 50), at(t, "2025-01-09 13:45"), idRange(1, 8)},
		{"custom retention 3 days: 3 remain", customRetention, tenDays, at(t, "2025-01-10 21:45"), idRange(1, 7)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Expired(tt.p, tt.items, tt.now); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Expired() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestExpiredOrderAndInput(t *testing.T) {
	items := []Item{
		{ID: 9, Time: at(t, "2025-01-03 21:45")},
		{ID: 3, Time: at(t, "2025-01-01 21:45")},
		{ID: 5, Time: at(t, "2025-01-20 21:45")},
		{ID: 4, Time: at(t, "2025-01-01 21:45")},
	}
	orig := append([]Item(nil), items...)
	got := Expired(daily20, items, at(t, "2025-01-20 21:45"))
	if want := []int{3, 4, 9}; !reflect.DeepEqual(got, want) {
		t.Errorf("Expired() = %v, want %v (oldest first)", got, want)
	}
	if !reflect.DeepEqual(items, orig) {
		t.Error("Expired() reordered its input")
	}
}

func TestKeepDailyWeekly(t *testing.T) {
	day := 24 * time.Hour
	thirty := series(at(t, "2025-01-01 03:00"), day, 30) // Wed Jan 1 .. Thu Jan 30
	// Two a day: the morning one of each day is never the day's newest.
	twice := append(series(at(t, "2025-01-01 03:00"), day, 10), series(at(t, "2025-01-01 15:00"), day, 10)...)
	for i := range twice[10:] {
		twice[10+i].ID = 101 + i
	}
	snap := series(at(t, "2025-01-01 03:00"), day, 10)
	snap[0].Snapshot = true
	snap[9].Snapshot = true
	tests := []struct {
		name         string
		items        []Item
		daily, weeks int
		want         []int // expired
	}{
		{"none", nil, 7, 4, nil},
		// Daily keeps Jan 24..30; weekly keeps the newest of ISO weeks 5
		// (Jan 30, already kept), 4 (Sun Jan 26, kept), 3 (Jan 19), 2 (Jan 12).
		{"30 daily, keep 7 daily 4 weekly", thirty, 7, 4, concat(idRange(1, 11), idRange(13, 18), idRange(20, 23))},
		{"keep 7 daily only", thirty, 7, 0, idRange(1, 23)},
		{"keep 4 weekly only", thirty, 0, 4, concat(idRange(1, 11), idRange(13, 18), idRange(20, 25), idRange(27, 29))},
		{"keep nothing", thirty[:3], 0, 0, []int{1, 2, 3}},
		{"newest of each day", twice, 3, 0, []int{1, 101, 2, 102, 3, 103, 4, 104, 5, 105, 6, 106, 7, 107, 8, 9, 10}},
		{"snapshots are kept and do not count", snap, 3, 0, idRange(2, 6)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := KeepDailyWeekly(tt.items, tt.daily, tt.weeks); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("KeepDailyWeekly() = %v, want %v", got, tt.want)
			}
		})
	}
}

// KeepDailyWeekly decides as restic does, on an irregular history (gaps,
// several backups a day) whose verdicts restic itself gave.
func TestKeepDailyWeeklyMatchesRestic(t *testing.T) {
	data, err := os.ReadFile("testdata/restic-forget-daily7-weekly4.txt")
	if err != nil {
		t.Fatal(err)
	}
	var items []Item
	var want []int
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		stamp, verdict, _ := strings.Cut(line, " ")
		tm, err := time.Parse(time.RFC3339, stamp)
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, Item{ID: len(items) + 1, Time: tm})
		if verdict == "remove" {
			want = append(want, len(items))
		}
	}
	if len(items) != 60 || len(want) != 51 {
		t.Fatalf("read %d items, %d removed; want 60, 51", len(items), len(want))
	}
	if got := KeepDailyWeekly(items, 7, 4); !reflect.DeepEqual(got, want) {
		t.Errorf("KeepDailyWeekly() = %v\nrestic removes %v", got, want)
	}
}

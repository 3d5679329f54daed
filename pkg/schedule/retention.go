package schedule

import (
	"cmp"
	"slices"
	"time"
)

// Item is one backup or snapshot of a host, as retention sees it.
type Item struct {
	ID       int
	Time     time.Time // when the backup was taken (created_at)
	Snapshot bool      // snapshots never expire
}

// Expired returns the IDs of the backups in items, all of one host, that
// policy p no longer keeps, oldest first. Snapshots never expire, and
// neither does the host's newest backup: retention never empties a host.
//
// Both rules count back from the host's newest backup or snapshot, not from
// now, so a host that stops being backed up (its disk is gone, its
// schedule paused) keeps what it has; over the retention period R:
//   - by age: it was taken at or before the newest minus R;
//   - by count: its window started at or before the window of the newest
//     minus R. Windows, not times, are compared, so a backup taken a few
//     minutes later in its window than today's was does not outlive the
//     day: after each scheduled backup exactly R/period backups remain (7
//     daily, 4 weekly, 42 intra_daily_4h).
//
// The window of a backup is the latest window that started at or before it
// (LatestWindow), so a make-up taken after its window ages with that window.
//
// A backup dated after now (taken on a machine whose clock was wrong) is
// left out: it neither expires nor counts as the newest, so that one wrong
// date does not expire the rest.
func Expired(p Policy, items []Item, now time.Time) []int {
	var dated []Item
	for _, it := range items {
		if !it.Time.After(now) {
			dated = append(dated, it)
		}
	}
	items = dated
	if len(items) == 0 {
		return nil
	}
	r := p.Retention()
	newest, last := items[0].Time, -1
	for i, it := range items {
		if it.Time.After(newest) {
			newest = it.Time
		}
		if !it.Snapshot && (last < 0 || byTime(it, items[last]) > 0) {
			last = i
		}
	}
	cutoff := newest.Add(-r)
	oldestKeptWindow := LatestWindow(p, newest).Start.Add(-r)
	var out []Item
	for i, it := range items {
		if it.Snapshot || i == last {
			continue
		}
		if !it.Time.After(cutoff) || !LatestWindow(p, it.Time).Start.After(oldestKeptWindow) {
			out = append(out, it)
		}
	}
	return ids(out)
}

// KeepDailyWeekly is a grandfather-father-son rule as restic's
// `forget --keep-daily D --keep-weekly W` applies it: of the backups in
// items, newest first, it keeps the newest backup of each of the last
// keepDaily distinct UTC days that have backups, and the newest of each of
// the last keepWeekly distinct ISO weeks; one backup may count for both. It
// returns the IDs of the backups it does not keep, oldest first. Snapshots
// are kept and do not count.
func KeepDailyWeekly(items []Item, keepDaily, keepWeekly int) []int {
	sorted := slices.Clone(items)
	slices.SortStableFunc(sorted, func(a, b Item) int { return -byTime(a, b) })
	type bucket struct {
		left int
		last int64
		of   func(time.Time) int64
	}
	buckets := []bucket{
		{left: keepDaily, last: -1 << 63, of: func(t time.Time) int64 { return floorDiv(t.Unix(), 86400) }},
		{left: keepWeekly, last: -1 << 63, of: func(t time.Time) int64 {
			y, w := t.UTC().ISOWeek()
			return int64(y)*100 + int64(w)
		}},
	}
	var out []Item
	for _, it := range sorted {
		if it.Snapshot {
			continue
		}
		keep := false
		for i := range buckets {
			b := &buckets[i]
			if b.left <= 0 {
				continue
			}
			if v := b.of(it.Time); v != b.last {
				keep = true
				b.last = v
				b.left--
			}
		}
		if !keep {
			out = append(out, it)
		}
	}
	return ids(out)
}

// ids returns the IDs of items, oldest first.
func ids(items []Item) []int {
	if len(items) == 0 {
		return nil
	}
	slices.SortStableFunc(items, byTime)
	out := make([]int, len(items))
	for i, it := range items {
		out[i] = it.ID
	}
	return out
}

func byTime(a, b Item) int {
	if c := a.Time.Compare(b.Time); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

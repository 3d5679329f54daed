package schedule

import (
	"hash/fnv"
	"strconv"
	"time"
)

// StartMargin is the part at the end of every window in which no host's start
// point falls, so that a pass every 15 minutes, late by a few minutes, still
// starts the backup inside the window.
const StartMargin = time.Hour

// Window is a backup window, [Start, End) in UTC. The JSON names are the
// DigitalOcean API's next_backup_window fields.
type Window struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Contains reports whether t lies in w: Start <= t < End.
func (w Window) Contains(t time.Time) bool {
	return !t.Before(w.Start) && t.Before(w.End)
}

// String formats w as "2025-01-04T20:00:00Z/2025-01-05T00:00:00Z".
func (w Window) String() string {
	return w.Start.Format(time.RFC3339) + "/" + w.End.Format(time.RFC3339)
}

// The windows of a policy form a series: window k starts at anchor + k*period
// (Unix seconds, so that times far from 1970 do not overflow a Duration) and
// lasts WindowLength(). Windows never overlap.

// index returns the number of the latest window that started at or before t.
func (p Policy) index(t time.Time) int64 {
	r := p.resolve()
	return floorDiv(t.Unix()-r.anchor, int64(r.period/time.Second))
}

// window returns window number k.
func (p Policy) window(k int64) Window {
	r := p.resolve()
	start := time.Unix(r.anchor+k*int64(r.period/time.Second), 0).UTC()
	return Window{Start: start, End: start.Add(p.WindowLength())}
}

// LatestWindow returns the latest window that started at or before t: the
// window containing t if there is one, else the last one that ended before t.
func LatestWindow(p Policy, t time.Time) Window { return p.window(p.index(t)) }

// PrevWindow returns the window before w's, for a window w of p.
func PrevWindow(p Policy, w Window) Window { return p.window(p.index(w.Start) - 1) }

// FollowingWindow returns the window after w's, for a window w of p.
func FollowingWindow(p Policy, w Window) Window { return p.window(p.index(w.Start) + 1) }

// WindowAt returns the window containing t, and false if t lies between two
// windows.
func WindowAt(p Policy, t time.Time) (Window, bool) {
	w := LatestWindow(p, t)
	return w, w.Contains(t)
}

// NextWindow returns the window containing now, or if now lies between two
// windows, the next one to start. `policy get` shows it as
// next_backup_window.
func NextWindow(p Policy, now time.Time) Window {
	k := p.index(now)
	if w := p.window(k); w.Contains(now) {
		return w
	}
	return p.window(k + 1)
}

// HostKey returns the key that places a host's start point inside its
// windows: its ID and name, so that a host re-registered under a new name or
// ID moves, and two hosts of one name in two repositories do not collide.
func HostKey(id int, name string) string { return strconv.Itoa(id) + "/" + name }

// StartOffset returns how far into each of its windows a host's backup
// starts: a whole number of minutes in [0, WindowLength()-StartMargin),
// derived from a hash of hostKey, so it is the same in every window and on
// every machine, and hosts spread over the window instead of all starting at
// the top of the hour.
func StartOffset(p Policy, hostKey string) time.Duration {
	span := p.WindowLength() - StartMargin
	if span < time.Minute {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(hostKey))
	sum := mix64(h.Sum64())
	return time.Duration(sum%uint64(span/time.Minute)) * time.Minute
}

// StartAt returns the point inside window w at which the host's backup
// becomes due.
func StartAt(p Policy, hostKey string, w Window) time.Time {
	return w.Start.Add(StartOffset(p, hostKey))
}

// mix64 is the finaliser of MurmurHash3: FNV-1a of short, similar keys such
// as "1/web-1" and "2/web-2" leaves its low bits poorly spread.
func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

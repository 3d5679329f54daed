package engine

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
)

// The memory budget. What a command holds in proportion to the repository
// (image indexes, the index of chunks, listings) is reserved from one
// budget per open repository before it is allocated, and released by
// what holds it when it lets go. A structure that would take the budget
// past its limit is refused with a *MemoryError, before it is read or
// decoded, so that what a command can reach follows from the setting and
// not from what a (hostile) repository holds.

// ErrMemory means a command would need more memory than the budget
// (Options.MaxMemory) allows.
var ErrMemory = errors.New("memory budget exceeded")

// MemoryError is a structure refused by the memory budget: What would
// take Need bytes while Held bytes of the Limit were held already.
type MemoryError struct {
	What              string
	Need, Held, Limit int64
}

func (e *MemoryError) Error() string {
	msg := fmt.Sprintf("%s would take %s of memory, over the memory budget of %s", e.What, MemText(e.Need), MemText(e.Limit))
	if e.Held > 0 {
		msg += fmt.Sprintf(" (%s in use by others)", MemText(e.Held))
	}
	return msg
}

// Unwrap makes errors.Is(err, ErrMemory) hold.
func (e *MemoryError) Unwrap() error { return ErrMemory }

// Bounds of the default budget: a quarter of the machine's memory, at
// least minDefaultMemory and at most maxDefaultMemory: enough for the index
// of about 9 million unique chunks as it loads, beside the images of the
// backup read, and below the 4 GiB of IDs of the largest image an image
// index can describe (docs/reliability.md, "Hostile inputs: the
// repository").
const (
	minDefaultMemory = 256 << 20
	maxDefaultMemory = 2 << 30
)

// DefaultMaxMemory is the budget when none is set: a quarter of the
// machine's physical memory, from 256 MiB to 2 GiB (2 GiB where it is not
// known).
func DefaultMaxMemory() int64 {
	p := physicalMemory()
	if p == 0 {
		return maxDefaultMemory // unknown: as on any machine of 8 GiB or more
	}
	return min(max(p/4, minDefaultMemory), maxDefaultMemory)
}

// physicalMemory is the machine's memory in bytes, or 0 when unknown.
func physicalMemory() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil || kib <= 0 {
				return 0
			}
			return kib << 10
		}
	}
	return 0
}

// MinMaxMemory is the smallest budget that can be set.
const MinMaxMemory = 1 << 20

// ParseMemory reads a memory size: a number of bytes, or a number with a
// unit: KiB, MiB, GiB, TiB (also K, M, G, T), or KB, MB, GB, TB (powers of
// 1000). Case does not matter; a space may come before the unit.
func ParseMemory(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	mult, ok := map[string]float64{"": 1, "b": 1,
		"k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gib": 1 << 30, "t": 1 << 40, "tib": 1 << 40,
		"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12}[unit]
	f, err := strconv.ParseFloat(num, 64)
	if !ok || err != nil || num == "" {
		return 0, fmt.Errorf("%q is no memory size: give bytes or a size such as 512MiB or 2GiB", s)
	}
	v := f * mult
	if v < MinMaxMemory || v > 1<<62 {
		return 0, fmt.Errorf("%q is out of range: give at least 1MiB", s)
	}
	return int64(v), nil
}

// MemText writes a memory size for people, in the largest binary unit
// that leaves at least 1 of it, with one decimal unless that is 0.
func MemText(n int64) string {
	units := []string{"bytes", "KiB", "MiB", "GiB", "TiB"}
	v, u := float64(n), 0
	for v >= 1024 && u < len(units)-1 {
		v /= 1024
		u++
	}
	if u == 0 {
		return strconv.FormatInt(n, 10) + " bytes"
	}
	return strings.TrimSuffix(strconv.FormatFloat(v, 'f', 1, 64), ".0") + " " + units[u]
}

// memBudget accounts the memory held at once in proportion to the
// repository. It is safe for concurrent use.
type memBudget struct {
	limit int64
	mu    sync.Mutex
	held  int64
	peak  int64 // the most held at once
	// kept are the reservations of the lists last returned to the
	// caller, by kind ("manifests", "hosts", "actions"): what a command
	// keeps of a list after it returns is counted until the next list of
	// the same kind starts (listAgain), the caller being taken to have let
	// go of the one before.
	kept map[string]*memHold
}

func newMemBudget(limit int64) *memBudget {
	if limit <= 0 {
		limit = DefaultMaxMemory()
	}
	return &memBudget{limit: limit}
}

// reserve takes n bytes for what, or refuses with a *MemoryError when
// that would pass the limit. The reservation is released by its release
// method; a reservation that is lost unreleased is released when the
// garbage collector finds it unreachable, so that a holder that forgets
// cannot shrink the budget for good.
func (b *memBudget) reserve(n int64, what string) (*memHold, error) {
	h := &memHold{b: b}
	if err := h.grow(n, what); err != nil {
		return nil, err
	}
	runtime.SetFinalizer(h, (*memHold).release)
	return h, nil
}

// listAgain gives back the reservation of the list of kind returned
// before, as a new list of that kind starts: the caller is taken to have
// let go of it, and a new list reserved beside it would need room for two.
func (b *memBudget) listAgain(kind string) {
	b.mu.Lock()
	old := b.kept[kind]
	delete(b.kept, kind)
	b.mu.Unlock()
	old.release()
}

// keep moves n bytes of h (at most what it holds) into the reservation of
// the list of kind the caller now keeps, in place of the list of that kind
// returned before. The rest of h stays with h.
func (b *memBudget) keep(kind string, h *memHold, n int64) {
	if h == nil {
		return
	}
	h.mu.Lock()
	n = min(max(n, 0), h.n)
	h.n -= n
	h.mu.Unlock()
	b.mu.Lock()
	old := b.kept[kind]
	if b.kept == nil {
		b.kept = map[string]*memHold{}
	}
	b.kept[kind] = &memHold{b: b, n: n}
	b.mu.Unlock()
	old.release()
}

// memHold is one reservation. A nil *memHold holds nothing, and its
// methods do nothing.
type memHold struct {
	b  *memBudget
	mu sync.Mutex
	n  int64
}

// grow adds n bytes to the reservation, or refuses with a *MemoryError
// that says what the structure would take in all (what it holds and n),
// and what others hold.
func (h *memHold) grow(n int64, what string) error {
	if h == nil || n <= 0 {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	b := h.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if n > b.limit-b.held {
		return &MemoryError{What: what, Need: h.n + n, Held: b.held - h.n, Limit: b.limit}
	}
	b.held += n
	b.peak = max(b.peak, b.held)
	h.n += n
	return nil
}

// size is what the reservation holds.
func (h *memHold) size() int64 {
	if h == nil {
		return 0
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}

// shrink gives back n bytes of the reservation (at most what it holds).
func (h *memHold) shrink(n int64) {
	if h == nil || n <= 0 {
		return
	}
	h.mu.Lock()
	n = min(n, h.n)
	h.n -= n
	h.mu.Unlock()
	h.b.mu.Lock()
	h.b.held -= n
	h.b.mu.Unlock()
}

// release gives back the whole reservation; it may be called more than
// once.
func (h *memHold) release() {
	if h == nil {
		return
	}
	h.mu.Lock()
	n := h.n
	h.n = 0
	h.mu.Unlock()
	h.b.mu.Lock()
	h.b.held -= n
	h.b.mu.Unlock()
}

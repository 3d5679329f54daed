package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/dropback/dropback/pkg/store"
)

// A scheduling pass that finds nothing to do leaves a hint, so that the
// passes after it (once a minute, from an agent) cost a few requests
// instead of reading every host and manifest. The hint only ever makes a
// pass skip work that keeps data (a backup taken later, retention applied
// later); it never decides a deletion. docs/format.md, "schedule/".
//
//	schedule/idle/<time>-<rand>     sealed JSON: at, until, skipped
//	schedule/changed/<time>-<rand>  empty: something a schedule depends on changed
//
// Whatever changes what a pass would decide (a host added, changed or
// removed, a backup taken, deleted or converted) writes a change marker
// after the change. A pass lists the markers before it reads anything, and
// writes a hint only when it found nothing to do; the hint covers the
// markers it listed, which it then deletes. A later pass trusts the newest
// hint while no marker is left, the store's clock and its own are before
// the hint's until, and at most IdleHintFor after the store's time of the
// hint: a marker that could not be written delays a backup by that much at
// most, and loses nothing.

// IdleHintFor is the longest a hint is trusted after it was written.
const IdleHintFor = 15 * time.Minute

// IdleHint is what an idle pass found: nothing due before Until, and why
// each host was skipped.
type IdleHint struct {
	At      time.Time     `json:"at"`
	Until   time.Time     `json:"until"`
	Skipped []IdleSkipped `json:"skipped"`
}

// IdleSkipped is one host an idle pass left alone, and why.
type IdleSkipped struct {
	HostID   int    `json:"host_id"`
	HostName string `json:"host_name"`
	Reason   string `json:"reason"`
}

// ChangeToken is what a pass saw of the change markers before it read the
// repository.
type ChangeToken struct {
	markers []string
	hints   []string
}

const (
	idlePrefix    = "schedule/idle/"
	changedPrefix = "schedule/changed/"
)

// NoteChange writes a change marker: something a scheduling pass depends on
// has changed. It is best effort: a marker that cannot be written delays
// the next backup by IdleHintFor at most.
func (r *Repo) NoteChange(ctx context.Context) {
	name := changedPrefix + r.now().UTC().Format("20060102T150405Z") + "-" + randomName()
	_ = r.st.Put(ctx, name, nil)
}

// Changes lists the change markers and hints, for a pass about to read the
// repository.
func (r *Repo) Changes(ctx context.Context) (*ChangeToken, error) {
	t := &ChangeToken{}
	for _, p := range []struct {
		prefix string
		into   *[]string
	}{{changedPrefix, &t.markers}, {idlePrefix, &t.hints}} {
		err := r.st.List(ctx, p.prefix, func(info store.Info) error {
			*p.into = append(*p.into, info.Name)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", p.prefix, err)
		}
	}
	sort.Strings(t.hints)
	return t, nil
}

// Idle returns the hint of an idle pass that still holds: no change marker
// is there, and now is before its until and within IdleHintFor of the
// store's time of it. Otherwise it returns nil, and the pass reads
// everything.
func (r *Repo) Idle(ctx context.Context) (*IdleHint, error) {
	t, err := r.Changes(ctx)
	if err != nil || len(t.markers) > 0 || len(t.hints) == 0 {
		return nil, err
	}
	name := t.hints[len(t.hints)-1]
	data, err := r.readObject(ctx, name, "schedule hint", maxIdleHintSize, -1)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, ErrCorrupt) {
		return nil, nil // replaced meanwhile, or damaged: read everything
	}
	if err != nil {
		return nil, err
	}
	info, err := r.st.Stat(ctx, name)
	if err != nil {
		return nil, nil
	}
	var h IdleHint
	if unseal(data, &h) != nil {
		return nil, nil
	}
	now := r.now()
	switch {
	case !now.Before(h.Until), !now.Before(info.ModTime.Add(IdleHintFor)),
		!now.Before(h.At.Add(IdleHintFor)), now.Before(h.At.Add(-clockSkew)):
		return nil, nil
	}
	return &h, nil
}

// PutIdle writes the hint of a pass that found nothing to do, having read
// the repository after t was taken, then deletes the markers and the hints
// that t saw: this hint covers them.
func (r *Repo) PutIdle(ctx context.Context, t *ChangeToken, h IdleHint) error {
	h.At = r.now().UTC()
	if h.Until.After(h.At.Add(IdleHintFor)) {
		h.Until = h.At.Add(IdleHintFor)
	}
	data, err := seal(h)
	if err != nil {
		return err
	}
	name := idlePrefix + h.At.Format("20060102T150405.000000000Z") + "-" + randomName()
	if err := r.st.Put(ctx, name, data); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	for _, n := range append(t.markers, t.hints...) {
		if err := r.st.Delete(ctx, n); err != nil {
			return fmt.Errorf("delete %s: %w", n, err)
		}
	}
	return nil
}

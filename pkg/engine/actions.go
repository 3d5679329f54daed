package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"
	"unicode/utf8"

	"github.com/dropback/dropback/pkg/store"
)

// ActionRecord is a job the engine ran: a backup, restore, convert or gc. It
// is stored as actions/<id>/<n>; each state change writes the next n.
type ActionRecord struct {
	ID           int        `json:"id"`
	N            int        `json:"n"`
	Type         string     `json:"type"`
	Status       string     `json:"status"`
	StartedAt    time.Time  `json:"started_at"`
	CompletedAt  *time.Time `json:"completed_at,omitempty"`
	ResourceID   int        `json:"resource_id"`
	ResourceType string     `json:"resource_type"`
	Error        string     `json:"error,omitempty"`
	// Runner is the process running the action, while it runs.
	Runner *processID `json:"runner,omitempty"`
}

// Action statuses.
const (
	ActionInProgress = "in-progress"
	ActionCompleted  = "completed"
	ActionErrored    = "errored"
)

func actionObject(id, n int) string { return fmt.Sprintf("actions/%010d/%010d", id, n) }

// StartAction records a job as in progress and returns it.
func (r *Repo) StartAction(ctx context.Context, typ, resourceType string, resourceID int) (*ActionRecord, error) {
	me := r.machine.Self()
	a := &ActionRecord{N: 1, Type: typ, Status: ActionInProgress, StartedAt: r.now().UTC().Truncate(time.Second),
		ResourceType: resourceType, ResourceID: resourceID, Runner: &me}
	id, err := r.allocate(ctx, []string{"actions"},
		func(id int) string { return actionObject(id, 1) },
		func(id int) ([]byte, error) {
			a.ID = id
			return json.Marshal(a)
		})
	if err != nil {
		return nil, fmt.Errorf("record %s action: %w", typ, err)
	}
	a.ID = id
	return a, nil
}

// FinishAction records the end of a job: completed when jobErr is nil,
// errored otherwise. resourceID, when not 0, replaces the resource (a backup
// learns its ID only at the end).
func (r *Repo) FinishAction(ctx context.Context, a *ActionRecord, resourceID int, jobErr error) error {
	now := r.now().UTC().Truncate(time.Second)
	if a.N >= MaxID {
		return noIDLeft(fmt.Sprintf("state of action %d", a.ID), "its state")
	}
	a.N++
	a.CompletedAt = &now
	a.Runner = nil
	a.Status = ActionCompleted
	if jobErr != nil {
		a.Status, a.Error = ActionErrored, clip(jobErr.Error(), maxActionError)
	}
	if resourceID != 0 {
		a.ResourceID = resourceID
	}
	data, err := json.Marshal(a)
	if err != nil {
		return err
	}
	if err := r.st.Put(ctx, actionObject(a.ID, a.N), data); err != nil {
		return fmt.Errorf("record the end of action %d: %w", a.ID, err)
	}
	return nil
}

// Action returns the latest state of one action. An action still in
// progress whose process has ended on this machine (killed, or the machine
// restarted) is errored: nothing will finish it.
func (r *Repo) Action(ctx context.Context, id int) (*ActionRecord, error) {
	var a *ActionRecord
	for n := 1; n <= MaxID; n++ {
		data, err := r.readObject(ctx, actionObject(id, n), "action record", maxActionSize, -1)
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		if errors.Is(err, ErrCorrupt) {
			return nil, fmt.Errorf("action %d is unreadable: %w", id, err)
		}
		if err != nil {
			return nil, fmt.Errorf("read action %d: %w", id, err)
		}
		var next ActionRecord
		if err := json.Unmarshal(data, &next); err != nil || next.ID != id {
			return nil, fmt.Errorf("%w: action %d is unreadable: state %d is not its record", ErrCorrupt, id, n)
		}
		a = &next
	}
	if a == nil {
		return nil, errorf(ErrNotFound, "no action with ID %d", id)
	}
	if a.Status == ActionInProgress && a.Runner != nil && ended(r.machine, *a.Runner) {
		a.Status = ActionErrored
		a.Error = fmt.Sprintf("abandoned: the dropback process running it (PID %d) ended before it finished", a.Runner.PID)
	}
	return a, nil
}

// Actions lists every action, newest first, but those whose records cannot
// be read (ActionsAndDamage names them).
func (r *Repo) Actions(ctx context.Context) ([]ActionRecord, error) {
	out, _, err := r.ActionsAndDamage(ctx)
	return out, err
}

// ActionsAndDamage lists every action, newest first, and the errors of the
// actions whose records cannot be read, by ID: one damaged record affects
// only its action.
func (r *Repo) ActionsAndDamage(ctx context.Context) ([]ActionRecord, map[int]error, error) {
	out, damaged, _, err := r.ActionsPage(ctx, 0, 0)
	return out, damaged, err
}

// ActionsPage lists one page of the actions, newest first: perPage of them
// from the page'th (from 1), or every one when perPage is 0. It reads only
// the records of that page, and returns how many actions there are in all.
func (r *Repo) ActionsPage(ctx context.Context, page, perPage int) ([]ActionRecord, map[int]error, int, error) {
	// The listing and the records read are reserved from the memory
	// budget as they come, and the records kept until the next list of
	// actions (see readManifests).
	r.mem.listAgain("actions")
	hold, err := r.mem.reserve(0, "")
	if err != nil {
		return nil, nil, 0, err
	}
	defer hold.release()
	latest, err := r.latestRevisions(ctx, "actions", &listCounter{hold: hold, what: "the listing of actions"})
	if err != nil {
		return nil, nil, 0, err
	}
	order := make([]int, 0, len(latest))
	for id := range latest {
		order = append(order, id)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(order)))
	total := len(order)
	if perPage > 0 {
		from := min(max(page-1, 0)*perPage, total)
		order = order[from:min(from+perPage, total)]
	}
	if err := hold.grow(int64(len(order))*actionMemory, fmt.Sprintf("the records of %d actions", len(order))); err != nil {
		return nil, nil, 0, err
	}
	out, damaged, err := r.readActions(ctx, order)
	if err == nil {
		r.mem.keep("actions", hold, int64(len(out))*actionMemory)
	}
	return out, damaged, total, err
}

// actionMemory estimates what a decoded action record holds (its error
// is kept to 4 KiB, most have none).
const actionMemory = 1 << 10

// readActions reads the latest state of each action of order, in that
// order.
func (r *Repo) readActions(ctx context.Context, order []int) ([]ActionRecord, map[int]error, error) {
	read := make([]*ActionRecord, len(order))
	errs := make([]error, len(order))
	err := r.forEach(ctx, len(order), func(ctx context.Context, i int) error {
		a, err := r.Action(ctx, order[i])
		switch {
		case errors.Is(err, ErrCorrupt):
			errs[i] = err
		case errors.Is(err, ErrNotFound):
			// Listed, but its first state is gone: no action is whole
			// without it.
			errs[i] = errorf(ErrCorrupt, "action %d is unreadable: its first state is missing", order[i])
		case err != nil:
			return err
		default:
			read[i] = a
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	out := make([]ActionRecord, 0, len(order))
	damaged := map[int]error{}
	for i, a := range read {
		if errs[i] != nil {
			damaged[order[i]] = errs[i]
			continue
		}
		out = append(out, *a)
	}
	return out, damaged, nil
}

// maxActionError is the most of an error an action record keeps, so that a
// record stays far below maxActionSize.
const maxActionError = 4 << 10

// clip shortens s to at most n bytes, on a character boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

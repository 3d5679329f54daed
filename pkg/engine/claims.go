package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dropback/dropback/pkg/store"
)

// Scheduled backups are claimed per attempt, so that of several agents
// sharing a repository exactly one runs each attempt, a failed attempt is
// retried, and an attempt whose process died is taken over:
//
//	claims/<host>/<window-start>.<attempt>          who made the attempt
//	claims/<host>/<window-start>.<attempt>.outcome  how it ended

// attemptRecord is the content of an attempt.
type attemptRecord struct {
	Op string    `json:"op"`
	At time.Time `json:"at"`
	processID
}

// Outcome is how an attempt at a scheduled backup ended.
type Outcome struct {
	At       time.Time `json:"at"`
	BackupID int       `json:"backup_id,omitempty"`
	Error    string    `json:"error,omitempty"`
}

// Claim is one attempt at the scheduled backup of a host for one window.
type Claim struct {
	HostID  int
	Window  time.Time
	Attempt int
}

func claimPrefix(hostID int, window time.Time) string {
	return fmt.Sprintf("claims/%010d/%d.", hostID, window.Unix())
}

func (c Claim) name() string {
	return fmt.Sprintf("%s%04d", claimPrefix(c.HostID, c.Window), c.Attempt)
}
func (c Claim) outcomeName() string { return c.name() + ".outcome" }

// retryAfter is how long a pass waits after the nth failed attempt before
// the next: 2, 4, 8 … minutes, at most an hour.
func retryAfter(n int) time.Duration {
	return min(time.Minute<<min(n, 6), time.Hour)
}

// Wait says why a pass makes no attempt now.
type Wait struct {
	// Reason is for people.
	Reason string
	// Failed is set when the last attempt failed and its retry is not due
	// yet.
	Failed bool
}

// ClaimBackup decides whether this pass makes the next attempt at the
// scheduled backup of a host for the window starting at window, on behalf
// of op. It returns the claim when it does, or why not: an attempt is
// running elsewhere, or the last one failed and its retry is not due yet.
func (r *Repo) ClaimBackup(ctx context.Context, op *Op, hostID int, window time.Time) (*Claim, *Wait, error) {
	for {
		last, err := r.lastAttempt(ctx, hostID, window)
		if err != nil {
			return nil, nil, err
		}
		if last.Attempt > 0 {
			wait, err := r.attemptBusy(ctx, last)
			if err != nil || wait != nil {
				return nil, wait, err
			}
		}
		next := Claim{HostID: hostID, Window: window, Attempt: last.Attempt + 1}
		data, _ := json.Marshal(attemptRecord{Op: op.ID(), At: r.now().UTC(), processID: r.machine.Self()})
		err = r.st.Put(ctx, next.name(), data)
		if err == nil {
			return &next, nil, nil
		}
		if !errors.Is(err, store.ErrExists) {
			return nil, nil, fmt.Errorf("claim the backup of host %d: %w", hostID, err)
		}
		// Another pass took this attempt first: look again.
	}
}

// lastAttempt finds the newest attempt for a window: the highest listed,
// then the next ones a lagging listing missed, found by name.
func (r *Repo) lastAttempt(ctx context.Context, hostID int, window time.Time) (Claim, error) {
	c := Claim{HostID: hostID, Window: window}
	prefix := claimPrefix(hostID, window)
	err := r.st.List(ctx, prefix, func(info store.Info) error {
		if n, err := strconv.Atoi(strings.TrimPrefix(info.Name, prefix)); err == nil && n > c.Attempt {
			c.Attempt = n
		}
		return nil
	})
	if err != nil {
		return c, fmt.Errorf("list claims: %w", err)
	}
	for {
		next := c
		next.Attempt++
		_, err := r.st.Stat(ctx, next.name())
		if errors.Is(err, store.ErrNotFound) {
			return c, nil
		}
		if err != nil {
			return c, fmt.Errorf("read claim: %w", err)
		}
		c = next
	}
}

// attemptBusy returns why a new attempt may not be made after c, or nil when
// it may: c failed long enough ago, or its operation is gone.
func (r *Repo) attemptBusy(ctx context.Context, c Claim) (*Wait, error) {
	out, err := r.readOutcome(ctx, c)
	if err != nil {
		return nil, err
	}
	now := r.now()
	if out != nil {
		if out.Error == "" {
			return &Wait{Reason: fmt.Sprintf("attempt %d took backup %d", c.Attempt, out.BackupID)}, nil
		}
		if next := r.storeTimeOf(ctx, c.outcomeName(), out.At).Add(retryAfter(c.Attempt)); now.Before(next) {
			return &Wait{Failed: true, Reason: fmt.Sprintf("the backup failed at %s: %s; the next attempt is due at %s",
				out.At.UTC().Format(time.RFC3339), out.Error, next.UTC().Format(time.RFC3339))}, nil
		}
		return nil, nil
	}
	data, err := r.st.Get(ctx, c.name(), 0, maxMarker)
	if err != nil && !errors.Is(err, ErrCorrupt) {
		return nil, fmt.Errorf("read claim: %w", err)
	}
	var rec attemptRecord
	if err != nil || json.Unmarshal(data, &rec) != nil || rec.Op == "" {
		// Judged by the store's time alone: held for as long as a
		// marker is, then taken over; a failure of the pass meanwhile.
		made := r.storeTimeOf(ctx, c.name(), time.Time{})
		if now.Sub(made) <= StaleAfter+clockSkew {
			return &Wait{Failed: true, Reason: fmt.Sprintf("the record of attempt %d is unreadable; it is taken over at %s",
				c.Attempt, made.Add(StaleAfter+clockSkew).UTC().Format(time.RFC3339))}, nil
		}
		return nil, nil
	}
	ops, err := r.runningOps(ctx)
	if err != nil {
		return nil, err
	}
	busy := &Wait{Reason: fmt.Sprintf("a backup is running on %s (PID %d) since %s", rec.Hostname, rec.PID, rec.At.UTC().Format(time.RFC3339))}
	if _, running := ops[rec.Op]; running {
		return busy, nil
	}
	if !ended(r.machine, rec.processID) && now.Sub(r.storeTimeOf(ctx, c.name(), rec.At)) <= StaleAfter+clockSkew {
		return busy, nil // too young to judge by its marker, which a listing may miss
	}
	return nil, nil // its process is gone: take over
}

// storeTimeOf returns the earlier of at (a time a record gives, by its
// writer's clock; zero for none) and the store's time of the object name:
// a writer whose clock is ahead makes others wait no longer for it.
func (r *Repo) storeTimeOf(ctx context.Context, name string, at time.Time) time.Time {
	info, err := r.st.Stat(ctx, name)
	switch {
	case err != nil:
		if at.IsZero() {
			return r.now() // nothing to judge by: as if written now
		}
		return at
	case at.IsZero() || info.ModTime.Before(at):
		return info.ModTime
	}
	return at
}

func (r *Repo) readOutcome(ctx context.Context, c Claim) (*Outcome, error) {
	data, err := r.st.Get(ctx, c.outcomeName(), 0, maxMarker)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil && !errors.Is(err, ErrCorrupt) {
		return nil, fmt.Errorf("read the outcome of a claim: %w", err)
	}
	// One that is no object (a FIFO, a link) reads as one that does not
	// parse, so that it affects only its host.
	var out Outcome
	if err != nil || json.Unmarshal(data, &out) != nil {
		return &Outcome{At: time.Unix(0, 0), Error: "the outcome record is unreadable"}, nil
	}
	return &out, nil
}

// Finish records how an attempt ended: the backup it took, or the error.
func (r *Repo) Finish(ctx context.Context, c *Claim, backupID int, jobErr error) error {
	out := Outcome{At: r.now().UTC(), BackupID: backupID}
	if jobErr != nil {
		out.Error = jobErr.Error()
	}
	data, _ := json.Marshal(out)
	if err := r.st.Put(ctx, c.outcomeName(), data); err != nil && !errors.Is(err, store.ErrExists) {
		return fmt.Errorf("record the outcome of the scheduled backup of host %d: %w", c.HostID, err)
	}
	return nil
}

// ScheduleError is a host's last scheduled backup that failed.
type ScheduleError struct {
	At    time.Time
	Error string
}

// ScheduleErrors returns, for each host whose newest attempt at a scheduled
// backup failed, how.
func (r *Repo) ScheduleErrors(ctx context.Context) (map[int]ScheduleError, error) {
	type newest struct {
		window, attempt int64
		outcome         bool
	}
	last := map[int]newest{}
	err := r.st.List(ctx, "claims/", func(info store.Info) error {
		parts := strings.Split(info.Name, "/")
		if len(parts) != 3 {
			return nil
		}
		host, err1 := strconv.Atoi(parts[1])
		rest, isOutcome := strings.CutSuffix(parts[2], ".outcome")
		w, num, _ := strings.Cut(rest, ".")
		window, err2 := strconv.ParseInt(w, 10, 64)
		attempt, err3 := strconv.ParseInt(num, 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			return nil
		}
		n, cur := newest{window, attempt, isOutcome}, last[host]
		if n.window > cur.window || n.window == cur.window && (n.attempt > cur.attempt || n.attempt == cur.attempt && isOutcome) {
			last[host] = n
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list claims: %w", err)
	}
	out := map[int]ScheduleError{}
	for host, n := range last {
		if !n.outcome {
			continue
		}
		o, err := r.readOutcome(ctx, Claim{HostID: host, Window: time.Unix(n.window, 0), Attempt: int(n.attempt)})
		if err != nil {
			return nil, err
		}
		if o != nil && o.Error != "" {
			out[host] = ScheduleError{At: o.At, Error: o.Error}
		}
	}
	return out, nil
}

// PruneClaims deletes claims for windows that started before cutoff.
func (r *Repo) PruneClaims(ctx context.Context, cutoff time.Time) error {
	var old []string
	err := r.st.List(ctx, "claims/", func(info store.Info) error {
		parts := strings.Split(info.Name, "/")
		if len(parts) != 3 {
			return nil
		}
		w, _, _ := strings.Cut(parts[2], ".")
		unix, err := strconv.ParseInt(w, 10, 64)
		if err == nil && time.Unix(unix, 0).Before(cutoff) {
			old = append(old, info.Name)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list claims: %w", err)
	}
	for _, name := range old {
		if err := r.st.Delete(ctx, name); err != nil {
			return fmt.Errorf("prune claims: %w", err)
		}
	}
	return nil
}

package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dropback/dropback/pkg/store"
)

// The gc lease makes gc exclusive without a lock file: generations of
// create-once objects, gc/lease/<gen>. Whoever creates generation gen+1
// holds the lease, and may create it only once generation gen was released
// or its holder went StaleAfter without refreshing its operation marker.

// ErrLocked means another process holds the gc lease.
var ErrLocked = errors.New("repository locked")

// LockedError names the holder of the lease.
type LockedError struct {
	Holder string // "gc by host (PID n) since time"
}

func (e *LockedError) Error() string {
	return "another gc is running on this repository: " + e.Holder
}

func (e *LockedError) Unwrap() error { return ErrLocked }

// leaseRecord is the content of gc/lease/<gen>.
type leaseRecord struct {
	Op    string    `json:"op"`
	Since time.Time `json:"since"`
	processID
}

func leaseObject(gen int) string    { return fmt.Sprintf("gc/lease/%010d", gen) }
func releasedObject(gen int) string { return leaseObject(gen) + ".released" }

// keptLeases is how many of the newest lease generations are never deleted,
// so that the next generation is always found.
const keptLeases = 10

// acquireLease takes the gc lease for op, waiting up to wait for a holder
// to let go. It returns the generation held.
func (r *Repo) acquireLease(ctx context.Context, op *Op, wait time.Duration) (int, error) {
	deadline := r.now().Add(wait)
	for {
		gen, err := r.newestLease(ctx)
		if err != nil {
			return 0, err
		}
		holder, err := r.leaseHolder(ctx, gen)
		if err != nil {
			return 0, err
		}
		if holder == "" {
			rec := leaseRecord{Op: op.ID(), Since: r.now().UTC(), processID: r.machine.Self()}
			data, _ := json.Marshal(rec)
			err := r.st.Put(ctx, leaseObject(gen+1), data)
			if err == nil {
				r.pruneLeases(ctx, gen+1)
				return gen + 1, nil
			}
			if !errors.Is(err, store.ErrExists) {
				return 0, fmt.Errorf("take the gc lease: %w", err)
			}
			continue // another gc took it first: look again
		}
		if !r.now().Before(deadline) {
			return 0, &LockedError{Holder: holder}
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-r.after(min(10*time.Second, deadline.Sub(r.now()))):
		}
	}
}

// newestLease returns the highest lease generation: the highest listed, then
// the next ones a lagging listing missed, found by name.
func (r *Repo) newestLease(ctx context.Context) (int, error) {
	gen := 0
	err := r.st.List(ctx, "gc/lease/", func(info store.Info) error {
		// A name of other than ten digits is no generation: one planted
		// near the highest int would overflow the next.
		if n, ok := parseDigits(strings.TrimPrefix(info.Name, "gc/lease/")); ok && n > gen {
			gen = n
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("list gc leases: %w", err)
	}
	for {
		if gen >= MaxID {
			return 0, noIDLeft("gc lease generation", "gc lease generation")
		}
		_, err := r.st.Stat(ctx, leaseObject(gen+1))
		if errors.Is(err, store.ErrNotFound) {
			return gen, nil
		}
		if err != nil {
			return 0, fmt.Errorf("read gc lease: %w", err)
		}
		gen++
	}
}

// leaseHolder describes who holds generation gen, or returns "" when it is
// free: released, or older than StaleAfter with its holder's operation no
// longer running. Generation 0 is always free.
func (r *Repo) leaseHolder(ctx context.Context, gen int) (string, error) {
	if gen == 0 {
		return "", nil
	}
	if _, err := r.st.Stat(ctx, releasedObject(gen)); err == nil {
		return "", nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("read gc lease: %w", err)
	}
	info, err := r.st.Stat(ctx, leaseObject(gen))
	if err != nil {
		return "", fmt.Errorf("read gc lease: %w", err)
	}
	data, err := r.st.Get(ctx, leaseObject(gen), 0, maxMarker)
	if err != nil {
		return "", fmt.Errorf("read gc lease: %w", err)
	}
	var rec leaseRecord
	who := fmt.Sprintf("lease %s, unreadable", leaseObject(gen))
	if json.Unmarshal(data, &rec) == nil && rec.Op != "" {
		who = fmt.Sprintf("gc by %s (PID %d) since %s", rec.Hostname, rec.PID, rec.Since.UTC().Format(time.RFC3339))
	}
	ops, err := r.runningOps(ctx)
	if err != nil {
		return "", err
	}
	if _, running := ops[rec.Op]; running {
		return who, nil
	}
	if rec.Op != "" && ended(r.machine, rec.processID) {
		return "", nil // its process ended here: no need to wait
	}
	age := r.now().Sub(info.ModTime)
	if since := r.now().Sub(rec.Since); since < age {
		age = since
	}
	if age <= StaleAfter+clockSkew {
		return who, nil // too young to judge by its marker, which a listing may miss
	}
	return "", nil
}

// releaseLease lets go of generation gen.
func (r *Repo) releaseLease(ctx context.Context, gen int) {
	_ = r.st.Put(context.WithoutCancel(ctx), releasedObject(gen), nil)
}

// pruneLeases deletes generations below the newest keptLeases, and their
// release markers.
func (r *Repo) pruneLeases(ctx context.Context, held int) {
	for gen := held - keptLeases; gen > 0; gen-- {
		if _, err := r.st.Stat(ctx, leaseObject(gen)); errors.Is(err, store.ErrNotFound) {
			return // pruned before
		}
		_ = r.st.Delete(ctx, releasedObject(gen))
		_ = r.st.Delete(ctx, leaseObject(gen))
	}
}

package engine

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dropback/dropback/pkg/store"
)

// Claim takes the scheduled backup of a host for the window starting at
// windowStart, create-once, so that of several agents sharing a repository
// exactly one runs it. It reports false when another agent claimed it first.
func (r *Repo) Claim(ctx context.Context, hostID int, windowStart time.Time) (bool, error) {
	name := fmt.Sprintf("claims/%010d/%d", hostID, windowStart.Unix())
	err := r.st.Put(ctx, name, []byte(r.now().UTC().Format(time.RFC3339)+"\n"))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, store.ErrExists):
		return false, nil
	default:
		return false, fmt.Errorf("claim the backup of host %d: %w", hostID, err)
	}
}

// PruneClaims deletes claims for windows that started before cutoff.
func (r *Repo) PruneClaims(ctx context.Context, cutoff time.Time) error {
	var old []string
	err := r.st.List(ctx, "claims/", func(info store.Info) error {
		unix, err := strconv.ParseInt(info.Name[strings.LastIndex(info.Name, "/")+1:], 10, 64)
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

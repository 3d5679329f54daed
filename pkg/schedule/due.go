package schedule

import "time"

// Decision is what Due decides for one host at one moment.
type Decision struct {
	// Due reports whether a backup should be taken now.
	Due bool `json:"due"`
	// MakeUp reports that the backup makes up a window that passed without
	// one (the machine was off, or no pass ran in it).
	MakeUp bool `json:"make_up"`
	// Window is, when Due, the window the backup is for: the current one, or
	// for a make-up the missed one. Otherwise it is the window in which the
	// next backup will be due.
	Window Window `json:"window"`
	// At is, when Due, the moment the backup became due in Window. Otherwise
	// it is the earliest moment a backup will be due if none is taken before
	// then: an agent can sleep until the earliest At of its hosts.
	At time.Time `json:"at"`
	// Reason says why, in a few words, for logs and --trace.
	Reason string `json:"reason"`
}

// Due decides whether the host with hostKey (see HostKey) should be backed up
// now under policy p.
//
// lastBackup is the time of the host's newest backup, zero if it has none;
// any backup counts, scheduled or on-demand. enabledAt is when backups were
// enabled for the host (zero: always); windows that ended before it are owed
// nothing.
//
// The rules, each window on its own:
//   - A window is satisfied by a backup taken in it or after it.
//   - In a window that is not satisfied, a backup is due from the host's start
//     point (StartAt) to the window's end. Enabled in the middle of a window,
//     past the start point, a backup is due at once.
//   - A window that ended unsatisfied was missed. The next pass makes it up
//     with one backup, however many windows were missed before it: only the
//     latest window is ever owed. A pass inside the following window but
//     before its start point makes it up too; that backup then satisfies the
//     following window as well.
func Due(p Policy, hostKey string, lastBackup, enabledAt, now time.Time) Decision {
	now = now.UTC()
	if now.Before(enabledAt) {
		next := NextWindow(p, enabledAt)
		return wait(next, later(StartAt(p, hostKey, next), enabledAt), "backups are enabled from "+enabledAt.UTC().Format(time.RFC3339))
	}
	owed := func(w Window) bool { return enabledAt.Before(w.End) }
	satisfied := func(w Window) bool { return !lastBackup.IsZero() && !lastBackup.Before(w.Start) }

	w := LatestWindow(p, now)
	start := StartAt(p, hostKey, w)
	switch {
	case satisfied(w):
		next := FollowingWindow(p, w)
		return wait(next, StartAt(p, hostKey, next), "a backup was taken in the window "+w.String())
	case !owed(w):
		next := FollowingWindow(p, w)
		return wait(next, StartAt(p, hostKey, next), "backups were enabled after the window "+w.String())
	case !w.Contains(now):
		return Decision{Due: true, MakeUp: true, Window: w, At: w.End, Reason: "the window " + w.String() + " was missed"}
	case !now.Before(start):
		return Decision{Due: true, Window: w, At: later(start, enabledAt), Reason: "inside the window " + w.String()}
	}
	// Inside w, before the start point.
	if prev := PrevWindow(p, w); owed(prev) && !satisfied(prev) {
		return Decision{Due: true, MakeUp: true, Window: prev, At: prev.End, Reason: "the window " + prev.String() + " was missed"}
	}
	return wait(w, start, "waiting for the start point "+start.Format(time.RFC3339))
}

func wait(w Window, at time.Time, reason string) Decision {
	return Decision{Window: w, At: at, Reason: reason}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b.UTC()
	}
	return a
}

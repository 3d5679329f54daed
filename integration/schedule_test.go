package integration

// Scheduled backups on the engine, driven through the binary: policies and
// their errors, disable, convert to snapshot, prune, gc beside a backup, and
// the agent's clean stop.

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func (e *localEnv) policyJSON(host string) map[string]any {
	e.t.Helper()
	var v map[string]any
	e.json(&v, "policy", "get", host)
	return v
}

func TestLocalPolicyErrorsListValidValuesAndChangeNothing(t *testing.T) {
	e := newLocal(t)
	disk := filepath.Join(e.dir, "disk.img")
	makeDisk(t, disk, 4*mib, 1, part{0, mib, "text"})
	e.ok("hosts", "add", "web-1", "--disk", disk)
	e.ok("backups", "enable", "web-1", "--plan", "weekly", "--weekday", "SUN", "--hour", "4")
	before := e.policyJSON("web-1")

	cases := []struct {
		args []string
		want string
	}{
		{[]string{"policy", "set", "web-1", "--hour", "5"}, "0, 4, 8, 12, 16, 20"},
		{[]string{"policy", "set", "web-1", "--weekday", "FUNDAY"}, "SUN, MON, TUE, WED, THU, FRI, SAT"},
		{[]string{"policy", "set", "web-1", "--plan", "daily", "--weekday", "MON"}, "weekly"},
		{[]string{"policy", "set", "web-1", "--retention-days", "0"}, "1 to 365"},
		{[]string{"policy", "set", "web-1", "--plan", "hourly"}, "daily"},
		{[]string{"backups", "enable", "web-1", "--hour", "5"}, "0, 4, 8, 12, 16, 20"},
		{[]string{"policy", "set", "web-1"}, "--plan"},
	}
	for _, tc := range cases {
		r := e.run(tc.args...)
		assert.Equal(t, 2, r.code, "%v: a bad value is a usage error", tc.args)
		assert.Contains(t, r.stderr, tc.want, "%v lists the valid values", tc.args)
		assert.Equal(t, before, e.policyJSON("web-1"), "%v changed the policy", tc.args)
	}
}

func TestLocalPolicyJSONUsesDigitalOceanNames(t *testing.T) {
	e := newLocal(t)
	disk := filepath.Join(e.dir, "disk.img")
	makeDisk(t, disk, 4*mib, 1, part{0, mib, "text"})
	e.ok("hosts", "add", "web-1", "--disk", disk)
	e.ok("backups", "enable", "web-1", "--plan", "weekly", "--weekday", "TUE", "--hour", "16")

	p := e.policyJSON("web-1")
	for _, k := range []string{"host_id", "backup_enabled", "backup_policy", "next_backup_window"} {
		assert.Contains(t, p, k)
	}
	assert.Equal(t, true, p["backup_enabled"])
	pol := p["backup_policy"].(map[string]any)
	assert.Equal(t, map[string]any{"plan": "weekly", "weekday": "TUE", "hour": 16.0,
		"window_length_hours": 4.0, "retention_period_days": 28.0}, pol)
	win := p["next_backup_window"].(map[string]any)
	start, err := time.Parse(time.RFC3339, win["start"].(string))
	require.NoError(t, err)
	end, err := time.Parse(time.RFC3339, win["end"].(string))
	require.NoError(t, err)
	assert.Equal(t, time.Tuesday, start.Weekday())
	assert.Equal(t, 16, start.Hour())
	assert.Equal(t, 4*time.Hour, end.Sub(start))

	var list []map[string]any
	e.json(&list, "policy", "list")
	require.Len(t, list, 1)
	assert.Contains(t, list[0], "backup_policy")

	var supported []map[string]any
	e.json(&supported, "policy", "supported")
	names := []string{}
	for _, s := range supported {
		names = append(names, s["name"].(string))
		for _, k := range []string{"possible_window_starts", "possible_days", "window_length_hours", "retention_period_days"} {
			assert.Contains(t, s, k)
		}
	}
	assert.Equal(t, []string{"daily", "weekly", "intra_daily_12h", "intra_daily_6h", "intra_daily_4h"}, names)
}

func TestLocalDisableAndSnapshots(t *testing.T) {
	e := newLocal(t)
	disk := filepath.Join(e.dir, "disk.img")
	makeDisk(t, disk, 8*mib, 1, part{0, 4 * mib, "random"})
	e.ok("hosts", "add", "web-1", "--disk", disk)
	e.ok("backups", "enable", "web-1")
	first := e.create("web-1")
	firstSum := sha(t, disk)
	makeDisk(t, disk, 8*mib, 2, part{0, mib, "random"})
	e.create("web-1")

	// Without a decision, disable changes nothing.
	r := e.run("backups", "disable", "web-1")
	assert.NotEqual(t, 0, r.code)
	assert.Contains(t, r.stderr, "--keep-backups")
	assert.Equal(t, true, e.policyJSON("web-1")["backup_enabled"])

	e.ok("backups", "convert", fmt.Sprint(first.ID))
	var snaps, backups []backupJSON
	e.json(&snaps, "snapshots", "list", "web-1")
	require.Len(t, snaps, 1)
	assert.Equal(t, "snapshot", snaps[0].Type)
	e.json(&backups, "backups", "list", "web-1")
	assert.Len(t, backups, 1, "a converted backup leaves the backups list")

	e.ok("backups", "disable", "web-1", "--keep-backups")
	assert.Equal(t, false, e.policyJSON("web-1")["backup_enabled"])
	e.json(&backups, "backups", "list", "web-1")
	assert.Len(t, backups, 1, "--keep-backups keeps them")

	e.ok("backups", "enable", "web-1")
	e.ok("backups", "disable", "web-1", "--force")
	e.json(&backups, "backups", "list", "web-1")
	assert.Empty(t, backups, "--force deletes the backups")
	e.json(&snaps, "snapshots", "list", "web-1")
	assert.Len(t, snaps, 1, "the snapshot survives disable")

	e.ok("hosts", "remove", "web-1", "--force")
	e.json(&snaps, "snapshots", "list")
	require.Len(t, snaps, 1, "the snapshot survives hosts remove")
	out := filepath.Join(e.dir, "snap.img")
	e.ok("backups", "restore", "web-1", fmt.Sprint(first.ID), "--to", out)
	assert.Equal(t, firstSum, sha(t, out), "a snapshot of a removed host restores byte-identical")

	e.ok("snapshots", "delete", fmt.Sprint(first.ID), "--force")
	e.json(&snaps, "snapshots", "list")
	assert.Empty(t, snaps)
}

type statsJSON struct {
	StoredBytes    int64 `json:"stored_bytes"`
	ReclaimedBytes int64 `json:"reclaimed_bytes"`
	Backups        int   `json:"backups"`
}

func TestLocalPruneAndGC(t *testing.T) {
	e := newLocal(t)
	disk := filepath.Join(e.dir, "disk.img")
	makeDisk(t, disk, 16*mib, 1, part{0, 16 * mib, "random"})
	e.ok("hosts", "add", "web-1", "--disk", disk)
	day := time.Date(2026, 10, 1, 4, 30, 0, 0, time.UTC)
	sums := map[int]string{}
	for i := range 30 {
		makeDisk(t, disk, 16*mib, uint64(100+i), part{int64(i%16) * mib, mib, "random"})
		b := backupAt(e, "web-1", day.AddDate(0, 0, i))
		sums[b.ID] = sha(t, disk)
	}
	var before statsJSON
	e.json(&before, "repo", "stats")

	var dry []backupJSON
	e.json(&dry, "backups", "prune", "web-1", "--keep-daily", "7", "--keep-weekly", "4", "--dry-run")
	var removed []backupJSON
	e.json(&removed, "backups", "prune", "web-1", "--keep-daily", "7", "--keep-weekly", "4", "--force")
	assert.Equal(t, dry, removed, "--dry-run lists what prune deletes")
	var kept []backupJSON
	e.json(&kept, "backups", "list", "web-1")
	// The last 7 days (24-30 October), and the newest of each of the last 4
	// ISO weeks: 30 and 25 October are kept already, 18 and 11 join them.
	assert.Len(t, kept, 9)
	assert.Len(t, removed, 21)

	e.ok("repo", "gc", "--min-age", "0")
	var after statsJSON
	e.json(&after, "repo", "stats")
	assert.Less(t, after.StoredBytes, before.StoredBytes, "gc after prune frees space")
	assert.Positive(t, after.ReclaimedBytes, "repo stats shows what gc reclaimed")
	for _, b := range kept {
		out := filepath.Join(e.dir, "out.img")
		e.ok("backups", "restore", "web-1", fmt.Sprint(b.ID), "--to", out, "--force")
		assert.Equal(t, sums[b.ID], sha(t, out), "backup %d after gc", b.ID)
	}
}

func backupAt(e *localEnv, host string, at time.Time) backupJSON {
	e.t.Helper()
	var out struct {
		Backup backupJSON `json:"backup"`
	}
	e.json(&out, "backups", "create", host, "--time", at.Format(time.RFC3339))
	return out.Backup
}

// TestLocalBackupAndGCAtOnce runs a backup and a gc in two processes at the
// same time, several rounds, with garbage for the gc to find each time.
func TestLocalBackupAndGCAtOnce(t *testing.T) {
	e := newLocal(t)
	a, b := filepath.Join(e.dir, "a.img"), filepath.Join(e.dir, "b.img")
	makeDisk(t, a, 48*mib, 1, part{0, 48 * mib, "random"})
	makeDisk(t, b, 48*mib, 2, part{0, 48 * mib, "text"})
	e.ok("hosts", "add", "web-1", "--disk", a)
	e.ok("hosts", "add", "db-1", "--disk", b)
	want := map[int]string{}
	for round := range 4 {
		e.create("db-1")
		makeDisk(t, a, 48*mib, uint64(10+round), part{int64(round*8) * mib, 8 * mib, "random"})
		var wg sync.WaitGroup
		var backup, gc result
		wg.Add(2)
		go func() { defer wg.Done(); backup = e.run("backups", "create", "web-1", "-o", "json") }()
		go func() {
			defer wg.Done()
			gc = e.run("repo", "gc", "--min-age", "0")
		}()
		wg.Wait()
		require.Equal(t, 0, backup.code, backup.stderr)
		require.Equal(t, 0, gc.code, gc.stderr)
		var res struct {
			Backup backupJSON `json:"backup"`
		}
		require.NoError(t, json.Unmarshal([]byte(backup.stdout), &res))
		want[res.Backup.ID] = sha(t, a)
		// Delete the db-1 backup so the next gc has packs to reclaim.
		e.ok("backups", "prune", "db-1", "--keep-daily", "1", "--force")
	}
	e.ok("repo", "gc", "--min-age", "0")
	for id, sum := range want {
		out := filepath.Join(e.dir, "out.img")
		e.ok("backups", "restore", "web-1", fmt.Sprint(id), "--to", out, "--force")
		assert.Equal(t, sum, sha(t, out), "backup %d taken beside a gc", id)
	}
	var v verifyJSON
	e.json(&v, "backups", "verify")
	assert.Empty(t, v.Problems)
}

func TestLocalAgentStopsCleanlyOnSIGTERM(t *testing.T) {
	e := newLocal(t)
	disk := filepath.Join(e.dir, "disk.img")
	makeDisk(t, disk, 4*mib, 1, part{0, mib, "text"})
	e.ok("hosts", "add", "web-1", "--disk", disk)
	e.ok("backups", "enable", "web-1")
	// SIGTERM once the agent has made a pass, so that it is known to be
	// in its loop rather than still starting.
	a := startAgent(t, e)
	for deadline := time.Now().Add(20 * time.Second); a.passes() == 0; time.Sleep(10 * time.Millisecond) {
		require.True(t, time.Now().Before(deadline), "the agent made no pass: %s", a.stderr.String())
	}
	a.stop(t)
	var v verifyJSON
	e.json(&v, "backups", "verify")
	assert.Empty(t, v.Problems)
}

package integration

// Crash safety: the binary is killed with SIGKILL at a random moment of
// `backups create`, `backups convert`, retention (`run --due`) and
// `repo gc`. After each kill every backup listed before it still restores
// byte-identical (retention may have deleted the expired ones, nothing
// else), `backups verify` is clean, and the same command run again succeeds
// with no manual step.

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var crashSeeds = flag.Int("crash.seeds", 30, "seeds of the crash test; each kills four operations")

// shmDir is a scratch directory on tmpfs when there is one: the crash and
// concurrency tests write gigabytes in all, and fsync on a real disk would
// only slow them down.
func shmDir(t *testing.T) string {
	t.Helper()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "dropback-it-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

// newShmLocal is newLocal on tmpfs.
func newShmLocal(t *testing.T) *localEnv {
	t.Helper()
	return initLocal(t, shmDir(t))
}

// listed returns every backup and snapshot of the repository by ID.
func (e *localEnv) listed() map[int]backupJSON {
	e.t.Helper()
	out := map[int]backupJSON{}
	for _, verb := range []string{"backups", "snapshots"} {
		var list []backupJSON
		e.json(&list, verb, "list")
		for _, b := range list {
			out[b.ID] = b
		}
	}
	return out
}

// verifyClean runs `backups verify` and fails unless every backup is ok and
// nothing else is damaged.
func (e *localEnv) verifyClean(when string) {
	e.t.Helper()
	r := e.run("backups", "verify", "-o", "json")
	var v verifyJSON
	require.NoError(e.t, json.Unmarshal([]byte(r.stdout), &v), "%s: verify output %q, stderr %q", when, r.stdout, r.stderr)
	for _, b := range v.Backups {
		require.Equal(e.t, "ok", b.Status, "%s: verify says backup %d is %s: %v", when, b.ID, b.Status, v.Problems)
	}
	require.Empty(e.t, v.Problems, "%s: verify found problems", when)
	require.Equal(e.t, 0, r.code, "%s: verify exit code; stderr %s", when, r.stderr)
}

// restores checks that backup b restores to a new file with content sum.
func (e *localEnv) restores(b backupJSON, sum string, when string) {
	e.t.Helper()
	out := filepath.Join(e.dir, fmt.Sprintf("restore-%d.img", b.ID))
	defer os.Remove(out)
	r := e.run("backups", "restore", b.HostName, fmt.Sprint(b.ID), "--to", out)
	require.Equal(e.t, 0, r.code, "%s: restore backup %d of %s: %s", when, b.ID, b.HostName, r.stderr)
	require.Equal(e.t, sum, sha(e.t, out), "%s: backup %d of %s does not restore byte-identical", when, b.ID, b.HostName)
}

// crashFixture is a repository to copy for each kill: web-1 with two
// backups (one a snapshot to be), the garbage of a deleted snapshot for gc,
// old-1 with two backups retention expires and a recent one, and big-1,
// not yet backed up, whose large disk `backups create` reads.
type crashFixture struct {
	dir  string         // disks live here, outside the repository
	repo string         // the repository to copy
	sums map[int]string // backup ID -> content of its disk
	host map[int]string // backup ID -> host
	big  string         // the disk of big-1
	conv int            // the backup `backups convert` converts
}

func newCrashFixture(t *testing.T) *crashFixture {
	t.Helper()
	e := newShmLocal(t)
	f := &crashFixture{dir: e.dir, repo: e.repo, sums: map[int]string{}, host: map[int]string{}}
	web := filepath.Join(e.dir, "web-1.img")
	old := filepath.Join(e.dir, "old-1.img")
	f.big = filepath.Join(e.dir, "big-1.img")
	makeDisk(t, web, 24*mib, 1, part{0, 16 * mib, "random"}, part{16 * mib, 6 * mib, "text"})
	makeDisk(t, old, 6*mib, 2, part{0, 4 * mib, "random"})
	makeDisk(t, f.big, 96*mib, 3, part{0, 96 * mib, "random"})
	e.ok("hosts", "add", "web-1", "--disk", web)
	e.ok("hosts", "add", "old-1", "--disk", old)
	e.ok("hosts", "add", "big-1", "--disk", f.big)
	take := func(host, disk string, args ...string) int {
		var out struct {
			Backup backupJSON `json:"backup"`
		}
		e.json(&out, append([]string{"backups", "create", host}, args...)...)
		f.sums[out.Backup.ID], f.host[out.Backup.ID] = sha(t, disk), host
		return out.Backup.ID
	}
	gone := take("web-1", web)
	// Three quarters of the first backup's data changes: once it is
	// deleted, gc rewrites what is left of its packs.
	makeDisk(t, web, 24*mib, 10, part{0, 12 * mib, "random"})
	f.conv = take("web-1", web)
	makeDisk(t, web, 24*mib, 20, part{18 * mib, 2 * mib, "random"})
	take("web-1", web)
	e.ok("backups", "convert", fmt.Sprint(gone))
	e.ok("snapshots", "delete", fmt.Sprint(gone), "--force")
	delete(f.sums, gone)
	now := time.Now().UTC()
	for i, age := range []time.Duration{72 * time.Hour, 48 * time.Hour} {
		makeDisk(t, old, 6*mib, uint64(30+i), part{0, 4 * mib, "random"})
		take("old-1", old, "--time", now.Add(-age).Format(time.RFC3339))
	}
	makeDisk(t, old, 6*mib, 40, part{mib, mib, "text"})
	take("old-1", old)
	e.ok("backups", "enable", "old-1", "--plan", "daily", "--hour", "0", "--retention-days", "1")
	return f
}

// env copies the fixture's repository for one kill.
func (f *crashFixture) env(t *testing.T, name string) *localEnv {
	t.Helper()
	dir := filepath.Join(f.dir, name)
	require.NoError(t, os.MkdirAll(dir, 0o700))
	out, err := exec.Command("cp", "-a", f.repo, filepath.Join(dir, "repo")).CombinedOutput()
	require.NoError(t, err, "%s", out)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return &localEnv{t: t, dir: dir, repo: filepath.Join(dir, "repo"), home: filepath.Join(dir, "home")}
}

// crashOp is one operation the test kills.
type crashOp struct {
	name string
	args func(f *crashFixture) []string
	// mayDelete says which backups the operation may legitimately delete.
	mayDelete func(b backupJSON) bool
}

var crashOps = []crashOp{
	{name: "backups create", args: func(*crashFixture) []string { return []string{"backups", "create", "big-1"} }},
	{name: "backups convert", args: func(f *crashFixture) []string { return []string{"backups", "convert", fmt.Sprint(f.conv)} }},
	{name: "retention", args: func(*crashFixture) []string { return []string{"run", "--due"} },
		mayDelete: func(b backupJSON) bool { return b.HostName == "old-1" }},
	{name: "repo gc", args: func(*crashFixture) []string { return []string{"repo", "gc", "--min-age", "0"} }},
}

// killAfter starts dropback and kills it with SIGKILL after delay; it
// reports whether the kill landed before the command ended and, when it
// did not, how long the command took.
func killAfter(t *testing.T, e *localEnv, delay time.Duration, args ...string) (bool, time.Duration) {
	t.Helper()
	cmd := e.command(args...)
	start := time.Now()
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		require.NoError(t, err, "dropback %v ended on its own with an error", args)
		return false, time.Since(start)
	case <-time.After(delay):
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	err := <-done
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
		return true, 0
	}
	// It ended between the timer and the signal.
	require.NoError(t, err, "dropback %v ended on its own with an error", args)
	return false, delay
}

// duration times one uninterrupted run of op on a copy of the fixture.
func (f *crashFixture) duration(t *testing.T, op crashOp) time.Duration {
	t.Helper()
	e := f.env(t, "timing-"+strings.ReplaceAll(op.name, " ", "-"))
	start := time.Now()
	e.ok(op.args(f)...)
	return time.Since(start)
}

func TestCrashSafety(t *testing.T) {
	f := newCrashFixture(t)
	before := f.env(t, "before").listed()
	require.Len(t, before, len(f.sums), "the fixture's backups are listed")
	durations := map[string]time.Duration{}
	for _, op := range crashOps {
		durations[op.name] = f.duration(t, op)
	}
	t.Logf("uninterrupted: %v", durations)
	killed := map[string]int{}
	for seed := range *crashSeeds {
		rng := rand.New(rand.NewPCG(uint64(seed), 77))
		for _, op := range crashOps {
			name := fmt.Sprintf("seed %d %s", seed, op.name)
			e := f.env(t, fmt.Sprintf("s%d-%s", seed, strings.ReplaceAll(op.name, " ", "-")))
			// Anywhere from the start to a little past the usual end. The
			// usual end follows the runs that ended before their kill, so
			// that a first timing on a busy machine does not put every
			// kill after the end.
			delay := time.Duration(rng.Int64N(int64(durations[op.name]*3/2) + 1))
			landed, took := killAfter(t, e, delay, op.args(f)...)
			if landed {
				killed[op.name]++
			} else {
				durations[op.name] = (durations[op.name] + took) / 2
			}
			if landed {
				// Nothing will finish the killed command's action: it must
				// not wait forever as in progress.
				acts := e.ok("actions", "list", "-o", "json")
				require.NotContains(t, acts, `"in-progress"`, "%s: an action of the killed command is still in progress:\n%s", name, acts)
			}
			after := e.listed()
			for id, b := range before {
				if _, ok := after[id]; !ok {
					require.True(t, op.mayDelete != nil && op.mayDelete(b), "%s: backup %d of %s vanished", name, id, b.HostName)
				}
			}
			ids := make([]int, 0, len(after))
			for id := range after {
				ids = append(ids, id)
			}
			sort.Ints(ids)
			for _, id := range ids {
				b := after[id]
				sum, ok := f.sums[id]
				if !ok { // taken by the killed command itself
					require.Equal(t, "big-1", b.HostName, "%s: unexpected backup %d of %s", name, id, b.HostName)
					sum = sha(t, f.big)
				}
				e.restores(b, sum, name)
			}
			e.verifyClean(name + ", after the kill")
			r := e.run(op.args(f)...)
			require.Equal(t, 0, r.code, "%s: the next run failed: %s", name, r.stderr)
			if seed%5 == 0 {
				e.verifyClean(name + ", after the next run")
			}
			os.RemoveAll(e.dir)
		}
	}
	t.Logf("kills that landed mid-operation, of %d each: %v", *crashSeeds, killed)
	for _, op := range []string{"backups create", "retention", "repo gc"} {
		require.GreaterOrEqual(t, killed[op], *crashSeeds/5,
			"too few kills of %s landed before it ended: the test does not test crashes", op)
	}
}

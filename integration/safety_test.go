package integration

// Never lose a backup, at the command line: a scheduling pass on a host
// whose disk is gone keeps its backups and fails; latest and list never
// silently skip a backup they cannot read; a read-only repository still
// restores and verifies. (The engine's side, every interleaving of
// backups, prunes, restores, verifies and gcs, is
// pkg/engine/interleave_test.go; the storm is storm_test.go.)

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dropback/dropback/pkg/schedule"
)

// dueHostName returns a name for host 1 whose daily backup, in the window
// at hour, is due now: its start point in the window has passed.
func dueHostName(t *testing.T, hour int) string {
	t.Helper()
	pol, err := schedule.New(schedule.Change{Plan: ptr("daily"), Hour: ptr(hour)})
	require.NoError(t, err)
	now := time.Now().UTC()
	w := schedule.LatestWindow(pol, now)
	for i := range 1000 {
		name := fmt.Sprintf("web-%d", i)
		if at := schedule.StartAt(pol, schedule.HostKey(1, name), w); !at.After(now.Add(-time.Minute)) && w.Contains(now.Add(time.Minute)) {
			return name
		}
	}
	t.Skipf("no host name has its start point before %s in the window %s", now.Format(time.TimeOnly), w)
	return ""
}

func ptr[T any](v T) *T { return &v }

// windowHourNow is the start hour of the 4-hour window that holds now.
func windowHourNow() int { return time.Now().UTC().Hour() / 4 * 4 }

// Findings 1 and 10: a host with old backups and its disk gone, its daily
// window due. Passes fail, naming the disk, and expire nothing.
func TestRunDueOnAHostWhoseDiskIsGone(t *testing.T) {
	e := newLocal(t)
	host := dueHostName(t, windowHourNow())
	disk := filepath.Join(e.dir, "disk.img")
	makeDisk(t, disk, 4*mib, 1, part{0, mib, "random"})
	e.ok("hosts", "add", host, "--disk", disk)
	for _, daysAgo := range []int{11, 10, 9} {
		at := time.Now().UTC().Add(-time.Duration(daysAgo) * 24 * time.Hour).Format(time.RFC3339)
		e.ok("backups", "create", host, "--time", at)
	}
	e.ok("backups", "enable", host, "--plan", "daily", "--hour", fmt.Sprint(windowHourNow()))
	require.NoError(t, os.Remove(disk))
	for pass := range 2 {
		r := e.run("run", "--due")
		assert.Equal(t, 1, r.code, "pass %d with the disk gone: %s", pass, r.stderr)
		assert.Contains(t, r.stderr, "disk.img", "pass %d names the missing disk", pass)
		assert.Contains(t, r.stderr, "0 backups expired", "pass %d expired backups", pass)
	}
	var bs []backupJSON
	e.json(&bs, "backups", "list", host)
	assert.Len(t, bs, 3, "the host keeps every backup")
	var hs []struct {
		Name        string `json:"name"`
		LastError   string `json:"last_error"`
		LastErrorAt string `json:"last_error_at"`
	}
	e.json(&hs, "hosts", "list")
	require.Len(t, hs, 1)
	assert.Contains(t, hs[0].LastError, "disk.img", "hosts list shows the last error")
	assert.NotEmpty(t, hs[0].LastErrorAt)
	text := e.ok("hosts", "list")
	assert.Contains(t, text, "failing")
}

// Finding 14: the newest backup's manifest cannot be read. latest refuses
// rather than take an older backup, and list names the damaged one and
// fails while it lists the rest.
func TestLatestAndListNeverSkipADamagedBackup(t *testing.T) {
	e := newLocal(t)
	disk := filepath.Join(e.dir, "disk.img")
	makeDisk(t, disk, 4*mib, 1, part{0, mib, "random"})
	e.ok("hosts", "add", "web-1", "--disk", disk)
	for range 3 {
		e.create("web-1")
	}
	manifest := filepath.Join(e.repo, "backups", "0000000003")
	data, err := os.ReadFile(manifest)
	require.NoError(t, err)
	data[len(data)/2] ^= 0x55
	require.NoError(t, os.WriteFile(manifest, data, 0o600))

	r := e.run("backups", "restore", "web-1", "latest", "--to", filepath.Join(e.dir, "out.img"))
	assert.Equal(t, 7, r.code, r.stderr)
	assert.Contains(t, r.stderr, "backup 3")
	assert.NoFileExists(t, filepath.Join(e.dir, "out.img"), "latest restored an older backup")

	r = e.run("backups", "list", "web-1")
	assert.Equal(t, 7, r.code, r.stderr)
	assert.Contains(t, r.stderr, "backup 3")
	for _, id := range []string{"1", "2"} {
		assert.Contains(t, r.stdout, "\n"+id+" ", "backup %s is listed", id)
	}
	assert.Equal(t, 1, strings.Count(strings.TrimSpace(r.stderr), "\n")+1, "one line: %q", r.stderr)

	// Naming an intact backup still works.
	e.ok("backups", "restore", "web-1", "2", "--to", filepath.Join(e.dir, "two.img"))
}

// Finding 15: a repository mounted read-only (the disaster-recovery setup)
// still lists, restores and verifies; what cannot be recorded is said.
func TestReadOnlyRepositoryRestoresAndVerifies(t *testing.T) {
	e := newLocal(t)
	disk := filepath.Join(e.dir, "disk.img")
	makeDisk(t, disk, 8*mib, 1, part{0, 3 * mib, "random"})
	e.ok("hosts", "add", "web-1", "--disk", disk)
	e.create("web-1")
	want := sha(t, disk)

	ro := filepath.Join(e.dir, "repo-ro")
	require.NoError(t, os.Mkdir(ro, 0o755))
	if out, err := exec.Command("mount", "--bind", e.repo, ro).CombinedOutput(); err != nil {
		t.Fatalf("bind-mount the repository (tests run as root): %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", ro).Run() })
	if out, err := exec.Command("mount", "-o", "remount,bind,ro", ro).CombinedOutput(); err != nil {
		t.Fatalf("remount it read-only: %v: %s", err, out)
	}
	run := func(args ...string) result {
		cmd := dropbackCmd(e.home, []string{"DROPBACK_REPO=" + ro}, args...)
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		code, err := exitCode(cmd.Run())
		require.NoError(t, err)
		return result{args: args, code: code, stdout: out.String(), stderr: errb.String()}
	}
	r := run("backups", "list", "web-1")
	assert.Equal(t, 0, r.code, r.stderr)
	out := filepath.Join(e.dir, "out.img")
	r = run("backups", "restore", "web-1", "latest", "--to", out)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, want, sha(t, out), "the restore from a read-only repository")
	assert.Contains(t, r.stderr, "unannounced", "the restore says gc was not told")
	assert.Contains(t, r.stderr, "not recorded", "the restore says it is not recorded")
	r = run("backups", "verify")
	assert.Equal(t, 0, r.code, r.stdout+r.stderr)
}

// A gc lease held by a gc elsewhere: repo gc exits 11 naming the holder,
// also after waiting with --wait-lock, and a scheduling pass leaves gc to
// the holder without failing.
func TestGCLeaseHeldElsewhere(t *testing.T) {
	e := newPlainLocal(t)
	disk := filepath.Join(e.dir, "disk.img")
	makeDisk(t, disk, 4*mib, 1, part{0, mib, "random"})
	e.ok("hosts", "add", "web-1", "--disk", disk)
	e.create("web-1")
	// The lease of a gc on another machine that took it a moment ago.
	lease := filepath.Join(e.repo, "gc", "lease", "0000000001")
	require.NoError(t, os.MkdirAll(filepath.Dir(lease), 0o755))
	rec := fmt.Sprintf(`{"op":"0123456789abcdef","since":%q,"hostname":"backup-2","pid":4242}`, time.Now().UTC().Format(time.RFC3339))
	require.NoError(t, os.WriteFile(lease, []byte(rec), 0o600))

	for _, args := range [][]string{{"repo", "gc"}, {"repo", "gc", "--wait-lock", "2s"}} {
		r := e.run(args...)
		assert.Equal(t, 11, r.code, "%v: %s", args, r.stderr)
		assert.Contains(t, r.stderr, "backup-2 (PID 4242)", "%v names the holder", args)
		assert.Equal(t, 1, strings.Count(strings.TrimSpace(r.stderr), "\n")+1, "%v: one line: %q", args, r.stderr)
	}
	// A mark two hours old, ripe for the pass's gc to sweep.
	mark := filepath.Join(e.repo, "gc", "condemned", "00000000000000000001-0000000000000000")
	require.NoError(t, os.MkdirAll(filepath.Dir(mark), 0o755))
	at := time.Now().UTC().Add(-2 * time.Hour).Format(time.RFC3339)
	require.NoError(t, os.WriteFile(mark, []byte(`{"at":"`+at+`","packs":[],"images":[]}`), 0o600))
	require.NoError(t, os.Chtimes(mark, time.Now().Add(-2*time.Hour), time.Now().Add(-2*time.Hour)))
	r := e.run("run", "--due")
	assert.Equal(t, 0, r.code, "a pass while another gc runs: %s", r.stderr)
	assert.Contains(t, r.stderr, "another gc is running on this repository: gc by backup-2 (PID 4242)")
}

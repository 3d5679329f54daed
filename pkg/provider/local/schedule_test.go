package local

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dropback/dropback/pkg/engine"
	"github.com/dropback/dropback/pkg/provider"
	"github.com/dropback/dropback/pkg/schedule"
	"github.com/dropback/dropback/pkg/store/mem"
)

// schedEnv is a repository in memory, timed by a clock the test moves, with
// one host whose disk the test can take away and give back.
type schedEnv struct {
	t    *testing.T
	ctx  context.Context
	now  time.Time
	p    *Provider
	disk string
	pol  schedule.Policy
}

func newSchedEnv(t *testing.T, start time.Time) *schedEnv {
	t.Helper()
	e := &schedEnv{t: t, ctx: context.Background(), now: start}
	clock := func() time.Time { return e.now }
	p, err := New(e.ctx, Options{Repo: "memory", Now: clock, Store: mem.New(clock)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.InitRepo(e.ctx, provider.RepoInitOptions{}); err != nil {
		t.Fatal(err)
	}
	e.p = p
	e.disk = filepath.Join(t.TempDir(), "web-1.img")
	if err := os.WriteFile(e.disk, []byte(strings.Repeat("a disk of some bytes\n", 50000)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := p.AddHost(e.ctx, provider.HostSpec{Name: "web-1", Disks: []string{e.disk}}); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *schedEnv) enableDaily(hour int) {
	e.t.Helper()
	if _, err := e.p.EnableBackups(e.ctx, "web-1", provider.PolicyRequest{Plan: ptr("daily"), Hour: ptr(hour)}); err != nil {
		e.t.Fatal(err)
	}
	e.pol, _ = schedule.New(schedule.Change{Plan: ptr("daily"), Hour: ptr(hour)})
}

// startAt is when, in the window of t, the host's backup becomes due.
func (e *schedEnv) startAt(t time.Time) time.Time {
	return schedule.StartAt(e.pol, schedule.HostKey(1, "web-1"), schedule.LatestWindow(e.pol, t))
}

// diskGone takes the disk away (gone) or gives it back.
func (e *schedEnv) diskGone(gone bool) {
	e.t.Helper()
	from, to := e.disk, e.disk+".away"
	if !gone {
		from, to = to, from
	}
	if err := os.Rename(from, to); err != nil {
		e.t.Fatal(err)
	}
}

func (e *schedEnv) pass() *provider.RunReport {
	e.t.Helper()
	rep, err := e.p.RunDue(e.ctx, provider.RunOptions{})
	if err != nil {
		e.t.Fatalf("%s: run --due: %v", e.now.Format(time.RFC3339), err)
	}
	return rep
}

func (e *schedEnv) backups() []provider.Backup {
	e.t.Helper()
	bs, err := e.p.ListBackups(e.ctx, "web-1")
	if err != nil {
		e.t.Fatal(err)
	}
	return bs
}

// A scheduled backup that fails is an error of every pass until it
// succeeds, is retried inside its window, and shows as the host's last
// error meanwhile.
func TestScheduledBackupThatFailsIsRetried(t *testing.T) {
	e := newSchedEnv(t, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	e.enableDaily(4)
	e.diskGone(true)
	start := e.startAt(time.Date(2026, 3, 1, 4, 0, 0, 0, time.UTC))
	back := start.Add(40 * time.Minute) // the disk comes back after a few failed attempts
	if back.Hour() >= 8 {
		t.Fatalf("test setup: the host's start point %s leaves no room for retries", start)
	}
	failing := 0
	for e.now = start; e.now.Hour() < 8; e.now = e.now.Add(5 * time.Minute) {
		if e.now.Equal(back) {
			e.diskGone(false)
		}
		rep := e.pass()
		if len(rep.Backups) > 0 {
			w, inside := schedule.WindowAt(e.pol, rep.Backups[0].CreatedAt)
			if !inside || w.Start.Hour() != 4 || e.now.Before(back) {
				t.Fatalf("%s: backup taken at %s, want one in the 04:00 window once the disk is back", e.now, rep.Backups[0].CreatedAt)
			}
			break
		}
		if len(rep.Errors) > 0 {
			failing++
			h, err := e.p.GetHost(e.ctx, "web-1")
			if err != nil || h.LastErrorAt == nil || !strings.Contains(h.LastError, "web-1.img") {
				t.Fatalf("%s: a failing host shows last error %q at %v (%v)", e.now, h.LastError, h.LastErrorAt, err)
			}
		}
	}
	if failing == 0 {
		t.Fatal("no pass reported the missing disk")
	}
	if n := len(e.backups()); n != 1 {
		t.Fatalf("%d backups in the window, want 1", n)
	}
	h, err := e.p.GetHost(e.ctx, "web-1")
	if err != nil || h.LastErrorAt != nil {
		t.Fatalf("after the backup the host still shows the error %q (%v)", h.LastError, err)
	}
	// The rest of the window and the next pass owe nothing.
	if rep := e.pass(); len(rep.Backups) != 0 || len(rep.Errors) != 0 {
		t.Fatalf("a pass after the window's backup: %+v", rep)
	}
}

// A window that ended with every attempt failed is made up once the disk
// is back, before the next window.
func TestFailedWindowIsMadeUp(t *testing.T) {
	e := newSchedEnv(t, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	e.enableDaily(4)
	e.diskGone(true)
	for e.now = time.Date(2026, 3, 1, 4, 0, 0, 0, time.UTC); e.now.Hour() < 8; e.now = e.now.Add(15 * time.Minute) {
		if rep := e.pass(); len(rep.Backups) != 0 {
			t.Fatalf("%s: a backup without a disk", e.now)
		}
	}
	e.diskGone(false)
	var taken *provider.Backup
	for ; e.now.Before(time.Date(2026, 3, 2, 4, 0, 0, 0, time.UTC)); e.now = e.now.Add(15 * time.Minute) {
		if rep := e.pass(); len(rep.Backups) > 0 {
			taken = &rep.Backups[0]
			break
		}
	}
	if taken == nil {
		t.Fatal("the failed window was never made up")
	}
	if taken.CreatedAt.After(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)) {
		t.Fatalf("the make-up came at %s, hours after the disk was back", taken.CreatedAt)
	}
}

// Retention never empties a host: a host whose disk is gone keeps its
// backups however long passes run, and each pass says why.
func TestRetentionKeepsAHostWhoseDiskIsGone(t *testing.T) {
	e := newSchedEnv(t, time.Date(2026, 3, 1, 7, 59, 0, 0, time.UTC)) // past any start point
	for _, ago := range []int{11, 10, 9} {
		at := e.now.Add(-time.Duration(ago) * 24 * time.Hour)
		if _, err := e.p.CreateBackup(e.ctx, "web-1", provider.CreateOptions{Time: at}); err != nil {
			t.Fatal(err)
		}
	}
	e.enableDaily(4)
	e.diskGone(true)
	for range 3 {
		rep := e.pass()
		if len(rep.Expired) != 0 || len(rep.Errors) == 0 {
			t.Fatalf("%s: a pass with the disk gone expired %v, errors %v; want nothing expired and the error reported", e.now, rep.Expired, rep.Errors)
		}
		e.now = e.now.Add(24 * time.Hour)
	}
	if n := len(e.backups()); n != 3 {
		t.Fatalf("%d backups left, want all 3", n)
	}
}

// An attempt at a scheduled backup whose process is gone is taken over: at
// once when that process ran on this machine, after StaleAfter when it ran
// elsewhere (only time tells there).
func TestAbandonedAttemptIsTakenOver(t *testing.T) {
	for _, tc := range []struct {
		name      string
		elsewhere bool
	}{{"this machine", false}, {"another machine", true}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newSchedEnv(t, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
			e.enableDaily(4)
			e.now = e.startAt(time.Date(2026, 3, 1, 4, 0, 0, 0, time.UTC)).Add(time.Minute)
			// The attempt of a process that died right after it claimed the
			// window: a PID that exited, on this boot, or a live-looking one
			// on another machine.
			gone := exec.Command("true")
			if err := gone.Run(); err != nil {
				t.Skipf("cannot run true: %v", err)
			}
			host, _ := os.Hostname()
			boot, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
			ns, _ := os.Readlink("/proc/self/ns/pid")
			claim := map[string]any{"op": "0123456789abcdef", "at": e.now.Add(-time.Minute),
				"hostname": host, "pid": gone.Process.Pid, "boot_id": strings.TrimSpace(string(boot)), "pid_ns": ns}
			if tc.elsewhere {
				claim["hostname"], claim["pid"] = "elsewhere", 1
			}
			data, _ := json.Marshal(claim)
			w := schedule.LatestWindow(e.pol, e.now)
			name := fmt.Sprintf("claims/%010d/%d.0001", 1, w.Start.Unix())
			if err := e.p.st.Put(e.ctx, name, data); err != nil {
				t.Fatal(err)
			}
			rep := e.pass()
			if tc.elsewhere {
				if len(rep.Backups) != 0 || len(rep.Skipped) == 0 || !strings.Contains(rep.Skipped[0].Reason, "running on elsewhere") {
					t.Fatalf("a fresh attempt of another machine: %+v; want it left alone, and said so", rep)
				}
				e.now = e.now.Add(engine.StaleAfter + 2*time.Minute)
				rep = e.pass()
			}
			if len(rep.Backups) != 1 {
				t.Fatalf("the abandoned attempt was not taken over: %+v", rep)
			}
		})
	}
}

// A pass that takes nothing says why for each host, naming the backup that
// already fills the window and when the next is due.
func TestRunDueNamesTheBackupThatFillsTheWindow(t *testing.T) {
	e := newSchedEnv(t, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	e.enableDaily(4)
	e.now = e.startAt(time.Date(2026, 3, 1, 4, 0, 0, 0, time.UTC)).Add(time.Minute)
	rep := e.pass()
	if len(rep.Backups) != 1 {
		t.Fatalf("the window's backup: %+v", rep)
	}
	id := rep.Backups[0].ID
	e.now = e.now.Add(10 * time.Minute)
	rep = e.pass()
	if len(rep.Backups) != 0 || len(rep.Skipped) != 1 {
		t.Fatalf("a second pass in the window: %+v", rep)
	}
	next := e.startAt(time.Date(2026, 3, 2, 4, 0, 0, 0, time.UTC))
	want := fmt.Sprintf("the window 2026-03-01T04:00:00Z/2026-03-01T08:00:00Z already has backup %d; the next backup is due from %s",
		id, next.Format(time.RFC3339))
	if sk := rep.Skipped[0]; sk.HostName != "web-1" || sk.Reason != want {
		t.Fatalf("skipped %+v, want web-1: %q", sk, want)
	}
}

// Two backups of a host taken in the same second have names of their own,
// so that a list or a DigitalOcean-style name tells them apart.
func TestBackupsOfOneSecondHaveTheirOwnNames(t *testing.T) {
	e := newSchedEnv(t, time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	for i := 0; i < 2; i++ {
		if _, err := e.p.CreateBackup(e.ctx, "web-1", provider.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	bs := e.backups()
	if len(bs) != 2 || !bs[0].CreatedAt.Equal(bs[1].CreatedAt) {
		t.Fatalf("want two backups of one second: %+v", bs)
	}
	if bs[0].Name == bs[1].Name {
		t.Fatalf("backups %d and %d are both named %q", bs[0].ID, bs[1].ID, bs[0].Name)
	}
}

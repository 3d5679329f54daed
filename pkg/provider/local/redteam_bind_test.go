package local

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dropback/dropback/pkg/crypt"
	"github.com/dropback/dropback/pkg/provider"
	"github.com/dropback/dropback/pkg/schedule"
	"github.com/dropback/dropback/pkg/store"
	"github.com/dropback/dropback/pkg/store/faulty"
	"github.com/dropback/dropback/pkg/store/mem"
)

// Found by review (failed before Begin checked the config and the upgrade
// looked again for running operations): the agent keeps the Repo it opened for the life of its process
// (Provider.open caches it). An agent that opened a plain repository, and
// `repo upgrade` run beside it between two passes (the upgrade checks once,
// at its start, that no operation runs), go on together: the agent's next
// pass, while the upgrade copies, takes the host's due backup in plain and
// reports it made. The upgrade had listed the manifests already: it never
// copies that backup, and deletes it with the other plain objects. The
// claim of the attempt, which the upgrade keeps (re-encrypted), says the
// window's backup was taken: a pass after the upgrade takes none in that
// window either.
func TestRedteamBindAgentPassDuringUpgradeLosesTheBackup(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	ms := mem.New(clock)
	agent, _ := agentWithHost(t, ms, clock, []byte(strings.Repeat("a disk of some bytes\n", 50000)))
	now = windowOfWeb1(time.Date(2026, 3, 1, 4, 0, 0, 0, time.UTC)).Add(time.Minute)
	if rep, err := agent.RunDue(ctx, provider.RunOptions{}); err != nil || len(rep.Backups) != 1 {
		t.Fatalf("the first day's pass: %+v, %v", rep, err)
	}
	// The next day, the backup is due; the user upgrades the repository
	// from another shell, and the agent's pass comes while it copies.
	now = windowOfWeb1(time.Date(2026, 3, 2, 4, 0, 0, 0, time.UTC)).Add(time.Minute)
	var during *provider.RunReport
	fs := faulty.New(ms, faulty.Rule{Op: faulty.Put, Pattern: "upgrade/backups/*", Times: 1, Hook: func() {
		rep, err := agent.RunDue(ctx, provider.RunOptions{})
		if err != nil {
			t.Logf("the agent's pass during the upgrade: %v", err)
		}
		during = rep
	}})
	up, err := New(ctx, Options{Repo: "memory", Now: clock, Store: fs})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.UpgradeRepo(ctx, provider.RepoUpgradeOptions{Password: []byte("correct horse"), KDF: "t=1,m=64KiB,p=1"}); err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	if during == nil || len(during.Backups) == 0 {
		t.Logf("the agent's pass during the upgrade took no backup: %+v (holds)", during)
		return
	}
	made := during.Backups[0].ID
	pw := func(context.Context) ([]byte, error) { return []byte("correct horse"), nil }
	after, err := New(ctx, Options{Repo: "memory", Now: clock, Store: ms, Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	bs, err := after.ListBackups(ctx, "web-1")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, b := range bs {
		found = found || b.ID == made
	}
	if !found {
		t.Errorf("backup %d, which the agent's pass reported made during the upgrade, is gone after it (backups: %d)", made, len(bs))
	}
	// The window is still open: does a pass after the upgrade take it?
	now = now.Add(5 * time.Minute)
	rep, err := after.RunDue(ctx, provider.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !found && len(rep.Backups) == 0 {
		t.Errorf("and a pass after the upgrade, in the same window, takes none: %+v", rep.Skipped)
	}
}

// Found by review (failed before the same fixes): the same, with the agent's backup in flight across the end of
// the upgrade (a pass that read the hosts while the upgrade copied, and
// whose backup writes after it switched the config): the disk's bytes are
// written in plain packs, under a plain manifest, into the encrypted
// repository. The pass reports the backup made; no right reader opens it,
// and anyone who reads the store reads the disk.
func TestRedteamBindAgentBackupAcrossUpgradeWritesPlain(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	ms := mem.New(clock)
	release, reached := make(chan struct{}), make(chan struct{})
	// The agent's store: the pack of its second backup waits for the test
	// (a backup that reads a large disk).
	as := faulty.New(ms, faulty.Rule{Op: faulty.Put, Pattern: "packs/", After: 1, Times: 1, Hook: func() {
		close(reached)
		<-release
	}})
	data := make([]byte, 1<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	agent, disk := agentWithHost(t, as, clock, data)
	now = windowOfWeb1(time.Date(2026, 3, 1, 4, 0, 0, 0, time.UTC)).Add(time.Minute)
	if rep, err := agent.RunDue(ctx, provider.RunOptions{}); err != nil || len(rep.Backups) != 1 {
		t.Fatalf("the first day's pass: %+v, %v", rep, err)
	}
	if _, err := rand.Read(data[:4096]); err != nil { // a changed chunk for the next day
		t.Fatal(err)
	}
	if err := os.WriteFile(disk, data, 0o600); err != nil {
		t.Fatal(err)
	}
	now = windowOfWeb1(time.Date(2026, 3, 2, 4, 0, 0, 0, time.UTC)).Add(time.Minute)
	type result struct {
		rep *provider.RunReport
		err error
	}
	done := make(chan result, 1)
	fs := faulty.New(ms, faulty.Rule{Op: faulty.Put, Pattern: "upgrade/backups/*", Times: 1, Hook: func() {
		go func() {
			rep, err := agent.RunDue(ctx, provider.RunOptions{})
			done <- result{rep, err}
		}()
		// The upgrade goes on once the agent's pass read the hosts and
		// is storing its backup's chunks, or ended without.
		select {
		case <-reached:
		case res := <-done:
			done <- res
		}
	}})
	up, err := New(ctx, Options{Repo: "memory", Now: clock, Store: fs})
	if err != nil {
		t.Fatal(err)
	}
	_, uerr := up.UpgradeRepo(ctx, provider.RepoUpgradeOptions{Password: []byte("correct horse"), KDF: "t=1,m=64KiB,p=1"})
	close(release)
	res := <-done
	if uerr != nil {
		t.Logf("upgrade: %v (holds: it did not finish beside the agent's backup)", uerr)
		return
	}
	if res.err != nil || len(res.rep.Backups) == 0 {
		t.Logf("the agent's pass across the upgrade: %+v, %v (holds)", res.rep, res.err)
		return
	}
	made := res.rep.Backups[0].ID
	t.Errorf("the agent's pass across the upgrade reports backup %d made", made)
	var plain []string
	_ = ms.List(ctx, "", func(i store.Info) error {
		b, _ := ms.Get(ctx, i.Name, 0, -1)
		if bytes.Contains(b, data[:64]) {
			plain = append(plain, i.Name)
		}
		return nil
	})
	if len(plain) > 0 {
		t.Errorf("the disk's bytes are in plain in the encrypted repository: %v", plain)
	}
	pw := func(context.Context) ([]byte, error) { return []byte("correct horse"), nil }
	after, err := New(ctx, Options{Repo: "memory", Now: clock, Store: ms, Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := after.GetBackup(ctx, made); err != nil {
		t.Errorf("and backup %d does not open: %v", made, err)
	}
}

// Holds: after an upgrade run beside it, the agent's passes, with the
// plain Repo it opened before, write nothing unsealed into the encrypted
// repository (they refuse, the config having changed, until the agent is
// restarted).
func TestRedteamBindStaleAgentAfterUpgradeWritesNothingPlain(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	ms := mem.New(clock)
	agent, _ := agentWithHost(t, ms, clock, []byte(strings.Repeat("a disk of some bytes\n", 50000)))
	if _, err := agent.RunDue(ctx, provider.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	up, err := New(ctx, Options{Repo: "memory", Now: clock, Store: ms})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.UpgradeRepo(ctx, provider.RepoUpgradeOptions{Password: []byte("correct horse"), KDF: "t=1,m=64KiB,p=1"}); err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	before := map[string]bool{}
	_ = ms.List(ctx, "", func(i store.Info) error { before[i.Name] = true; return nil })
	for range 3 {
		now = now.Add(24 * time.Hour)
		if rep, err := agent.RunDue(ctx, provider.RunOptions{}); err == nil && len(rep.Backups) > 0 {
			t.Errorf("the stale agent took a backup: %+v", rep.Backups)
		}
	}
	_ = ms.List(ctx, "", func(i store.Info) error {
		if before[i.Name] {
			return nil
		}
		if b, _ := ms.Get(ctx, i.Name, 0, -1); len(b) > 2 && !crypt.IsObject(b) {
			t.Errorf("the stale agent wrote %s in plain: %q", i.Name, b)
		}
		return nil
	})
}

// agentWithHost is a provider on st, as an agent keeps one for its life,
// with a plain repository holding host web-1, a disk of data backed up
// daily at 4; it returns the disk's path.
func agentWithHost(t *testing.T, st store.Store, clock func() time.Time, data []byte) (*Provider, string) {
	t.Helper()
	ctx := context.Background()
	agent, err := New(ctx, Options{Repo: "memory", Now: clock, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := agent.InitRepo(ctx, provider.RepoInitOptions{}); err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(t.TempDir(), "web-1.img")
	if err := os.WriteFile(disk, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := agent.AddHost(ctx, provider.HostSpec{Name: "web-1", Disks: []string{disk}}); err != nil {
		t.Fatal(err)
	}
	if _, err := agent.EnableBackups(ctx, "web-1", provider.PolicyRequest{Plan: ptr("daily"), Hour: ptr(4)}); err != nil {
		t.Fatal(err)
	}
	return agent, disk
}

// windowOfWeb1 is when web-1's daily window at 4 opens on the day of t.
func windowOfWeb1(t time.Time) time.Time {
	pol, _ := schedule.New(schedule.Change{Plan: ptr("daily"), Hour: ptr(4)})
	return schedule.StartAt(pol, schedule.HostKey(1, "web-1"), schedule.LatestWindow(pol, t))
}

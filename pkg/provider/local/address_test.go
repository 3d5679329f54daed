package local

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dropback/dropback/pkg/provider"
)

// TestNextWindowIsTheOneStillToCome: inside a window that a backup already
// satisfied, policy get, policy list, hosts get and hosts list show the
// following window; before the backup, the current one.
func TestNextWindowIsTheOneStillToCome(t *testing.T) {
	e := newSchedEnv(t, time.Date(2026, 3, 2, 4, 30, 0, 0, time.UTC))
	e.enableDaily(4)
	current := time.Date(2026, 3, 2, 4, 0, 0, 0, time.UTC)
	following := current.Add(24 * time.Hour)
	check := func(want time.Time) {
		t.Helper()
		pol, err := e.p.GetPolicy(e.ctx, "web-1")
		if err != nil {
			t.Fatal(err)
		}
		pols, err := e.p.ListPolicies(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		h, err := e.p.GetHost(e.ctx, "web-1")
		if err != nil {
			t.Fatal(err)
		}
		hs, err := e.p.ListHosts(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		for name, w := range map[string]*provider.Window{"policy get": pol.NextBackupWindow, "policy list": pols[0].NextBackupWindow,
			"hosts get": h.NextBackupWindow, "hosts list": hs[0].NextBackupWindow} {
			if w == nil || !w.Start.Equal(want) || !w.End.Equal(want.Add(4*time.Hour)) {
				t.Fatalf("%s: next window %+v, want the one from %v", name, w, want)
			}
		}
	}
	check(current)
	if _, err := e.p.CreateBackup(e.ctx, "web-1", provider.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	check(following)
	e.now = following.Add(-time.Hour) // between the windows
	check(following)
}

// addrEnv is a repository with hosts web-1 and db-1, two backups of
// web-1 and one of db-1.
func addrEnv(t *testing.T) *schedEnv {
	t.Helper()
	e := newSchedEnv(t, time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC))
	disk := filepath.Join(t.TempDir(), "db-1.img")
	if err := os.WriteFile(disk, []byte(strings.Repeat("database pages\n", 40000)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := e.p.AddHost(e.ctx, provider.HostSpec{Name: "db-1", Disks: []string{disk}}); err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"web-1", "web-1", "db-1"} {
		if _, err := e.p.CreateBackup(e.ctx, h, provider.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		e.now = e.now.Add(time.Minute)
	}
	return e
}

// TestFindBackup: one addressing rule, <host> <id|latest> or a bare ID;
// another host's backup is refused and named; a removed host is still
// found for the backups it left.
func TestFindBackup(t *testing.T) {
	e := addrEnv(t)
	tests := []struct {
		host, ref string
		want      int
		err       error
		msg       string
	}{
		{"web-1", "latest", 2, nil, ""},
		{"web-1", "1", 1, nil, ""},
		{"1", "latest", 2, nil, ""},
		{"", "3", 3, nil, ""},
		{"db-1", "latest", 3, nil, ""},
		{"web-1", "3", 0, provider.ErrInvalid, "backup 3 is of host db-1, not of host web-1"},
		{"", "latest", 0, provider.ErrInvalid, ""},
		{"nosuch", "1", 0, provider.ErrNotFound, "no host named"},
		{"web-1", "99", 0, provider.ErrNotFound, ""},
	}
	for _, tt := range tests {
		b, err := e.p.FindBackup(e.ctx, tt.host, tt.ref)
		if tt.err != nil {
			if !errors.Is(err, tt.err) || !strings.Contains(fmtErr(err), tt.msg) {
				t.Errorf("FindBackup(%q, %q) = %v, want %v containing %q", tt.host, tt.ref, err, tt.err, tt.msg)
			}
			continue
		}
		if err != nil || b.ID != tt.want {
			t.Errorf("FindBackup(%q, %q) = %+v, %v; want backup %d", tt.host, tt.ref, b, err, tt.want)
		}
	}
	if err := e.p.RemoveHost(e.ctx, "db-1", provider.DisableOptions{KeepBackups: true}); err != nil {
		t.Fatal(err)
	}
	for _, ref := range [][2]string{{"db-1", "latest"}, {"db-1", "3"}, {"", "3"}} {
		if b, err := e.p.FindBackup(e.ctx, ref[0], ref[1]); err != nil || b.ID != 3 {
			t.Errorf("removed host: FindBackup(%q, %q) = %v, %v", ref[0], ref[1], b, err)
		}
	}
	orphans, err := e.p.ListOrphaned(e.ctx)
	if err != nil || len(orphans) != 1 || orphans[0].ID != 3 {
		t.Fatalf("ListOrphaned = %+v, %v; want backup 3", orphans, err)
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestDeleteBackupsKeepsTheLast: a backup that is its host's last is
// refused unless AllowLast; a snapshot is refused; the others go, and only
// their manifests.
func TestDeleteBackupsKeepsTheLast(t *testing.T) {
	e := addrEnv(t)
	if _, err := e.p.ConvertBackup(e.ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := e.p.DeleteBackups(e.ctx, []int{1}, provider.DeleteOptions{}); !errors.Is(err, provider.ErrInvalid) {
		t.Fatalf("deleting a snapshot: %v, want ErrInvalid", err)
	}
	// web-1 keeps its snapshot 1, so backup 2 is not its last.
	if got, err := e.p.DeleteBackups(e.ctx, []int{2}, provider.DeleteOptions{}); err != nil || len(got) != 1 || got[0].ID != 2 {
		t.Fatalf("delete 2 = %+v, %v", got, err)
	}
	_, err := e.p.DeleteBackups(e.ctx, []int{3}, provider.DeleteOptions{})
	if !errors.Is(err, provider.ErrConfirm) || !strings.Contains(err.Error(), "last backup of host db-1") {
		t.Fatalf("deleting db-1's last: %v, want ErrConfirm naming it the last", err)
	}
	if _, err := e.p.GetBackup(e.ctx, 3); err != nil {
		t.Fatalf("the refused delete removed backup 3: %v", err)
	}
	if got, err := e.p.DeleteBackups(e.ctx, []int{3}, provider.DeleteOptions{AllowLast: true}); err != nil || len(got) != 1 {
		t.Fatalf("delete 3 with AllowLast = %+v, %v", got, err)
	}
	left, err := e.p.ListBackups(e.ctx, "")
	if err != nil || len(left) != 0 {
		t.Fatalf("backups left: %+v, %v", left, err)
	}
	// The data stays for gc: restoring the snapshot still works.
	out := filepath.Join(t.TempDir(), "out.img")
	if _, err := e.p.RestoreBackup(e.ctx, provider.RestoreRequest{Host: "web-1", Backup: "1", To: out}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(out)
	want, _ := os.ReadFile(e.disk)
	if string(got) != string(want) {
		t.Fatal("the snapshot restores other bytes after the deletes")
	}
}

// TestPlanRestoreNamesWhatItOverwrites: in place, every disk of the host;
// to a path, whether something is there; another host's backup is
// refused before anything is written.
func TestPlanRestoreNamesWhatItOverwrites(t *testing.T) {
	e := addrEnv(t)
	plan, err := e.p.PlanRestore(e.ctx, provider.RestoreRequest{Host: "web-1", Backup: "latest"})
	if err != nil || plan.Backup.ID != 2 || len(plan.Targets) != 1 || plan.Targets[0].Path != e.disk || !plan.Targets[0].InPlace {
		t.Fatalf("in place: %+v, %v", plan, err)
	}
	to := filepath.Join(t.TempDir(), "new.img")
	plan, err = e.p.PlanRestore(e.ctx, provider.RestoreRequest{Host: "web-1", Backup: "1", To: to})
	if err != nil || plan.Targets[0].Exists || plan.Targets[0].Path != to {
		t.Fatalf("to a new path: %+v, %v", plan, err)
	}
	if _, err := os.Stat(to); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("planning wrote %s", to)
	}
	if err := os.WriteFile(to, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if plan, err = e.p.PlanRestore(e.ctx, provider.RestoreRequest{Host: "web-1", Backup: "1", To: to}); err != nil || !plan.Targets[0].Exists {
		t.Fatalf("to an existing path: %+v, %v", plan, err)
	}
	for _, req := range []provider.RestoreRequest{
		{Host: "web-1", Backup: "3", To: to},
		{Host: "web-1", Backup: "3", Force: true},
	} {
		if _, err := e.p.RestoreBackup(e.ctx, req); !errors.Is(err, provider.ErrInvalid) {
			t.Fatalf("restore of db-1's backup as web-1's (%+v): %v, want ErrInvalid", req, err)
		}
	}
	if got, _ := os.ReadFile(to); string(got) != "x" {
		t.Fatal("a refused restore wrote its target")
	}
}

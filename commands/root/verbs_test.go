package root

import (
	"strings"
	"testing"

	"github.com/dropback/dropback/pkg/provider"
)

func TestSnapshotsCreateIsDigitalOceansAction(t *testing.T) {
	c := newCLI(t)
	c.cloud = "digitalocean"
	r := c.run(t, "snapshots", "create", "web-1", "--snapshot-name", "before-upgrade", "--wait", "--format", "Type,Status", "--no-header")
	wantCode(t, r, 0)
	if r.out != "snapshot    completed\n" {
		t.Fatalf("stdout = %q", r.out)
	}
	if got := c.calls("TakeSnapshot"); len(got) != 1 || got[0] != "TakeSnapshot web-1 before-upgrade" {
		t.Fatalf("calls = %v", got)
	}
	c = newCLI(t)
	r = c.run(t, "snapshots", "create", "web-1")
	wantCode(t, r, 1)
	wantOneLineError(t, r, "not supported in the local context (DigitalOcean only)", "backups create", "backups convert")
	wantCode(t, c.run(t, "snapshots", "create", "web-1", "--name", "a", "--snapshot-name", "b"), 2)
}

func TestSnapshotsDeleteSeveral(t *testing.T) {
	c := newCLI(t)
	c.fake.Backups[1].Type = provider.TypeSnapshot // 102
	r := c.run(t, "snapshots", "delete", "301", "102", "--force")
	wantCode(t, r, 0)
	if got := c.calls("DeleteSnapshot"); len(got) != 2 {
		t.Fatalf("calls = %v", got)
	}
	if !strings.Contains(r.err, "Deleted snapshot 301") || !strings.Contains(r.err, "Deleted snapshot 102") {
		t.Fatalf("stderr = %q", r.err)
	}

	c = newCLI(t)
	r = c.run(t, "snapshots", "delete", "301", "999", "--force")
	wantCode(t, r, 3)
	wantOneLineError(t, r, "1 of 2 snapshots not deleted", "delete snapshot 999")
	if len(c.calls("DeleteSnapshot")) != 2 {
		t.Fatal("one failure stops no other delete")
	}

	c = newCLI(t)
	r = c.run(t, "snapshots", "delete", "301", "302")
	wantCode(t, r, 6)
	wantOneLineError(t, r, "delete snapshots 301, 302", "--force")
	if len(c.calls("DeleteSnapshot")) != 0 {
		t.Fatal("deleted without --force")
	}
}

func TestActionsListOfOneHost(t *testing.T) {
	c := newCLI(t)
	r := c.run(t, "actions", "list", "web-1", "--format", "ID,Type", "--no-header")
	wantCode(t, r, 0)
	if r.out != "1002    restore\n" {
		t.Fatalf("stdout = %q", r.out)
	}
	wantCode(t, c.run(t, "actions", "list", "nope"), 1)
	wantCode(t, c.run(t, "actions", "list", "a", "b"), 2)
}

func TestEnableAndDisableByTag(t *testing.T) {
	c := newCLI(t)
	c.cloud = "digitalocean"
	r := c.run(t, "backups", "enable", "--tag", "all", "--wait", "--format", "Type,Status,ResourceID", "--no-header")
	wantCode(t, r, 0)
	if r.out != "enable_backups    completed    1\nenable_backups    completed    2\n" {
		t.Fatalf("stdout = %q", r.out)
	}
	r = c.run(t, "backups", "disable", "--tag", "all")
	wantCode(t, r, 6)
	wantOneLineError(t, r, "pass --force")
	wantCode(t, c.run(t, "backups", "disable", "--tag", "all", "--force"), 0)
	if got := c.calls("DisableBackupsByTag"); len(got) != 2 || got[1] != "DisableBackupsByTag all delete=true" {
		t.Fatalf("calls = %v", got)
	}

	for _, bad := range [][]string{
		{"backups", "enable"},
		{"backups", "enable", "web-1", "--tag", "all"},
		{"backups", "enable", "--tag", "all", "--plan", "weekly"},
		{"backups", "disable", "--tag", "all", "--keep-backups"},
	} {
		wantCode(t, c.run(t, bad...), 2)
	}
	c = newCLI(t)
	r = c.run(t, "backups", "enable", "--tag", "all")
	wantCode(t, r, 1)
	wantOneLineError(t, r, "backups enable --tag is not supported in the local context (DigitalOcean only)")
}

// backups disable asks only when there are backups to keep or delete, and
// offers to keep them only where the context can.
func TestDisableAsksOnlyWhatTheContextCanDo(t *testing.T) {
	c := newCLI(t)
	c.fake.Backups = c.fake.Backups[:0] // no backups: nothing to ask
	r := c.run(t, "backups", "disable", "db-1")
	wantCode(t, r, 0)
	if c.fake.LastDisable == nil || !c.fake.LastDisable.KeepBackups {
		t.Fatalf("disable = %+v", c.fake.LastDisable)
	}

	c = newCLI(t)
	r = c.run(t, "backups", "disable", "web-1")
	wantCode(t, r, 6)
	wantOneLineError(t, r, "its 2 backups", "--keep-backups", "--force")

	c = newCLI(t)
	c.cloud = "digitalocean"
	r = c.run(t, "backups", "disable", "web-1")
	wantCode(t, r, 6)
	wantOneLineError(t, r, "deletes its 2 backups", "backups convert", "--force")
	if strings.Contains(r.err, "--keep-backups") {
		t.Fatalf("DigitalOcean cannot keep backups: %q", r.err)
	}

	c = newCLI(t)
	c.cloud = "digitalocean"
	c.tty, c.stdin = true, "y\n"
	r = c.run(t, "backups", "disable", "web-1")
	wantCode(t, r, 0)
	if !strings.Contains(r.err, "DigitalOcean deletes its 2 backups") || strings.Contains(r.err, "keep/delete") {
		t.Fatalf("prompt = %q", r.err)
	}
	if c.fake.LastDisable == nil || !c.fake.LastDisable.DeleteBackups {
		t.Fatalf("disable = %+v", c.fake.LastDisable)
	}
}

package local

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dropback/dropback/pkg/provider"
)

// A host whose record is damaged is named wherever hosts are listed, and
// affects no other host: their backups, restores and scheduled backups go
// on; a damaged action record leaves the other actions listed.
func TestDamageStaysWithItsHostAndAction(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	p, err := New(ctx, Options{Repo: repo})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.InitRepo(ctx, provider.RepoInitOptions{ChunkSize: 64 << 10}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"web-1", "db-1"} {
		disk := filepath.Join(dir, name+".img")
		if err := os.WriteFile(disk, []byte(strings.Repeat(name, 100_000)), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := p.AddHost(ctx, provider.HostSpec{Name: name, Disks: []string{disk}}); err != nil {
			t.Fatal(err)
		}
		hour := 0
		if _, err := p.EnableBackups(ctx, name, provider.PolicyRequest{Plan: ptr("daily"), Hour: &hour}); err != nil {
			t.Fatal(err)
		}
	}
	revs, _ := filepath.Glob(filepath.Join(repo, "hosts", "0000000002", "*"))
	for _, rev := range revs {
		if err := os.WriteFile(rev, []byte("damaged"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	acts, _ := filepath.Glob(filepath.Join(repo, "actions", "0000000001", "*"))
	if err := os.WriteFile(acts[0], []byte("damaged"), 0o600); err != nil {
		t.Fatal(err)
	}

	p, err = New(ctx, Options{Repo: repo})
	if err != nil {
		t.Fatal(err)
	}
	damaged := func(what string, err error, want string) {
		t.Helper()
		if !errors.Is(err, provider.ErrCorrupt) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want damage naming %s", what, err, want)
		}
	}
	hosts, err := p.ListHosts(ctx)
	damaged("list hosts", err, "host 2")
	if len(hosts) != 1 || hosts[0].Name != "web-1" {
		t.Errorf("hosts listed: %+v", hosts)
	}
	policies, err := p.ListPolicies(ctx)
	damaged("list policies", err, "host 2")
	if len(policies) != 1 {
		t.Errorf("policies listed: %+v", policies)
	}
	_, err = p.GetHost(ctx, "2")
	damaged("get host 2", err, "host 2")
	_, err = p.GetHost(ctx, "db-1")
	damaged("get host db-1", err, "host 2")
	if _, err := p.CreateBackup(ctx, "web-1", provider.CreateOptions{}); err != nil {
		t.Errorf("back up web-1: %v", err)
	}
	if _, err := p.ListBackups(ctx, "web-1"); err != nil {
		t.Errorf("list the backups of web-1: %v", err)
	}
	rep, err := p.RunDue(ctx, provider.RunOptions{})
	if err != nil || len(rep.Errors) != 1 || !strings.Contains(rep.Errors[0], "host 2") {
		t.Errorf("run --due: %+v, %v; want one error, for host 2", rep, err)
	}
	actions, err := p.ListActions(ctx)
	damaged("list actions", err, "action 1")
	if len(actions) == 0 {
		t.Error("no action listed beside the damaged one")
	}
}

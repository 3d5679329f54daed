package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dropback/dropback/pkg/crypt"
	"github.com/dropback/dropback/pkg/store"
	"github.com/dropback/dropback/pkg/store/faulty"
	"github.com/dropback/dropback/pkg/store/local"
	"github.com/dropback/dropback/pkg/store/mem"
)

// plainHistory is a plain repository of version 1 with two hosts, three
// backups (one a snapshot, one deleted), an action and a gc record.
type plainHistory struct {
	st       *mem.Store
	disks    map[int]string // backup ID -> the disk image as it was backed up
	hostName string
}

func newPlainHistory(t *testing.T) *plainHistory {
	t.Helper()
	ctx := context.Background()
	h := &plainHistory{st: mem.New(nil), disks: map[int]string{}, hostName: "upgrade-host-secret"}
	r, err := Init(ctx, h.st, InitOptions{ChunkSize: testChunk})
	if err != nil {
		t.Fatal(err)
	}
	// Written as version 1 was.
	r.cfg.Version = 1
	data, _ := seal(r.cfg)
	h.st.Set("config", data, r.now())
	dir := t.TempDir()
	for i, name := range []string{h.hostName, "db-1"} {
		disk := filepath.Join(dir, name+".img")
		makeDisk(t, disk, 6*testChunk, region{int64(i) * testChunk, 3 * testChunk, "random"}, region{4 * testChunk, testChunk, "text"})
		host, err := r.AddHost(ctx, HostRecord{Name: name, Disks: []DiskSource{{Name: "vda", Path: disk}}})
		if err != nil {
			t.Fatal(err)
		}
		for v := range 2 {
			if v == 1 {
				makeDisk(t, disk, 6*testChunk, region{int64(i) * testChunk, 2 * testChunk, "random"}, region{5 * testChunk, testChunk, "random"})
			}
			m, err := r.Backup(ctx, BackupRequest{HostID: host.ID, HostName: host.Name, Disks: host.Disks})
			if err != nil {
				t.Fatal(err)
			}
			copyPath := filepath.Join(dir, name+"-"+string(rune('0'+m.ID))+".img")
			copyFile(t, disk, copyPath)
			h.disks[m.ID] = copyPath
		}
	}
	if err := r.MarkSnapshot(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := r.DeleteBackup(ctx, 2); err != nil {
		t.Fatal(err)
	}
	delete(h.disks, 2)
	// Its deletion rolled up by a gc into a deleted-ranges record, in
	// plain, and its marker gone.
	rolled, _ := seal(deletedRanges{At: r.now().UTC(), Ranges: [][2]int{{2, 2}}})
	h.st.Set("deleted-ranges/00000000000000000001-0123456789abcdef", rolled, r.now())
	if err := h.st.Delete(ctx, objectName("deleted", 2)); err != nil {
		t.Fatal(err)
	}
	a, err := r.StartAction(ctx, "backup", "host", 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.FinishAction(ctx, a, 3, nil); err != nil {
		t.Fatal(err)
	}
	return h
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// check opens the upgraded repository and finds every backup, host and
// action there, each backup restoring to its disk, and nothing in plain.
func (h *plainHistory) check(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	r, err := Open(ctx, h.st, Options{Password: testPassword})
	if err != nil {
		t.Fatalf("open the upgraded repository: %v", err)
	}
	if !r.Encrypted() || r.cfg.Version != FormatVersion {
		t.Fatalf("the upgraded repository: version %d, encrypted %v", r.cfg.Version, r.Encrypted())
	}
	ms, damaged, err := r.ManifestsAndDamage(ctx)
	if err != nil || len(damaged) > 0 || len(ms) != len(h.disks) {
		t.Fatalf("backups after the upgrade: %d, damaged %v, %v; want %d", len(ms), damaged, err, len(h.disks))
	}
	for _, m := range ms {
		out := filepath.Join(t.TempDir(), "out.img")
		if _, err := r.Restore(ctx, m, []RestoreTarget{{Path: out}}, nil); err != nil {
			t.Fatalf("restore backup %d: %v", m.ID, err)
		}
		want, _ := os.ReadFile(h.disks[m.ID])
		got, _ := os.ReadFile(out)
		if !bytes.Equal(got, want) {
			t.Fatalf("backup %d restores to other bytes", m.ID)
		}
		if m.Snapshot != (m.ID == 1) {
			t.Errorf("backup %d: snapshot %v", m.ID, m.Snapshot)
		}
	}
	hosts, hd, err := r.HostsAndDamage(ctx)
	if err != nil || len(hd) > 0 || len(hosts) != 2 || hosts[0].Name != h.hostName {
		t.Fatalf("hosts after the upgrade: %+v, %v, %v", hosts, hd, err)
	}
	if a, err := r.Action(ctx, 1); err != nil || a.Status != ActionCompleted || a.ResourceID != 3 {
		t.Fatalf("action 1 after the upgrade: %+v, %v", a, err)
	}
	if lost, err := r.LostBackups(ctx); err != nil || len(lost) > 0 {
		t.Fatalf("lost backups after the upgrade: %v, %v", lost, err)
	}
	res, err := r.Verify(ctx, nil, nil)
	if err != nil || res.Damaged() {
		t.Fatalf("verify after the upgrade: %+v, %v", res, err)
	}
	err = h.st.List(ctx, "", func(info store.Info) error {
		data, _ := h.st.Get(ctx, info.Name, 0, -1)
		if bytes.Contains(data, []byte(h.hostName)) || strings.HasPrefix(info.Name, stagePrefix) {
			t.Errorf("%s is left after the upgrade", info.Name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// upgrades counts upgrades, each run as a process of its own: one that
// failed is one that died, as far as the next can tell.
var upgrades = 0

type upgradeProcess struct{ pid int }

func (m upgradeProcess) Self() processID {
	p := hostMachine{}.Self()
	p.PID, p.Start = m.pid, fmt.Sprint(m.pid)
	return p
}

func (m upgradeProcess) Ended(p processID) bool { return p.PID > 100000 && p.PID != m.pid }

func upgrade(ctx context.Context, st store.Store) (*UpgradeResult, error) {
	upgrades++
	return Upgrade(ctx, st, UpgradeOptions{Password: []byte(testPasswordText), KDF: testKDF,
		Options: Options{Machine: upgradeProcess{pid: 100000 + upgrades}}})
}

func TestUpgradeKeepsEveryBackup(t *testing.T) {
	h := newPlainHistory(t)
	res, err := upgrade(context.Background(), h.st)
	if err != nil {
		t.Fatal(err)
	}
	if res.Backups != len(h.disks) || res.Hosts != 2 || res.Actions != 1 || !res.Finished {
		t.Errorf("upgrade: %+v", res)
	}
	h.check(t)
	if res, err := upgrade(context.Background(), h.st); err != nil || !res.AlreadyEncrypted {
		t.Errorf("upgrade again: %+v, %v; want already encrypted", res, err)
	}
}

// An upgrade cut short at any write or delete leaves a repository that only
// an upgrade opens, and that the next upgrade finishes with every backup.
func TestUpgradeCutShortAnywhereFinishes(t *testing.T) {
	for _, op := range []faulty.Op{faulty.Put, faulty.Delete} {
		for after := 0; ; after++ {
			h := newPlainHistory(t)
			fs := faulty.New(h.st, faulty.Rule{Op: op, After: after, Times: 0})
			_, err := upgrade(context.Background(), fs)
			if err == nil {
				if after < 3 {
					t.Fatalf("an upgrade whose %s %d failed went through", op, after)
				}
				break // past the last one: nothing failed
			}
			if _, err := Open(context.Background(), h.st, Options{Password: testPassword}); err == nil {
				// Only before anything was written, or once the
				// config is switched, does the repository open.
				if r, _ := Open(context.Background(), h.st, Options{}); r != nil && r.Encrypted() {
					t.Fatalf("%s %d: the repository opens without a password mid-upgrade", op, after)
				}
			} else if !errors.Is(err, ErrLocked) {
				t.Fatalf("%s %d failed: open: %v, want ErrLocked", op, after, err)
			}
			if _, err := upgrade(context.Background(), h.st); err != nil {
				t.Fatalf("%s %d failed; the upgrade again: %v", op, after, err)
			}
			h.check(t)
		}
	}
}

// An upgrade waits for no one: another operation running makes it fail at
// once, before it writes anything.
func TestUpgradeRefusesWhileAnOperationRuns(t *testing.T) {
	h := newPlainHistory(t)
	r, err := Open(context.Background(), h.st, Options{})
	if err != nil {
		t.Fatal(err)
	}
	op, err := r.Begin(context.Background(), OpBackup, 1)
	if err != nil {
		t.Fatal(err)
	}
	_, err = upgrade(context.Background(), h.st)
	op.End()
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "backup") {
		t.Fatalf("upgrade beside a backup: %v, want ErrLocked naming it", err)
	}
	if _, err := h.st.Stat(context.Background(), upgradeConfigName); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("the refused upgrade began")
	}
	if _, err := upgrade(context.Background(), h.st); err != nil {
		t.Fatal(err)
	}
	h.check(t)
}

// TestVersion1Repository reads a repository that dropback wrote before
// encryption (testdata/v1, see its README): every backup restores, verify
// finds nothing wrong; then it is upgraded, and the encrypted repository
// restores every backup again and holds neither its text nor its host name.
func TestVersion1Repository(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "repo")
	copyTree(t, filepath.Join("testdata", "v1", "repo"), dir)
	st, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]string{ // the disk's sha256 at each backup
		1: "cda17884ec5fe273bf9b71f59c0aa10d99d8e923e11272c766cb1a1374fc1f2b",
		2: "3c78bfe983ad6f47e9173ebaea8965d5d0ed0eb0a8fc1f199ca5e8a25aed07ff",
	}
	check := func(what string, opts Options, version int, encrypted bool) {
		t.Helper()
		r, err := Open(ctx, st, opts)
		if err != nil {
			t.Fatalf("%s: open: %v", what, err)
		}
		if r.cfg.Version != version || r.Encrypted() != encrypted {
			t.Fatalf("%s: version %d, encrypted %v", what, r.cfg.Version, r.Encrypted())
		}
		hosts, hd, err := r.HostsAndDamage(ctx)
		if err != nil || len(hd) > 0 || len(hosts) != 1 || hosts[0].Name != "v1-host" {
			t.Fatalf("%s: hosts %+v, damaged %v, %v", what, hosts, hd, err)
		}
		ms, damaged, err := r.ManifestsAndDamage(ctx)
		if err != nil || len(damaged) > 0 || len(ms) != len(want) {
			t.Fatalf("%s: %d backups, damaged %v, %v; want %d", what, len(ms), damaged, err, len(want))
		}
		for _, m := range ms {
			out := filepath.Join(t.TempDir(), "out.img")
			if _, err := r.Restore(ctx, m, []RestoreTarget{{Path: out}}, nil); err != nil {
				t.Fatalf("%s: restore backup %d: %v", what, m.ID, err)
			}
			data, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprintf("%x", sha256.Sum256(data)); got != want[m.ID] {
				t.Errorf("%s: backup %d restores to sha256 %s, want %s", what, m.ID, got, want[m.ID])
			}
			if m.Snapshot != (m.ID == 1) {
				t.Errorf("%s: backup %d: snapshot %v", what, m.ID, m.Snapshot)
			}
		}
		if a, err := r.Action(ctx, 3); err != nil || a.Status != ActionCompleted || a.ResourceID != 1 {
			t.Errorf("%s: action 3 (the convert): %+v, %v", what, a, err)
		}
		res, err := r.Verify(ctx, nil, nil)
		if err != nil || res.Damaged() {
			t.Fatalf("%s: verify: %+v, %v", what, res, err)
		}
	}
	check("version 1", Options{}, 1, false)

	res, err := Upgrade(ctx, st, UpgradeOptions{Password: []byte(testPasswordText), KDF: testKDF})
	if err != nil {
		t.Fatal(err)
	}
	if res.Backups != 2 || res.Hosts != 1 || !res.Finished {
		t.Errorf("upgrade: %+v", res)
	}
	check("upgraded", Options{Password: testPassword}, FormatVersion, true)
	err = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if rel, _ := filepath.Rel(dir, p); strings.HasPrefix(rel, "fate"+string(filepath.Separator)) && !crypt.IsObject(data) {
			t.Errorf("%s is not sealed after the upgrade: %q", rel, data)
		}
		for _, needle := range []string{"version one repository text", "v1-host"} {
			if bytes.Contains(data, []byte(needle)) {
				t.Errorf("%q is in %s after the upgrade", needle, p)
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// copyTree copies the files under from to to.
func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.Walk(from, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o700)
		}
		copyFile(t, p, filepath.Join(to, rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

package integration

// A running guest is a host like any other: scheduled by run --due, pruned
// by its policy's retention, verified, restored to new files disk by disk,
// and kept in S3, with its backups incremental through all of it.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dropback/dropback/internal/miniotest"
	"github.com/dropback/dropback/internal/qemutest"
	"github.com/dropback/dropback/pkg/provider"
	"github.com/dropback/dropback/pkg/provider/local"
)

// startGuestDisks starts a QEMU with the given disks, made empty of 16 MiB,
// and writes a MiB of its own pattern at the start of each writable one.
func startGuestDisks(t *testing.T, dir string, disks ...qemutest.Disk) *qemutest.VM {
	t.Helper()
	qemutest.Available(t)
	for i := range disks {
		disks[i].Path = filepath.Join(dir, disks[i].ID+"."+disks[i].Format)
		qemutest.MakeImage(t, disks[i].Path, disks[i].Format, 16*mib)
	}
	v := qemutest.Start(t, qemutest.Options{Disks: disks})
	for i, d := range disks {
		if !d.ReadOnly {
			v.Write(t, d.ID, byte(0x10+i), 0, mib)
		}
	}
	return v
}

// getVM is backups get of one backup of a running guest.
func (e *localEnv) getVM(id int) vmBackup {
	e.t.Helper()
	var b vmBackup
	e.json(&b.Backup, "backups", "get", fmt.Sprint(id))
	return b
}

// diskNames lists the names of a backup's disks, sorted.
func (b vmBackup) diskNames() []string {
	var out []string
	for _, d := range b.Backup.Disks {
		out = append(out, d.Name)
	}
	slices.Sort(out)
	return out
}

// readBytes maps a backup's disks to what it read of each, and to the
// backup its read was relative to (0: read whole).
func (b vmBackup) readBytes() map[string][2]int64 {
	out := map[string][2]int64{}
	for _, d := range b.Backup.Disks {
		since := int64(0)
		if d.Since != nil {
			since = int64(d.Since.BackupID)
		}
		out[d.Name] = [2]int64{d.ReadBytes, since}
	}
	return out
}

// The guest's writable disks (a qcow2 one, a raw -drive one; the
// read-only one is left out) are backed up by run --due when the daily
// policy says so, incrementally; retention removes the backup older than
// the policy keeps; verify finds every backup whole; restore --to a
// directory writes every disk, each byte-identical to the guest's.
func TestVMHostScheduledPrunedVerifiedRestored(t *testing.T) {
	e := newLocal(t)
	v := startGuestDisks(t, e.dir,
		qemutest.Disk{ID: "vda", Format: "qcow2"},
		qemutest.Disk{ID: "vdb", Format: "raw", Drive: true},
		qemutest.Disk{ID: "vdc", Format: "raw", ReadOnly: true})
	e.ok("hosts", "add", "web-1", "--qemu", v.QMP)

	now := time.Now().UTC()
	old := e.backupVM("web-1", "--time", now.AddDate(0, 0, -10).Format(time.RFC3339))
	assert.Equal(t, []string{"vda", "vdb"}, old.diskNames(), "every writable disk, and only those")
	v.Write(t, "vda", 0x21, 2*mib, mib)
	prev := e.backupVM("web-1", "--time", now.AddDate(0, 0, -2).Format(time.RFC3339))
	since := int64(old.Backup.ID)
	assert.Equal(t, map[string][2]int64{"vda": {mib, since}, "vdb": {0, since}}, prev.readBytes())

	// Daily backups, enabled three days ago: the windows since were missed.
	p, err := local.New(context.Background(), local.Options{Repo: e.repo, Now: func() time.Time { return now.AddDate(0, 0, -3) }, Password: testPasswordFunc})
	require.NoError(t, err)
	plan := "daily"
	_, err = p.EnableBackups(context.Background(), "web-1", provider.PolicyRequest{Plan: &plan})
	require.NoError(t, err)

	v.Write(t, "vdb", 0x22, 5*mib, mib)
	e.ok("run", "--due")
	var list []backupJSON
	e.json(&list, "backups", "list", "web-1")
	require.Len(t, list, 2, "run --due took one backup and retention removed the one of ten days ago: %+v", list)
	ids := []int{list[0].ID, list[1].ID}
	assert.NotContains(t, ids, old.Backup.ID)
	require.Contains(t, ids, prev.Backup.ID)
	dueID := ids[0]
	if dueID == prev.Backup.ID {
		dueID = ids[1]
	}
	due := e.getVM(dueID)
	assert.Equal(t, "crash", due.Backup.Consistency)
	since = int64(prev.Backup.ID)
	assert.Equal(t, map[string][2]int64{"vda": {0, since}, "vdb": {mib, since}}, due.readBytes(), "the scheduled backup is incremental")

	e.ok("backups", "verify")
	out := filepath.Join(e.dir, "restored")
	e.ok("backups", "restore", "web-1", "latest", "--to", out)
	for _, id := range []string{"vda", "vdb"} {
		got, err := os.ReadFile(filepath.Join(out, id))
		require.NoError(t, err)
		assert.Equal(t, v.Image(t, id), got, "disk %s", id)
	}
	entries, err := os.ReadDir(out)
	require.NoError(t, err)
	assert.Len(t, entries, 2, "restore --to wrote a disk the backup does not have")

	// After the pruning the chain goes on.
	v.Write(t, "vda", 0x23, 7*mib, 4096)
	next := e.backupVM("web-1")
	since = int64(due.Backup.ID)
	assert.Equal(t, map[string][2]int64{"vda": {mib, since}, "vdb": {0, since}}, next.readBytes())
}

// Two hosts, each one disk of the same guest (--device): the backups of
// one leave the other's dirty bitmap alone, so both stay incremental.
func TestVMHostsOfOneDiskEachOfOneGuest(t *testing.T) {
	e := newLocal(t)
	v := startGuestDisks(t, e.dir, qemutest.Disk{ID: "vda", Format: "qcow2"}, qemutest.Disk{ID: "vdb", Format: "qcow2"})
	e.ok("hosts", "add", "sys-1", "--qemu", v.QMP, "--device", "vda")
	e.ok("hosts", "add", "data-1", "--qemu", v.QMP, "--device", "vdb")
	sys := e.backupVM("sys-1")
	data := e.backupVM("data-1")
	assert.Equal(t, []string{"vda"}, sys.diskNames())
	assert.Equal(t, []string{"vdb"}, data.diskNames())
	for round := range 2 {
		v.Write(t, "vda", byte(0x30+round), 3*mib, 4096)
		v.Write(t, "vdb", byte(0x40+round), 4*mib, 4096)
		for _, h := range []struct {
			host string
			last *vmBackup
		}{{"sys-1", &sys}, {"data-1", &data}} {
			r := e.run("backups", "create", h.host, "-o", "json")
			require.Equal(t, 0, r.code, r.stderr)
			assert.NotContains(t, r.stderr, "read whole", "round %d, %s", round, h.host)
			var b vmBackup
			require.NoError(t, json.Unmarshal([]byte(r.stdout), &b))
			d := b.Backup.Disks[0]
			require.NotNil(t, d.Since, "round %d: %s read whole", round, h.host)
			assert.Equal(t, h.last.Backup.ID, d.Since.BackupID)
			assert.Equal(t, int64(mib), d.ReadBytes)
			*h.last = b
		}
	}
	assert.Equal(t, v.Image(t, "vda"), e.restored("sys-1", sys.Backup.ID))
	assert.Equal(t, v.Image(t, "vdb"), e.restored("data-1", data.Backup.ID))
}

// A running guest's backups in S3 (MinIO): full, then incremental,
// verified, and restored byte-identical from the bucket.
func TestVMHostInS3(t *testing.T) {
	e := newS3(t, miniotest.Start(t))
	v := startGuestDisks(t, e.dir, qemutest.Disk{ID: "vda", Format: "qcow2"})
	e.ok("hosts", "add", "web-1", "--qemu", v.QMP)
	var first, second vmBackup
	e.json(&first, "backups", "create", "web-1")
	v.Write(t, "vda", 0x51, 9*mib, 64<<10)
	e.json(&second, "backups", "create", "web-1")
	d := second.Backup.Disks[0]
	require.NotNil(t, d.Since)
	assert.Equal(t, first.Backup.ID, d.Since.BackupID)
	assert.Equal(t, int64(mib), d.ReadBytes)
	e.verifyClean()
	out := filepath.Join(e.dir, "restored.img")
	e.ok("backups", "restore", "web-1", fmt.Sprint(second.Backup.ID), "--to", out)
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Equal(t, v.Image(t, "vda"), got)
}

package integration

// What a newcomer's first hour found, at the command line: one addressing
// rule for backups, deletes that reach removed hosts' backups and keep a
// host's last, sizes in one system, a summary in JSON, a retrying API that
// says so.

import (
	"math"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOneAddressingRule: get, verify, convert and restore take <host>
// <id|latest> or a bare ID alike, and refuse another host's backup before
// they do anything.
func TestOneAddressingRule(t *testing.T) {
	e := completionRepo(t) // web-1: backups 1 and 2; db-1: backup 3
	var b backupJSON
	e.json(&b, "backups", "get", "web-1", "latest")
	assert.Equal(t, 2, b.ID)
	e.json(&b, "backups", "get", "3")
	assert.Equal(t, "db-1", b.HostName)
	for _, args := range [][]string{
		{"backups", "get", "db-1", "1"},
		{"backups", "verify", "db-1", "1"},
		{"backups", "convert", "db-1", "1"},
		{"backups", "restore", "db-1", "1", "--to", filepath.Join(e.dir, "x.img")},
		{"backups", "delete", "db-1", "1", "--force"},
	} {
		r := e.run(args...)
		assert.Equal(t, 2, r.code, "%v: %s", args, r.stderr)
		assert.Contains(t, r.stderr, "backup 1 is of host web-1, not of host db-1", "%v", args)
	}
	assert.NoFileExists(t, filepath.Join(e.dir, "x.img"))
	e.ok("backups", "get", "1") // still there, not converted
	var rep struct {
		Backups []struct{ ID int } `json:"backups"`
	}
	e.json(&rep, "backups", "verify", "web-1")
	assert.Len(t, rep.Backups, 2, "verify <host> checks every backup of the host")
	e.json(&rep, "backups", "verify", "web-1", "latest")
	require.Len(t, rep.Backups, 1)
	assert.Equal(t, 2, rep.Backups[0].ID)
	out := filepath.Join(e.dir, "out.img")
	e.ok("backups", "restore", "3", "--to", out)
	assert.Equal(t, sha(t, filepath.Join(e.dir, "db-1.img")), sha(t, out))
}

// TestDeleteReachesRemovedHostsAndKeepsTheLast: a removed host's backups
// are listed by --orphaned and deleted by the host's old name; a host's
// last backup needs --last as well as --force; deleting leaves the data to
// gc, and the backups left restore.
func TestDeleteReachesRemovedHostsAndKeepsTheLast(t *testing.T) {
	e := completionRepo(t)
	e.ok("hosts", "remove", "db-1", "--force")
	var orphans []backupJSON
	e.json(&orphans, "backups", "list", "--orphaned")
	require.Len(t, orphans, 1)
	assert.Equal(t, 3, orphans[0].ID)

	r := e.run("backups", "delete", "db-1", "3", "--force")
	assert.Equal(t, 6, r.code, r.stderr)
	assert.Contains(t, r.stderr, "LAST backup of host db-1")
	assert.Contains(t, r.stderr, "--force --last")
	e.ok("backups", "get", "3")

	e.ok("backups", "delete", "db-1", "3", "--force", "--last")
	e.json(&orphans, "backups", "list", "--orphaned")
	assert.Empty(t, orphans)

	e.ok("backups", "delete", "web-1", "1", "--force")
	r = e.run("backups", "delete", "web-1", "2", "--force")
	assert.Equal(t, 6, r.code, "the last of web-1 needs --last: %s", r.stderr)
	e.ok("repo", "gc")
	out := filepath.Join(e.dir, "out.img")
	e.ok("backups", "restore", "web-1", "latest", "--to", out)
	assert.Equal(t, sha(t, filepath.Join(e.dir, "web-1.img")), sha(t, out))
}

// TestSizesInOneSystem: size_bytes is the data the backup holds,
// size_gigabytes the same in GiB to two places and never 0 for data, the
// table shows size_bytes in binary units; the JSON of backups create has
// the summary the terminal shows.
func TestSizesInOneSystem(t *testing.T) {
	e := newLocal(t)
	disk := filepath.Join(e.dir, "web-1.img")
	makeDisk(t, disk, 256*mib, 3, part{0, 60 * mib, "random"})
	e.ok("hosts", "add", "web-1", "--disk", disk)
	var res struct {
		Backup struct {
			SizeBytes     int64   `json:"size_bytes"`
			SizeGigabytes float64 `json:"size_gigabytes"`
			Disks         []struct {
				DataBytes int64 `json:"data_bytes"`
			} `json:"disks"`
		} `json:"backup"`
		Summary struct {
			ReadBytes   int64 `json:"read_bytes"`
			NewBytes    int64 `json:"new_bytes"`
			StoredBytes int64 `json:"stored_bytes"`
		} `json:"summary"`
	}
	e.json(&res, "backups", "create", "web-1")
	assert.Equal(t, int64(60*mib), res.Backup.SizeBytes)
	assert.Equal(t, res.Backup.Disks[0].DataBytes, res.Backup.SizeBytes)
	assert.Equal(t, math.Round(60.0/1024*100)/100, res.Backup.SizeGigabytes)
	assert.Equal(t, int64(60*mib), res.Summary.ReadBytes, "holes are not read")
	assert.Equal(t, int64(60*mib), res.Summary.NewBytes)
	assert.Greater(t, res.Summary.StoredBytes, int64(59*mib), "random data does not compress")
	table := e.ok("backups", "list", "--format", "Size", "--no-header")
	assert.Equal(t, "60.0 MiB\n", table)

	small := filepath.Join(e.dir, "small.img")
	makeDisk(t, small, 8*mib, 4, part{0, 4096, "text"})
	e.ok("hosts", "add", "small", "--disk", small)
	var b struct {
		Backup backupJSON `json:"backup"`
	}
	e.json(&b, "backups", "create", "small")
	assert.Equal(t, 0.01, b.Backup.SizeGigabytes, "a backup that holds data is never 0 GB")
}

// TestQcow2DiskIsSaidToBeAFile: hosts add of a qcow2 image says that its
// file's bytes are what is backed up, not the guest's disk; a raw disk gets
// no such notice.
func TestQcow2DiskIsSaidToBeAFile(t *testing.T) {
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img is not installed (scripts/deps.sh installs qemu-utils)")
	}
	e := newLocal(t)
	img := filepath.Join(e.dir, "web-1.qcow2")
	out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", img, "64M").CombinedOutput()
	require.NoError(t, err, string(out))
	r := e.run("hosts", "add", "web-1", "--disk", img)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stderr, "web-1.qcow2 is a qcow2 image: dropback backs up and restores the file's bytes as they are")
	var h struct {
		Notices []string `json:"notices"`
	}
	e.json(&h, "hosts", "get", "web-1")
	assert.Empty(t, h.Notices, "the notice is said when the host is added")

	raw := filepath.Join(e.dir, "db-1.img")
	makeDisk(t, raw, 8*mib, 1, part{0, mib, "text"})
	r = e.run("hosts", "add", "db-1", "--disk", raw)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Empty(t, r.stderr)
}

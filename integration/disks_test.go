package integration

// Disks that vanish or change identity: a block device that reads as 0
// bytes (a detached loop device) is no disk, and a disk whose size differs
// from its last backup fails the backup until --accept-resize, on demand
// and in a scheduled pass. Each refusal is one line on stderr, a non-zero
// exit, and no backup.

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dropback/dropback/pkg/provider"
	"github.com/dropback/dropback/pkg/provider/local"
)

// Finding 11: a detached loop device reads as 0 bytes. Backing it up fails
// with one line, no backup appears, and it cannot be added as a disk.
func TestBackupOfAVanishedBlockDevice(t *testing.T) {
	e := newLocal(t)
	file := filepath.Join(e.dir, "backing.img")
	makeDisk(t, file, 16*mib, 1, part{0, 16 * mib, "random"})
	dev := loopDevice(t, file)
	spare := filepath.Join(e.dir, "spare.img")
	makeDisk(t, spare, 8*mib, 2, part{0, 8 * mib, "text"})
	dev2 := loopDevice(t, spare)
	e.ok("hosts", "add", "vm-1", "--disk", dev)
	e.create("vm-1")
	losetup(t, "-d", dev)
	losetup(t, "-d", dev2)
	require.Equal(t, int64(0), devSize(t, dev), "a detached loop device reads as 0 bytes")
	require.Equal(t, int64(0), devSize(t, dev2), "a detached loop device reads as 0 bytes")

	r := e.run("backups", "create", "vm-1")
	oneCleanLine(t, r, "0 bytes")
	assert.Len(t, e.listed(), 1, "a backup of the vanished device appeared")

	r = e.run("hosts", "add", "vm-2", "--disk", dev2)
	oneCleanLine(t, r, "0 bytes")
	var hosts []map[string]any
	e.json(&hosts, "hosts", "list")
	assert.Len(t, hosts, 1, "a detached device was added as a disk")
}

// Finding 11: a disk whose size differs from its previous backup fails the
// backup unless --accept-resize; a disk that was empty may stay empty; a
// scheduled pass reports the refusal as the host's error.
func TestBackupOfAResizedDisk(t *testing.T) {
	e := newLocal(t)
	disk := filepath.Join(e.dir, "web-1.img")
	makeDisk(t, disk, 16*mib, 1, part{0, 16 * mib, "random"})
	e.ok("hosts", "add", "web-1", "--disk", disk)
	e.create("web-1")

	require.NoError(t, os.Truncate(disk, 24*mib))
	r := e.run("backups", "create", "web-1")
	oneCleanLine(t, r, "--accept-resize")
	assert.Len(t, e.listed(), 1, "a backup of the resized disk appeared")
	e.ok("backups", "create", "web-1", "--accept-resize")
	e.create("web-1") // the size of the previous backup now

	require.NoError(t, os.Truncate(disk, 0))
	r = e.run("backups", "create", "web-1")
	oneCleanLine(t, r, "0 bytes")
	assert.Contains(t, r.stderr, "--accept-resize")
	assert.Len(t, e.listed(), 3, "a backup of the emptied disk appeared")

	empty := filepath.Join(e.dir, "empty.img")
	require.NoError(t, os.WriteFile(empty, nil, 0o644))
	e.ok("hosts", "add", "empty-1", "--disk", empty)
	e.create("empty-1")
	e.create("empty-1") // empty before, empty now

	t.Run("scheduled", func(t *testing.T) {
		ctx := context.Background()
		past := time.Now().Add(-48 * time.Hour)
		p, err := local.New(ctx, local.Options{Repo: e.repo, Password: testPasswordFunc})
		require.NoError(t, err)
		sched := filepath.Join(e.dir, "sched-1.img")
		makeDisk(t, sched, 8*mib, 2, part{0, 8 * mib, "random"})
		_, err = p.AddHost(ctx, provider.HostSpec{Name: "sched-1", Disks: []string{sched}})
		require.NoError(t, err)
		_, err = p.CreateBackup(ctx, "sched-1", provider.CreateOptions{Time: past})
		require.NoError(t, err)
		// Enabled two days ago, so that today's window is due.
		earlier, err := local.New(ctx, local.Options{Repo: e.repo, Now: func() time.Time { return past }, Password: testPasswordFunc})
		require.NoError(t, err)
		plan := "daily"
		_, err = earlier.EnableBackups(ctx, "sched-1", provider.PolicyRequest{Plan: &plan})
		require.NoError(t, err)
		require.NoError(t, os.Truncate(sched, 12*mib))
		before := len(e.listed())

		r := e.run("run", "--due")
		assert.NotEqual(t, 0, r.code, "a pass whose only due host failed")
		assert.Contains(t, r.stderr, "sched-1")
		assert.Contains(t, r.stderr, "--accept-resize")
		assert.Len(t, e.listed(), before, "the pass backed up the resized disk")
	})
}

package integration

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dropback/dropback/internal/libvirttest"
)

// A libvirt domain, through libvirt's own backup API: a full backup, an
// incremental one that reads only what the guest wrote since (through the
// checkpoint the first created), both restoring to the guest's bytes, and
// an in-place restore refused while the domain runs.
func TestLibvirtBackupAndIncremental(t *testing.T) {
	libvirttest.Start(t)
	e := newLocal(t)
	d := libvirttest.StartDomain(t, 32*mib)
	d.Write(t, 0x11, 0, 8*mib)
	e.ok("hosts", "add", "web-3", "--libvirt", d.Name)

	r := e.run("backups", "create", "web-3", "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stderr, "crash-consistent", "the domain runs no guest agent")
	var first vmBackup
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &first))
	assert.Equal(t, d.Image(t), e.restored("web-3", first.Backup.ID))

	d.Write(t, 0x22, 4*mib, mib)
	second := e.backupVM("web-3")
	disk := second.Backup.Disks[0]
	require.NotNil(t, disk.Since, "the second backup is incremental")
	assert.Equal(t, first.Backup.ID, disk.Since.BackupID)
	assert.Equal(t, int64(mib), disk.ReadBytes)
	assert.Equal(t, d.Image(t), e.restored("web-3", second.Backup.ID))
	assert.Contains(t, d.Virsh(t, "checkpoint-list", d.Name, "--name"), disk.Bitmap)

	rr := e.run("backups", "restore", "web-3", "latest", "--force")
	assert.Equal(t, 14, rr.code, rr.stderr)
	assert.True(t, strings.Contains(rr.stderr, "running guest"), rr.stderr)

	// The checkpoint the last backup created is gone: the next backup reads
	// the disk whole, says why, and is right.
	d.Virsh(t, "checkpoint-delete", d.Name, disk.Bitmap)
	d.Write(t, 0x33, 12*mib, mib)
	r = e.run("backups", "create", "web-3", "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stderr, "disk vda is read whole")
	var third vmBackup
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &third))
	assert.Nil(t, third.Backup.Disks[0].Since)
	assert.Equal(t, third.Backup.Disks[0].DataBytes, third.Backup.Disks[0].ReadBytes, "a full read")
	assert.Equal(t, d.Image(t), e.restored("web-3", third.Backup.ID))
}

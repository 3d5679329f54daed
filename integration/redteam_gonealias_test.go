package integration

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A gone qcow2 disk is refused --to its own path (goneDisk), but
// targetsOf knows a path for the host's disk only when it is spelled as
// the host records it or both exist (sameFile): once the image is gone,
// the same path through a symbolic link to its directory (the images
// directory of a hypervisor is often one) is a new file of no host, and
// the restore writes raw bytes under the qcow2 image's name.
func TestRedteamGoneQcow2DiskRestoredRawThroughALinkToItsDirectory(t *testing.T) {
	e := newLocal(t)
	v, _ := startGuest(t, e.dir, "qcow2", 16*mib, nil, false)
	img := filepath.Join(e.dir, "vda.qcow2")
	e.ok("hosts", "add", "web-1", "--qemu", v.QMP)
	e.backupVM("web-1")
	v.Kill()
	require.NoError(t, os.Remove(img))
	alias := filepath.Join(t.TempDir(), "images")
	require.NoError(t, os.Symlink(e.dir, alias))

	r := e.run("backups", "restore", "web-1", "latest", "--to", filepath.Join(alias, "vda.qcow2"))
	if r.code != 0 {
		return // refused
	}
	data, err := os.ReadFile(img)
	require.NoError(t, err)
	assert.True(t, bytes.HasPrefix(data, []byte("QFI\xfb")),
		"restored --to %s, the gone qcow2 image %s now holds raw bytes", filepath.Join(alias, "vda.qcow2"), img)
}

package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A guest's qcow2 image is deleted. An in-place restore of a qcow2 disk
// that still exists is refused, because a backup holds the bytes the guest
// sees and not the image file (it names the qemu-img convert to run). But
// once the image is gone, the in-place restore names `--to <the image's
// own path>` instead, which targetsOf now allows as "the host's own disk,
// gone", and that command writes raw bytes under the qcow2 image's name:
// the guest, started again with format=qcow2, does not open its disk,
// and the host record still says qcow2. Following dropback's own hint
// leaves the wrong bytes at the disk's path. (The hint also elided a long
// path with "…", so that it could not be run as printed.)
func TestRedteamGoneQcow2DiskRestoredRawAtItsPath(t *testing.T) {
	e := newLocal(t)
	v, _ := startGuest(t, e.dir, "qcow2", 16*mib, nil, false)
	img := filepath.Join(e.dir, "vda.qcow2")
	e.ok("hosts", "add", "web-1", "--qemu", v.QMP)
	b := e.backupVM("web-1")
	v.Kill()
	require.NoError(t, os.Remove(img))

	inPlace := e.run("backups", "restore", "web-1", "latest", "--force")
	require.NotEqual(t, 0, inPlace.code, "in-place restore of a gone disk: %s", inPlace.stdout)
	// The refusal does not send the user to --to the image's own path,
	// which would write raw bytes there, but to a raw file and qemu-img.
	assert.Contains(t, inPlace.stderr, "qemu-img convert -f raw -O qcow2 FILE "+img)
	assert.NotContains(t, inPlace.stderr, "--to "+img)
	// Run anyway, --to the image's own path is refused, or writes qcow2.
	r := e.run("backups", "restore", "web-1", fmt.Sprint(b.Backup.ID), "--to", img)
	if r.code != 0 {
		return // refused: nothing was written under the qcow2 image's name
	}
	head := make([]byte, 4)
	f, err := os.Open(img)
	require.NoError(t, err)
	_, err = f.Read(head)
	f.Close()
	require.NoError(t, err)
	out, _ := exec.Command("qemu-img", "info", "-f", "qcow2", img).CombinedOutput()
	assert.True(t, bytes.Equal(head, []byte("QFI\xfb")),
		"the hinted restore wrote raw bytes at %s, the guest's qcow2 image (qemu-img info -f qcow2: %s)", img, strings.TrimSpace(string(out)))
}

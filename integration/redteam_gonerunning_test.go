package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The raw image of a running guest is deleted by mistake; QEMU still has
// it open and the guest runs on it. An in-place restore of a running
// guest is refused ("shut it down before restoring over its disks"), but
// the in-place refusal of a gone disk comes first and names `--to <the
// image's own path>`, and that restore skips the running-guest check: it
// writes the backup at the path while the guest goes on writing to the
// deleted image. Everything the guest writes after the restore "succeeds"
// is lost silently at its next start, which opens the restored file.
func TestRedteamGoneRawDiskOfARunningGuestIsRestoredUnderIt(t *testing.T) {
	e := newLocal(t)
	v, _ := startGuest(t, e.dir, "raw", 16*mib, nil, false)
	img := filepath.Join(e.dir, "vda.raw")
	e.ok("hosts", "add", "web-1", "--qemu", v.QMP)
	b := e.backupVM("web-1")
	require.NoError(t, os.Remove(img))
	require.Equal(t, "running", v.Status(t))

	inPlace := e.run("backups", "restore", "web-1", "latest", "--force")
	require.NotEqual(t, 0, inPlace.code, "in-place restore of a gone disk: %s", inPlace.stdout)
	r := e.run("backups", "restore", "web-1", fmt.Sprint(b.Backup.ID), "--to", img)
	v.Write(t, "vda", 0x5a, 0, mib) // the guest's next write goes to the deleted image
	_, err := os.Stat(img)
	assert.True(t, r.code != 0 && os.IsNotExist(err),
		"with its guest running (%s) on the deleted image, the gone disk was restored at %s (exit %d; in-place refusal: %s)",
		v.Status(t), img, r.code, inPlace.stderr)
}

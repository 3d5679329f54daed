package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// loopDevice attaches a file as a loop block device. It skips the test
// when not run as root (who runs this suite); as root a failed losetup
// fails the test rather than hide it.
func loopDevice(t *testing.T, file string) string {
	t.Helper()
	out, err := exec.Command("losetup", "-f", "--show", file).CombinedOutput()
	if err != nil {
		msg := fmt.Sprintf("no loop device (losetup: %v: %s): block devices are not tested", err, strings.TrimSpace(string(out)))
		if os.Geteuid() != 0 {
			t.Skip(msg)
		}
		t.Fatal(msg)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { _ = exec.Command("losetup", "-d", dev).Run() })
	return dev
}

func TestLocalBlockDevice(t *testing.T) {
	e := newLocal(t)
	file := filepath.Join(e.dir, "backing.img")
	makeDisk(t, file, 32*mib, 1, part{0, 8 * mib, "random"}, part{20 * mib, 4 * mib, "text"})
	dev := loopDevice(t, file)
	e.ok("hosts", "add", "vm-1", "--disk", dev)
	var host struct {
		Disks []struct {
			Path      string `json:"path"`
			SizeBytes int64  `json:"size_bytes"`
		} `json:"disks"`
	}
	e.json(&host, "hosts", "get", "vm-1")
	require.Len(t, host.Disks, 1)
	assert.Equal(t, int64(32*mib), host.Disks[0].SizeBytes, "a block device's size is read from the device")
	b := e.create("vm-1")
	want := sha(t, dev)

	out := filepath.Join(e.dir, "copy.img")
	e.ok("backups", "restore", "vm-1", "latest", "--to", out)
	assert.Equal(t, want, sha(t, out))

	// Change the device, then restore it in place: only the changed chunk
	// is written, and the device holds the backup again.
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte("changed on the device"), 3*mib+100)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	require.NotEqual(t, want, sha(t, dev))
	var res restoreJSON
	e.json(&res, "backups", "restore", "vm-1", fmt.Sprint(b.ID), "--force")
	assert.Equal(t, int64(mib), res.BytesWritten)
	assert.Equal(t, want, sha(t, dev))
}

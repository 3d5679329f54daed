package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// QEMU killed after the disks were read: the backup fails with one line
// that says once that QEMU is gone, and leaves nothing in the scratch
// directory; once QEMU runs again, the next backup goes.
func TestVMQEMUKilledMidBackupLeavesNoScratchFiles(t *testing.T) {
	e := newLocal(t)
	v, _ := startGuest(t, e.dir, "qcow2", 16*mib, nil, false)
	scratch := filepath.Join(e.dir, "scratch")
	require.NoError(t, os.Mkdir(scratch, 0o755))
	sock := filepath.Join(v.Dir, "proxy.qmp")
	p := startQMPProxy(t, sock, v.QMP, "block-export-add", "query-block-jobs", false)
	p.fired = v.Kill
	e.ok("hosts", "add", "web-1", "--qemu", sock, "--scratch", scratch)
	p.arm()
	r := e.run("backups", "create", "web-1")
	require.NotEqual(t, 0, r.code)
	line := strings.TrimSuffix(r.stderr, "\n")
	assert.NotContains(t, line, "\n", "one line: %s", r.stderr)
	assert.Equal(t, 1, strings.Count(line, "QEMU is gone"), line)
	assert.LessOrEqual(t, strings.Count(line, "cannot reach the hypervisor"), 1, line)
	assert.NotContains(t, line, "the next backup clears", line)
	left, err := os.ReadDir(scratch)
	require.NoError(t, err)
	assert.Empty(t, left, "scratch files left behind")

	v.Restart(t)
	startQMPProxy(t, sock, v.QMP, "", "", false)
	e.backupVM("web-1")
	left, err = os.ReadDir(scratch)
	require.NoError(t, err)
	assert.Empty(t, left)
}

package integration

// A full disk: the repository on a 64 MiB tmpfs, which a backup fills. The
// error is one clean line, the repository stays valid, earlier backups
// restore, and once space is freed the next backup succeeds.

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

// mountSmallFS mounts a size-limited tmpfs at a new directory and unmounts
// it when the test ends. It skips the test when not run as root (who runs
// this suite); as root a failed mount fails the test rather than hide it.
func mountSmallFS(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	mnt := filepath.Join(dir, "mnt")
	require.NoError(t, os.Mkdir(mnt, 0o700))
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", mnt).CombinedOutput()
	if err != nil {
		msg := fmt.Sprintf("mount a %s tmpfs (it needs root or CAP_SYS_ADMIN): %v: %s", size, err, strings.TrimSpace(string(out)))
		if os.Geteuid() != 0 {
			t.Skip("skipping the full-disk test: " + msg)
		}
		t.Fatal(msg)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Logf("umount %s: %v: %s; detaching it", mnt, err, out)
			_ = exec.Command("umount", "-l", mnt).Run()
		}
	})
	return mnt
}

func TestFullDisk(t *testing.T) {
	mnt := mountSmallFS(t, "64m")
	disks := shmDir(t)
	e := &localEnv{t: t, dir: disks, repo: filepath.Join(mnt, "repo"), home: filepath.Join(disks, "home")}
	e.ok("repo", "init")

	// Something else on the same filesystem takes a third of it.
	ballast := filepath.Join(mnt, "ballast")
	require.NoError(t, os.WriteFile(ballast, make([]byte, 20*mib), 0o600))

	web := filepath.Join(disks, "web-1.img")
	makeDisk(t, web, 8*mib, 1, part{0, 8 * mib, "random"})
	e.ok("hosts", "add", "web-1", "--disk", web)
	first := e.create("web-1")
	webSum := sha(t, web)

	// A backup of 48 MiB of new data does not fit in what is left.
	big := filepath.Join(disks, "big-1.img")
	makeDisk(t, big, 48*mib, 2, part{0, 48 * mib, "random"})
	e.ok("hosts", "add", "big-1", "--disk", big)
	r := e.fails("a backup onto a full disk", "backups", "create", "big-1")
	assert.Equal(t, 1, strings.Count(r.stderr, "no space left on device"), "the error names the full disk once: %s", r.stderr)
	assert.Equal(t, 1, strings.Count(r.stderr, "back up host big-1"), "the error says once which backup failed: %s", r.stderr)

	// The repository is valid and the earlier backup restores.
	list := e.listed()
	require.Len(t, list, 1, "only the earlier backup is listed: %v", list)
	e.verifyClean("after the disk filled")
	e.restores(first, webSum, "after the disk filled")

	// gc, on the full disk, reclaims what the failed backup left.
	var gc struct {
		ReclaimedBytes int64 `json:"reclaimed_bytes"`
	}
	e.json(&gc, "repo", "gc", "--min-age", "0")
	assert.Greater(t, gc.ReclaimedBytes, int64(0), "gc reclaims the failed backup's packs")

	// Space is freed; the backup succeeds and is whole.
	require.NoError(t, os.Remove(ballast))
	b := e.create("big-1")
	e.restores(b, sha(t, big), "after space was freed")
	e.restores(first, webSum, "after space was freed")
	e.verifyClean("after space was freed")
}

package integration

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// guideBlocks returns the `sh` blocks of a markdown page, in order.
func guideBlocks(t *testing.T, page string) []string {
	t.Helper()
	data, err := os.ReadFile(page)
	require.NoError(t, err)
	var blocks []string
	var cur []string
	in := false
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case !in && strings.TrimSpace(line) == "```sh":
			in, cur = true, nil
		case in && strings.TrimSpace(line) == "```":
			in = false
			blocks = append(blocks, strings.Join(cur, "\n"))
		case in:
			cur = append(cur, line)
		}
	}
	require.False(t, in, "an unclosed block in %s", page)
	return blocks
}

// TestGettingStartedRunsToTheEnd runs every sh block of
// docs/getting-started.md, in order, as a newcomer would type them: one
// bash, set -e, a fresh HOME, and the binary under test as `dropback` on
// PATH.
func TestGettingStartedRunsToTheEnd(t *testing.T) {
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		if _, err := os.Stat("/sbin/mkfs.ext4"); err != nil {
			t.Skip("mkfs.ext4 is not installed (scripts/deps.sh installs e2fsprogs)")
		}
	}
	blocks := guideBlocks(t, filepath.Join("..", "docs", "getting-started.md"))
	require.GreaterOrEqual(t, len(blocks), 8, "the guide lost its steps")
	home := t.TempDir()
	binDir := filepath.Join(home, "bin")
	require.NoError(t, os.MkdirAll(binDir, 0o755))
	require.NoError(t, os.Symlink(binPath, filepath.Join(binDir, "dropback")))
	script := "set -euo pipefail\n" + strings.Join(blocks, "\n")
	cmd := exec.Command("bash", "--norc", "--noprofile", "-c", script)
	cmd.Env = dropbackCmd(home, nil).Env
	for i, kv := range cmd.Env {
		if strings.HasPrefix(kv, "PATH=") {
			cmd.Env[i] = "PATH=" + binDir + ":" + os.Getenv("PATH") + ":/usr/sbin:/sbin"
		}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	require.NoError(t, err, "the guide stops:\n%s", out.String())
	for _, want := range []string{"web-1 is back to its first backup", "Removed host web-1"} {
		require.Contains(t, out.String(), want)
	}
}

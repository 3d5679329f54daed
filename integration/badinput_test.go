package integration

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLocalBadInput runs commands that must fail: each gives one line on
// stderr, a non-zero exit, no panic, and leaves the repository and the
// disks as they were.
func TestLocalBadInput(t *testing.T) {
	e := newLocal(t)
	disk := filepath.Join(e.dir, "web-1.img")
	other := filepath.Join(e.dir, "db-1.img")
	makeDisk(t, disk, 8*mib, 1, part{0, 2 * mib, "random"})
	makeDisk(t, other, 4*mib, 2, part{0, mib, "text"})
	e.ok("hosts", "add", "web-1", "--disk", disk)
	e.ok("hosts", "add", "db-1", "--disk", other)
	e.create("web-1")
	existing := filepath.Join(e.dir, "existing.img")
	require.NoError(t, os.WriteFile(existing, []byte("keep me"), 0o644))
	fifo := filepath.Join(e.dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o644))
	empty := filepath.Join(e.dir, "not-a-repo")
	require.NoError(t, os.MkdirAll(empty, 0o755))
	newer := filepath.Join(e.dir, "newer")
	require.NoError(t, os.MkdirAll(newer, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(newer, "config"),
		[]byte(`{"format":"dropback-repository","version":99,"chunk_size":1048576}`), 0o600))
	foreign := filepath.Join(e.dir, "foreign")
	require.NoError(t, os.MkdirAll(foreign, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(foreign, "config"), []byte("[restic]\n"), 0o600))

	cases := []struct {
		name string
		args []string
		want string // in the error line
	}{
		{"unknown host", []string{"backups", "create", "nope"}, "no host named"},
		{"unknown host ID", []string{"hosts", "get", "999"}, "no host with ID 999"},
		{"missing disk", []string{"hosts", "add", "x", "--disk", filepath.Join(e.dir, "missing.img")}, "no such file"},
		{"directory as disk", []string{"hosts", "add", "x", "--disk", e.dir}, "is a directory"},
		{"FIFO as disk", []string{"hosts", "add", "x", "--disk", fifo}, "not a regular file or block device"},
		{"no disk", []string{"hosts", "add", "x"}, "disk"},
		{"disk of another host", []string{"hosts", "add", "x", "--disk", disk}, "already a disk of host web-1"},
		{"duplicate name", []string{"hosts", "add", "web-1", "--disk", existing}, "exists already"},
		{"name with slash", []string{"hosts", "add", "a/b", "--disk", existing}, "invalid host name"},
		{"name ..", []string{"hosts", "add", "..", "--disk", existing}, "invalid host name"},
		{"name with NUL", []string{"hosts", "add", "a\x01b", "--disk", existing}, "invalid host name"},
		{"name too long", []string{"hosts", "add", strings.Repeat("a", 10000), "--disk", existing}, "invalid host name"},
		{"name all digits", []string{"hosts", "add", "1234", "--disk", existing}, "all digits"},
		{"repository not initialised", []string{"--repo", empty, "backups", "list"}, "repo init"},
		{"repository of a newer format", []string{"--repo", newer, "backups", "list"}, "newer"},
		{"repository of another format", []string{"--repo", foreign, "hosts", "list"}, "not a dropback repository"},
		{"repo init twice", []string{"repo", "init"}, "already"},
		{"unknown backup ID", []string{"backups", "get", "999"}, "999"},
		{"backup ID not a number", []string{"backups", "get", "abc"}, "abc"},
		{"restore unknown backup", []string{"backups", "restore", "web-1", "999", "--to", filepath.Join(e.dir, "o.img")}, "999"},
		{"restore bad backup ref", []string{"backups", "restore", "web-1", "yesterday", "--to", filepath.Join(e.dir, "o.img")}, "latest"},
		{"restore onto another host's disk", []string{"backups", "restore", "web-1", "latest", "--to", other}, "disk of host db-1"},
		{"restore in place without --force", []string{"backups", "restore", "web-1", "latest"}, "--force"},
		{"restore over a file without --force", []string{"backups", "restore", "web-1", "latest", "--to", existing}, "--force"},
		{"restore into a missing directory", []string{"backups", "restore", "web-1", "latest", "--to", filepath.Join(e.dir, "no", "such", "x.img")}, "does not exist"},
		{"restore of a host without backups", []string{"backups", "restore", "db-1", "latest", "--to", filepath.Join(e.dir, "o.img")}, "no backups"},
		{"verify unknown backup", []string{"backups", "verify", "999"}, "999"},
		{"bad output format", []string{"hosts", "list", "-o", "yaml"}, "yaml"},
		{"unknown --format column", []string{"hosts", "list", "--format", "Nope"}, "Nope"},
		{"unknown command", []string{"backups", "explode"}, "explode"},
		{"missing argument", []string{"backups", "create"}, "missing"},
		{"unknown flag", []string{"backups", "list", "--frobnicate"}, "frobnicate"},
		{"hosts remove without --force", []string{"hosts", "remove", "web-1"}, "--force"},
	}
	before := treeState(t, e.dir)
	diskSum, otherSum, existingSum := sha(t, disk), sha(t, other), sha(t, existing)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pre := treeState(t, e.dir)
			oneCleanLine(t, e.run(tc.args...), tc.want)
			assert.Equal(t, pre, treeState(t, e.dir), "the refused command changed a file")
		})
	}
	assert.Equal(t, before, treeState(t, e.dir), "a refused command changed the repository or a disk")
	assert.Equal(t, diskSum, sha(t, disk))
	assert.Equal(t, otherSum, sha(t, other))
	assert.Equal(t, existingSum, sha(t, existing))
	_, err := os.Stat(filepath.Join(empty, "config"))
	assert.True(t, os.IsNotExist(err), "a command on an uninitialised repository created it")
}

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
		code int    // as docs/exit-codes.md says
	}{
		{"unknown host", []string{"backups", "create", "nope"}, "no host named", 1},
		{"unknown host ID", []string{"hosts", "get", "999"}, "no host with ID 999", 1},
		{"missing disk", []string{"hosts", "add", "x", "--disk", filepath.Join(e.dir, "missing.img")}, "no such file", 2},
		{"directory as disk", []string{"hosts", "add", "x", "--disk", e.dir}, "is a directory", 2},
		{"FIFO as disk", []string{"hosts", "add", "x", "--disk", fifo}, "not a regular file or block device", 2},
		{"no disk", []string{"hosts", "add", "x"}, "disk", 2},
		{"disk of another host", []string{"hosts", "add", "x", "--disk", disk}, "already a disk of host web-1", 2},
		{"duplicate name", []string{"hosts", "add", "web-1", "--disk", existing}, "exists already", 2},
		{"name with slash", []string{"hosts", "add", "a/b", "--disk", existing}, "invalid host name", 2},
		{"name ..", []string{"hosts", "add", "..", "--disk", existing}, "invalid host name", 2},
		{"name with NUL", []string{"hosts", "add", "a\x01b", "--disk", existing}, "invalid host name", 2},
		{"name too long", []string{"hosts", "add", strings.Repeat("a", 10000), "--disk", existing}, "invalid host name", 2},
		{"name all digits", []string{"hosts", "add", "1234", "--disk", existing}, "all digits", 2},
		{"repository not initialised", []string{"--repo", empty, "backups", "list"}, "repo init", 10},
		{"repository of a newer format", []string{"--repo", newer, "backups", "list"}, "newer", 13},
		{"repository of another format", []string{"--repo", foreign, "hosts", "list"}, "not a dropback repository", 13},
		{"repo init twice", []string{"repo", "init"}, "already", 1},
		{"unknown backup ID", []string{"backups", "get", "999"}, "999", 1},
		{"backup ID not a number", []string{"backups", "get", "abc"}, "abc", 2},
		{"restore unknown backup", []string{"backups", "restore", "web-1", "999", "--to", filepath.Join(e.dir, "o.img")}, "999", 1},
		{"restore bad backup ref", []string{"backups", "restore", "web-1", "yesterday", "--to", filepath.Join(e.dir, "o.img")}, "latest", 2},
		{"restore onto another host's disk", []string{"backups", "restore", "web-1", "latest", "--to", other}, "disk of host db-1", 2},
		{"restore in place without --force", []string{"backups", "restore", "web-1", "latest"}, "--force", 6},
		{"restore over a file without --force", []string{"backups", "restore", "web-1", "latest", "--to", existing}, "--force", 6},
		{"restore into a missing directory", []string{"backups", "restore", "web-1", "latest", "--to", filepath.Join(e.dir, "no", "such", "x.img")}, "does not exist", 2},
		{"restore of a host without backups", []string{"backups", "restore", "db-1", "latest", "--to", filepath.Join(e.dir, "o.img")}, "no backups", 1},
		{"verify unknown backup", []string{"backups", "verify", "999"}, "999", 1},
		{"bad output format", []string{"hosts", "list", "-o", "yaml"}, "yaml", 2},
		{"unknown --format column", []string{"hosts", "list", "--format", "Nope"}, "Nope", 2},
		{"unknown command", []string{"backups", "explode"}, "explode", 2},
		{"missing argument", []string{"backups", "create"}, "missing", 2},
		{"unknown flag", []string{"backups", "list", "--frobnicate"}, "frobnicate", 2},
		{"hosts remove without --force", []string{"hosts", "remove", "web-1"}, "--force", 6},
	}
	before := treeState(t, e.dir)
	diskSum, otherSum, existingSum := sha(t, disk), sha(t, other), sha(t, existing)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pre := treeState(t, e.dir)
			r := e.run(tc.args...)
			oneCleanLine(t, r, tc.want)
			assert.Equal(t, tc.code, r.code, "exit code: %s", r.stderr)
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

package integration

// Hostile input, beyond the 33 cases of badinput_test.go: bad flags and
// policy values, IDs, host names with path elements, control characters or
// 10,000 characters, config files that are not YAML or that others can
// read, disks that are no disks, repositories of another format or a newer
// version, and disks that change size during a backup. Each gives one
// clear line on stderr, a non-zero exit, no panic, and changes nothing.

import (
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/zeebo/blake3"
)

// treeState records every file under dir with its size and content hash,
// to show that a refused command changed nothing anywhere.
func treeState(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		// The engine's local cache (docs/format.md, "The local cache") is
		// neither the repository nor a disk: any reading command may fill it.
		if d != nil && d.IsDir() && strings.HasSuffix(p, filepath.Join(".cache", "dropback")) {
			return filepath.SkipDir
		}
		if err != nil || d.IsDir() || strings.Contains(p, "/.tmp") || strings.HasPrefix(d.Name(), "scratch-") {
			return nil
		}
		if !d.Type().IsRegular() {
			out[p] = d.Type().String()
			return nil
		}
		out[p] = sha(t, p)
		return nil
	})
	return out
}

// sealed is a record sealed as dropback seals its config, manifests and
// host records (docs/format.md): the body beside the BLAKE3 of its bytes.
func sealed(body string) string {
	return fmt.Sprintf(`{"blake3": "%x", "body": %s}`, blake3.Sum256([]byte(body)), body)
}

// oneCleanLine checks the error output of a refused command.
func oneCleanLine(t *testing.T, r result, want string) {
	t.Helper()
	assert.NotEqual(t, 0, r.code, "exit code")
	assert.Empty(t, r.stdout, "nothing on stdout")
	line := strings.TrimSuffix(r.stderr, "\n")
	assert.NotContains(t, line, "\n", "one line on stderr, got:\n%s", r.stderr)
	assert.False(t, strings.ContainsFunc(line, func(c rune) bool {
		return unicode.IsControl(c) || unicode.Is(unicode.Bidi_Control, c)
	}), "control characters on stderr: %q", line)
	assert.Contains(t, strings.ToLower(line), strings.ToLower(want))
	assert.Less(t, len(line), 400, "the error line stays short: %q", line)
}

func TestHostileInput(t *testing.T) {
	e := newLocal(t)
	d := e.dir
	disk := filepath.Join(d, "web-1.img")
	makeDisk(t, disk, 4*mib, 1, part{0, mib, "random"})
	e.ok("hosts", "add", "web-1", "--disk", disk)
	b := e.create("web-1")

	// Hosts whose disk is no longer a disk.
	for name, how := range map[string]func(p string){
		"gone-1": func(p string) { require.NoError(t, os.Remove(p)) },
		"dir-1": func(p string) {
			require.NoError(t, os.Remove(p))
			require.NoError(t, os.Mkdir(p, 0o700))
		},
		"fifo-1": func(p string) {
			require.NoError(t, os.Remove(p))
			require.NoError(t, syscall.Mkfifo(p, 0o600))
		},
	} {
		p := filepath.Join(d, name+".img")
		makeDisk(t, p, mib, 2, part{0, 4096, "text"})
		e.ok("hosts", "add", name, "--disk", p)
		how(p)
	}
	spare := filepath.Join(d, "spare.img")
	makeDisk(t, spare, mib, 3, part{0, 4096, "text"})

	// Odd files to give as disks.
	loop1, loop2 := filepath.Join(d, "loop1"), filepath.Join(d, "loop2")
	require.NoError(t, os.Symlink(loop2, loop1))
	require.NoError(t, os.Symlink(loop1, loop2))
	dangling := filepath.Join(d, "dangling")
	require.NoError(t, os.Symlink(filepath.Join(d, "nowhere"), dangling))
	sock := filepath.Join(d, "sock")
	l, err := net.Listen("unix", sock)
	require.NoError(t, err)
	defer l.Close()

	// Config files.
	cfg := func(name, body string, mode os.FileMode) string {
		p := filepath.Join(d, "cfg", name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o700))
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		require.NoError(t, os.Chmod(p, mode))
		return p
	}
	notYAML := cfg("unclosed.yaml", "context: [unclosed\n", 0o600)
	binary := cfg("binary.yaml", "\x00\x01\x02binary", 0o600)
	list := cfg("list.yaml", "- a\n- b\n", 0o600)
	open := cfg("open.yaml", "context: local\n", 0o644)
	groupWritable := cfg("group.yaml", "context: local\n", 0o620)

	// Repositories that are not, or not quite, dropback's.
	repo := func(name, config string) string {
		p := filepath.Join(d, "repos", name)
		require.NoError(t, os.MkdirAll(p, 0o700))
		if config != "" {
			require.NoError(t, os.WriteFile(filepath.Join(p, "config"), []byte(config), 0o600))
		}
		return p
	}
	configDir := repo("config-dir", "")
	require.NoError(t, os.Mkdir(filepath.Join(configDir, "config"), 0o700))
	emptyConfig := repo("empty-config", "")
	require.NoError(t, os.WriteFile(filepath.Join(emptyConfig, "config"), nil, 0o600))
	noFormat := repo("no-format", sealed(`{"version":1}`))
	version0 := repo("version-0", sealed(`{"format":"dropback-repository","version":0,"chunk_size":1048576}`))
	tinyChunks := repo("tiny-chunks", sealed(`{"format":"dropback-repository","version":1,"chunk_size":1,"chunk_hash":"blake3-keyed","encryption":"none","chunk_key":"00"}`))
	encrypted := repo("encrypted", sealed(`{"format":"dropback-repository","version":1,"chunk_size":1048576,"chunk_hash":"blake3-keyed","encryption":"aes-256-gcm","chunk_key":"`+strings.Repeat("0", 64)+`"}`))
	borgJSON := repo("borg-json", sealed(`{"format":"borg","version":1}`))
	unsealed := repo("unsealed", `{"format":"dropback-repository","version":1,"chunk_size":1048576,"chunk_hash":"blake3-keyed","encryption":"none","chunk_key":"`+strings.Repeat("0", 64)+`"}`)
	borgINI := repo("borg-ini", "[repository]\nversion = 1\n")
	require.NoError(t, os.WriteFile(filepath.Join(borgINI, "README"), []byte("This is a Borg Backup repository.\n"), 0o600))
	newer := repo("newer-3", sealed(`{"format":"dropback-repository","version":3,"chunk_size":1048576,"chunk_hash":"blake3-keyed","encryption":"none","chunk_key":"`+strings.Repeat("0", 64)+`"}`))
	lostConfig := filepath.Join(d, "repos", "lost-config")
	out, err := exec.Command("cp", "-a", e.repo, lostConfig).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.NoError(t, os.Remove(filepath.Join(lostConfig, "config")))

	long := strings.Repeat("x", 10000)
	longPath := filepath.Join(d, strings.Repeat("p", 200), strings.Repeat("q", 200), strings.Repeat("r", 5000))
	scratch := func(name string) string { return filepath.Join(d, "scratch-"+name) }
	id := fmt.Sprint(b.ID)

	cases := []struct {
		name string
		args []string
		want string
	}{
		// Policy values and other flags.
		{"hour 5", []string{"backups", "enable", "web-1", "--hour", "5"}, "invalid hour 5"},
		{"hour -4", []string{"backups", "enable", "web-1", "--hour", "-4"}, "invalid hour -4"},
		{"hour 24", []string{"backups", "enable", "web-1", "--hour", "24"}, "invalid hour 24"},
		{"hour not a number", []string{"backups", "enable", "web-1", "--hour", "abc"}, `invalid argument "abc"`},
		{"weekday FUNDAY", []string{"backups", "enable", "web-1", "--plan", "weekly", "--weekday", "FUNDAY"}, "invalid weekday"},
		{"weekday spelt out", []string{"backups", "enable", "web-1", "--plan", "weekly", "--weekday", "sunday"}, "invalid weekday"},
		{"weekday on a daily plan", []string{"backups", "enable", "web-1", "--plan", "daily", "--weekday", "MON"}, "only to the weekly plan"},
		{"retention 0", []string{"backups", "enable", "web-1", "--retention-days", "0"}, "invalid retention 0"},
		{"retention 366", []string{"backups", "enable", "web-1", "--retention-days", "366"}, "invalid retention 366"},
		{"retention -1", []string{"backups", "enable", "web-1", "--retention-days", "-1"}, "invalid retention -1"},
		{"retention 1e3", []string{"backups", "enable", "web-1", "--retention-days", "1e3"}, `invalid argument "1e3"`},
		{"unknown plan", []string{"backups", "enable", "web-1", "--plan", "hourly"}, `invalid plan "hourly"`},
		{"empty plan", []string{"backups", "enable", "web-1", "--plan", ""}, `invalid plan ""`},
		{"plan every-3h", []string{"backups", "enable", "web-1", "--plan", "every-3h"}, `invalid plan "every-3h"`},
		{"policy set with nothing to set", []string{"policy", "set", "web-1"}, "nothing to change"},
		{"policy set hour 5", []string{"policy", "set", "web-1", "--hour", "5"}, "invalid hour 5"},
		{"policy set on an unknown host", []string{"policy", "set", "nope", "--hour", "4"}, "no host named"},
		{"enable an unknown host", []string{"backups", "enable", "nope", "--plan", "daily"}, "no host named"},
		{"negative gc grace", []string{"repo", "gc", "--grace", "-1h"}, "must not be negative"},
		{"gc grace not a duration", []string{"repo", "gc", "--grace", "xyz"}, `invalid argument "xyz"`},
		{"agent interval 0", []string{"agent", "--interval", "0"}, "must be positive"},
		{"agent interval negative", []string{"agent", "--interval", "-1s"}, "must be positive"},
		{"run without --due", []string{"run"}, "--due"},
		{"run --due with an argument", []string{"run", "--due", "extra"}, "takes no arguments"},
		{"negative --wait-timeout", []string{"backups", "restore", "web-1", id, "--to", scratch("w.img"), "--wait", "--wait-timeout", "-1s"}, "must not be negative"},
		{"--wait-timeout not a duration", []string{"backups", "restore", "web-1", id, "--to", scratch("w.img"), "--wait", "--wait-timeout", "abc"}, `invalid argument "abc"`},
		{"--time not a time", []string{"backups", "create", "web-1", "--time", "yesterday"}, "invalid --time"},
		{"--time in the future", []string{"backups", "create", "web-1", "--time", time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339)}, "in the future"},
		{"chunk size not a multiple of 4096", []string{"repo", "init", "--repo", scratch("r1"), "--chunk-size", "1000"}, "chunk size 1000"},
		{"chunk size too big", []string{"repo", "init", "--repo", scratch("r2"), "--chunk-size", "32M"}, "chunk size"},
		{"negative chunk size", []string{"repo", "init", "--repo", scratch("r3"), "--chunk-size", "-1"}, "invalid --chunk-size"},
		{"prune without what to keep", []string{"backups", "prune"}, "say what to keep"},
		{"unknown shell", []string{"completion", "klingon"}, "unknown shell"},

		// IDs.
		{"negative ID as a flag", []string{"backups", "get", "-1"}, "unknown shorthand flag"},
		{"negative backup ID", []string{"backups", "get", "--", "-1"}, "invalid backup ID"},
		{"backup ID 0", []string{"backups", "get", "0"}, "invalid backup ID"},
		{"negative ID to verify", []string{"backups", "verify", "--", "-5"}, "invalid backup ID"},
		{"snapshot ID 0", []string{"snapshots", "delete", "0", "--force"}, "invalid snapshot ID"},
		{"negative action ID", []string{"actions", "get", "--", "-3"}, "invalid action ID"},
		{"backup ID beyond int64", []string{"backups", "convert", "99999999999999999999"}, "invalid backup ID"},
		{"host ID 0", []string{"hosts", "get", "0"}, "no host with ID 0"},
		{"delete a backup as a snapshot", []string{"snapshots", "delete", id, "--force"}, "not a snapshot"},
		{"convert an unknown backup", []string{"backups", "convert", "999"}, "999"},
		{"unknown action", []string{"actions", "get", "999"}, "999"},

		// Host names.
		{"name with a newline", []string{"hosts", "add", "a\nb", "--disk", spare}, "invalid host name"},
		{"name with a tab", []string{"hosts", "add", "a\tb", "--disk", spare}, "invalid host name"},
		{"name with a terminal escape", []string{"hosts", "add", "a\x1b[31mb", "--disk", spare}, "invalid host name"},
		{"name with DEL", []string{"hosts", "add", "a\x7fb", "--disk", spare}, "invalid host name"},
		{"name with a right-to-left override", []string{"hosts", "add", "web\u202e1", "--disk", spare}, "invalid host name"},
		{"empty name", []string{"hosts", "add", "", "--disk", spare}, "invalid host name"},
		{"name starting with a dot", []string{"hosts", "add", ".hidden", "--disk", spare}, "invalid host name"},
		{"name with a space", []string{"hosts", "add", "a b", "--disk", spare}, "invalid host name"},
		{"name climbing out", []string{"hosts", "add", "../../etc", "--disk", spare}, "invalid host name"},
		{"name with a/../b", []string{"hosts", "add", "a/../b", "--disk", spare}, "invalid host name"},
		// A NUL cannot be passed in an argument at all (execve ends the
		// string there); badinput_test.go covers the other control bytes.
		{"looking up a name with an escape", []string{"hosts", "get", "a\x1b[2Jb"}, "no host named"},
		{"looking up a 10,000-character name", []string{"hosts", "get", long}, "no host named"},
		{"backing up a 10,000-character name", []string{"backups", "create", long}, "no host named"},
		{"policy of a 10,000-character name", []string{"policy", "get", long}, "no host named"},
		{"removing a 10,000-character name", []string{"hosts", "remove", long, "--force"}, "no host named"},
		{"backups of a 10,000-character name", []string{"backups", "list", long}, "no host named"},
		{"restoring a 10,000-character name", []string{"backups", "restore", long, "latest", "--to", scratch("l.img")}, "no host named"},
		{"10,000-character shell", []string{"completion", long}, "unknown shell"},
		{"a name with ../ in front", []string{"hosts", "get", "../web-1"}, "no host named"},
		{"a name with /.. behind", []string{"backups", "create", "web-1/.."}, "no host named"},

		// Config files.
		{"config not YAML", []string{"-c", notYAML, "hosts", "list"}, "not valid yaml"},
		{"config binary", []string{"-c", binary, "hosts", "list"}, "not valid yaml"},
		{"config a YAML list", []string{"-c", list, "hosts", "list"}, "not valid yaml"},
		{"config readable by others", []string{"-c", open, "hosts", "list"}, "chmod 600"},
		{"config writable by the group", []string{"-c", groupWritable, "hosts", "list"}, "chmod 600"},
		{"config a directory", []string{"-c", filepath.Join(d, "cfg"), "hosts", "list"}, "is a directory"},

		// Disks.
		{"character device /dev/null", []string{"hosts", "add", "x", "--disk", "/dev/null"}, "not a regular file or block device"},
		{"character device /dev/zero", []string{"hosts", "add", "x", "--disk", "/dev/zero"}, "not a regular file or block device"},
		{"empty disk path", []string{"hosts", "add", "x", "--disk", ""}, "is a directory"},
		{"path through a file", []string{"hosts", "add", "x", "--disk", filepath.Join(disk, "x")}, "not a directory"},
		{"symlink loop", []string{"hosts", "add", "x", "--disk", loop1}, "too many levels of symbolic links"},
		{"dangling symlink", []string{"hosts", "add", "x", "--disk", dangling}, "no such file"},
		{"5,400-character disk path", []string{"hosts", "add", "x", "--disk", longPath}, "file name too long"},
		{"unix socket", []string{"hosts", "add", "x", "--disk", sock}, "not a regular file or block device"},
		{"the same disk twice", []string{"hosts", "add", "x", "--disk", spare, "--disk", spare}, "given twice"},
		// Unreadable by permission bits: as root (which runs this suite)
		// open(2) ignores them, so that case cannot be made here; the
		// error path is the same as for the dangling symlink.
		{"backing up a disk that is gone", []string{"backups", "create", "gone-1"}, "no such file"},
		{"backing up a disk that became a directory", []string{"backups", "create", "dir-1"}, "is a directory"},
		{"backing up a disk that became a FIFO", []string{"backups", "create", "fifo-1"}, "not a regular file or block device"},

		// Repositories.
		{"repository a regular file", []string{"--repo", disk, "hosts", "list"}, "not a directory"},
		{"repo init on a regular file", []string{"repo", "init", "--repo", disk}, "not a directory"},
		{"config a directory in the repository", []string{"--repo", configDir, "hosts", "list"}, "repo init"},
		{"empty config", []string{"--repo", emptyConfig, "hosts", "list"}, "not a dropback repository"},
		{"config without a format", []string{"--repo", noFormat, "hosts", "list"}, "not a dropback repository"},
		{"format version 0", []string{"--repo", version0, "hosts", "list"}, "invalid settings"},
		{"chunk size of one byte", []string{"--repo", tinyChunks, "hosts", "list"}, "invalid settings"},
		{"encryption this version lacks", []string{"--repo", encrypted, "backups", "list"}, "invalid settings"},
		{"a borg config in JSON", []string{"--repo", borgJSON, "hosts", "list"}, `format "borg"`},
		{"a config without its seal", []string{"--repo", unsealed, "hosts", "list"}, "not sealed"},
		{"a borg repository", []string{"--repo", borgINI, "backups", "list"}, "not a dropback repository"},
		{"format version 3", []string{"--repo", newer, "backups", "verify"}, "newer"},
		{"a repository that lost its config", []string{"--repo", lostConfig, "backups", "list"}, "config is lost"},
		{"repo init over a repository that lost its config", []string{"repo", "init", "--repo", lostConfig}, "not empty"},
	}
	require.GreaterOrEqual(t, len(cases), 60)
	before := treeState(t, d)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pre := treeState(t, d)
			oneCleanLine(t, e.run(tc.args...), tc.want)
			assert.Equal(t, pre, treeState(t, d), "the refused command changed a file")
		})
	}
	assert.Equal(t, before, treeState(t, d), "a refused command changed a file")
	// A registered disk that is gone or no longer a disk is refused as
	// hosts add refuses it: exit 2, as docs/exit-codes.md says.
	for _, host := range []string{"gone-1", "dir-1", "fifo-1"} {
		assert.Equal(t, 2, e.run("backups", "create", host).code, "backups create %s", host)
	}
	for _, s := range []string{"w.img", "l.img", "r1", "r2", "r3"} {
		_, err := os.Stat(scratch(s))
		assert.True(t, os.IsNotExist(err), "a refused command made %s", scratch(s))
	}
}

// TestDiskChangesSizeDuringBackup resizes a disk, a MiB at a time, while it
// is backed up. The backup fails with one clear line; no backup appears,
// the repository stays valid (what the failed backup wrote is garbage for
// gc), and the earlier backup restores.
func TestDiskChangesSizeDuringBackup(t *testing.T) {
	e := newShmLocal(t)
	web := filepath.Join(e.dir, "web-1.img")
	makeDisk(t, web, 8*mib, 1, part{0, 4 * mib, "random"})
	e.ok("hosts", "add", "web-1", "--disk", web)
	first := e.create("web-1")
	webSum := sha(t, web)
	big := filepath.Join(e.dir, "big-1.img")
	const size = 128 * mib
	makeDisk(t, big, size, 2, part{0, size, "random"})
	e.ok("hosts", "add", "big-1", "--disk", big)

	for _, tc := range []struct {
		name string
		step int64
		want string
	}{
		{"shrinks", -mib, "during the backup"},
		{"grows", mib, "changed size during the backup"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, os.Truncate(big, size))
			stop := make(chan struct{})
			resized := make(chan int)
			go func() {
				n := 0
				defer func() { resized <- n }()
				for cur := int64(size); ; cur += tc.step {
					select {
					case <-stop:
						return
					case <-time.After(3 * time.Millisecond):
					}
					if err := os.Truncate(big, cur+tc.step); err == nil {
						n++
					}
				}
			}()
			r := e.run("backups", "create", "big-1")
			close(stop)
			require.Greater(t, <-resized, 0, "the disk was never resized")
			oneCleanLine(t, r, tc.want)
			for _, b := range e.listed() {
				assert.Equal(t, "web-1", b.HostName, "a backup of the resized disk appeared")
			}
			e.verifyClean("after the failed backup")
			e.ok("repo", "gc", "--min-age", "0")
			e.verifyClean("after gc")
			e.restores(first, webSum, "after the failed backup")
		})
	}
}

//go:build linux

package integration

import (
	"bytes"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dropback/dropback/internal/fakedo"
)

// ttyRun is one run of dropback with stdin and stderr on a pseudo-terminal,
// as a user at a terminal runs it (stdout on a pipe, so that the screen
// shows only what goes to stderr).
type ttyRun struct {
	args []string
	// answer is typed once the screen shows a question: a line that ends
	// in the choices, "[y/N]: " or "[keep/delete/cancel]: ".
	answer string
	// interruptAt: once the screen shows it, the process gets SIGINT, as
	// Ctrl-C sends it. It is stopped first and continued after, so that
	// the signal arrives while the work it interrupts still has far to go.
	interruptAt string
	// env is added to the environment.
	env []string
}

// onTerminal runs r on a terminal of the given width and returns the exit
// code, stdout, and the screen as a terminal shows it.
func (e *localEnv) onTerminal(width int, r ttyRun) (code int, stdout string, screen []string) {
	e.t.Helper()
	master, tty := openPTY(e.t, width)
	defer master.Close()
	cmd := e.command(r.args...)
	cmd.Env = append(cmd.Env, r.env...)
	var out bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, &out, tty
	require.NoError(e.t, cmd.Start())
	tty.Close()
	// A command that waits for input the test does not give (a question
	// it was not expected to ask) is killed, so that the test fails with
	// the screen instead of hanging; the limit is far above any run here.
	var hung atomic.Bool
	watchdog := time.AfterFunc(ttyHangLimit, func() {
		hung.Store(true)
		cmd.Process.Kill() //nolint:errcheck // the read below ends either way
	})
	defer watchdog.Stop()
	var term bytes.Buffer
	buf := make([]byte, 4096)
	answered, interrupted := false, false
	for {
		n, err := master.Read(buf)
		term.Write(buf[:n])
		if !answered && r.answer != "" && strings.Contains(term.String(), "]: ") {
			_, werr := master.Write([]byte(r.answer + "\n"))
			require.NoError(e.t, werr)
			answered = true
		}
		if !interrupted && r.interruptAt != "" && strings.Contains(term.String(), r.interruptAt) {
			p := cmd.Process
			require.NoError(e.t, p.Signal(syscall.SIGSTOP))
			require.NoError(e.t, p.Signal(syscall.SIGINT))
			require.NoError(e.t, p.Signal(syscall.SIGCONT))
			interrupted = true
		}
		if err != nil {
			if !errors.Is(err, syscall.EIO) {
				require.NoError(e.t, err)
			}
			break
		}
	}
	code, err := exitCode(cmd.Wait())
	require.False(e.t, hung.Load(), "dropback %v still waited for input after %s; the screen:\n%s", r.args, ttyHangLimit, term.String())
	require.NoError(e.t, err)
	if r.interruptAt != "" {
		require.True(e.t, interrupted, "the screen never showed %q:\n%s", r.interruptAt, term.String())
	}
	return code, out.String(), replay(strings.ReplaceAll(term.String(), "\r\n", "\n"), width)
}

var (
	goldenDate  = regexp.MustCompile(`\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d)?Z?( UTC)?`)
	goldenSpeed = regexp.MustCompile(`in \d+(ms|\.\ds|s|m\d\ds) \(\d+(\.\d)? [KMG]?i?B/s\)`)
	goldenBar   = regexp.MustCompile(`^(backup|restore|verify) +\[.*$`)
)

// ttyGolden compares a screen with testdata/tty/name.golden, with the
// scratch directory, dates and speeds made constant and the progress bar's
// line reduced to its phase.
func (e *localEnv) ttyGolden(name string, code int, screen []string) {
	e.t.Helper()
	var b strings.Builder
	b.WriteString("exit: " + itoa(code) + "\n")
	for _, line := range screen {
		line = strings.ReplaceAll(line, e.dir, "$DIR")
		line = goldenDate.ReplaceAllString(line, "DATE")
		line = goldenSpeed.ReplaceAllString(line, "in TIME (SPEED)")
		line = goldenBar.ReplaceAllString(line, "$1 [progress bar]")
		b.WriteString(line + "\n")
	}
	path := filepath.Join("testdata", "tty", name+".golden")
	if *update {
		require.NoError(e.t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(e.t, os.WriteFile(path, []byte(b.String()), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(e.t, err, "run with -update to create %s", path)
	assert.Equal(e.t, string(want), b.String(), "golden %s (run with -update to rewrite)", path)
}

// ttyHangLimit is how long a run on a terminal may take before it is taken
// for one that waits for input.
const ttyHangLimit = 2 * time.Minute

// goldenWidth is the terminal the golden screens are taken on: wide
// enough that no line of them wraps.
const goldenWidth = 400

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

// ttyRepo is a repository with web-1 (backups 1 and 2 of a 64 MiB disk
// whose data is 48 MiB of random bytes) and db-1 (backup 3).
func ttyRepo(t *testing.T) *localEnv {
	t.Helper()
	e := newLocal(t)
	web := filepath.Join(e.dir, "web-1.img")
	makeDisk(t, web, 64*mib, 11, part{0, 48 * mib, "random"})
	db := filepath.Join(e.dir, "db-1.img")
	makeDisk(t, db, 8*mib, 12, part{0, mib, "text"})
	e.ok("hosts", "add", "web-1", "--disk", web)
	e.ok("hosts", "add", "db-1", "--disk", db)
	e.ok("backups", "create", "web-1")
	e.ok("backups", "create", "web-1")
	e.ok("backups", "create", "db-1")
	return e
}

// TestTerminalPromptsAndChecks: every argument is checked before anything
// is asked; a question names the backup (ID and date) and every path it
// overwrites, and says in so many words when a backup is a host's last.
func TestTerminalPromptsAndChecks(t *testing.T) {
	e := ttyRepo(t)
	web := filepath.Join(e.dir, "web-1.img")
	before := sha(t, web)
	old := filepath.Join(e.dir, "old.img")
	writeFile(t, old, "an old image")
	tests := []struct {
		name string
		run  ttyRun
		want int
	}{
		{"restore-in-place-declined", ttyRun{args: []string{"backups", "restore", "web-1", "1"}, answer: "n"}, 6},
		{"restore-other-hosts-backup", ttyRun{args: []string{"backups", "restore", "db-1", "1"}, answer: "y"}, 2},
		{"restore-to-existing-file-declined", ttyRun{args: []string{"backups", "restore", "3", "--to", old}, answer: "n"}, 6},
		{"hosts-remove-unknown", ttyRun{args: []string{"hosts", "remove", "nosuch"}, answer: "y"}, 1},
		{"backups-disable-unknown", ttyRun{args: []string{"backups", "disable", "nosuch"}, answer: "y"}, 1},
		{"delete-declined", ttyRun{args: []string{"backups", "delete", "web-1", "1"}, answer: "n"}, 6},
		{"delete-last-declined", ttyRun{args: []string{"backups", "delete", "db-1", "latest"}, answer: "n"}, 6},
		{"delete-unknown", ttyRun{args: []string{"backups", "delete", "9"}, answer: "y"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			se := *e // failures are the subtest's
			se.t = t
			code, stdout, screen := se.onTerminal(goldenWidth, tt.run)
			assert.Equal(t, tt.want, code, "screen:\n%s", strings.Join(screen, "\n"))
			assert.Empty(t, stdout, "nothing was done, so nothing is printed")
			se.ttyGolden(tt.name, code, screen)
		})
	}
	assert.Equal(t, before, sha(t, web), "a declined or refused restore changed the disk")
	assert.Equal(t, "an old image", readFile(t, old), "a declined restore --to replaced the file")
	e.ok("backups", "get", "3") // still there
}

// TestTerminalBackupSummary: after the bar, one line says what the backup
// read, added and stored, how long it took and how fast; the table still
// goes to stdout alone.
func TestTerminalBackupSummary(t *testing.T) {
	e := ttyRepo(t)
	code, stdout, screen := e.onTerminal(goldenWidth, ttyRun{args: []string{"backups", "create", "db-1"}})
	require.Equal(t, 0, code)
	assert.Contains(t, stdout, "db-1")
	e.ttyGolden("backup-summary", code, screen)
}

// TestTerminalInterruptions: Ctrl-C leaves one line that says what was
// left: a disk partly restored and the command that finishes it; the data
// an interrupted backup wrote, for gc. The command it names then finishes
// the restore.
func TestTerminalInterruptions(t *testing.T) {
	e := ttyRepo(t)
	web := filepath.Join(e.dir, "web-1.img")
	want := sha(t, web)
	// Every chunk of the disk now differs from the backup's.
	makeDisk(t, web, 64*mib, 99, part{0, 64 * mib, "random"})
	code, _, screen := e.onTerminal(goldenWidth, ttyRun{args: []string{"backups", "restore", "web-1", "2", "--force"}, interruptAt: "restore "})
	require.Equal(t, 130, code, "screen:\n%s", strings.Join(screen, "\n"))
	e.ttyGolden("restore-interrupted", code, screen)
	last := screen[len(screen)-1]
	m := regexp.MustCompile("finish it with `dropback (.*)`$").FindStringSubmatch(last)
	require.NotNil(t, m, "no command to finish the restore in %q", last)
	e.ok(strings.Fields(m[1])...)
	assert.Equal(t, want, sha(t, web), "the command the interruption named did not finish the restore")

	makeDisk(t, web, 64*mib, 98, part{0, 64 * mib, "random"})
	code, _, screen = e.onTerminal(goldenWidth, ttyRun{args: []string{"backups", "create", "web-1"}, interruptAt: "backup "})
	require.Equal(t, 130, code, "screen:\n%s", strings.Join(screen, "\n"))
	last = screen[len(screen)-1]
	assert.Regexp(t, "^Error: interrupted: nothing was backed up, and (nothing was written to the repository|the [0-9.]+ [KMG]iB it wrote stays in the repository until `dropback repo gc` reclaims it, once it is 10 minutes old)$", last)
}

// TestTerminalSaysTheAPIIsRetried: on a terminal, each retry of a request
// the API does not answer is said, then the error; in a pipe only the
// error is (TestHostileNetDONeverAnswers).
func TestTerminalSaysTheAPIIsRetried(t *testing.T) {
	e := newLocal(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	code, _, screen := e.onTerminal(goldenWidth, ttyRun{
		args: []string{"--context", "digitalocean", "-u", "http://" + addr, "-t", fakedo.DefaultToken, "hosts", "list"},
		env:  []string{"DROPBACK_DO_RETRY_WAIT_MIN=1ms", "DROPBACK_DO_RETRY_WAIT_MAX=2ms"},
	})
	assert.Equal(t, 1, code)
	require.Len(t, screen, 5, strings.Join(screen, "\n"))
	for i, want := range []string{"(1/4)", "(2/4)", "(3/4)", "(4/4)"} {
		assert.Equal(t, "The API request failed; retrying "+want, screen[i])
	}
	assert.True(t, strings.HasPrefix(screen[4], "Error: list hosts: "), screen[4])
}

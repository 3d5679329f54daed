//go:build linux

package integration

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// answer is what is typed on the terminal once prompt is shown.
type answer struct{ prompt, typed string }

// typeOnTerminal runs dropback with stdin and stderr on a new
// pseudo-terminal and no password in its environment but env. At each
// answer's prompt it waits until the terminal no longer echoes, then types
// the answer and Enter. It returns the exit code, stdout, and what the
// terminal showed.
func (e *localEnv) typeOnTerminal(env []string, answers []answer, args ...string) (int, string, string) {
	e.t.Helper()
	master, tty := openPTY(e.t, 120)
	defer master.Close()
	cmd := e.command(args...)
	kept := cmd.Env[:0]
	for _, kv := range cmd.Env {
		if !strings.HasPrefix(kv, "DROPBACK_PASSWORD=") {
			kept = append(kept, kv)
		}
	}
	cmd.Env = append(kept, env...)
	var stdout bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, &stdout, tty
	require.NoError(e.t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	var mu sync.Mutex
	var shown bytes.Buffer
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			mu.Lock()
			shown.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	// ready reports whether prompt is shown after from and the terminal
	// has stopped echoing: the password is being read. A dropback that
	// never stops echoing gets its answer half a minute after the prompt,
	// so that the test fails on what the terminal shows instead of hanging.
	from := 0
	var shownAt time.Time
	ready := func(prompt string) bool {
		mu.Lock()
		at := strings.Index(shown.String()[from:], prompt)
		mu.Unlock()
		if at < 0 {
			return false
		}
		if shownAt.IsZero() {
			shownAt = time.Now()
		}
		tio, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
		require.NoError(e.t, err)
		if tio.Lflag&unix.ECHO != 0 && time.Since(shownAt) < 30*time.Second {
			return false
		}
		from += at + len(prompt)
		shownAt = time.Time{}
		return true
	}
	var err error
	done := false
	for _, a := range answers {
		for !done && !ready(a.prompt) {
			select {
			case err = <-exited:
				done = true
			case <-time.After(5 * time.Millisecond):
			}
		}
		if done {
			break
		}
		_, werr := master.Write([]byte(a.typed + "\n"))
		require.NoError(e.t, werr)
	}
	if !done {
		err = <-exited
	}
	tty.Close()
	<-copied
	code, err := exitCode(err)
	require.NoError(e.t, err)
	mu.Lock()
	defer mu.Unlock()
	return code, stdout.String(), strings.ReplaceAll(shown.String(), "\r\n", "\n")
}

// The password asked on a terminal: twice by repo init and repo key add,
// once by any other command; never echoed, and two that differ change
// nothing.
func TestPasswordOnATerminal(t *testing.T) {
	e := &localEnv{t: t, dir: t.TempDir()}
	e.repo, e.home = filepath.Join(e.dir, "repo"), filepath.Join(e.dir, "home")
	const pw, second = "typed at the terminal", "a second typed password"
	noEcho := func(what, shown string, typed ...string) {
		t.Helper()
		for _, s := range typed {
			require.NotContains(t, shown, s, "%s: the terminal echoed the password", what)
		}
	}

	code, _, shown := e.typeOnTerminal(nil, []answer{{"Enter the password of the new repository: ", pw}, {"Enter it again: ", pw + "x"}}, "repo", "init")
	require.Equal(t, 12, code, "init with two passwords that differ: %s", shown)
	require.Contains(t, shown, "the two passwords differ")
	noEcho("init", shown, pw)
	_, err := os.Stat(filepath.Join(e.repo, "config"))
	require.True(t, errors.Is(err, os.ErrNotExist), "init with two passwords that differ made a repository")

	code, _, shown = e.typeOnTerminal(nil, []answer{{"Enter the password of the new repository: ", pw}, {"Enter it again: ", pw}}, "repo", "init")
	require.Equal(t, 0, code, "init on a terminal: %s", shown)
	noEcho("init", shown, pw)
	require.Equal(t, 0, e.runPw([]string{"DROPBACK_PASSWORD=" + pw}, "repo", "stats").code, "the typed password opens the repository")

	code, stdout, shown := e.typeOnTerminal(nil, []answer{{"Repository password: ", pw}}, "repo", "stats", "-o", "json")
	require.Equal(t, 0, code, "stats on a terminal: %s", shown)
	require.Contains(t, stdout, `"encryption": "xaes-256-gcm"`)
	noEcho("stats", shown+stdout, pw)

	code, _, shown = e.typeOnTerminal(nil, []answer{{"Repository password: ", "not " + pw}}, "backups", "list")
	require.Equal(t, 12, code, "a wrong password on a terminal: %s", shown)
	require.Contains(t, shown, "wrong password")

	code, _, shown = e.typeOnTerminal([]string{"DROPBACK_PASSWORD=" + pw},
		[]answer{{"Enter the new password: ", second}, {"Enter it again: ", second}}, "repo", "key", "add")
	require.Equal(t, 0, code, "key add on a terminal: %s", shown)
	noEcho("key add", shown, pw, second)
	require.Equal(t, 0, e.runPw([]string{"DROPBACK_PASSWORD=" + second}, "backups", "list").code, "the added key's password opens the repository")
}

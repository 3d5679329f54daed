//go:build linux

package integration

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestProgressOnATerminal runs backups create, restore, verify and export with
// stderr on a pseudo-terminal 60 and then 120 columns wide, and replays what
// they drew on a model of the terminal's screen, which wraps at the last
// column as a terminal does. Each leaves exactly one line on the screen: its
// bar, at 100%; no redraw wrapped, so no stale line is left above it.
func TestProgressOnATerminal(t *testing.T) {
	e := newLocal(t)
	disk := filepath.Join(e.dir, "web-1.img")
	// Mostly holes, so that the bytes read and the bytes done differ.
	makeDisk(t, disk, 512*mib, 1, part{0, 48 * mib, "random"}, part{256 * mib, 16 * mib, "text"})
	e.ok("hosts", "add", "web-1", "--disk", disk)
	for _, width := range []int{60, 120} {
		verbs := []struct {
			phase string
			args  []string
		}{
			{"backup", []string{"backups", "create", "web-1"}},
			{"restore", []string{"backups", "restore", "web-1", "latest", "--to", filepath.Join(e.dir, fmt.Sprintf("out-%d.img", width))}},
			{"verify", []string{"backups", "verify"}},
			{"export", []string{"backups", "export", "web-1", "latest", "--image-format", "qcow2", "--to", filepath.Join(e.dir, fmt.Sprintf("out-%d.qcow2", width))}},
		}
		for _, v := range verbs {
			stdout, drawn := e.runOnTerminal(width, v.args...)
			assert.NotEmpty(t, stdout, "%v: the table still goes to stdout", v.args)
			screen := replay(drawn, width)
			if v.phase == "backup" {
				// The bar, then the backup's summary on a line of its own.
				require.Len(t, screen, 2, "%v at %d columns: the screen shows\n%s", v.args, width, strings.Join(screen, "\n"))
				assert.True(t, strings.HasPrefix(screen[1], "Read "), "no summary after the bar: %q", screen[1])
				screen = screen[:1]
			}
			require.Len(t, screen, 1, "%v at %d columns: the screen shows\n%s\nfrom %q", v.args, width, strings.Join(screen, "\n"), drawn)
			assert.True(t, strings.HasPrefix(screen[0], v.phase) && strings.Contains(screen[0], "] 100%"),
				"%v at %d columns: the bar ends %q", v.args, width, screen[0])
			assert.Less(t, len(screen[0]), width, "the bar leaves the last column free")
		}
	}
}

// runOnTerminal runs dropback with stderr on a new pseudo-terminal of the
// given width and stdout on a pipe, and returns stdout and what was drawn
// on the terminal. The command must succeed.
func (e *localEnv) runOnTerminal(width int, args ...string) (stdout, drawn string) {
	e.t.Helper()
	master, tty := openPTY(e.t, width)
	defer master.Close()
	cmd := e.command(args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, tty
	require.NoError(e.t, cmd.Start())
	tty.Close() // the child holds its own copy
	var term bytes.Buffer
	_, err := io.Copy(&term, master)
	if !errors.Is(err, syscall.EIO) { // what the master reads once the child is gone
		require.NoError(e.t, err)
	}
	code, err := exitCode(cmd.Wait())
	require.NoError(e.t, err)
	require.Equal(e.t, 0, code, "dropback %v on a terminal: %s", args, term.String())
	// The terminal turns "\n" into "\r\n" on output.
	return out.String(), strings.ReplaceAll(term.String(), "\r\n", "\n")
}

// openPTY opens a pseudo-terminal of the given width: its master, and its
// terminal end for a child.
func openPTY(t *testing.T, cols int) (master, tty *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	require.NoError(t, err)
	fd := int(master.Fd())
	require.NoError(t, unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0))
	n, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN)
	require.NoError(t, err)
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	require.NoError(t, err)
	require.NoError(t, unix.IoctlSetWinsize(int(tty.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: uint16(cols)}))
	return master, tty
}

// replay draws s on a screen of the given width as a terminal would: text
// wraps onto a new row past the last column, "\r" returns to the start of
// the row, "\n" moves to a new row, and ESC [ K clears to the end of the
// row. It returns the rows that hold anything, trailing blanks trimmed.
func replay(s string, width int) []string {
	rows := [][]rune{make([]rune, width)}
	row, col := 0, 0
	newRow := func() {
		row++
		if row == len(rows) {
			rows = append(rows, make([]rune, width))
		}
	}
	for rs := []rune(s); len(rs) > 0; rs = rs[1:] {
		switch c := rs[0]; {
		case c == '\r':
			col = 0
		case c == '\n':
			newRow()
			col = 0
		case c == '\x1b' && len(rs) >= 3 && rs[1] == '[' && rs[2] == 'K':
			for i := col; i < width; i++ {
				rows[row][i] = 0
			}
			rs = rs[2:]
		default:
			if col == width {
				newRow()
				col = 0
			}
			rows[row][col] = c
			col++
		}
	}
	var out []string
	for _, r := range rows {
		line := strings.TrimRight(strings.Map(func(c rune) rune {
			if c == 0 {
				return ' '
			}
			return c
		}, string(r)), " ")
		if line != "" {
			out = append(out, line)
		}
	}
	return out
}

// Package output owns dropback's terminal: the standard streams and whether
// each is a terminal, text tables and JSON with --format and --no-header, and
// the spinner, progress bar and prompts that only ever appear on a terminal.
//
// stdout carries data only (a table or JSON); everything else goes to stderr.
package output

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/mattn/go-isatty"
	"golang.org/x/term"
)

// IOStreams holds the three standard streams and what is known about them.
// Tests build one with Test and say which streams pretend to be terminals.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer

	stdinTTY  bool
	stdoutTTY bool
	stderrTTY bool
	// width, when set, is stderr's width instead of the terminal's.
	width int

	// readSecret reads one line without echo. Nil means read a plain line
	// from In (tests, and stdin that is not a terminal).
	readSecret func() ([]byte, error)
	// saveTerminal saves the terminal's state and returns the function that
	// restores it, for a secret read that is interrupted.
	saveTerminal func() (restore func())
	// interrupt, when closed, makes a waiting prompt give up.
	interrupt <-chan struct{}

	mu     sync.Mutex
	reader *bufio.Reader
}

// System returns the process's streams, with terminal detection.
func System() *IOStreams {
	s := &IOStreams{
		In:        os.Stdin,
		Out:       os.Stdout,
		ErrOut:    os.Stderr,
		stdinTTY:  isTerminal(os.Stdin),
		stdoutTTY: isTerminal(os.Stdout),
		stderrTTY: isTerminal(os.Stderr),
	}
	if s.stdinTTY {
		fd := int(os.Stdin.Fd())
		s.readSecret = func() ([]byte, error) { return term.ReadPassword(fd) }
		s.saveTerminal = func() func() {
			state, err := term.GetState(fd)
			if err != nil {
				return func() {}
			}
			return func() { _ = term.Restore(fd, state) }
		}
	}
	return s
}

func isTerminal(f *os.File) bool {
	return isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
}

// Test returns streams backed by buffers, none of them a terminal, and the
// buffers: stdin (write to it before the command reads), stdout and stderr.
func Test() (*IOStreams, *bytes.Buffer, *bytes.Buffer, *bytes.Buffer) {
	in, out, errOut := &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{In: in, Out: out, ErrOut: errOut}, in, out, errOut
}

// IsStdinTTY reports whether stdin is a terminal.
func (s *IOStreams) IsStdinTTY() bool { return s.stdinTTY }

// IsStdoutTTY reports whether stdout is a terminal.
func (s *IOStreams) IsStdoutTTY() bool { return s.stdoutTTY }

// IsStderrTTY reports whether stderr is a terminal.
func (s *IOStreams) IsStderrTTY() bool { return s.stderrTTY }

// SetStdinTTY says whether stdin is to be treated as a terminal.
func (s *IOStreams) SetStdinTTY(v bool) { s.stdinTTY = v }

// SetStdoutTTY says whether stdout is to be treated as a terminal.
func (s *IOStreams) SetStdoutTTY(v bool) { s.stdoutTTY = v }

// SetStderrTTY says whether stderr is to be treated as a terminal.
func (s *IOStreams) SetStderrTTY(v bool) { s.stderrTTY = v }

// SetTTY sets all three streams' terminal state at once.
func (s *IOStreams) SetTTY(v bool) {
	s.stdinTTY, s.stdoutTTY, s.stderrTTY = v, v, v
}

// SetTerminalWidth says how many columns stderr is to be treated as having,
// instead of asking the terminal.
func (s *IOStreams) SetTerminalWidth(columns int) { s.width = columns }

// TerminalWidth is stderr's width in columns: as SetTerminalWidth set it,
// else the terminal's, else 80.
func (s *IOStreams) TerminalWidth() int {
	if s.width > 0 {
		return s.width
	}
	if f, ok := s.ErrOut.(*os.File); ok {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 0 {
			return w
		}
	}
	return 80
}

// CanPrompt reports whether the user can be asked a question: stdin and
// stderr (where the question goes) are both terminals.
func (s *IOStreams) CanPrompt() bool { return s.stdinTTY && s.stderrTTY }

// ReadLine reads one line from In, without its line ending. At end of input
// with nothing read it returns io.EOF.
func (s *IOStreams) ReadLine() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reader == nil {
		s.reader = bufio.NewReader(s.In)
	}
	line, err := s.reader.ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// ReadSecret reads one line without echoing it when stdin is a terminal, and
// a plain line otherwise.
func (s *IOStreams) ReadSecret() (string, error) {
	if s.readSecret == nil {
		return s.readInterruptible(s.ReadLine, nil)
	}
	restore := s.saveTerminal()
	return s.readInterruptible(func() (string, error) {
		b, err := s.readSecret()
		return strings.TrimRight(string(b), "\r\n"), err
	}, restore)
}

// ErrInterrupted is returned by a prompt that gave up because of SetInterrupt.
var ErrInterrupted = errors.New("interrupted")

// SetInterrupt makes prompts give up at once, with ErrInterrupted, when done
// is closed; dropback's main passes the Done channel of the context that
// SIGINT cancels.
func (s *IOStreams) SetInterrupt(done <-chan struct{}) { s.interrupt = done }

// readInterruptible runs read, and returns early when the interrupt channel
// closes, after calling onInterrupt (which restores the terminal). The
// abandoned read ends with the process.
func (s *IOStreams) readInterruptible(read func() (string, error), onInterrupt func()) (string, error) {
	if s.interrupt == nil {
		return read()
	}
	type result struct {
		line string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		line, err := read()
		ch <- result{line, err}
	}()
	select {
	case r := <-ch:
		return r.line, r.err
	case <-s.interrupt:
		if onInterrupt != nil {
			onInterrupt()
		}
		fmt.Fprintln(s.ErrOut)
		return "", ErrInterrupted
	}
}

package qemu

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/digitalocean/go-qemu/qmp"

	"github.com/dropback/dropback/pkg/vm"
)

// connectTimeout bounds connecting to the QMP socket and its greeting: a
// monitor another client holds accepts the connection and never greets.
const connectTimeout = 10 * time.Second

// ErrLost means the QMP connection broke: the socket went away, or QEMU
// closed it. What was asked may or may not have been done.
var ErrLost = errors.New("lost the QMP connection")

// monitor is a QMP session, through go-qemu's socket monitor, that follows
// contexts: a command whose context ends drops the connection (QMP cannot
// cancel one), and the next command connects again.
type monitor struct {
	path string

	mu  sync.Mutex
	mon *qmp.SocketMonitor // nil when not connected
}

// connect opens the session if it is not open.
func (m *monitor) connect(ctx context.Context) (*qmp.SocketMonitor, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mon != nil {
		return m.mon, nil
	}
	mon, err := qmp.NewSocketMonitor("unix", m.path, connectTimeout)
	if err != nil {
		if fi, serr := os.Stat(m.path); serr == nil && fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%w: %s is not a socket: give the path of QEMU's -qmp unix:PATH,server=on,wait=off", vm.ErrUnreachable, m.path)
		}
		return nil, fmt.Errorf("%w: QMP socket %s: %w", vm.ErrUnreachable, m.path, unwrapOp(err))
	}
	done := make(chan error, 1)
	go func() { done <- mon.Connect() }()
	timer := time.NewTimer(connectTimeout)
	defer timer.Stop()
	select {
	case err = <-done:
	case <-timer.C:
		_ = mon.Disconnect()
		<-done
		return nil, fmt.Errorf("%w: QMP socket %s accepts but does not greet within %s: another client (libvirt?) holds the monitor", vm.ErrUnreachable, m.path, connectTimeout)
	case <-ctx.Done():
		_ = mon.Disconnect()
		<-done
		return nil, ctx.Err()
	}
	if err != nil {
		_ = mon.Disconnect()
		return nil, fmt.Errorf("%w: QMP handshake on %s: %w", vm.ErrUnreachable, m.path, err)
	}
	m.mon = mon
	return mon, nil
}

// run executes a QMP command and decodes its return value into out (nil
// to ignore it). A command QEMU refuses gives a *CommandError; a broken
// connection ErrLost.
func (m *monitor) run(ctx context.Context, name string, args, out any) error {
	err := m.runOnce(ctx, name, args, out)
	// go-qemu's socket monitor hands a reply over in the buffer its reader
	// goes on to fill, so an event that follows a reply at once can garble
	// it. A query changes nothing: it is asked again; any other command's
	// garbled reply is an error, as any doubt is.
	for try := 1; try < 3 && err != nil && strings.HasPrefix(name, "query-") && ctx.Err() == nil && !errors.Is(err, ErrLost); try++ {
		err = m.runOnce(ctx, name, args, out)
	}
	return err
}

func (m *monitor) runOnce(ctx context.Context, name string, args, out any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	mon, err := m.connect(ctx)
	if err != nil {
		return err
	}
	cmd, err := json.Marshal(qmp.Command{Execute: name, Args: args})
	if err != nil {
		return err
	}
	type result struct {
		raw []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		raw, err := mon.Run(cmd)
		done <- result{raw, err}
	}()
	var res result
	select {
	case res = <-done:
	case <-ctx.Done():
		m.drop(mon)
		<-done
		return ctx.Err()
	}
	if res.err != nil {
		if lost(res.err) {
			m.drop(mon)
			return fmt.Errorf("%s: %w (%v)", name, ErrLost, res.err)
		}
		return &CommandError{Command: name, Desc: res.err.Error()}
	}
	if out == nil {
		return nil
	}
	var r struct {
		Return json.RawMessage `json:"return"`
	}
	if err := json.Unmarshal(res.raw, &r); err != nil {
		return fmt.Errorf("%s: unreadable reply: %w", name, err)
	}
	if err := json.Unmarshal(r.Return, out); err != nil {
		return fmt.Errorf("%s: unexpected reply: %w", name, err)
	}
	return nil
}

// CommandError is a command QEMU answered with an error.
type CommandError struct {
	Command string
	Desc    string
}

func (e *CommandError) Error() string { return fmt.Sprintf("QMP %s: %s", e.Command, e.Desc) }

// lost tells a broken connection from an error QEMU answered: go-qemu
// returns QEMU's errors as plain strings, and I/O and framing errors as
// what they are.
func lost(err error) bool {
	var opErr *net.OpError
	var syntax *json.SyntaxError
	return errors.As(err, &opErr) || errors.As(err, &syntax) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, bufio.ErrTooLong)
}

// drop closes the session mon, if it is still the current one.
func (m *monitor) drop(mon *qmp.SocketMonitor) {
	m.mu.Lock()
	if m.mon == mon {
		m.mon = nil
	}
	m.mu.Unlock()
	_ = mon.Disconnect()
}

// close ends the session.
func (m *monitor) close() error {
	m.mu.Lock()
	mon := m.mon
	m.mon = nil
	m.mu.Unlock()
	if mon == nil {
		return nil
	}
	return mon.Disconnect()
}

// unwrapOp leaves the cause of a dial error: "no such file or directory",
// "connection refused".
func unwrapOp(err error) error {
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Err != nil {
		var sys interface{ Unwrap() error }
		if errors.As(opErr.Err, &sys) {
			return sys.Unwrap()
		}
		return opErr.Err
	}
	return err
}

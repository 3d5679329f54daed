// Package qga speaks the QEMU guest agent's protocol: JSON commands and
// replies over the virtio-serial port QEMU exposes on the host as a unix
// socket (a chardev named on the guest's org.qemu.guest_agent.0 port).
// dropback uses it for one thing: freezing the guest's filesystems for the
// instant a point in time is taken, and thawing them at once.
//
// The agent may be absent (no guest OS yet, not installed, not started), in
// which case the socket accepts a connection and nothing ever answers; and
// replies of an earlier client may still be in the channel. Every session
// therefore begins with guest-sync-delimited, which flushes both, and every
// call has a deadline.
package qga

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// ErrNoAgent means nothing answered on the agent's socket in time: the
// guest runs no agent, or the socket is not the agent's.
var ErrNoAgent = errors.New("no guest agent answers")

// Timeouts of the calls when the context has no deadline of its own.
const (
	// SyncTimeout bounds the first exchange: an agent that runs answers it
	// at once.
	SyncTimeout = 5 * time.Second
	// FreezeTimeout bounds a freeze or thaw, which waits for the guest's
	// filesystems to flush.
	FreezeTimeout = time.Minute
)

// Client is a session with a guest agent. Its methods are safe for
// concurrent use; calls go one at a time.
type Client struct {
	mu   sync.Mutex
	conn net.Conn
	br   *bufio.Reader
}

// Dial connects to the agent's socket and synchronises with it. When nothing
// answers within SyncTimeout (or ctx's deadline), it fails with ErrNoAgent.
func Dial(ctx context.Context, path string) (*Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("connect to the guest agent at %s: %w", path, err)
	}
	c := &Client{conn: conn, br: bufio.NewReaderSize(conn, 64<<10)}
	if err := c.Sync(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// Close ends the session.
func (c *Client) Close() error { return c.conn.Close() }

// Sync flushes the channel: it sends guest-sync-delimited with a random id,
// preceded by 0xFF so that the agent drops any partial command, and skips
// everything that comes back until the reply with that id.
func (c *Client) Sync(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	id := rand.Int64N(1 << 40)
	cmd, _ := json.Marshal(command{Execute: "guest-sync-delimited", Arguments: map[string]int64{"id": id}})
	stop := c.deadline(ctx, SyncTimeout)
	defer stop()
	if _, err := c.conn.Write(append([]byte{0xFF}, append(cmd, '\n')...)); err != nil {
		return c.ioError(ctx, "sync with the guest agent", err)
	}
	for {
		line, err := c.br.ReadBytes('\n')
		if err != nil {
			return c.ioError(ctx, "sync with the guest agent", err)
		}
		if i := bytes.LastIndexByte(line, 0xFF); i >= 0 {
			line = line[i+1:]
		}
		var r struct {
			Return *int64 `json:"return"`
		}
		if json.Unmarshal(line, &r) == nil && r.Return != nil && *r.Return == id {
			return nil
		}
	}
}

// Freeze freezes the guest's filesystems and returns how many it froze.
// Whatever it returns, the caller thaws: a freeze that timed out may still
// have frozen some.
func (c *Client) Freeze(ctx context.Context) (int, error) {
	var n int
	err := c.call(ctx, "guest-fsfreeze-freeze", &n)
	return n, err
}

// Thaw thaws the guest's filesystems and returns how many it thawed.
func (c *Client) Thaw(ctx context.Context) (int, error) {
	var n int
	err := c.call(ctx, "guest-fsfreeze-thaw", &n)
	return n, err
}

// Status returns "thawed" or "frozen".
func (c *Client) Status(ctx context.Context) (string, error) {
	var s string
	err := c.call(ctx, "guest-fsfreeze-status", &s)
	return s, err
}

type command struct {
	Execute   string `json:"execute"`
	Arguments any    `json:"arguments,omitempty"`
}

// RemoteError is an error the agent answered with.
type RemoteError struct {
	Command, Class, Desc string
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("guest agent: %s: %s", e.Command, e.Desc)
}

// call runs one command and decodes its return value into out.
func (c *Client) call(ctx context.Context, name string, out any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	stop := c.deadline(ctx, FreezeTimeout)
	defer stop()
	cmd, _ := json.Marshal(command{Execute: name})
	if _, err := c.conn.Write(append(cmd, '\n')); err != nil {
		return c.ioError(ctx, name, err)
	}
	for {
		line, err := c.br.ReadBytes('\n')
		if err != nil {
			return c.ioError(ctx, name, err)
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var r struct {
			Return json.RawMessage `json:"return"`
			Error  *struct {
				Class string `json:"class"`
				Desc  string `json:"desc"`
			} `json:"error"`
		}
		if err := json.Unmarshal(line, &r); err != nil {
			return fmt.Errorf("guest agent: %s: unreadable reply %.80q", name, line)
		}
		if r.Error != nil {
			return &RemoteError{Command: name, Class: r.Error.Class, Desc: r.Error.Desc}
		}
		if r.Return == nil {
			continue // an event, or some other line that is no reply
		}
		if err := json.Unmarshal(r.Return, out); err != nil {
			return fmt.Errorf("guest agent: %s: unexpected reply %.80q", name, r.Return)
		}
		return nil
	}
}

// deadline makes the connection's I/O fail at ctx's deadline, or after
// def, and at once when ctx is cancelled, until stop is called.
func (c *Client) deadline(ctx context.Context, def time.Duration) (stop func()) {
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(def)
	}
	_ = c.conn.SetDeadline(dl)
	cancel := context.AfterFunc(ctx, func() { _ = c.conn.SetDeadline(time.Unix(1, 0)) })
	return func() {
		cancel()
		_ = c.conn.SetDeadline(time.Time{})
	}
}

// ioError says why a call failed: cancelled, no answer in time (no agent),
// or the connection broke.
func (c *Client) ioError(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", what, context.Cause(ctx))
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%s: %w", what, ErrNoAgent)
	}
	return fmt.Errorf("%s: %w", what, err)
}

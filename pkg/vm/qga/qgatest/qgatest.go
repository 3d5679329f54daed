// Package qgatest is a stand-in for the QEMU guest agent, for tests: a unix
// socket that speaks qemu-ga's JSON protocol (guest-sync-delimited with its
// 0xFF sentinel, guest-sync, guest-ping, guest-fsfreeze-freeze, -thaw and
// -status) and records what it was asked. A real agent needs a guest
// operating system, which the tests do not boot; this is the one part of
// them that is not the real thing, and docs/vms.md says so.
//
// Like QEMU's chardev socket, it serves one client at a time: a second
// connection waits until the first ends.
package qgatest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"sync"
)

// Agent is a fake guest agent listening on a unix socket.
type Agent struct {
	// Path is the socket.
	Path string

	ln net.Listener

	mu      sync.Mutex
	frozen  bool
	history []string
	// OnFreeze, when set, runs when a freeze arrives, after the
	// filesystems count as frozen and before the reply.
	onFreeze func()
	// hold makes a freeze never answered: the reply waits until the
	// client goes, as a freeze stuck in a guest would.
	hold bool
	// fail makes a freeze fail with this message, thawing first, as
	// qemu-ga does when one filesystem cannot be frozen.
	fail  string
	conns sync.WaitGroup
}

// Start listens on path and serves until Close.
func Start(path string) (*Agent, error) {
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	a := &Agent{Path: path, ln: ln}
	go a.serve()
	return a, nil
}

// OnFreeze sets a function to run when a freeze arrives, before it is
// answered.
func (a *Agent) OnFreeze(fn func()) {
	a.mu.Lock()
	a.onFreeze = fn
	a.mu.Unlock()
}

// HoldFreeze makes freezes never answered (the filesystems count as
// frozen): a freeze hung in the guest.
func (a *Agent) HoldFreeze(hold bool) {
	a.mu.Lock()
	a.hold = hold
	a.mu.Unlock()
}

// FailFreeze makes freezes fail with msg ("" for none).
func (a *Agent) FailFreeze(msg string) {
	a.mu.Lock()
	a.fail = msg
	a.mu.Unlock()
}

// Frozen reports whether the filesystems are frozen now.
func (a *Agent) Frozen() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.frozen
}

// History lists the freezes and thaws asked, in order: "freeze", "thaw".
func (a *Agent) History() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.history...)
}

// Close stops listening and waits for the client in session to go.
func (a *Agent) Close() error {
	err := a.ln.Close()
	a.conns.Wait()
	return err
}

func (a *Agent) serve() {
	for {
		conn, err := a.ln.Accept()
		if err != nil {
			return
		}
		a.conns.Add(1)
		a.session(conn)
		a.conns.Done()
	}
}

type request struct {
	Execute   string          `json:"execute"`
	Arguments json.RawMessage `json:"arguments"`
}

// session serves one client until it goes.
func (a *Agent) session(conn net.Conn) {
	defer conn.Close()
	br := bufio.NewReader(conn)
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			return
		}
		if i := bytes.LastIndexByte(line, 0xFF); i >= 0 {
			line = line[i+1:] // 0xFF resets the parser
		}
		var req request
		if json.Unmarshal(bytes.TrimSpace(line), &req) != nil {
			reply(conn, "", map[string]any{"error": map[string]string{"class": "GenericError", "desc": "Invalid JSON syntax"}})
			continue
		}
		if !a.answer(conn, br, req) {
			return
		}
	}
}

// answer serves one request; false ends the session.
func (a *Agent) answer(conn net.Conn, br *bufio.Reader, req request) bool {
	var args struct {
		ID int64 `json:"id"`
	}
	_ = json.Unmarshal(req.Arguments, &args)
	switch req.Execute {
	case "guest-sync-delimited":
		return reply(conn, "\xff", map[string]any{"return": args.ID})
	case "guest-sync":
		return reply(conn, "", map[string]any{"return": args.ID})
	case "guest-ping":
		return reply(conn, "", map[string]any{"return": map[string]any{}})
	case "guest-fsfreeze-status":
		a.mu.Lock()
		st := "thawed"
		if a.frozen {
			st = "frozen"
		}
		a.mu.Unlock()
		return reply(conn, "", map[string]any{"return": st})
	case "guest-fsfreeze-freeze":
		return a.freeze(conn, br)
	case "guest-fsfreeze-thaw":
		a.mu.Lock()
		a.history = append(a.history, "thaw")
		n := 0
		if a.frozen {
			n = 2
		}
		a.frozen = false
		a.mu.Unlock()
		return reply(conn, "", map[string]any{"return": n})
	}
	return reply(conn, "", map[string]any{"error": map[string]string{"class": "CommandNotFound", "desc": fmt.Sprintf("The command %s has not been found", req.Execute)}})
}

func (a *Agent) freeze(conn net.Conn, br *bufio.Reader) bool {
	a.mu.Lock()
	a.history = append(a.history, "freeze")
	fail, hold, hook := a.fail, a.hold, a.onFreeze
	if fail == "" {
		a.frozen = true
	}
	a.mu.Unlock()
	if hook != nil {
		hook()
	}
	if fail != "" {
		return reply(conn, "", map[string]any{"error": map[string]string{"class": "GenericError", "desc": fail}})
	}
	if hold {
		// Never answered: wait for the client to go.
		_, _ = br.WriteTo(discard{})
		return false
	}
	return reply(conn, "", map[string]any{"return": 2})
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func reply(conn net.Conn, prefix string, v any) bool {
	data, _ := json.Marshal(v)
	_, err := conn.Write(append(append([]byte(prefix), data...), '\n'))
	return err == nil
}

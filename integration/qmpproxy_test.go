package integration

import (
	"encoding/json"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// qmpProxy stands at a QMP socket path in front of QEMU's and, once armed,
// vanishes (closes every connection and removes its socket) at the first
// command named on that comes after one named after ("" for any): as a
// monitor socket does that another tool takes over, or that goes with a
// management daemon restarting. With forward, QEMU gets that command first.
type qmpProxy struct {
	path, target     string
	after, on        string
	forward          bool
	ln               net.Listener
	mu               sync.Mutex
	armed, seenAfter bool
	conns            []net.Conn
	// fired, when set, runs at the trigger, before the proxy vanishes.
	fired func()
}

func startQMPProxy(t *testing.T, path, target, after, on string, forward bool) *qmpProxy {
	t.Helper()
	ln, err := net.Listen("unix", path)
	require.NoError(t, err)
	p := &qmpProxy{path: path, target: target, after: after, on: on, forward: forward, ln: ln}
	t.Cleanup(p.vanish)
	go p.serve()
	return p
}

// arm makes the proxy vanish at its trigger from now on.
func (p *qmpProxy) arm() {
	p.mu.Lock()
	p.armed = true
	p.mu.Unlock()
}

func (p *qmpProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		q, err := net.Dial("unix", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, q)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(c, q); c.Close() }()
		go p.pipe(c, q)
	}
}

// pipe forwards the client's commands, one JSON object at a time (a client
// need not end them with a newline), until the trigger.
func (p *qmpProxy) pipe(c, q net.Conn) {
	defer q.Close()
	dec := json.NewDecoder(c)
	for {
		var cmd json.RawMessage
		if err := dec.Decode(&cmd); err != nil {
			return
		}
		fire := p.trigger(string(cmd))
		if fire && p.forward || !fire {
			if _, err := q.Write(append(cmd, '\n')); err != nil {
				return
			}
		}
		if fire {
			if p.fired != nil {
				p.fired()
			}
			p.vanish()
			return
		}
	}
}

func (p *qmpProxy) trigger(line string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.armed || p.on == "" {
		return false
	}
	if p.after == "" || strings.Contains(line, `"`+p.after+`"`) {
		p.seenAfter = true
		if p.after != "" {
			return false
		}
	}
	return p.seenAfter && strings.Contains(line, `"`+p.on+`"`)
}

// vanish closes the listener (which removes the socket) and every
// connection. Safe to call more than once.
func (p *qmpProxy) vanish() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

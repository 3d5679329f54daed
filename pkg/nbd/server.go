package nbd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Export is a read-only disk that a Server exports.
//
// Its methods are called from many goroutines at once (several connections,
// several requests in flight on each) and must be safe for that. Size must
// not change while the export is served.
type Export interface {
	// Size returns the size of the export in bytes.
	Size() int64

	// ReadAt reads len(p) bytes at off into p; the server asks only for
	// bytes inside the export, and at most 1 MiB at once. Anything but
	// (len(p), nil) fails the client's request with EIO (or the Errno the
	// error wraps), and the error's text is sent to the client.
	ReadAt(ctx context.Context, p []byte, off int64) (int, error)

	// Extents describes [off, off+length) for the "base:allocation"
	// context: extents sorted by offset, not overlapping, with StateHole and
	// StateZero flags. Bytes it leaves out count as data (flags 0), so a nil
	// list is always correct; extents reaching outside the range are cut.
	// A range flagged StateZero must read as zeroes: reads send it to the
	// client as a hole without calling ReadAt. An error fails a block status
	// request with EIO and makes a read fall back to ReadAt for its range.
	Extents(ctx context.Context, off, length int64) ([]Extent, error)
}

// ServerOptions tune a Server. The zero value is usable.
type ServerOptions struct {
	// MaxInFlight bounds the requests one connection has in progress
	// (16 when 0). The server reads no further request of a connection
	// until one of its requests is answered.
	MaxInFlight int
	// Logf, if set, receives a line for each connection the server drops
	// because the client broke the protocol or the connection failed.
	Logf func(format string, args ...any)
}

// Server serves a fixed set of named exports, read-only, over NBD.
//
// Each connection negotiates with fixed newstyle negotiation (NBD_OPT_LIST,
// NBD_OPT_INFO, NBD_OPT_GO, NBD_OPT_EXPORT_NAME, NBD_OPT_STRUCTURED_REPLY,
// NBD_OPT_LIST_META_CONTEXT and NBD_OPT_SET_META_CONTEXT for
// "base:allocation", NBD_OPT_ABORT), then serves NBD_CMD_READ and
// NBD_CMD_BLOCK_STATUS until NBD_CMD_DISC. Writes, trims and write-zeroes
// fail with EPERM. Reads are answered in pieces of at most 1 MiB, so a
// connection holds at most MaxInFlight MiB of read buffers.
//
// Methods are safe for concurrent use; one Server may Serve several
// listeners.
type Server struct {
	exports map[string]Export
	names   []string
	opts    ServerOptions
	// minBlock is the minimum block sent in NBD_INFO_BLOCK_SIZE, and
	// requests not aligned to it fail with EINVAL. It is 1; tests raise it
	// to check that clients align.
	minBlock uint32

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*serverConn]struct{}
	closing   bool
	wg        sync.WaitGroup // connections
}

// NewServer returns a server of exports, keyed by export name. The name ""
// is the default export that clients reach without naming one.
func NewServer(exports map[string]Export, opts ServerOptions) *Server {
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = 16
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	return &Server{
		exports:   maps.Clone(exports),
		names:     slices.Sorted(maps.Keys(exports)),
		opts:      opts,
		minBlock:  1,
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*serverConn]struct{}),
	}
}

// Serve accepts connections on ln and serves each in its own goroutine. It
// returns nil once the server has shut down, when ctx is done or Close is
// called: either stops every listener and connection of the server, as
// Close does. It returns an error if accepting fails otherwise.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		_ = ln.Close()
		return nil
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	stop := context.AfterFunc(ctx, func() { _ = s.Close() })
	defer stop()
	base := context.WithoutCancel(ctx) // requests in flight finish after ctx is done
	for {
		conn, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			delete(s.listeners, ln)
			s.mu.Unlock()
			if closing {
				s.wg.Wait()
				return nil
			}
			return fmt.Errorf("accept nbd connection on %s: %w", ln.Addr(), err)
		}
		s.start(base, conn)
	}
}

func (s *Server) start(base context.Context, conn net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		_ = conn.Close()
		return
	}
	c := newServerConn(s, base, conn)
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		c.serve()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
}

// Close shuts the server down gracefully: it closes the listeners, stops
// reading requests, answers every request already in flight, then closes
// the connections. Connections still negotiating are closed. Close waits
// for all that and is idempotent.
func (s *Server) Close() error { return s.Shutdown(context.Background()) }

// Shutdown is Close, except that when ctx is done before every request in
// flight is answered it closes the connections at once and returns
// ctx.Err().
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	var err error
	if !s.closing {
		s.closing = true
		for ln := range s.listeners {
			if e := ln.Close(); e != nil && !errors.Is(e, net.ErrClosed) && err == nil {
				err = fmt.Errorf("close nbd listener: %w", e)
			}
		}
		for c := range s.conns {
			c.stop()
		}
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return err
	case <-ctx.Done():
	}
	s.mu.Lock()
	for c := range s.conns {
		c.kill()
	}
	s.mu.Unlock()
	<-done
	return ctx.Err()
}

// serverConn is one client connection.
type serverConn struct {
	srv    *Server
	conn   net.Conn
	br     *bufio.Reader
	ctx    context.Context // canceled when the connection ends
	cancel context.CancelFunc

	wmu sync.Mutex // serializes replies
	bw  *bufio.Writer

	stopping atomic.Bool
	failOnce sync.Once

	// Settled by negotiation.
	structured bool
	metaExport string // export the selected contexts belong to
	metaAlloc  bool   // base:allocation selected
	exp        Export
	size       int64

	slots    chan struct{}
	handlers sync.WaitGroup
}

func newServerConn(s *Server, base context.Context, conn net.Conn) *serverConn {
	ctx, cancel := context.WithCancel(base)
	return &serverConn{
		srv: s, conn: conn, ctx: ctx, cancel: cancel,
		br:    bufio.NewReaderSize(conn, 64<<10),
		bw:    bufio.NewWriterSize(conn, 64<<10),
		slots: make(chan struct{}, s.opts.MaxInFlight),
	}
}

// stop makes the connection read no further option or request.
func (c *serverConn) stop() {
	c.stopping.Store(true)
	_ = c.conn.SetReadDeadline(time.Unix(1, 0))
}

// kill drops the connection at once.
func (c *serverConn) kill() {
	c.cancel()
	_ = c.conn.Close()
}

// fail drops the connection after an error, logging it once unless the
// server is stopping.
func (c *serverConn) fail(err error) {
	c.failOnce.Do(func() {
		if !c.stopping.Load() {
			c.srv.opts.Logf("nbd: dropping client %s: %v", c.conn.RemoteAddr(), err)
		}
	})
	c.kill()
}

func (c *serverConn) serve() {
	defer c.kill()
	exp, err := c.negotiate()
	if err != nil {
		if !errors.Is(err, errAborted) && !errors.Is(err, io.EOF) && !c.stopping.Load() {
			c.fail(fmt.Errorf("negotiation: %w", err))
		}
		return
	}
	if err := c.transmit(exp); err != nil {
		c.fail(err)
		c.handlers.Wait()
	}
}

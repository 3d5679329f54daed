package nbd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// clientInFlight bounds the requests one Client has outstanding; callers
// beyond it wait for a reply first.
const clientInFlight = 64

// Client is a connection to one export of an NBD server, in the
// transmission phase.
//
// All methods are safe for concurrent use. Requests of several goroutines
// are in flight at once on the one connection (up to 64; more wait), and
// replies, which the server may send in any order, are matched to them by
// cookie. A reply that breaks the protocol fails every pending request with
// an error wrapping ErrProtocol and closes the connection; an error the
// server reports for one request (a *RemoteError) fails that request only.
type Client struct {
	conn    net.Conn
	br      *bufio.Reader // the reader goroutine's, after the handshake
	s       session
	readMax int // largest read per request, a multiple of s.minBlock
	slots   chan struct{}
	done    chan struct{} // closed when the reader goroutine returns
	scratch []byte        // the reader goroutine's

	wmu      sync.Mutex // serializes writes to conn
	wbuf     [requestSize]byte
	discSent bool

	mu      sync.Mutex
	pending map[uint64]*call
	cookie  uint64
	err     error // why no request can be sent any more; nil while alive
	closed  bool
}

// Dial connects to the NBD server at addr ("unix" and a socket path, or
// "tcp" and host:port) and negotiates export, as NewClient does.
func Dial(ctx context.Context, network, addr, export string, metaContexts ...string) (*Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("connect to nbd server %s: %w", addr, err)
	}
	return NewClient(ctx, conn, export, metaContexts...)
}

// NewClient runs the handshake on conn and enters the transmission phase on
// export ("" names the server's default export). It asks for structured
// replies, selects the metadata contexts metaContexts (such as
// ContextBaseAllocation or DirtyBitmapContext("b0")), and agrees to the
// server's block size constraints. Which contexts the server granted is
// told by MetaContext: a context the server does not offer is not an error.
//
// ctx bounds the handshake only. NewClient owns conn: it closes it when the
// handshake fails, and Close closes it later. A server that refuses the
// export gives an *OptionError (errors.Is ErrUnknownExport when it has no
// such export).
func NewClient(ctx context.Context, conn net.Conn, export string, metaContexts ...string) (*Client, error) {
	return newClient(ctx, conn, clientConfig{export: export, contexts: metaContexts})
}

func newClient(ctx context.Context, conn net.Conn, cfg clientConfig) (*Client, error) {
	br := bufio.NewReaderSize(conn, 64<<10)
	stop := watchContext(ctx, conn)
	s, err := handshake(conn, br, cfg)
	if !stop() {
		err = errors.Join(ctx.Err(), err)
	} else if err == nil {
		err = conn.SetDeadline(time.Time{})
	}
	if err != nil {
		var oe *OptionError
		if errors.As(err, &oe) {
			_, _ = conn.Write(appendOption(nil, optAbort, nil)) // soft disconnect, best effort
		}
		_ = conn.Close()
		return nil, fmt.Errorf("nbd handshake for export %q: %w", cfg.export, err)
	}
	return startClient(conn, br, s), nil
}

// watchContext makes conn's I/O fail when ctx is done, until stop is called.
// stop reports false if ctx was done first.
func watchContext(ctx context.Context, conn net.Conn) (stop func() bool) {
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	return context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
}

// startClient begins the transmission phase on a negotiated connection.
func startClient(conn net.Conn, br *bufio.Reader, s session) *Client {
	readMax := min(MaxRead, int(s.maxPayload))
	readMax -= readMax % int(s.minBlock)
	c := &Client{
		conn: conn, br: br, s: s, readMax: readMax,
		slots:   make(chan struct{}, clientInFlight),
		done:    make(chan struct{}),
		scratch: make([]byte, 256<<10),
		pending: make(map[uint64]*call),
	}
	go c.readLoop()
	return c
}

// Size returns the size of the export in bytes.
func (c *Client) Size() int64 { return c.s.size }

// ReadOnly reports whether the server flagged the export read-only.
func (c *Client) ReadOnly() bool { return c.s.flags&flagReadOnly != 0 }

// BlockSize returns the server's size constraints: the minimum block (reads
// are aligned to it, which ReadAt does on its own), the preferred block, and
// the largest payload of one request. Without NBD_INFO_BLOCK_SIZE from the
// server they are 1, 4096 and MaxRead.
func (c *Client) BlockSize() (minimum, preferred, maxPayload uint32) {
	return c.s.minBlock, c.s.prefBlock, c.s.maxPayload
}

// StructuredReplies reports whether the server agreed to structured replies.
// Without them no metadata context is granted.
func (c *Client) StructuredReplies() bool { return c.s.structured }

// MetaContext returns the id the server gave the metadata context name, for
// BlockStatus, and whether it granted the context at all.
func (c *Client) MetaContext(name string) (id uint32, ok bool) {
	id, ok = c.s.contexts[name]
	return id, ok
}

// Close ends the session with NBD_CMD_DISC and closes the connection.
// Requests still pending fail with ErrClosed; callers finish theirs first.
// Close is idempotent.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		<-c.done
		return nil
	}
	c.closed = true
	alive := c.err == nil
	if alive {
		c.err = ErrClosed
	}
	c.mu.Unlock()
	var err error
	if alive && c.wmu.TryLock() { // a write stuck on a dead server is not waited for
		c.discSent = true
		_, err = c.conn.Write(request{typ: cmdDisc}.encode(c.wbuf[:0]))
		c.wmu.Unlock()
	}
	c.fail(ErrClosed)
	<-c.done
	if err != nil {
		return fmt.Errorf("send nbd disconnect: %w", err)
	}
	return nil
}

// call is one request in flight and what its reply has brought so far.
type call struct {
	req   request
	ctxID uint32 // BLOCK_STATUS: the context whose extents to keep

	bufMu sync.Mutex
	buf   []byte // READ: where the data goes; nil once the caller gave up

	// Written by the reader goroutine only; the caller reads them after done
	// is closed, and only when final is nil.
	covered spans
	extents []Extent
	seen    []uint32 // contexts that had a block status chunk
	remote  error    // the first error the server reported

	final error // set by whoever completes the call, before done closes
	done  chan struct{}
}

// abandon makes the reader goroutine drop the call's data from now on.
func (cl *call) abandon() {
	cl.bufMu.Lock()
	cl.buf = nil
	cl.bufMu.Unlock()
}

// do sends cl and waits for its reply or for ctx. A call given up on stays
// pending until its reply arrives, so its cookie is never reused.
func (c *Client) do(ctx context.Context, cl *call) error {
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	cl.done = make(chan struct{})
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		<-c.slots
		return err
	}
	c.cookie++
	cl.req.cookie = c.cookie
	c.pending[cl.req.cookie] = cl
	c.mu.Unlock()

	c.wmu.Lock()
	err := ErrClosed
	if !c.discSent {
		_, err = c.conn.Write(cl.req.encode(c.wbuf[:0]))
	}
	c.wmu.Unlock()
	if err != nil {
		c.fail(fmt.Errorf("%w: send request: %w", ErrClosed, err))
	}
	select {
	case <-cl.done:
		if cl.final != nil {
			return cl.final
		}
		return cl.remote
	case <-ctx.Done():
		cl.abandon()
		return ctx.Err()
	}
}

// finish completes cl if it is still pending.
func (c *Client) finish(cl *call, final error) {
	c.mu.Lock()
	if c.pending[cl.req.cookie] != cl {
		c.mu.Unlock()
		return
	}
	delete(c.pending, cl.req.cookie)
	c.mu.Unlock()
	cl.final = final
	close(cl.done)
	<-c.slots
}

// fail makes the connection unusable: it closes it and fails every pending
// call with err.
func (c *Client) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	calls := c.pending
	c.pending = make(map[uint64]*call)
	c.mu.Unlock()
	_ = c.conn.Close()
	for _, cl := range calls {
		cl.abandon()
		cl.final = err
		close(cl.done)
		<-c.slots
	}
}

// ReadAt reads len(p) bytes of the export at offset off into p, as
// io.ReaderAt does: fewer bytes only at the end of the export, with io.EOF.
// Reads longer than MaxRead (or the server's maximum payload) are split, and
// unaligned ones widened to the server's minimum block. If ctx is done first
// ReadAt returns at once, and p is not written after it returns.
func (c *Client) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("nbd read at offset %d: negative offset", off)
	}
	end, eof := off+int64(len(p)), error(nil)
	if end > c.s.size || end < off {
		end, eof = max(c.s.size, off), io.EOF
	}
	mb := int64(c.s.minBlock)
	for pos := off; pos < end; {
		next := min(alignDown(pos, mb)+int64(c.readMax), end)
		if err := c.readAligned(ctx, p[pos-off:next-off], pos); err != nil {
			return int(pos - off), fmt.Errorf("nbd read of %d bytes at offset %d: %w", next-pos, pos, err)
		}
		pos = next
	}
	return int(end - off), eof
}

// readAligned reads p at off in one request, through a bounce buffer when
// they are not aligned to the minimum block.
func (c *Client) readAligned(ctx context.Context, p []byte, off int64) error {
	mb := int64(c.s.minBlock)
	a, e := alignDown(off, mb), min(alignDown(off+int64(len(p))+mb-1, mb), c.s.size)
	if a == off && e == off+int64(len(p)) {
		return c.read(ctx, p, off)
	}
	bounce := make([]byte, e-a)
	if err := c.read(ctx, bounce, a); err != nil {
		return err
	}
	copy(p, bounce[off-a:])
	return nil
}

func (c *Client) read(ctx context.Context, p []byte, off int64) error {
	cl := &call{req: request{typ: cmdRead, off: uint64(off), length: uint32(len(p))}, buf: p}
	return c.do(ctx, cl)
}

func alignDown(v, a int64) int64 { return v - v%a }

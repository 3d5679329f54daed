package nbd

import (
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
)

// readLoop reads replies until the connection fails or is closed, handing
// each to the call it answers.
func (c *Client) readLoop() {
	defer close(c.done)
	for {
		if err := c.readReply(); err != nil {
			if !errors.Is(err, ErrProtocol) {
				err = connError(err)
			}
			c.fail(err)
			return
		}
	}
}

// connError turns an I/O error of the reader into one wrapping ErrClosed.
func connError(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: the server closed the connection", ErrClosed)
	}
	if errors.Is(err, net.ErrClosed) {
		return ErrClosed
	}
	return fmt.Errorf("%w: %w", ErrClosed, err)
}

func (c *Client) readReply() error {
	var m [4]byte
	if err := readFull(c.br, m[:]); err != nil {
		return err
	}
	switch magic := be.Uint32(m[:]); magic {
	case magicSimple:
		return c.simpleReply()
	case magicStructure:
		return c.chunk()
	default:
		return protocolError("reply magic %#x", magic)
	}
}

// lookup returns the pending call of cookie.
func (c *Client) lookup(cookie uint64) (*call, error) {
	c.mu.Lock()
	cl := c.pending[cookie]
	c.mu.Unlock()
	if cl == nil {
		return nil, protocolError("reply for cookie %#x, which no request in flight has", cookie)
	}
	return cl, nil
}

func (c *Client) simpleReply() error {
	var b [12]byte
	if err := readFull(c.br, b[:]); err != nil {
		return err
	}
	errno, cookie := be.Uint32(b[:]), be.Uint64(b[4:])
	cl, err := c.lookup(cookie)
	if err != nil {
		return err
	}
	switch {
	case cl.req.typ == cmdRead && c.s.structured:
		return protocolError("simple reply to a read after structured replies were negotiated")
	case errno != 0:
		cl.remote = &RemoteError{Errno: Errno(errno), Offset: -1}
	case cl.req.typ == cmdBlockStatus:
		return protocolError("simple reply without an error to a block status request")
	case cl.req.typ == cmdRead:
		if err := c.readData(cl, 0, int(cl.req.length)); err != nil {
			return err
		}
	}
	c.finish(cl, nil)
	return nil
}

func (c *Client) chunk() error {
	var b [16]byte
	if err := readFull(c.br, b[:]); err != nil {
		return err
	}
	h := chunkHeader{flags: be.Uint16(b[:]), typ: be.Uint16(b[2:]), cookie: be.Uint64(b[4:]), length: be.Uint32(b[12:])}
	if !c.s.structured {
		return protocolError("structured reply chunk, but structured replies were not negotiated")
	}
	cl, err := c.lookup(h.cookie)
	if err != nil {
		return err
	}
	switch {
	case h.typ == chunkNone:
		if h.length != 0 || h.flags&replyFlagDone == 0 {
			return protocolError("NBD_REPLY_TYPE_NONE of %d bytes, flags %#x", h.length, h.flags)
		}
	case h.typ == chunkOffsetData || h.typ == chunkOffsetHole:
		if cl.req.typ != cmdRead {
			return protocolError("content chunk in the reply to a command %d", cl.req.typ)
		}
		err = c.contentChunk(cl, h)
	case h.typ == chunkBlockStatus:
		if cl.req.typ != cmdBlockStatus {
			return protocolError("block status chunk in the reply to a command %d", cl.req.typ)
		}
		err = c.statusChunk(cl, h)
	case h.typ&chunkErrorBit != 0:
		err = c.errorChunk(cl, h)
	default:
		return protocolError("structured reply chunk of unknown type %d", h.typ)
	}
	if err != nil || h.flags&replyFlagDone == 0 {
		return err
	}
	if err := cl.complete(); err != nil {
		return err
	}
	c.finish(cl, nil)
	return nil
}

// complete checks that a successful structured reply had all it must.
func (cl *call) complete() error {
	if cl.remote != nil {
		return nil
	}
	switch cl.req.typ {
	case cmdRead:
		if got := cl.covered.total(); got != uint64(cl.req.length) {
			return protocolError("read reply ended with %d of %d bytes", got, cl.req.length)
		}
	case cmdBlockStatus:
		if !slices.Contains(cl.seen, cl.ctxID) {
			return protocolError("block status reply without the context %d asked for", cl.ctxID)
		}
	}
	return nil
}

// contentChunk handles NBD_REPLY_TYPE_OFFSET_DATA and _OFFSET_HOLE.
func (c *Client) contentChunk(cl *call, h chunkHeader) error {
	hdr := 12
	if h.typ == chunkOffsetData {
		hdr = 8
		if h.length < 9 || h.length-8 > cl.req.length {
			return protocolError("data chunk of %d bytes in the reply to a read of %d", h.length, cl.req.length)
		}
	} else if h.length != 12 {
		return protocolError("hole chunk of %d bytes", h.length)
	}
	var b [12]byte
	if err := readFull(c.br, b[:hdr]); err != nil {
		return err
	}
	off, n := be.Uint64(b[:]), uint64(h.length)-8
	if h.typ == chunkOffsetHole {
		n = uint64(be.Uint32(b[8:]))
	}
	start, end := cl.req.off, cl.req.off+uint64(cl.req.length)
	if n == 0 || off < start || off > end || n > end-off {
		return protocolError("content chunk at %d+%d outside the request %d+%d", off, n, start, cl.req.length)
	}
	rel := off - start
	if !cl.covered.add(rel, rel+n) {
		return protocolError("content chunk at %d+%d overlaps an earlier one", off, n)
	}
	if h.typ == chunkOffsetData {
		return c.readData(cl, int(rel), int(n))
	}
	cl.bufMu.Lock()
	if cl.buf != nil {
		clear(cl.buf[rel : rel+n])
	}
	cl.bufMu.Unlock()
	return nil
}

// readData reads n bytes of reply data into cl's buffer at at, through the
// reader's scratch buffer so that a caller who gives up is never written to
// afterwards.
func (c *Client) readData(cl *call, at, n int) error {
	for n > 0 {
		k := min(n, len(c.scratch))
		if err := readFull(c.br, c.scratch[:k]); err != nil {
			return err
		}
		cl.bufMu.Lock()
		if cl.buf != nil {
			copy(cl.buf[at:at+k], c.scratch[:k])
		}
		cl.bufMu.Unlock()
		at, n = at+k, n-k
	}
	return nil
}

// statusChunk handles NBD_REPLY_TYPE_BLOCK_STATUS, keeping the extents of
// the context the call asked for.
func (c *Client) statusChunk(cl *call, h chunkHeader) error {
	if h.length < 12 || (h.length-4)%8 != 0 || h.length > 4+8*maxExtents {
		return protocolError("block status chunk of %d bytes", h.length)
	}
	var b [8]byte
	if err := readFull(c.br, b[:4]); err != nil {
		return err
	}
	id := be.Uint32(b[:])
	granted := false
	for _, v := range c.s.contexts {
		granted = granted || v == id
	}
	if !granted || slices.Contains(cl.seen, id) {
		return protocolError("unexpected block status chunk for context %d", id)
	}
	cl.seen = append(cl.seen, id)
	keep := id == cl.ctxID
	pos, sum := int64(cl.req.off), uint64(0)
	for i := range (h.length - 4) / 8 {
		if err := readFull(c.br, b[:]); err != nil {
			return err
		}
		n, flags := be.Uint32(b[:]), be.Uint32(b[4:])
		if n == 0 || (i > 0 && sum >= uint64(cl.req.length)) {
			return protocolError("block status extent %d of %d bytes after %d of the %d asked for", i, n, sum, cl.req.length)
		}
		if keep {
			cl.extents = append(cl.extents, Extent{Offset: pos, Length: int64(n), Flags: flags})
		}
		pos, sum = pos+int64(n), sum+uint64(n)
	}
	return nil
}

// errorChunk handles NBD_REPLY_TYPE_ERROR, _ERROR_OFFSET and error chunks of
// types this package does not know.
func (c *Client) errorChunk(cl *call, h chunkHeader) error {
	if h.length < 6 || h.length > maxErrorChunk {
		return protocolError("error chunk of %d bytes", h.length)
	}
	b := make([]byte, h.length)
	if err := readFull(c.br, b); err != nil {
		return err
	}
	errno, msgLen := Errno(be.Uint32(b)), int(be.Uint16(b[4:]))
	if errno == 0 {
		errno = EINVAL // the protocol's advice for a value it does not define
	}
	if msgLen > len(b)-6 || msgLen > maxString {
		return protocolError("error message of %d bytes in a chunk of %d", msgLen, h.length)
	}
	re := &RemoteError{Errno: errno, Message: strings.ToValidUTF8(string(b[6:6+msgLen]), "?"), Offset: -1}
	if h.typ == chunkErrorOffset {
		if msgLen > len(b)-14 {
			return protocolError("error offset chunk of %d bytes with a message of %d", h.length, msgLen)
		}
		off := be.Uint64(b[6+msgLen:])
		if off < cl.req.off || off-cl.req.off >= uint64(max(cl.req.length, 1)) {
			return protocolError("error at offset %d outside the request %d+%d", off, cl.req.off, cl.req.length)
		}
		re.Offset = int64(off)
	}
	if cl.remote == nil {
		cl.remote = re
	}
	return nil
}

// maxSpans bounds the disjoint pieces a read reply may arrive in. Servers
// send content in order, which keeps one span; this only stops a server from
// making the client's bookkeeping grow without bound.
const maxSpans = 4096

// spans is a set of disjoint byte ranges [lo, hi), sorted, adjacent ones
// merged.
type spans [][2]uint64

// add inserts [lo, hi) and reports false if it overlaps a range already in,
// or if the set would grow beyond maxSpans.
func (s *spans) add(lo, hi uint64) bool {
	i, _ := slices.BinarySearchFunc(*s, lo, func(r [2]uint64, v uint64) int {
		switch {
		case r[0] < v:
			return -1
		case r[0] > v:
			return 1
		}
		return 0
	})
	if i < len(*s) && (*s)[i][0] < hi || i > 0 && (*s)[i-1][1] > lo {
		return false
	}
	joinPrev := i > 0 && (*s)[i-1][1] == lo
	joinNext := i < len(*s) && (*s)[i][0] == hi
	switch {
	case joinPrev && joinNext:
		(*s)[i-1][1] = (*s)[i][1]
		*s = slices.Delete(*s, i, i+1)
	case joinPrev:
		(*s)[i-1][1] = hi
	case joinNext:
		(*s)[i][0] = lo
	default:
		if len(*s) >= maxSpans {
			return false
		}
		*s = slices.Insert(*s, i, [2]uint64{lo, hi})
	}
	return true
}

func (s spans) total() uint64 {
	var t uint64
	for _, r := range s {
		t += r[1] - r[0]
	}
	return t
}

package nbd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Server limits of the transmission phase.
const (
	// readPiece is the most data one read handler holds: longer reads are
	// sent in several chunks (or, with simple replies, several writes).
	readPiece = 1 << 20
	// maxStatusExtents bounds the descriptors of one block status reply; a
	// client asks again for the rest.
	maxStatusExtents = 1 << 16
)

var pieces = sync.Pool{New: func() any { b := make([]byte, readPiece); return &b }}

// transmit serves requests on exp until the client disconnects or the
// server stops. It returns an error when the connection must be dropped.
func (c *serverConn) transmit(exp Export) error {
	c.exp, c.size = exp, exp.Size()
	var hdr [requestSize]byte
	for {
		if err := readFull(c.br, hdr[:]); err != nil {
			if c.stopping.Load() || errors.Is(err, io.EOF) {
				c.handlers.Wait()
				return nil
			}
			return fmt.Errorf("read request: %w", err)
		}
		req, err := decodeRequest(hdr[:])
		if err != nil {
			return err
		}
		if req.typ == cmdDisc {
			c.handlers.Wait()
			return nil
		}
		if err := c.dispatch(req); err != nil {
			return err
		}
	}
}

// dispatch answers req at once when it can be refused, and otherwise starts
// a handler for it, waiting for a free slot first.
func (c *serverConn) dispatch(req request) error {
	switch req.typ {
	case cmdWrite:
		if req.length > MaxRead {
			return protocolError("write of %d bytes", req.length)
		}
		if _, err := io.CopyN(io.Discard, c.br, int64(req.length)); err != nil {
			return fmt.Errorf("read write payload: %w", err)
		}
		return c.replyError(req, EPERM, "the export is read-only", -1)
	case cmdTrim, cmdWriteZeroes:
		return c.replyError(req, EPERM, "the export is read-only", -1)
	case cmdRead:
		if errno, msg := c.checkRange(req, cmdFlagFUA, MaxRead); errno != 0 {
			return c.replyError(req, errno, msg, -1)
		}
		c.spawn(func() { c.handleRead(req) })
	case cmdBlockStatus:
		if !c.structured || !c.metaAlloc {
			return c.replyError(req, EINVAL, "no metadata context was selected", -1)
		}
		if errno, msg := c.checkRange(req, cmdFlagFUA|cmdFlagReqOne, 1<<32-1); errno != 0 {
			return c.replyError(req, errno, msg, -1)
		}
		if req.length == 0 {
			return c.replyError(req, EINVAL, "block status of 0 bytes", -1)
		}
		c.spawn(func() { c.handleStatus(req) })
	default:
		return c.replyError(req, EINVAL, fmt.Sprintf("command %d is not supported", req.typ), -1)
	}
	return nil
}

// checkRange validates the flags, length and range of req.
func (c *serverConn) checkRange(req request, flags uint16, maxLen uint32) (Errno, string) {
	switch {
	case req.flags&^flags != 0:
		return EINVAL, fmt.Sprintf("unsupported command flags %#x", req.flags)
	case req.length > maxLen:
		return EOVERFLOW, fmt.Sprintf("request of %d bytes is longer than %d", req.length, maxLen)
	case req.off > uint64(c.size) || uint64(req.length) > uint64(c.size)-req.off:
		return EINVAL, fmt.Sprintf("request of %d bytes at offset %d is beyond the export's %d bytes", req.length, req.off, c.size)
	}
	mb := uint64(c.srv.minBlock)
	if req.off%mb != 0 || uint64(req.length)%mb != 0 && req.off+uint64(req.length) != uint64(c.size) {
		return EINVAL, fmt.Sprintf("request of %d bytes at offset %d is not aligned to %d", req.length, req.off, mb)
	}
	return 0, ""
}

// spawn runs f for one request once a slot is free.
func (c *serverConn) spawn(f func()) {
	c.slots <- struct{}{}
	c.handlers.Add(1)
	go func() {
		defer c.handlers.Done()
		defer func() { <-c.slots }()
		f()
	}()
}

// reply sends one reply; a connection that cannot be written to is dropped.
func (c *serverConn) reply(parts ...[]byte) {
	if err := c.send(parts...); err != nil {
		c.fail(fmt.Errorf("send reply: %w", err))
	}
}

// replyError fails req with errno and msg; off >= 0 says where, in a
// structured reply. It returns an error only if the reply cannot be sent.
func (c *serverConn) replyError(req request, errno Errno, msg string, off int64) error {
	if !c.structured {
		b := be.AppendUint32(nil, magicSimple)
		b = be.AppendUint32(b, uint32(errno))
		return c.send(be.AppendUint64(b, req.cookie))
	}
	msg = truncate(msg)
	payload := be.AppendUint32(nil, uint32(errno))
	payload = be.AppendUint16(payload, uint16(len(msg)))
	payload = append(payload, msg...)
	typ := uint16(chunkError)
	if off >= 0 {
		typ = chunkErrorOffset
		payload = be.AppendUint64(payload, uint64(off))
	}
	h := chunkHeader{flags: replyFlagDone, typ: typ, cookie: req.cookie, length: uint32(len(payload))}
	return c.send(appendChunkHeader(nil, h), payload)
}

// errnoOf maps an error of the export to the value sent to the client.
func errnoOf(err error) Errno {
	var e Errno
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, context.Canceled) {
		return ESHUTDOWN
	}
	return EIO
}

// exportRead reads exactly len(p) bytes of the export at off.
func (c *serverConn) exportRead(p []byte, off int64) error {
	n, err := c.exp.ReadAt(c.ctx, p, off)
	if err == nil && n < len(p) {
		err = fmt.Errorf("short read of %d of %d bytes at offset %d", n, len(p), off)
	}
	return err
}

func (c *serverConn) handleRead(req request) {
	if c.structured {
		c.readStructured(req)
	} else {
		c.readSimple(req)
	}
}

// readSimple answers a read with a simple reply. An error in the first piece
// fails the request; an error once the reply has begun can only drop the
// connection, as the protocol requires. The reply holds the connection's
// write lock from its first byte to its last.
func (c *serverConn) readSimple(req request) {
	bp := pieces.Get().(*[]byte)
	defer pieces.Put(bp)
	off, end := int64(req.off), int64(req.off)+int64(req.length)
	k := min(end-off, readPiece)
	if err := c.exportRead((*bp)[:k], off); err != nil {
		if err := c.replyError(req, errnoOf(err), err.Error(), -1); err != nil {
			c.fail(fmt.Errorf("send reply: %w", err))
		}
		return
	}
	hdr := be.AppendUint32(nil, magicSimple)
	hdr = be.AppendUint32(hdr, 0)
	hdr = be.AppendUint64(hdr, req.cookie)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.bw.Write(hdr)
	for err == nil {
		if _, err = c.bw.Write((*bp)[:k]); err != nil {
			break
		}
		if off += k; off == end {
			err = c.bw.Flush()
			break
		}
		k = min(end-off, readPiece)
		err = c.exportRead((*bp)[:k], off)
	}
	if err != nil {
		c.fail(fmt.Errorf("read of %d bytes at offset %d, reply already begun: %w", req.length, req.off, err))
	}
}

// readStructured answers a read with structured chunks: holes for ranges
// the export flags as zero, data in pieces of at most readPiece for the
// rest. The last chunk carries the done flag.
func (c *serverConn) readStructured(req request) {
	off, length := int64(req.off), int64(req.length)
	if length == 0 {
		c.reply(appendChunkHeader(nil, chunkHeader{flags: replyFlagDone, typ: chunkNone, cookie: req.cookie}))
		return
	}
	exts, err := c.exp.Extents(c.ctx, off, length)
	if err != nil {
		exts = nil // read it all
	}
	segs := normalizeExtents(exts, off, length, StateZero, 0)
	bp := pieces.Get().(*[]byte)
	defer pieces.Put(bp)
	for i, seg := range segs {
		last := i == len(segs)-1
		if seg.Flags&StateZero != 0 {
			c.sendHole(req, seg, last)
			continue
		}
		for pos := seg.Offset; pos < seg.End(); {
			k := min(seg.End()-pos, readPiece)
			buf := (*bp)[:k]
			if err := c.exportRead(buf, pos); err != nil {
				if err := c.replyError(req, errnoOf(err), err.Error(), pos); err != nil {
					c.fail(fmt.Errorf("send reply: %w", err))
				}
				return
			}
			pos += k
			c.sendData(req, pos-k, buf, last && pos == seg.End())
		}
	}
}

func (c *serverConn) sendData(req request, off int64, data []byte, done bool) {
	h := chunkHeader{typ: chunkOffsetData, cookie: req.cookie, length: uint32(8 + len(data))}
	if done {
		h.flags = replyFlagDone
	}
	b := appendChunkHeader(nil, h)
	c.reply(be.AppendUint64(b, uint64(off)), data)
}

func (c *serverConn) sendHole(req request, e Extent, done bool) {
	h := chunkHeader{typ: chunkOffsetHole, cookie: req.cookie, length: 12}
	if done {
		h.flags = replyFlagDone
	}
	b := appendChunkHeader(nil, h)
	b = be.AppendUint64(b, uint64(e.Offset))
	c.reply(be.AppendUint32(b, uint32(e.Length)))
}

// handleStatus answers a block status request for "base:allocation".
func (c *serverConn) handleStatus(req request) {
	off, length := int64(req.off), int64(req.length)
	exts, err := c.exp.Extents(c.ctx, off, length)
	if err != nil {
		if err := c.replyError(req, errnoOf(err), err.Error(), -1); err != nil {
			c.fail(fmt.Errorf("send reply: %w", err))
		}
		return
	}
	limit := maxStatusExtents
	if req.flags&cmdFlagReqOne != 0 {
		limit = 1
	}
	out := normalizeExtents(exts, off, length, StateHole|StateZero, limit)
	payload := be.AppendUint32(make([]byte, 0, 4+8*len(out)), allocID)
	for _, e := range out {
		payload = be.AppendUint32(payload, uint32(e.Length))
		payload = be.AppendUint32(payload, e.Flags)
	}
	h := chunkHeader{flags: replyFlagDone, typ: chunkBlockStatus, cookie: req.cookie, length: uint32(len(payload))}
	c.reply(appendChunkHeader(nil, h), payload)
}

// normalizeExtents turns what an Export returned into consecutive extents
// that cover [off, off+length) exactly: flags masked with mask, gaps filled
// with flags 0, pieces outside the range or overlapping an earlier one cut,
// neighbours with equal flags merged. With limit > 0 it returns at most
// limit extents, which then cover only a prefix of the range.
func normalizeExtents(exts []Extent, off, length int64, mask uint32, limit int) []Extent {
	end, pos := off+length, off
	var out []Extent
	add := func(a, b int64, flags uint32) {
		if b <= a {
			return
		}
		if n := len(out); n > 0 && out[n-1].Flags == flags {
			out[n-1].Length += b - a
			return
		}
		out = append(out, Extent{Offset: a, Length: b - a, Flags: flags})
	}
	for _, e := range exts {
		a, b := max(e.Offset, pos), min(e.Offset+max(e.Length, 0), end)
		if b <= a {
			continue
		}
		add(pos, a, 0)
		add(a, b, e.Flags&mask)
		pos = b
		if limit > 0 && len(out) > limit || pos == end {
			break
		}
	}
	add(pos, end, 0)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

package nbd

import (
	"errors"
	"fmt"
)

// errAborted ends a connection whose client sent NBD_OPT_ABORT.
var errAborted = errors.New("client aborted the negotiation")

// allocID is the id the server gives "base:allocation".
const allocID = 1

// exportFlags are the transmission flags of every export: read-only, and
// safe to use from several connections at once since nothing is cached.
const exportFlags = flagHasFlags | flagReadOnly | flagCanMultiConn

// negotiate runs the server side of fixed newstyle negotiation and returns
// the export the client chose.
func (c *serverConn) negotiate() (Export, error) {
	greet := be.AppendUint64(nil, magicNBD)
	greet = be.AppendUint64(greet, magicIHaveOpt)
	greet = be.AppendUint16(greet, flagFixedNewstyle|flagNoZeroes)
	if err := c.send(greet); err != nil {
		return nil, err
	}
	var b [optHdrSize]byte
	if err := readFull(c.br, b[:4]); err != nil {
		return nil, err
	}
	cflags := be.Uint32(b[:])
	if cflags&^(flagFixedNewstyle|flagNoZeroes) != 0 {
		return nil, protocolError("unknown client flags %#x", cflags)
	}
	noZeroes := cflags&flagNoZeroes != 0
	var data []byte
	for {
		if err := readFull(c.br, b[:]); err != nil {
			return nil, err
		}
		if m := be.Uint64(b[:]); m != magicIHaveOpt {
			return nil, protocolError("option magic %#x", m)
		}
		opt, n := be.Uint32(b[8:]), be.Uint32(b[12:])
		if n > maxOptionData {
			return nil, protocolError("option %d with %d bytes of data", opt, n)
		}
		if cap(data) < int(n) {
			data = make([]byte, n)
		}
		data = data[:n]
		if err := readFull(c.br, data); err != nil {
			return nil, err
		}
		if c.stopping.Load() && opt != optAbort {
			if err := c.optReply(opt, repErrShutdown, []byte("the server is shutting down")); err != nil {
				return nil, err
			}
			continue
		}
		exp, err := c.option(opt, data, noZeroes)
		if exp != nil || err != nil {
			return exp, err
		}
	}
}

// option answers one option. It returns the export when the client enters
// the transmission phase with it.
func (c *serverConn) option(opt uint32, data []byte, noZeroes bool) (Export, error) {
	switch opt {
	case optExportName:
		return c.exportName(string(data), noZeroes)
	case optAbort:
		_ = c.optReply(opt, repAck, nil)
		return nil, errAborted
	case optList:
		if len(data) != 0 {
			return nil, c.optReply(opt, repErrInvalid, []byte("NBD_OPT_LIST takes no data"))
		}
		for _, name := range c.srv.names {
			if err := c.optReply(opt, repServer, appendString(nil, name)); err != nil {
				return nil, err
			}
		}
		return nil, c.optReply(opt, repAck, nil)
	case optInfo, optGo:
		return c.infoGo(opt, data)
	case optStructuredReply:
		if len(data) != 0 {
			return nil, c.optReply(opt, repErrInvalid, []byte("NBD_OPT_STRUCTURED_REPLY takes no data"))
		}
		c.structured = true
		return nil, c.optReply(opt, repAck, nil)
	case optListMetaContext, optSetMetaContext:
		return nil, c.metaContext(opt, data)
	}
	return nil, c.optReply(opt, repErrUnsup, fmt.Appendf(nil, "option %d is not supported", opt))
}

// exportName ends negotiation the old way. The protocol gives no means to
// refuse an unknown export but to drop the connection.
func (c *serverConn) exportName(name string, noZeroes bool) (Export, error) {
	exp := c.srv.exports[name]
	if exp == nil {
		return nil, fmt.Errorf("NBD_OPT_EXPORT_NAME for unknown export %.64q", name)
	}
	if c.metaExport != name {
		c.metaAlloc = false
	}
	b := be.AppendUint64(nil, uint64(exp.Size()))
	b = be.AppendUint16(b, exportFlags)
	if !noZeroes {
		b = append(b, make([]byte, 124)...)
	}
	return exp, c.send(b)
}

// infoGo answers NBD_OPT_INFO and NBD_OPT_GO.
func (c *serverConn) infoGo(opt uint32, data []byte) (Export, error) {
	name, rest, ok := cutString(data)
	if !ok || len(rest) < 2 || len(rest) != 2+2*int(be.Uint16(rest)) {
		return nil, c.optReply(opt, repErrInvalid, []byte("malformed request"))
	}
	exp := c.srv.exports[name]
	if exp == nil {
		return nil, c.optReply(opt, repErrUnknown, fmt.Appendf(nil, "no export named %.64q", name))
	}
	info := be.AppendUint16(nil, infoExport)
	info = be.AppendUint64(info, uint64(exp.Size()))
	info = be.AppendUint16(info, exportFlags)
	if err := c.optReply(opt, repInfo, info); err != nil {
		return nil, err
	}
	info = be.AppendUint16(nil, infoBlockSize)
	info = be.AppendUint32(info, c.srv.minBlock)
	info = be.AppendUint32(info, max(4096, c.srv.minBlock))
	info = be.AppendUint32(info, MaxRead)
	if err := c.optReply(opt, repInfo, info); err != nil {
		return nil, err
	}
	if err := c.optReply(opt, repAck, nil); err != nil || opt == optInfo {
		return nil, err
	}
	if c.metaExport != name {
		c.metaAlloc = false
	}
	return exp, nil
}

// metaContext answers NBD_OPT_LIST_META_CONTEXT and
// NBD_OPT_SET_META_CONTEXT. The only context is "base:allocation".
func (c *serverConn) metaContext(opt uint32, data []byte) error {
	set := opt == optSetMetaContext
	if set { // a set replaces the selection, even when it fails
		c.metaExport, c.metaAlloc = "", false
	}
	name, queries, err := parseMetaRequest(data)
	switch {
	case err != nil:
		return c.optReply(opt, repErrInvalid, []byte(err.Error()))
	case set && !c.structured:
		return c.optReply(opt, repErrInvalid, []byte("negotiate structured replies first"))
	case c.srv.exports[name] == nil:
		return c.optReply(opt, repErrUnknown, fmt.Appendf(nil, "no export named %.64q", name))
	}
	alloc := !set && len(queries) == 0
	for _, q := range queries {
		alloc = alloc || q == ContextBaseAllocation || (!set && q == "base:")
	}
	if alloc {
		id := uint32(0) // the protocol reserves the id of a listed context
		if set {
			id = allocID
		}
		reply := be.AppendUint32(nil, id)
		if err := c.optReply(opt, repMetaContext, append(reply, ContextBaseAllocation...)); err != nil {
			return err
		}
	}
	if set {
		c.metaExport, c.metaAlloc = name, alloc
	}
	return c.optReply(opt, repAck, nil)
}

// parseMetaRequest decodes the data of a metadata context option: an export
// name and a list of queries.
func parseMetaRequest(data []byte) (export string, queries []string, err error) {
	export, rest, ok := cutString(data)
	if !ok || len(rest) < 4 {
		return "", nil, errors.New("malformed request")
	}
	n := be.Uint32(rest)
	rest = rest[4:]
	if uint64(n) > uint64(len(rest)/4) {
		return "", nil, fmt.Errorf("%d queries in %d bytes", n, len(rest))
	}
	queries = make([]string, 0, n)
	for range n {
		var q string
		if q, rest, ok = cutString(rest); !ok {
			return "", nil, errors.New("malformed query")
		}
		queries = append(queries, q)
	}
	if len(rest) != 0 {
		return "", nil, errors.New("trailing bytes after the queries")
	}
	return export, queries, nil
}

// cutString splits a 32-bit length and a string of at most maxString bytes
// off the front of b.
func cutString(b []byte) (s string, rest []byte, ok bool) {
	if len(b) < 4 {
		return "", nil, false
	}
	n := be.Uint32(b)
	if n > maxString || uint64(n) > uint64(len(b)-4) {
		return "", nil, false
	}
	return string(b[4 : 4+n]), b[4+n:], true
}

// optReply sends one option reply.
func (c *serverConn) optReply(opt, typ uint32, data []byte) error {
	return c.send(appendOptReply(nil, opt, typ, data))
}

// send writes b and flushes it.
func (c *serverConn) send(parts ...[]byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for _, p := range parts {
		if _, err := c.bw.Write(p); err != nil {
			return err
		}
	}
	return c.bw.Flush()
}

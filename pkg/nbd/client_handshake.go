package nbd

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strings"
)

// clientConfig is what the client asks for during the handshake.
type clientConfig struct {
	export   string
	contexts []string
	// simpleOnly skips NBD_OPT_STRUCTURED_REPLY, so the server must use
	// simple replies. Tests use it to exercise that path.
	simpleOnly bool
}

// session is what the handshake settled.
type session struct {
	size       int64
	flags      uint16
	minBlock   uint32
	prefBlock  uint32
	maxPayload uint32
	structured bool
	contexts   map[string]uint32
}

// clientHandshake runs the client side of fixed newstyle negotiation.
type clientHandshake struct {
	w        io.Writer
	r        *bufio.Reader
	noZeroes bool
}

// handshake negotiates with the server behind w and r and enters the
// transmission phase on export cfg.export.
func handshake(w io.Writer, r *bufio.Reader, cfg clientConfig) (session, error) {
	if err := checkNames(cfg); err != nil {
		return session{}, err
	}
	var greet [18]byte
	if err := readFull(r, greet[:]); err != nil {
		return session{}, fmt.Errorf("read server greeting: %w", err)
	}
	if m := be.Uint64(greet[:]); m != magicNBD {
		return session{}, protocolError("server greeting %#x is not NBDMAGIC", m)
	}
	switch m := be.Uint64(greet[8:]); m {
	case magicIHaveOpt:
	case magicOldstyle:
		return session{}, fmt.Errorf("%w: oldstyle negotiation", ErrUnsupported)
	default:
		return session{}, protocolError("server greeting magic %#x", m)
	}
	sflags := be.Uint16(greet[16:])
	if sflags&flagFixedNewstyle == 0 {
		return session{}, fmt.Errorf("%w: the server lacks fixed newstyle negotiation", ErrUnsupported)
	}
	h := &clientHandshake{w: w, r: r, noZeroes: sflags&flagNoZeroes != 0}
	cflags := uint32(flagFixedNewstyle)
	if h.noZeroes {
		cflags |= flagNoZeroes
	}
	if _, err := w.Write(be.AppendUint32(nil, cflags)); err != nil {
		return session{}, fmt.Errorf("send client flags: %w", err)
	}
	s := session{minBlock: 1, prefBlock: 4096, maxPayload: MaxRead}
	var err error
	if !cfg.simpleOnly {
		if s.structured, err = h.structuredReply(); err != nil {
			return session{}, err
		}
	}
	if len(cfg.contexts) > 0 && s.structured {
		if s.contexts, err = h.setMetaContext(cfg.export, cfg.contexts); err != nil {
			return session{}, err
		}
	}
	if err := h.goExport(cfg.export, &s); err != nil {
		return session{}, err
	}
	return s, nil
}

func checkNames(cfg clientConfig) error {
	if len(cfg.export) > maxString {
		return fmt.Errorf("export name of %d bytes is longer than %d", len(cfg.export), maxString)
	}
	for _, c := range cfg.contexts {
		if len(c) > maxString || !strings.Contains(c, ":") {
			return fmt.Errorf("invalid metadata context name %.40q", c)
		}
	}
	return nil
}

func (h *clientHandshake) send(opt uint32, data []byte) error {
	if _, err := h.w.Write(appendOption(nil, opt, data)); err != nil {
		return fmt.Errorf("send %s: %w", optionName[opt], err)
	}
	return nil
}

// reply reads one option reply to opt. Its data is at most maxOptionData.
func (h *clientHandshake) reply(opt uint32) (typ uint32, data []byte, err error) {
	var hdr [optReplyHdrSize]byte
	if err := readFull(h.r, hdr[:]); err != nil {
		return 0, nil, fmt.Errorf("read reply to %s: %w", optionName[opt], err)
	}
	if m := be.Uint64(hdr[:]); m != magicOptReply {
		return 0, nil, protocolError("option reply magic %#x", m)
	}
	if o := be.Uint32(hdr[8:]); o != opt {
		return 0, nil, protocolError("reply to option %d while waiting for %s", o, optionName[opt])
	}
	typ, n := be.Uint32(hdr[12:]), be.Uint32(hdr[16:])
	if n > maxOptionData {
		return 0, nil, protocolError("option reply of %d bytes", n)
	}
	data = make([]byte, n)
	if err := readFull(h.r, data); err != nil {
		return 0, nil, fmt.Errorf("read reply to %s: %w", optionName[opt], err)
	}
	return typ, data, nil
}

func optionError(opt, typ uint32, data []byte) error {
	return &OptionError{Option: opt, Reply: typ, Message: strings.ToValidUTF8(truncate(string(data)), "?")}
}

// structuredReply asks for structured replies and reports whether the
// server agreed.
func (h *clientHandshake) structuredReply() (bool, error) {
	if err := h.send(optStructuredReply, nil); err != nil {
		return false, err
	}
	typ, data, err := h.reply(optStructuredReply)
	switch {
	case err != nil:
		return false, err
	case typ == repAck:
		return true, nil
	case typ == repErrShutdown:
		return false, optionError(optStructuredReply, typ, data)
	case typ&repFlagError != 0:
		return false, nil // the server offers simple replies only
	}
	return false, protocolError("reply type %#x to NBD_OPT_STRUCTURED_REPLY", typ)
}

// setMetaContext selects the metadata contexts names on export and returns
// the ids of those the server granted. A server that does not know the
// option grants none.
func (h *clientHandshake) setMetaContext(export string, names []string) (map[string]uint32, error) {
	data := appendString(nil, export)
	data = be.AppendUint32(data, uint32(len(names)))
	for _, n := range names {
		data = appendString(data, n)
	}
	if len(data) > maxOptionData {
		return nil, fmt.Errorf("%d metadata contexts are too many for one option", len(names))
	}
	if err := h.send(optSetMetaContext, data); err != nil {
		return nil, err
	}
	granted := make(map[string]uint32)
	ids := make(map[uint32]bool)
	for replies := 0; ; replies++ {
		typ, data, err := h.reply(optSetMetaContext)
		switch {
		case err != nil:
			return nil, err
		case typ == repAck:
			return granted, nil
		case typ == repErrUnsup:
			return map[string]uint32{}, nil
		case typ&repFlagError != 0:
			return nil, optionError(optSetMetaContext, typ, data)
		case typ != repMetaContext || len(data) < 4 || replies >= len(names):
			return nil, protocolError("reply type %#x of %d bytes to NBD_OPT_SET_META_CONTEXT", typ, len(data))
		}
		id, name := be.Uint32(data), string(data[4:])
		if ids[id] {
			return nil, protocolError("metadata context id %d granted twice", id)
		}
		ids[id] = true
		for _, n := range names {
			if n == name {
				granted[name] = id
			}
		}
	}
}

// goExport sends NBD_OPT_GO for export and fills s from the server's
// information replies. A server without NBD_OPT_GO gets NBD_OPT_EXPORT_NAME.
func (h *clientHandshake) goExport(export string, s *session) error {
	data := appendString(nil, export)
	data = be.AppendUint16(data, 1)
	data = be.AppendUint16(data, infoBlockSize)
	if err := h.send(optGo, data); err != nil {
		return err
	}
	gotExport := false
	for {
		typ, data, err := h.reply(optGo)
		switch {
		case err != nil:
			return err
		case typ == repInfo:
			if err := parseInfo(data, s, &gotExport); err != nil {
				return err
			}
		case typ == repAck:
			if !gotExport {
				return protocolError("NBD_OPT_GO acknowledged without NBD_INFO_EXPORT")
			}
			return nil
		case typ == repErrUnsup:
			return h.exportName(export, s)
		case typ&repFlagError != 0:
			return optionError(optGo, typ, data)
		default:
			return protocolError("reply type %#x to NBD_OPT_GO", typ)
		}
	}
}

// parseInfo reads one NBD_REP_INFO into s.
func parseInfo(data []byte, s *session, gotExport *bool) error {
	if len(data) < 2 {
		return protocolError("NBD_REP_INFO of %d bytes", len(data))
	}
	switch typ := be.Uint16(data); typ {
	case infoExport:
		if len(data) != 12 {
			return protocolError("NBD_INFO_EXPORT of %d bytes", len(data))
		}
		size := be.Uint64(data[2:])
		if size > math.MaxInt64 {
			return protocolError("export size %d", size)
		}
		s.size, s.flags, *gotExport = int64(size), be.Uint16(data[10:]), true
	case infoBlockSize:
		if len(data) != 14 {
			return protocolError("NBD_INFO_BLOCK_SIZE of %d bytes", len(data))
		}
		minB, pref, maxP := be.Uint32(data[2:]), be.Uint32(data[6:]), be.Uint32(data[10:])
		if !isPowerOf2(minB) || minB > 1<<16 || maxP < minB {
			return protocolError("block sizes min %d, preferred %d, max %d", minB, pref, maxP)
		}
		s.minBlock, s.prefBlock, s.maxPayload = minB, pref, maxP
	}
	return nil
}

// exportName ends negotiation the old way, for servers without NBD_OPT_GO.
// Such a server closes the connection when it has no such export.
func (h *clientHandshake) exportName(export string, s *session) error {
	if err := h.send(optExportName, []byte(export)); err != nil {
		return err
	}
	n := 10
	if !h.noZeroes {
		n += 124
	}
	buf := make([]byte, n)
	if err := readFull(h.r, buf); err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("%w: the server closed the connection on NBD_OPT_EXPORT_NAME %q", ErrUnknownExport, export)
	} else if err != nil {
		return fmt.Errorf("read reply to NBD_OPT_EXPORT_NAME: %w", err)
	}
	size := be.Uint64(buf)
	if size > math.MaxInt64 {
		return protocolError("export size %d", size)
	}
	s.size, s.flags = int64(size), be.Uint16(buf[8:])
	return nil
}

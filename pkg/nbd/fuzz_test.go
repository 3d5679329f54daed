package nbd

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// The fuzz targets feed a peer's side of a connection to the decoders. `go
// test` runs them over their seeds; scripts/fuzz.sh fuzzes them for a while.

// FuzzClientReplies feeds server replies to the client's reply decoder, with
// a read of 512 bytes at 4096 (cookie 1) and a block status of 65536 bytes
// at 0 in context 1 (cookie 2) in flight, and checks what it accepts.
func FuzzClientReplies(f *testing.F) {
	const off, n = 4096, 512
	read := request{typ: cmdRead, cookie: 1, off: off, length: n}
	status := request{typ: cmdBlockStatus, cookie: 2, off: 0, length: 65536}
	f.Add(true, join(dataChunk(read, 0, off, 256), holeChunk(read, replyFlagDone, off+256, 256),
		statusChunk(status, 1, 4096, 0, 65536, 3)))
	f.Add(true, join(statusChunk(status, 2, 100, 1), errorChunk(read, chunkErrorOffset, 5, "bad", be.AppendUint64(nil, off+5)...)))
	f.Add(false, join(be.AppendUint64(be.AppendUint32(be.AppendUint32(nil, magicSimple), 0), 1), make([]byte, n),
		be.AppendUint64(be.AppendUint32(be.AppendUint32(nil, magicSimple), 22), 2)))
	f.Fuzz(func(t *testing.T, structured bool, data []byte) {
		c := &Client{
			conn:    nopConn{Reader: bytes.NewReader(nil)},
			br:      bufio.NewReader(bytes.NewReader(data)),
			s:       session{size: 1 << 20, structured: structured, minBlock: 1, maxPayload: MaxRead, contexts: map[string]uint32{ContextBaseAllocation: 1, "qemu:dirty-bitmap:b": 2}},
			slots:   make(chan struct{}, 2),
			scratch: make([]byte, 4096),
			pending: make(map[uint64]*call),
		}
		rc := &call{req: read, buf: make([]byte, n), done: make(chan struct{})}
		sc := &call{req: status, ctxID: 1, done: make(chan struct{})}
		for _, cl := range []*call{rc, sc} {
			c.pending[cl.req.cookie] = cl
			c.slots <- struct{}{}
		}
		for c.readReply() == nil {
		}
		if isDone(sc) && sc.remote == nil {
			pos := int64(0)
			for i, e := range sc.extents {
				if e.Offset != pos || e.Length <= 0 || i > 0 && pos >= 65536 {
					t.Fatalf("block status accepted extent %d %+v after %d bytes", i, e, pos)
				}
				pos = e.End()
			}
			if pos == 0 {
				t.Fatal("block status accepted without an extent")
			}
		}
		if isDone(rc) && rc.remote == nil && rc.covered.total() != n && structured {
			t.Fatalf("read accepted with %d bytes", rc.covered.total())
		}
	})
}

func isDone(cl *call) bool {
	select {
	case <-cl.done:
		return true
	default:
		return false
	}
}

// FuzzClientHandshake feeds the server's side of a handshake to the client.
func FuzzClientHandshake(f *testing.F) {
	greet := be.AppendUint16(be.AppendUint64(be.AppendUint64(nil, magicNBD), magicIHaveOpt), flagFixedNewstyle|flagNoZeroes)
	sr := appendOptReply(nil, optStructuredReply, repAck, nil)
	meta := appendOptReply(nil, optSetMetaContext, repMetaContext, append(be.AppendUint32(nil, 7), ContextBaseAllocation...))
	meta = appendOptReply(meta, optSetMetaContext, repAck, nil)
	info := appendOptReply(nil, optGo, repInfo, be.AppendUint16(be.AppendUint64(be.AppendUint16(nil, infoExport), 1<<30), exportFlags))
	info = appendOptReply(info, optGo, repInfo, be.AppendUint32(be.AppendUint32(be.AppendUint32(be.AppendUint16(nil, infoBlockSize), 512), 4096), 1<<25))
	info = appendOptReply(info, optGo, repAck, nil)
	f.Add(join(greet, sr, meta, info))
	f.Add(join(greet, appendOptReply(nil, optStructuredReply, repErrUnsup, nil), appendOptReply(nil, optGo, repErrUnsup, nil),
		be.AppendUint16(be.AppendUint64(nil, 4096), 1)))
	f.Add(join(greet, sr, meta, appendOptReply(nil, optGo, repErrUnknown, []byte("no such export"))))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := clientConfig{export: "d", contexts: []string{ContextBaseAllocation, "qemu:dirty-bitmap:b"}}
		s, err := handshake(io.Discard, bufio.NewReader(bytes.NewReader(data)), cfg)
		if err != nil {
			return
		}
		if s.size < 0 || !isPowerOf2(s.minBlock) || s.minBlock > 1<<16 || s.maxPayload < s.minBlock {
			t.Fatalf("handshake accepted %+v", s)
		}
		for name := range s.contexts {
			if name != cfg.contexts[0] && name != cfg.contexts[1] {
				t.Fatalf("handshake granted %q, which was not asked for", name)
			}
		}
	})
}

// FuzzServerConn feeds a client's side of a whole connection to the server.
func FuzzServerConn(f *testing.F) {
	meta := be.AppendUint32(appendString(nil, "d"), 1)
	meta = appendString(meta, ContextBaseAllocation)
	seed := join(be.AppendUint32(nil, flagFixedNewstyle|flagNoZeroes),
		appendOption(nil, optList, nil),
		appendOption(nil, optStructuredReply, nil),
		appendOption(nil, optSetMetaContext, meta),
		appendOption(nil, optGo, be.AppendUint16(appendString(nil, "d"), 0)),
		request{typ: cmdRead, cookie: 1, off: 100, length: 5000}.encode(nil),
		request{typ: cmdBlockStatus, cookie: 2, off: 0, length: 65536}.encode(nil),
		request{typ: cmdWrite, cookie: 3, off: 0, length: 4}.encode(nil), []byte("abcd"),
		request{typ: cmdDisc}.encode(nil))
	f.Add(seed)
	f.Add(join(be.AppendUint32(nil, flagFixedNewstyle), appendOption(nil, optExportName, []byte("d")),
		request{typ: cmdRead, cookie: 1, off: 0, length: 65536}.encode(nil)))
	data := make([]byte, 65536)
	copy(data[8192:], "some data")
	srv := NewServer(map[string]Export{"d": &memExport{data: data}}, ServerOptions{MaxInFlight: 4})
	f.Fuzz(func(t *testing.T, in []byte) {
		c := newServerConn(srv, context.Background(), nopConn{Reader: bytes.NewReader(in)})
		c.serve()
	})
}

// nopConn is a net.Conn that reads from Reader and discards what is
// written to it.
type nopConn struct{ io.Reader }

func (nopConn) Write(p []byte) (int, error)        { return len(p), nil }
func (nopConn) Close() error                       { return nil }
func (nopConn) LocalAddr() net.Addr                { return &net.UnixAddr{Name: "fuzz", Net: "unix"} }
func (nopConn) RemoteAddr() net.Addr               { return &net.UnixAddr{Name: "fuzz", Net: "unix"} }
func (nopConn) SetDeadline(t time.Time) error      { return nil }
func (nopConn) SetReadDeadline(t time.Time) error  { return nil }
func (nopConn) SetWriteDeadline(t time.Time) error { return nil }

package nbd

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
)

// rawConn speaks the wire protocol directly, to send what Client never
// would.
type rawConn struct {
	t          *testing.T
	conn       net.Conn
	br         *bufio.Reader
	structured bool
	cookie     uint64
}

func rawDial(t *testing.T, sock string, cfg clientConfig) *rawConn {
	t.Helper()
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	br := bufio.NewReader(conn)
	s, err := handshake(conn, br, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &rawConn{t: t, conn: conn, br: br, structured: s.structured}
}

func (r *rawConn) send(typ, flags uint16, off uint64, length uint32, payload []byte) uint64 {
	r.cookie++
	b := request{typ: typ, flags: flags, cookie: r.cookie, off: off, length: length}.encode(nil)
	if _, err := r.conn.Write(append(b, payload...)); err != nil {
		r.t.Fatal(err)
	}
	return r.cookie
}

// reply reads the whole reply to cookie, a read of n bytes if it succeeds.
func (r *rawConn) reply(cookie uint64, n int) (Errno, []byte) {
	r.t.Helper()
	data := make([]byte, n)
	var errno Errno
	for {
		var h [20]byte
		if err := readFull(r.br, h[:16]); err != nil {
			r.t.Fatalf("read reply: %v", err)
		}
		if be.Uint32(h[:]) == magicSimple {
			if be.Uint64(h[8:]) != cookie {
				r.t.Fatalf("reply to cookie %d, want %d", be.Uint64(h[8:]), cookie)
			}
			if errno = Errno(be.Uint32(h[4:])); errno == 0 {
				_ = readFull(r.br, data)
			}
			return errno, data
		}
		_ = readFull(r.br, h[16:])
		flags, typ, length := be.Uint16(h[4:]), be.Uint16(h[6:]), be.Uint32(h[16:])
		if be.Uint64(h[8:]) != cookie {
			r.t.Fatalf("chunk for cookie %d, want %d", be.Uint64(h[8:]), cookie)
		}
		p := make([]byte, length)
		_ = readFull(r.br, p)
		switch {
		case typ == chunkOffsetData:
			copy(data[be.Uint64(p):], p[8:]) // the tests read at offset 0
		case typ&chunkErrorBit != 0:
			errno = Errno(be.Uint32(p))
		}
		if flags&replyFlagDone != 0 {
			return errno, data
		}
	}
}

func testExport() *memExport {
	data := make([]byte, 2<<20)
	for i := range data {
		data[i] = byte(i)
	}
	return &memExport{data: data}
}

func TestServerRefusesCommands(t *testing.T) {
	exp := testExport()
	sock := serve(t, NewServer(map[string]Export{"a": exp}, ServerOptions{Logf: logf(t)}))
	size := uint64(exp.Size())
	for _, structured := range []bool{true, false} {
		r := rawDial(t, sock, clientConfig{export: "a", simpleOnly: !structured})
		for _, tc := range []struct {
			name    string
			typ     uint16
			flags   uint16
			off     uint64
			length  uint32
			payload []byte
			want    Errno
		}{
			{"write", cmdWrite, 0, 0, 512, make([]byte, 512), EPERM},
			{"trim", cmdTrim, 0, 0, 4096, nil, EPERM},
			{"write zeroes", cmdWriteZeroes, 0, 0, 4096, nil, EPERM},
			{"flush", cmdFlush, 0, 0, 0, nil, EINVAL},
			{"cache", cmdCache, 0, 0, 4096, nil, EINVAL},
			{"unknown command", 99, 0, 0, 0, nil, EINVAL},
			{"huge read", cmdRead, 0, 0, 1<<32 - 1, nil, EOVERFLOW},
			{"read past the end", cmdRead, 0, size - 10, 20, nil, EINVAL},
			{"read at a huge offset", cmdRead, 0, 1<<64 - 1, 20, nil, EINVAL},
			{"read with don't fragment", cmdRead, cmdFlagDF, 0, 20, nil, EINVAL},
			{"block status without a context", cmdBlockStatus, 0, 0, 4096, nil, EINVAL},
			{"read of nothing", cmdRead, 0, 0, 0, nil, 0},
		} {
			cookie := r.send(tc.typ, tc.flags, tc.off, tc.length, tc.payload)
			if got, _ := r.reply(cookie, 0); got != tc.want {
				t.Errorf("structured %v, %s: error %d, want %d", structured, tc.name, got, tc.want)
			}
		}
		cookie := r.send(cmdRead, 0, 0, 3<<19, nil)
		if errno, data := r.reply(cookie, 3<<19); errno != 0 || !bytes.Equal(data, exp.data[:3<<19]) {
			t.Errorf("structured %v: read after refusals: error %d", structured, errno)
		}
	}
}

// TestServerDropsBadClients sends what breaks the protocol and checks that
// the server drops that connection only.
func TestServerDropsBadClients(t *testing.T) {
	exp := testExport()
	var mu sync.Mutex
	var logged []string
	srv := NewServer(map[string]Export{"a": exp}, ServerOptions{Logf: func(f string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		logged = append(logged, f)
	}})
	sock := serve(t, srv)
	good := dialUnix(t, sock, "a")
	greeting := be.AppendUint32(nil, flagFixedNewstyle|flagNoZeroes)
	for _, tc := range []struct {
		name  string
		cfg   *clientConfig // negotiate first, then send bytes
		bytes []byte
	}{
		{"garbage", nil, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
		{"unknown client flags", nil, be.AppendUint32(nil, 0x80)},
		{"bad option magic", nil, append(slices.Clone(greeting), bytes.Repeat([]byte{0xff}, 16)...)},
		{"huge option", nil, be.AppendUint32(be.AppendUint32(be.AppendUint64(slices.Clone(greeting), magicIHaveOpt), optGo), 1<<31)},
		{"export name unknown", nil, appendOption(slices.Clone(greeting), optExportName, []byte("zz"))},
		{"bad request magic", &clientConfig{export: "a"}, bytes.Repeat([]byte{0xee}, requestSize)},
		{"huge write", &clientConfig{export: "a"}, request{typ: cmdWrite, length: 1<<32 - 1}.encode(nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("unix", sock)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			br := bufio.NewReader(conn)
			if tc.cfg != nil {
				if _, err := handshake(conn, br, *tc.cfg); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := conn.Write(tc.bytes); err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, br); err != nil {
				t.Fatalf("the server did not close the connection cleanly: %v", err)
			}
			p := make([]byte, 4096)
			if _, err := good.ReadAt(context.Background(), p, 4096); err != nil || !bytes.Equal(p, exp.data[4096:8192]) {
				t.Fatalf("another client after the bad one: %v", err)
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if len(logged) != 7 {
		t.Errorf("the server logged %d dropped connections, want 7: %q", len(logged), logged)
	}
}

// TestServerNegotiation walks through the options a client may send before
// choosing an export.
func TestServerNegotiation(t *testing.T) {
	sock := serve(t, NewServer(map[string]Export{"b": testExport(), "a": &memExport{data: make([]byte, 4096)}}, ServerOptions{}))
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	if err := readFull(br, make([]byte, 18)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(be.AppendUint32(nil, flagFixedNewstyle|flagNoZeroes)); err != nil {
		t.Fatal(err)
	}
	h := &clientHandshake{w: conn, r: br, noZeroes: true}
	meta := func(export string, queries ...string) []byte {
		b := be.AppendUint32(appendString(nil, export), uint32(len(queries)))
		for _, q := range queries {
			b = appendString(b, q)
		}
		return b
	}
	info := func(export string) []byte { return be.AppendUint16(appendString(nil, export), 0) }
	type reply struct {
		typ  uint32
		data string
	}
	exportInfo := string(be.AppendUint16(be.AppendUint64(be.AppendUint16(nil, infoExport), 4096), exportFlags))
	blockInfo := string(be.AppendUint32(be.AppendUint32(be.AppendUint32(be.AppendUint16(nil, infoBlockSize), 1), 4096), MaxRead))
	for _, tc := range []struct {
		name string
		opt  uint32
		data []byte
		want []reply // error replies are compared by type only
	}{
		{"list", optList, nil, []reply{{repServer, "\x00\x00\x00\x01a"}, {repServer, "\x00\x00\x00\x01b"}, {repAck, ""}}},
		{"list with data", optList, []byte{1}, []reply{{typ: repErrInvalid}}},
		{"set context before structured replies", optSetMetaContext, meta("a", ContextBaseAllocation), []reply{{typ: repErrInvalid}}},
		{"list contexts", optListMetaContext, meta("a"), []reply{{repMetaContext, "\x00\x00\x00\x00base:allocation"}, {repAck, ""}}},
		{"list base contexts", optListMetaContext, meta("a", "base:"), []reply{{repMetaContext, "\x00\x00\x00\x00base:allocation"}, {repAck, ""}}},
		{"list other contexts", optListMetaContext, meta("a", "qemu:"), []reply{{repAck, ""}}},
		{"list contexts of an unknown export", optListMetaContext, meta("zz"), []reply{{typ: repErrUnknown}}},
		{"malformed context list", optListMetaContext, meta("a", "base:")[:15], []reply{{typ: repErrInvalid}}},
		{"info", optInfo, info("a"), []reply{{repInfo, exportInfo}, {repInfo, blockInfo}, {repAck, ""}}},
		{"info unknown", optInfo, info("zz"), []reply{{typ: repErrUnknown}}},
		{"info malformed", optInfo, info("a")[:6], []reply{{typ: repErrInvalid}}},
		{"structured replies", optStructuredReply, nil, []reply{{repAck, ""}}},
		{"set context", optSetMetaContext, meta("a", "base:", ContextBaseAllocation, "qemu:dirty-bitmap:x"), []reply{{repMetaContext, "\x00\x00\x00\x01base:allocation"}, {repAck, ""}}},
		{"starttls", optStartTLS, nil, []reply{{typ: repErrUnsup}}},
		{"unknown option", 4242, []byte("xyz"), []reply{{typ: repErrUnsup}}},
		{"abort", optAbort, nil, []reply{{repAck, ""}}},
	} {
		if err := h.send(tc.opt, tc.data); err != nil {
			t.Fatal(err)
		}
		for _, w := range tc.want {
			typ, data, err := h.reply(tc.opt)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if typ != w.typ || typ&repFlagError == 0 && string(data) != w.data {
				t.Errorf("%s: reply %#x %q, want %#x %q", tc.name, typ, data, w.typ, w.data)
			}
		}
	}
	if n, err := io.Copy(io.Discard, br); n != 0 || err != nil {
		t.Errorf("after NBD_OPT_ABORT: %d bytes, %v", n, err)
	}
}

// TestServerExportName enters transmission with the old NBD_OPT_EXPORT_NAME.
func TestServerExportName(t *testing.T) {
	exp := testExport()
	sock := serve(t, NewServer(map[string]Export{"a": exp}, ServerOptions{}))
	for _, noZeroes := range []bool{true, false} {
		conn, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(conn)
		if err := readFull(br, make([]byte, 18)); err != nil {
			t.Fatal(err)
		}
		flags := uint32(flagFixedNewstyle)
		if noZeroes {
			flags |= flagNoZeroes
		}
		if _, err := conn.Write(be.AppendUint32(nil, flags)); err != nil {
			t.Fatal(err)
		}
		h := &clientHandshake{w: conn, r: br, noZeroes: noZeroes}
		var s session
		if err := h.exportName("a", &s); err != nil || s.size != exp.Size() || s.flags != exportFlags {
			t.Fatalf("export name: %v, %+v", err, s)
		}
		c := startClient(conn, br, session{size: s.size, flags: s.flags, minBlock: 1, maxPayload: MaxRead})
		p := make([]byte, 100)
		if _, err := c.ReadAt(context.Background(), p, 1000); err != nil || !bytes.Equal(p, exp.data[1000:1100]) {
			t.Errorf("read: %v", err)
		}
		c.Close()
	}
}

func TestServerExportErrors(t *testing.T) {
	sock := serve(t, NewServer(map[string]Export{"a": failingExport{}}, ServerOptions{}))
	for _, simple := range []bool{false, true} {
		conn, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		c, err := newClient(context.Background(), conn, clientConfig{export: "a", contexts: []string{ContextBaseAllocation}, simpleOnly: simple})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.ReadAt(context.Background(), make([]byte, 4096), 0)
		var re *RemoteError
		if !errors.As(err, &re) || re.Errno != EIO || !simple && !strings.Contains(re.Message, "sector 7 unreadable") {
			t.Errorf("simple %v: read of a failing export: %v", simple, err)
		}
		if !simple {
			_, err = c.BlockStatus(context.Background(), 0, 4096, allocID)
			if !errors.Is(err, ENOSPC) {
				t.Errorf("block status of a failing export: %v", err)
			}
		}
		c.Close()
	}
}

type failingExport struct{}

func (failingExport) Size() int64 { return 1 << 20 }
func (failingExport) ReadAt(context.Context, []byte, int64) (int, error) {
	return 0, errors.New("sector 7 unreadable")
}
func (failingExport) Extents(context.Context, int64, int64) ([]Extent, error) {
	return nil, ENOSPC
}

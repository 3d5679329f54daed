package nbd

import (
	"bytes"
	"context"
	"errors"
	"net"
	"testing"
)

// forge writes the reply a scripted server sends to r.
type forge func(r request) []byte

// forgedClient returns a client of a server that negotiates as Server does
// (export "d" of 1 MiB, "base:allocation" with id allocID) and then answers
// every request with script.
func forgedClient(t *testing.T, script forge) *Client {
	t.Helper()
	cs, ss := net.Pipe()
	srv := NewServer(map[string]Export{"d": &memExport{data: make([]byte, 1<<20)}}, ServerOptions{})
	go func() {
		defer ss.Close()
		sc := newServerConn(srv, context.Background(), ss)
		if _, err := sc.negotiate(); err != nil {
			return
		}
		var hdr [requestSize]byte
		for readFull(sc.br, hdr[:]) == nil {
			r, err := decodeRequest(hdr[:])
			if err != nil || r.typ == cmdDisc {
				return
			}
			if _, err := ss.Write(script(r)); err != nil {
				return
			}
		}
	}()
	c, err := NewClient(context.Background(), cs, "d", ContextBaseAllocation)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func chunk(r request, flags, typ uint16, payload ...[]byte) []byte {
	n := 0
	for _, p := range payload {
		n += len(p)
	}
	b := appendChunkHeader(nil, chunkHeader{flags: flags, typ: typ, cookie: r.cookie, length: uint32(n)})
	for _, p := range payload {
		b = append(b, p...)
	}
	return b
}

func dataChunk(r request, flags uint16, off uint64, n int) []byte {
	return chunk(r, flags, chunkOffsetData, be.AppendUint64(nil, off), bytes.Repeat([]byte{0x5a}, n))
}

func holeChunk(r request, flags uint16, off uint64, n uint32) []byte {
	return chunk(r, flags, chunkOffsetHole, be.AppendUint32(be.AppendUint64(nil, off), n))
}

func statusChunk(r request, id uint32, extents ...uint32) []byte {
	p := be.AppendUint32(nil, id)
	for _, e := range extents {
		p = be.AppendUint32(p, e)
	}
	return chunk(r, replyFlagDone, chunkBlockStatus, p)
}

func errorChunk(r request, typ uint16, errno uint32, msg string, extra ...byte) []byte {
	p := be.AppendUint32(nil, errno)
	p = be.AppendUint16(p, uint16(len(msg)))
	return chunk(r, replyFlagDone, typ, append(append(p, msg...), extra...))
}

func join(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// The test read asks for 8192 bytes at 4096; the test block status for
// 65536 bytes at 0.
const forgedOff, forgedLen = 4096, 8192

func forgedRead(c *Client) error {
	_, err := c.ReadAt(context.Background(), make([]byte, forgedLen), forgedOff)
	return err
}

func forgedStatus(c *Client) error {
	_, err := c.BlockStatus(context.Background(), 0, 65536, allocID)
	return err
}

func TestClientRefusesForgedReplies(t *testing.T) {
	const done = replyFlagDone
	for _, tc := range []struct {
		name   string
		op     func(*Client) error
		script forge
	}{
		{"wrong cookie", forgedRead, func(r request) []byte {
			r.cookie++
			return chunk(r, done, chunkNone)
		}},
		{"bad magic", forgedRead, func(r request) []byte { return []byte("HTTP/1.1 200 OK\r\n\r\n") }},
		{"data before the request", forgedRead, func(r request) []byte { return dataChunk(r, done, forgedOff-1, forgedLen) }},
		{"data past the request", forgedRead, func(r request) []byte { return dataChunk(r, done, forgedOff+8, forgedLen) }},
		{"data longer than asked", forgedRead, func(r request) []byte { return dataChunk(r, done, forgedOff, forgedLen+1) }},
		{"overlapping data", forgedRead, func(r request) []byte {
			return join(dataChunk(r, 0, forgedOff, 4096), dataChunk(r, done, forgedOff+4095, 4097))
		}},
		{"done before all data", forgedRead, func(r request) []byte { return dataChunk(r, done, forgedOff, forgedLen-1) }},
		{"empty data chunk", forgedRead, func(r request) []byte { return dataChunk(r, done, forgedOff, 0) }},
		{"hole of no bytes", forgedRead, func(r request) []byte { return holeChunk(r, done, forgedOff, 0) }},
		{"hole past the request", forgedRead, func(r request) []byte { return holeChunk(r, done, forgedOff, forgedLen+1) }},
		{"hole chunk of wrong size", forgedRead, func(r request) []byte {
			return chunk(r, done, chunkOffsetHole, make([]byte, 16))
		}},
		{"huge data chunk", forgedRead, func(r request) []byte {
			return appendChunkHeader(nil, chunkHeader{flags: done, typ: chunkOffsetData, cookie: r.cookie, length: 1<<32 - 1})
		}},
		{"simple reply to a structured read", forgedRead, func(r request) []byte {
			return be.AppendUint64(be.AppendUint32(be.AppendUint32(nil, magicSimple), 0), r.cookie)
		}},
		{"none without done", forgedRead, func(r request) []byte { return chunk(r, 0, chunkNone) }},
		{"none with a payload", forgedRead, func(r request) []byte { return chunk(r, done, chunkNone, []byte{1}) }},
		{"unknown chunk type", forgedRead, func(r request) []byte { return chunk(r, done, 77, []byte{1, 2, 3}) }},
		{"block status chunk to a read", forgedRead, func(r request) []byte { return statusChunk(r, allocID, forgedLen, 0) }},
		{"error message longer than its chunk", forgedRead, func(r request) []byte {
			p := be.AppendUint16(be.AppendUint32(nil, uint32(EIO)), 100)
			return chunk(r, done, chunkError, p)
		}},
		{"huge error chunk", forgedRead, func(r request) []byte {
			return appendChunkHeader(nil, chunkHeader{flags: done, typ: chunkError, cookie: r.cookie, length: 1 << 31})
		}},
		{"error offset outside the request", forgedRead, func(r request) []byte {
			return errorChunk(r, chunkErrorOffset, uint32(EIO), "x", be.AppendUint64(nil, 1<<40)...)
		}},
		{"status for a context never granted", forgedStatus, func(r request) []byte { return statusChunk(r, 99, 65536, 0) }},
		{"status extent of no bytes", forgedStatus, func(r request) []byte { return statusChunk(r, allocID, 0, 0) }},
		{"status extents past the request", forgedStatus, func(r request) []byte {
			return statusChunk(r, allocID, 65536, 0, 4096, 3)
		}},
		{"status chunk twice", forgedStatus, func(r request) []byte {
			return join(chunk(r, 0, chunkBlockStatus, be.AppendUint32(be.AppendUint32(be.AppendUint32(nil, allocID), 512), 0)),
				statusChunk(r, allocID, 512, 0))
		}},
		{"status chunk of odd size", forgedStatus, func(r request) []byte {
			return chunk(r, done, chunkBlockStatus, make([]byte, 13))
		}},
		{"huge status chunk", forgedStatus, func(r request) []byte {
			return appendChunkHeader(nil, chunkHeader{flags: done, typ: chunkBlockStatus, cookie: r.cookie, length: 4 + 8*(maxExtents+1)})
		}},
		{"status reply without the context", forgedStatus, func(r request) []byte { return chunk(r, done, chunkNone) }},
		{"data chunk to a status request", forgedStatus, func(r request) []byte { return dataChunk(r, done, 0, 16) }},
		{"simple success to a status request", forgedStatus, func(r request) []byte {
			return be.AppendUint64(be.AppendUint32(be.AppendUint32(nil, magicSimple), 0), r.cookie)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := forgedClient(t, tc.script)
			err := tc.op(c)
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("got %v, want a protocol error", err)
			}
			t.Log(err)
			if err := tc.op(c); !errors.Is(err, ErrProtocol) {
				t.Errorf("the next request: %v, want the connection's protocol error", err)
			}
		})
	}
}

// TestClientAcceptsLegalReplies covers replies a server may send that are
// unusual but valid.
func TestClientAcceptsLegalReplies(t *testing.T) {
	const done = replyFlagDone
	want := bytes.Repeat([]byte{0x5a}, forgedLen)
	clear(want[1000:5096])
	for _, tc := range []struct {
		name   string
		script forge
	}{
		{"out of order", func(r request) []byte {
			return join(dataChunk(r, 0, forgedOff+5096, 3096), dataChunk(r, 0, forgedOff, 1000),
				holeChunk(r, 0, forgedOff+1000, 4096), chunk(r, done, chunkNone))
		}},
		{"done on the last content chunk", func(r request) []byte {
			return join(dataChunk(r, 0, forgedOff, 1000), holeChunk(r, 0, forgedOff+1000, 4096),
				dataChunk(r, done, forgedOff+5096, 3096))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := forgedClient(t, tc.script)
			got := make([]byte, forgedLen)
			for i := range got {
				got[i] = 0xff
			}
			if _, err := c.ReadAt(context.Background(), got, forgedOff); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("read: %v, data right: %v", err, bytes.Equal(got, want))
			}
		})
	}
}

// TestClientRemoteErrors checks that an error the server reports fails
// one request and leaves the connection usable.
func TestClientRemoteErrors(t *testing.T) {
	calls := 0
	c := forgedClient(t, func(r request) []byte {
		calls++
		switch calls {
		case 1:
			return errorChunk(r, chunkError, uint32(EIO), "disk on fire")
		case 2:
			return errorChunk(r, chunkErrorOffset, uint32(EPERM), "", be.AppendUint64(nil, r.off+10)...)
		case 3:
			return errorChunk(r, chunkErrorBit|9, 0, "from the future")
		}
		return dataChunk(r, replyFlagDone, r.off, int(r.length))
	})
	var re *RemoteError
	err := forgedRead(c)
	if !errors.As(err, &re) || !errors.Is(err, EIO) || re.Message != "disk on fire" || re.Offset != -1 {
		t.Errorf("error chunk: %v", err)
	}
	err = forgedRead(c)
	if !errors.As(err, &re) || !errors.Is(err, EPERM) || re.Offset != forgedOff+10 {
		t.Errorf("error offset chunk: %v", err)
	}
	if err := forgedRead(c); !errors.Is(err, EINVAL) {
		t.Errorf("unknown error chunk with error 0: %v", err)
	}
	if err := forgedRead(c); err != nil {
		t.Errorf("read after errors: %v", err)
	}
}

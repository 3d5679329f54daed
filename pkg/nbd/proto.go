package nbd

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Wire constants of the NBD protocol (doc/proto.md of the reference
// implementation). Everything on the wire is big-endian.
const (
	magicNBD       = 0x4e42444d41474943 // "NBDMAGIC"
	magicIHaveOpt  = 0x49484156454f5054 // "IHAVEOPT"
	magicOldstyle  = 0x00420281861253   // cliserv_magic, oldstyle servers
	magicOptReply  = 0x3e889045565a9
	magicRequest   = 0x25609513
	magicSimple    = 0x67446698
	magicStructure = 0x668e33ef
)

// Handshake and client flags.
const (
	flagFixedNewstyle = 1 << 0
	flagNoZeroes      = 1 << 1
)

// Transmission flags.
const (
	flagHasFlags     = 1 << 0
	flagReadOnly     = 1 << 1
	flagCanMultiConn = 1 << 8
)

// Options.
const (
	optExportName      = 1
	optAbort           = 2
	optList            = 3
	optStartTLS        = 5
	optInfo            = 6
	optGo              = 7
	optStructuredReply = 8
	optListMetaContext = 9
	optSetMetaContext  = 10
)

// Option replies.
const (
	repAck         = 1
	repServer      = 2
	repInfo        = 3
	repMetaContext = 4
	repFlagError   = 1 << 31

	repErrUnsup    = repFlagError | 1
	repErrPolicy   = repFlagError | 2
	repErrInvalid  = repFlagError | 3
	repErrPlatform = repFlagError | 4
	repErrTLSReqd  = repFlagError | 5
	repErrUnknown  = repFlagError | 6
	repErrShutdown = repFlagError | 7
	repErrBlockReq = repFlagError | 8
	repErrTooBig   = repFlagError | 9
)

// Information types in NBD_REP_INFO.
const (
	infoExport    = 0
	infoBlockSize = 3
)

// Commands and command flags.
const (
	cmdRead        = 0
	cmdWrite       = 1
	cmdDisc        = 2
	cmdFlush       = 3
	cmdTrim        = 4
	cmdCache       = 5
	cmdWriteZeroes = 6
	cmdBlockStatus = 7

	cmdFlagFUA    = 1 << 0
	cmdFlagDF     = 1 << 2
	cmdFlagReqOne = 1 << 3
)

// Structured reply chunk types and flags.
const (
	replyFlagDone = 1 << 0

	chunkNone        = 0
	chunkOffsetData  = 1
	chunkOffsetHole  = 2
	chunkBlockStatus = 5
	chunkErrorBit    = 1 << 15
	chunkError       = chunkErrorBit | 1
	chunkErrorOffset = chunkErrorBit | 2
)

// Sizes of fixed messages.
const (
	requestSize     = 28 // magic, flags, type, cookie, offset, length
	optHdrSize      = 16 // IHAVEOPT, option, length
	optReplyHdrSize = 20 // magic, option, type, length
)

// Limits this package enforces on peers.
const (
	// MaxRead is the largest payload of one NBD_CMD_READ this package sends
	// or serves: 32 MiB, the size every NBD implementation must accept.
	// Client.ReadAt splits longer reads.
	MaxRead = 32 << 20

	// maxString is the protocol's limit on export names, context names and
	// error messages.
	maxString = 4096
	// maxOptionData bounds the data of one option, or one option reply, that
	// either side reads into memory.
	maxOptionData = 64 << 10
	// maxExtents bounds the descriptors of one block status chunk the client
	// accepts (the protocol's own recommendation) and the server sends.
	maxExtents = 1 << 20
	// maxErrorChunk bounds the payload of an error chunk the client reads.
	maxErrorChunk = maxOptionData
)

var be = binary.BigEndian

// request is a transmission request header.
type request struct {
	flags  uint16
	typ    uint16
	cookie uint64
	off    uint64
	length uint32
}

func (r request) encode(b []byte) []byte {
	b = be.AppendUint32(b, magicRequest)
	b = be.AppendUint16(b, r.flags)
	b = be.AppendUint16(b, r.typ)
	b = be.AppendUint64(b, r.cookie)
	b = be.AppendUint64(b, r.off)
	return be.AppendUint32(b, r.length)
}

func decodeRequest(b []byte) (request, error) {
	if m := be.Uint32(b); m != magicRequest {
		return request{}, fmt.Errorf("%w: request magic %#x", ErrProtocol, m)
	}
	return request{
		flags:  be.Uint16(b[4:]),
		typ:    be.Uint16(b[6:]),
		cookie: be.Uint64(b[8:]),
		off:    be.Uint64(b[16:]),
		length: be.Uint32(b[24:]),
	}, nil
}

// chunkHeader is a structured reply chunk header, after its magic.
type chunkHeader struct {
	flags  uint16
	typ    uint16
	cookie uint64
	length uint32
}

func appendChunkHeader(b []byte, h chunkHeader) []byte {
	b = be.AppendUint32(b, magicStructure)
	b = be.AppendUint16(b, h.flags)
	b = be.AppendUint16(b, h.typ)
	b = be.AppendUint64(b, h.cookie)
	return be.AppendUint32(b, h.length)
}

func appendOption(b []byte, opt uint32, data []byte) []byte {
	b = be.AppendUint64(b, magicIHaveOpt)
	b = be.AppendUint32(b, opt)
	b = be.AppendUint32(b, uint32(len(data)))
	return append(b, data...)
}

func appendOptReply(b []byte, opt, typ uint32, data []byte) []byte {
	b = be.AppendUint64(b, magicOptReply)
	b = be.AppendUint32(b, opt)
	b = be.AppendUint32(b, typ)
	b = be.AppendUint32(b, uint32(len(data)))
	return append(b, data...)
}

// appendString appends a 32-bit length and the string.
func appendString(b []byte, s string) []byte {
	b = be.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// readFull reads exactly len(b) bytes: io.EOF if the peer closed before the
// first byte, io.ErrUnexpectedEOF if it closed inside.
func readFull(r io.Reader, b []byte) error {
	_, err := io.ReadFull(r, b)
	return err
}

// isPowerOf2 reports whether v is a power of two.
func isPowerOf2(v uint32) bool { return v != 0 && v&(v-1) == 0 }

// truncate cuts s to at most maxString bytes, the protocol's string limit.
func truncate(s string) string {
	if len(s) > maxString {
		return s[:maxString]
	}
	return s
}

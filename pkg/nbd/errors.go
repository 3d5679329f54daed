package nbd

import (
	"errors"
	"fmt"
)

// Sentinel errors. Errors returned by this package wrap them, so callers test
// with errors.Is.
var (
	// ErrProtocol means the peer broke the NBD protocol: a reply to a request
	// never sent, data outside the range asked for, a length beyond the
	// limits, a bad magic number. The connection is closed at once and every
	// request pending on it fails with this error.
	ErrProtocol = errors.New("nbd protocol violation")
	// ErrClosed means the client was closed, or its connection was lost.
	ErrClosed = errors.New("nbd connection closed")
	// ErrUnknownExport means the server has no export of the name asked for.
	ErrUnknownExport = errors.New("nbd export not found")
	// ErrUnsupported means the server does not support what was asked: an
	// option, fixed newstyle negotiation, or a command on this export.
	ErrUnsupported = errors.New("not supported by the nbd server")
	// ErrShutdown means the server is shutting down.
	ErrShutdown = errors.New("nbd server is shutting down")
)

// Errno is an error value of the NBD transmission phase, as a server sends it
// in a reply. Its values are those of the protocol, not of the local system.
type Errno uint32

// The error values the NBD protocol defines.
const (
	EPERM     Errno = 1
	EIO       Errno = 5
	ENOMEM    Errno = 12
	EINVAL    Errno = 22
	ENOSPC    Errno = 28
	EOVERFLOW Errno = 75
	ENOTSUP   Errno = 95
	ESHUTDOWN Errno = 108
)

var errnoText = map[Errno]string{
	EPERM:     "operation not permitted",
	EIO:       "input/output error",
	ENOMEM:    "cannot allocate memory",
	EINVAL:    "invalid argument",
	ENOSPC:    "no space left on device",
	EOVERFLOW: "value too large",
	ENOTSUP:   "operation not supported",
	ESHUTDOWN: "server is shutting down",
}

func (e Errno) Error() string {
	if s, ok := errnoText[e]; ok {
		return s
	}
	return fmt.Sprintf("nbd error %d", uint32(e))
}

// Is makes ESHUTDOWN match ErrShutdown.
func (e Errno) Is(target error) bool {
	return e == ESHUTDOWN && target == ErrShutdown
}

// RemoteError is an error the server reported for one request. The
// connection stays usable. It unwraps to its Errno, so
// errors.Is(err, nbd.EPERM) works.
type RemoteError struct {
	Errno   Errno
	Message string // the server's message, if it sent one
	// Offset is where the error happened, when the server said
	// (NBD_REPLY_TYPE_ERROR_OFFSET); -1 otherwise.
	Offset int64
}

func (e *RemoteError) Error() string {
	s := "nbd server: " + e.Errno.Error()
	if e.Offset >= 0 {
		s += fmt.Sprintf(" at offset %d", e.Offset)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

func (e *RemoteError) Unwrap() error { return e.Errno }

// OptionError is an error reply (NBD_REP_ERR_*) of the server to an option of
// the handshake. It unwraps to ErrUnknownExport, ErrUnsupported or
// ErrShutdown where the reply means one of those.
type OptionError struct {
	Option  uint32 // NBD_OPT_* the client sent
	Reply   uint32 // NBD_REP_ERR_* the server answered
	Message string // the server's message, if it sent one
}

var repErrText = map[uint32]string{
	repErrUnsup:    "unsupported option",
	repErrPolicy:   "forbidden by server policy",
	repErrInvalid:  "invalid option",
	repErrPlatform: "not available on the server's platform",
	repErrTLSReqd:  "TLS required",
	repErrUnknown:  "unknown export",
	repErrShutdown: "server shutting down",
	repErrBlockReq: "block size negotiation required",
	repErrTooBig:   "request too big",
}

var optionName = map[uint32]string{
	optExportName:      "NBD_OPT_EXPORT_NAME",
	optAbort:           "NBD_OPT_ABORT",
	optList:            "NBD_OPT_LIST",
	optStartTLS:        "NBD_OPT_STARTTLS",
	optInfo:            "NBD_OPT_INFO",
	optGo:              "NBD_OPT_GO",
	optStructuredReply: "NBD_OPT_STRUCTURED_REPLY",
	optListMetaContext: "NBD_OPT_LIST_META_CONTEXT",
	optSetMetaContext:  "NBD_OPT_SET_META_CONTEXT",
}

func (e *OptionError) Error() string {
	what, ok := repErrText[e.Reply]
	if !ok {
		what = fmt.Sprintf("error %#x", e.Reply)
	}
	opt, ok := optionName[e.Option]
	if !ok {
		opt = fmt.Sprintf("option %d", e.Option)
	}
	s := fmt.Sprintf("nbd server refused %s: %s", opt, what)
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

func (e *OptionError) Unwrap() error {
	switch e.Reply {
	case repErrUnknown:
		return ErrUnknownExport
	case repErrUnsup:
		return ErrUnsupported
	case repErrShutdown:
		return ErrShutdown
	}
	return nil
}

// protocolError returns an error wrapping ErrProtocol.
func protocolError(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrProtocol}, args...)...)
}

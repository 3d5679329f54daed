// Package httplimit bounds what a server can make an HTTP client wait for
// and read: the time of each attempt of a request, the time of a request
// with all its retries, and the size of answers.
//
// The time rule is one, whatever the server: an attempt (connecting,
// sending the request, waiting for the answer and reading its body) may take
// the timeout, DROPBACK_HTTP_TIMEOUT (30 s by default), plus one second for
// every 64 KiB it has moved so far in either direction. A server that
// accepts and never answers is thus given up on after the timeout; one that
// answers a byte at a time gains microseconds per byte and is given up on
// barely later; a large upload on a slow link keeps going as long as it
// moves at least 64 KiB/s. A request with its retries gets RetryFactor times
// as much.
//
// Answers are read up to a limit (16 MiB unless the request says otherwise
// through WithMaxBody); a body beyond it fails with a *TooLargeError, and
// the body of an error answer (status 400 and above) is cut, silently, at
// 64 KiB, since only its first words make a message.
package httplimit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dropback/dropback/internal/safetext"
)

const (
	// EnvTimeout names the variable that sets the timeout, a Go duration
	// such as "30s" or "2m".
	EnvTimeout = "DROPBACK_HTTP_TIMEOUT"
	// DefaultTimeout is the timeout when EnvTimeout is unset.
	DefaultTimeout = 30 * time.Second
	// MinRate is the rate, in bytes per second, that earns an attempt its
	// time beyond the timeout: one second per MinRate bytes moved.
	MinRate = 64 << 10
	// RetryFactor is how many timeouts a request gets with all its retries.
	RetryFactor = 4
	// DefaultMaxBody is the largest answer read unless a request says
	// otherwise.
	DefaultMaxBody = 16 << 20
	// MaxErrorBody is how much of an error answer's body is read.
	MaxErrorBody = 64 << 10
)

// Timeout reads EnvTimeout through getenv (nil means no environment): unset
// or empty means DefaultTimeout; anything else must be a positive Go
// duration.
func Timeout(getenv func(string) string) (time.Duration, error) {
	v := ""
	if getenv != nil {
		v = getenv(EnvTimeout)
	}
	if v == "" {
		return DefaultTimeout, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive duration such as 30s or 2m", EnvTimeout, safetext.Escape(safetext.Clip(v, 40)))
	}
	return d, nil
}

// TimeoutError is a request given up on because its time ran out.
type TimeoutError struct {
	Method string
	URL    string // redacted, without its query
	After  time.Duration
	// PerAttempt is set when After was the time of all the attempts of the
	// request: it is then the time of each.
	PerAttempt time.Duration
}

func (e *TimeoutError) Error() string {
	if e.PerAttempt > 0 {
		return fmt.Sprintf("%s %s: no complete answer within %s per attempt, %s in all (DROPBACK_HTTP_TIMEOUT)",
			e.Method, e.URL, e.PerAttempt, e.After)
	}
	return fmt.Sprintf("%s %s: no complete answer within %s (DROPBACK_HTTP_TIMEOUT)", e.Method, e.URL, e.After)
}

// Timeout reports true, as net.Error timeouts do.
func (e *TimeoutError) Timeout() bool { return true }

// TooLargeError is an answer whose body passed the limit.
type TooLargeError struct {
	Method string
	URL    string // redacted, without its query
	Limit  int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s %s: the answer is larger than %s; refusing to read more", e.Method, e.URL, size(e.Limit))
}

func size(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

type maxBodyKey struct{}

// WithMaxBody returns ctx with the body limit of the requests made with it:
// n bytes, or no limit when n < 0.
func WithMaxBody(ctx context.Context, n int64) context.Context {
	return context.WithValue(ctx, maxBodyKey{}, n)
}

// Transport is an http.RoundTripper that bounds each request it carries by
// the time rule of the package and its answer by the body limit. Bytes it
// moves also earn time for the Deadline, or the Transport, whose context
// the request was made with. It is safe for concurrent use.
type Transport struct {
	Next    http.RoundTripper // nil means http.DefaultTransport
	Timeout time.Duration     // 0 means DefaultTimeout
	// MaxBody is the body limit of answers to requests that set none; 0
	// means DefaultMaxBody, negative no limit.
	MaxBody int64
	// PerAttempt, when set, marks a transport that carries a request with
	// all its retries, each attempt of which has this time; it names both
	// in the *TimeoutError.
	PerAttempt time.Duration
}

var _ http.RoundTripper = (*Transport)(nil)

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	next := t.Next
	if next == nil {
		next = http.DefaultTransport
	}
	timeout := t.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	parent := req.Context()
	c := newClock(parent, timeout, TimeoutError{Method: req.Method, URL: plainURL(req.URL), PerAttempt: t.PerAttempt})
	out := req.WithContext(c.ctx)
	if req.Body != nil && req.Body != http.NoBody {
		out.Body = &countingBody{ReadCloser: req.Body, c: c}
	}
	resp, err := next.RoundTrip(out)
	if err != nil {
		err = c.explain(err)
		c.end()
		return nil, err
	}
	limit, cut := t.MaxBody, false
	if limit == 0 {
		limit = DefaultMaxBody
	}
	if v, ok := parent.Value(maxBodyKey{}).(int64); ok {
		limit = v
	}
	if resp.StatusCode >= 400 {
		limit, cut = MaxErrorBody, true
	}
	resp.Body = &limitedBody{rc: resp.Body, c: c, limit: limit, cut: cut}
	return resp, nil
}

// RetryBound is the time a request with all its retries gets: RetryFactor
// timeouts (each extended by what its attempts move, as any clock of the
// package is).
func RetryBound(timeout time.Duration) time.Duration {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return RetryFactor * timeout
}

// errTimedOut is the cause of a clock's cancellation.
var errTimedOut = errors.New("timed out")

type clockKey struct{}

// clock bounds a context by the time rule: it cancels the context once the
// time since start passes the budget plus one second per MinRate bytes
// moved. The bytes it is told of also go to the clock it is nested in.
type clock struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	parent context.Context
	up     *clock
	budget time.Duration
	moved  atomic.Int64
	err    TimeoutError
	once   sync.Once

	mu    sync.Mutex
	start time.Time
	timer *time.Timer
}

func newClock(parent context.Context, budget time.Duration, tmpl TimeoutError) *clock {
	ctx, cancel := context.WithCancelCause(parent)
	c := &clock{cancel: cancel, parent: parent, budget: budget, err: tmpl, start: time.Now()}
	c.up, _ = parent.Value(clockKey{}).(*clock)
	c.ctx = context.WithValue(ctx, clockKey{}, c)
	c.mu.Lock()
	c.timer = time.AfterFunc(budget, c.check)
	c.mu.Unlock()
	return c
}

// add counts n bytes moved.
func (c *clock) add(n int64) {
	for ; c != nil && n > 0; c = c.up {
		c.moved.Add(n)
	}
}

// allowed is the time the clock allows, given what was moved so far.
func (c *clock) allowed() time.Duration {
	return c.budget + time.Duration(c.moved.Load())*time.Second/MinRate
}

// check cancels the context if its time is up, or sets the timer again.
func (c *clock) check() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if left := c.allowed() - time.Since(c.start); left > 0 {
		c.timer.Reset(left)
		return
	}
	c.cancel(errTimedOut)
}

// pause stops the clock; restart gives it its whole budget again.
func (c *clock) pause() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.timer.Stop()
}

func (c *clock) restart() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.start = time.Now()
	c.moved.Store(0)
	c.timer.Reset(c.budget)
}

// end stops the clock and releases the context.
func (c *clock) end() {
	c.once.Do(func() {
		c.pause()
		c.cancel(context.Canceled)
	})
}

// explain returns a *TimeoutError for an error that came of the clock's
// time running out, and err otherwise: the parent's cancellation is the
// caller's to report.
func (c *clock) explain(err error) error {
	if err != nil && c.parent.Err() == nil && errors.Is(context.Cause(c.ctx), errTimedOut) {
		e := c.err
		e.After = c.budget + (time.Duration(c.moved.Load()) * time.Second / MinRate).Truncate(time.Second)
		return &e
	}
	return err
}

// plainURL is u for a message: redacted, without its query.
func plainURL(u *url.URL) string {
	c := *u
	c.RawQuery, c.Fragment, c.User = "", "", nil
	return safetext.URL(c.String())
}

// countingBody counts the bytes of a request body as they are sent.
type countingBody struct {
	io.ReadCloser
	c *clock
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.c.add(int64(n))
	return n, err
}

// limitedBody reads an answer within the attempt's time and the body
// limit, and ends the attempt when it is read or closed.
type limitedBody struct {
	rc    io.ReadCloser
	c     *clock
	limit int64 // < 0: none
	cut   bool  // end at the limit without an error
	n     int64
	err   error // sticky
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.limit >= 0 {
		left := b.limit - b.n
		if left <= 0 && b.cut {
			b.fail(io.EOF)
			return 0, io.EOF
		}
		if int64(len(p)) > left+1 {
			p = p[:left+1]
		}
	}
	n, err := b.rc.Read(p)
	b.n += int64(n)
	b.c.add(int64(n))
	if b.limit >= 0 && b.n > b.limit {
		n -= int(b.n - b.limit)
		b.n = b.limit
		if b.cut {
			err = io.EOF
		} else {
			err = &TooLargeError{Method: b.c.err.Method, URL: b.c.err.URL, Limit: b.limit}
		}
	}
	if err != nil {
		if err != io.EOF {
			err = b.c.explain(err)
		}
		b.fail(err)
	}
	return n, err
}

func (b *limitedBody) fail(err error) {
	b.err = err
	b.c.end()
}

func (b *limitedBody) Close() error {
	err := b.rc.Close()
	b.c.end()
	return err
}

// Deadline bounds an operation made of several requests or attempts (a
// client's retries, the pages of a listing) by the time rule: its context
// is cancelled when the time runs out, the bytes its requests move through
// a Transport earning time as they do for each attempt. The clock can be
// paused while the caller does work of its own, and restarted.
type Deadline struct{ c *clock }

// NewDeadline starts a deadline of RetryBound(timeout) for an operation
// under parent; method and rawURL name it in the *TimeoutError.
func NewDeadline(parent context.Context, timeout time.Duration, method, rawURL string) *Deadline {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Deadline{newClock(parent, RetryBound(timeout),
		TimeoutError{Method: method, URL: safetext.URL(rawURL), PerAttempt: timeout})}
}

// Context is the operation's context.
func (x *Deadline) Context() context.Context { return x.c.ctx }

// Pause stops the clock.
func (x *Deadline) Pause() { x.c.pause() }

// Restart gives the operation its whole time again, from now.
func (x *Deadline) Restart() { x.c.restart() }

// Stop ends the deadline and releases its context.
func (x *Deadline) Stop() { x.c.end() }

// Explain returns the *TimeoutError when err came after the deadline ran
// out (and the parent context is not done), and err otherwise.
func (x *Deadline) Explain(err error) error { return x.c.explain(err) }

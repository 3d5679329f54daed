package digitalocean

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/digitalocean/godo"

	"github.com/dropback/dropback/internal/httplimit"
	"github.com/dropback/dropback/internal/safetext"
	"github.com/dropback/dropback/pkg/provider"
)

// maxMessage bounds how much of a message from the API an error repeats.
const maxMessage = 300

// ErrUnexpectedAnswer means the API answered without what it promises (an
// image, a Droplet, an action), as a broken or hostile server would.
var ErrUnexpectedAnswer = errors.New("unexpected answer")

// AuthHint tells a user how to give dropback a working token.
const AuthHint = "authenticate with `dropback auth init` or set DIGITALOCEAN_ACCESS_TOKEN"

// APIError is an error answer from the DigitalOcean API. It quotes
// DigitalOcean's message and request ID, and unwraps to the provider sentinel
// that matches its status: ErrAuth for 401 and 403, ErrNotFound for 404,
// ErrInvalid for 400 and 422.
type APIError struct {
	Method    string
	Path      string
	Status    int
	Message   string
	RequestID string
	Attempts  int // attempts made, when the request was retried
}

// Error renders the error on one line. What came from the API (the
// message, the request ID, a path it redirected to) is clipped and has its
// control characters escaped.
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "DigitalOcean API: %s %s: %d %s", e.Method, printable(e.Path, 200), e.Status, http.StatusText(e.Status))
	if e.Message != "" && e.Message != http.StatusText(e.Status) {
		fmt.Fprintf(&b, ": %s", printable(e.Message, maxMessage))
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (request_id %s)", printable(e.RequestID, 80))
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, "; gave up after %d attempts", e.Attempts)
	}
	if e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden {
		fmt.Fprintf(&b, "; %s", AuthHint)
	}
	return b.String()
}

// Unwrap returns the provider sentinel that matches the status, or nil.
func (e *APIError) Unwrap() error {
	switch e.Status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return provider.ErrAuth
	case http.StatusNotFound:
		return provider.ErrNotFound
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		return provider.ErrInvalid
	}
	return nil
}

// printable is text from the API made fit for one line of a terminal:
// clipped to n runes, control characters escaped, URLs redacted.
func printable(s string, n int) string {
	return safetext.Escape(safetext.Redact(safetext.Clip(s, n)))
}

// unexpected is the error for an answer to resp's request that lacks what
// it should hold: missing says what.
func unexpected(resp *godo.Response, missing string) error {
	req := "answer"
	if resp != nil && resp.Response != nil && resp.Request != nil {
		req = resp.Request.Method + " " + printable(resp.Request.URL.Path, 200)
	}
	return fmt.Errorf("DigitalOcean API: %s: %w: %s", req, ErrUnexpectedAnswer, missing)
}

// apiErr turns an error from godo into one dropback speaks: an *APIError for
// an error answer, ErrInvalid for an argument godo refused, a
// *RedirectError, and a network or decoding error with its URL redacted and
// control characters escaped; the caller's cancellation as it is. The token
// is hidden from every message.
func (p *Provider) apiErr(err error) error {
	if err == nil {
		return nil
	}
	var er *godo.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		e := &APIError{
			Status:    er.Response.StatusCode,
			Message:   redact(er.Message, p.opts.Token),
			RequestID: er.RequestID,
			Attempts:  er.Attempts,
		}
		if req := er.Response.Request; req != nil {
			e.Method, e.Path = req.Method, req.URL.Path
		}
		return e
	}
	var ae *godo.ArgError
	if errors.As(err, &ae) {
		return fmt.Errorf("%w: %s", provider.ErrInvalid, ae.Error())
	}
	var re *RedirectError
	if errors.As(err, &re) {
		return re
	}
	var te *httplimit.TimeoutError
	var tl *httplimit.TooLargeError
	switch {
	case errors.As(err, &te):
		return &netError{msg: redact("DigitalOcean API: "+printable(te.Error(), 400), p.opts.Token), err: err}
	case errors.As(err, &tl):
		return &netError{msg: redact("DigitalOcean API: "+printable(tl.Error(), 400), p.opts.Token), err: err}
	}
	msg := redact(printable(err.Error(), 400), p.opts.Token)
	if msg == err.Error() {
		return err
	}
	return &netError{msg: msg, err: err}
}

// netError is an error with a message made safe to print, keeping the
// original's chain for errors.Is and errors.As.
type netError struct {
	msg string
	err error
}

func (e *netError) Error() string { return e.msg }
func (e *netError) Unwrap() error { return e.err }

// ActionErr returns an error wrapping provider.ErrActionFailed when a is an
// errored action, and nil otherwise. GetAction returns an errored action as
// data; a caller that waited for it uses this to fail.
func ActionErr(a *provider.Action) error {
	if a == nil || a.Status != provider.StatusErrored {
		return nil
	}
	msg := fmt.Sprintf("action %d (%s) on %s %d", a.ID, printable(a.Type, 40), printable(a.ResourceType, 40), a.ResourceID)
	if a.Error != "" {
		msg += ": " + printable(a.Error, maxMessage)
	}
	return fmt.Errorf("%s: %w", msg, provider.ErrActionFailed)
}

// unsupported builds the error for a verb DigitalOcean cannot do.
func (p *Provider) unsupported(verb, alternative string) error {
	return &provider.UnsupportedError{Verb: verb, Context: printable(p.opts.Context, 64), Alternative: alternative}
}

// checkID refuses, without a request, an ID the API cannot have: what names
// the kind of object ("backup", "action") in the message.
func checkID(what string, id int) error {
	if id < 1 {
		return fmt.Errorf("%s %d: %w: IDs are positive integers", what, id, provider.ErrInvalid)
	}
	return nil
}

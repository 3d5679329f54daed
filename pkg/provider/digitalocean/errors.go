package digitalocean

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/digitalocean/godo"

	"github.com/dropback/dropback/pkg/provider"
)

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

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "DigitalOcean API: %s %s: %d %s", e.Method, e.Path, e.Status, http.StatusText(e.Status))
	if e.Message != "" && e.Message != http.StatusText(e.Status) {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (request_id %s)", e.RequestID)
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

// apiErr turns an error from godo into one dropback speaks: an *APIError for
// an error answer, ErrInvalid for an argument godo refused, and anything else
// (network, context) as it is. token is hidden from the message.
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
	if strings.Contains(err.Error(), p.opts.Token) && p.opts.Token != "" {
		return errors.New(redact(err.Error(), p.opts.Token))
	}
	return err
}

// ActionErr returns an error wrapping provider.ErrActionFailed when a is an
// errored action, and nil otherwise. GetAction returns an errored action as
// data; a caller that waited for it uses this to fail.
func ActionErr(a *provider.Action) error {
	if a == nil || a.Status != provider.StatusErrored {
		return nil
	}
	msg := fmt.Sprintf("action %d (%s) on %s %d", a.ID, a.Type, a.ResourceType, a.ResourceID)
	if a.Error != "" {
		msg += ": " + a.Error
	}
	return fmt.Errorf("%s: %w", msg, provider.ErrActionFailed)
}

// unsupported builds the error for a verb DigitalOcean cannot do.
func (p *Provider) unsupported(verb, alternative string) error {
	return &provider.UnsupportedError{Verb: verb, Context: p.opts.Context, Alternative: alternative}
}

// checkID refuses, without a request, an ID the API cannot have: what names
// the kind of object ("backup", "action") in the message.
func checkID(what string, id int) error {
	if id < 1 {
		return fmt.Errorf("%s %d: %w: IDs are positive integers", what, id, provider.ErrInvalid)
	}
	return nil
}

// Package fakedo is an in-process fake of the DigitalOcean API, for tests.
//
// It serves the part of the API dropback speaks (Droplets, their backups,
// snapshots, backup policies and actions, images and image actions) from
// state held in memory, and validates every request and every response
// against the API's OpenAPI description, embedded from
// openapi/do-backups-api.yaml: the subset of DigitalOcean's official
// description that dropback speaks. A request to a route the description
// does not have, or one the fake does not serve, and any request or response
// that does not match its schema, fails the test through TB.Errorf and is
// answered with a DigitalOcean-shaped error.
//
// Faults can be injected (a 429 with Retry-After, persistent 5xx, 401), and
// actions complete after a set number of polls, or error. Every request is
// recorded, body included, for assertions.
package fakedo

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// TB is the part of testing.TB the fake uses.
type TB interface {
	Helper()
	Errorf(format string, args ...any)
	Cleanup(func())
}

// DefaultToken is the token the fake accepts unless told otherwise.
const DefaultToken = "dop_v1_fake0123456789abcdef0123456789abcdef0123456789abcdef01234567"

// Epoch is the fake's clock at start; it moves a minute per object created.
var Epoch = time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)

// Request is one request the fake received.
type Request struct {
	Method string
	Path   string
	Query  string
	Header http.Header
	Body   []byte
}

// Fault makes the fake answer matching requests with an error.
type Fault struct {
	Method     string // "" matches any method
	Path       string // "" matches any path, else the exact path ("/v2/droplets/123")
	Status     int
	RetryAfter string // the Retry-After header, if any
	Message    string // "" means the status text
	Times      int    // how many requests it answers; 0 means 1, < 0 means all of them
}

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	URL string

	t      TB
	srv    *httptest.Server
	router routers.Router
	ops    map[string]operation // the operations the fake serves, by ID

	mu       sync.Mutex
	token    string
	requests []Request
	failures []string
	faults   []*Fault
	nreq     int
	st       *state
}

// New starts a fake that accepts DefaultToken, loaded with the supported
// policies daily, weekly and a usage-based one, and no Droplets. It stops
// when the test ends.
func New(t TB) *Server {
	t.Helper()
	// A fake that cannot start stops the test at once, rather than let it
	// go on with a nil server.
	fail := func(format string, args ...any) *Server {
		t.Errorf(format, args...)
		if f, ok := t.(interface{ FailNow() }); ok {
			f.FailNow()
		}
		return nil
	}
	doc, err := loadSpec()
	if err != nil {
		return fail("fakedo: %v", err)
	}
	s := &Server{t: t, token: DefaultToken, st: newState(), ops: operations}
	s.srv = httptest.NewServer(s)
	s.URL = s.srv.URL
	doc.Servers = openapi3.Servers{{URL: s.URL}}
	if s.router, err = gorillamux.NewRouter(doc); err != nil {
		s.srv.Close()
		return fail("fakedo: route the API description: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// spec is the API description the fake validates against. See the header
// of openapi/do-backups-api.yaml for what it holds and how it differs from
// DigitalOcean's own.
//
//go:embed openapi/do-backups-api.yaml
var spec []byte

// loadSpec parses the embedded API description. Each call returns a new
// document, which the caller may change.
func loadSpec() (*openapi3.T, error) {
	doc, err := openapi3.NewLoader().LoadFromData(spec)
	if err != nil {
		return nil, fmt.Errorf("load the embedded API description: %w", err)
	}
	return doc, nil
}

// SetToken sets the token the fake accepts.
func (s *Server) SetToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token = token
}

// Inject adds a fault; faults are tried in the order they were added.
func (s *Server) Inject(f Fault) {
	if f.Times == 0 {
		f.Times = 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// Requests returns the requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Bodies returns the bodies of the requests received for method and path.
func (s *Server) Bodies(method, path string) []string {
	var out []string
	for _, r := range s.Requests() {
		if r.Method == method && r.Path == path {
			out = append(out, string(r.Body))
		}
	}
	return out
}

// ResetRequests forgets the requests received so far.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}

// Failures returns what the fake reported through Errorf.
func (s *Server) Failures() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.failures...)
}

func (s *Server) fail(format string, args ...any) {
	msg := fmt.Sprintf("fakedo: "+format, args...)
	s.mu.Lock()
	s.failures = append(s.failures, msg)
	s.mu.Unlock()
	s.t.Errorf("%s", msg)
}

// ServeHTTP routes, validates, answers and validates the answer.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	reqID := s.record(r, body)

	route, params, err := s.router.FindRoute(r)
	if err != nil {
		s.fail("%s %s: no such route in the API description: %v", r.Method, r.URL, err)
		s.write(w, errReply(http.StatusNotFound, "not_found", "The resource you were accessing could not be found."), reqID)
		return
	}
	in := &openapi3filter.RequestValidationInput{
		Request: r, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true},
	}
	if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
		s.fail("%s %s: request does not match the API description: %v\nbody: %s", r.Method, r.URL, err, body)
		s.write(w, errReply(http.StatusBadRequest, "bad_request", "request does not match the API description: "+err.Error()), reqID)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	rep := s.answer(r, route.Operation.OperationID, params, body)
	data, err := rep.encode()
	if err == nil {
		out := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: in, Status: rep.status, Header: rep.headers(),
			Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
		}
		err = openapi3filter.ValidateResponse(context.Background(), out.SetBodyBytes(data))
	}
	if err != nil {
		s.fail("%s %s: response %d does not match the API description: %v\nbody: %s", r.Method, r.URL, rep.status, err, data)
		rep = errReply(http.StatusInternalServerError, "server_error", "fakedo answered outside the API description")
	}
	s.write(w, rep, reqID)
}

// record stores a request and returns its request ID.
func (s *Server) record(r *http.Request, body []byte) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nreq++
	s.requests = append(s.requests, Request{
		Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: body,
	})
	return fmt.Sprintf("fake-req-%06d", s.nreq)
}

// answer checks the token and the faults, then runs the operation.
func (s *Server) answer(r *http.Request, op string, params map[string]string, body []byte) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+s.token {
		return errReply(http.StatusUnauthorized, "unauthorized", "Unable to authenticate you")
	}
	if f := s.takeFault(r); f != nil {
		msg := f.Message
		if msg == "" {
			msg = http.StatusText(f.Status)
		}
		rep := errReply(f.Status, errID(f.Status), msg)
		if f.RetryAfter != "" {
			rep.header = http.Header{"Retry-After": {f.RetryAfter}}
		}
		return rep
	}
	h, ok := s.ops[op]
	if !ok {
		s.mu.Unlock()
		s.fail("%s %s: operation %s is in the API description but fakedo does not serve it", r.Method, r.URL, op)
		s.mu.Lock()
		return errReply(http.StatusNotImplemented, "not_implemented", "fakedo does not serve "+op)
	}
	return h(s, &call{r: r, params: params, body: body})
}

func (s *Server) takeFault(r *http.Request) *Fault {
	for i, f := range s.faults {
		if (f.Method != "" && f.Method != r.Method) || (f.Path != "" && f.Path != r.URL.Path) {
			continue
		}
		if f.Times > 0 {
			f.Times--
			if f.Times == 0 {
				s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
			}
		}
		return f
	}
	return nil
}

func (s *Server) write(w http.ResponseWriter, rep reply, reqID string) {
	if rep.body != nil {
		if e, ok := rep.body.(apiError); ok {
			e.RequestID = reqID
			rep.body = e
		}
	}
	data, err := rep.encode()
	if err != nil {
		s.fail("encode response: %v", err)
	}
	for k, vs := range rep.headers() {
		w.Header()[k] = vs
	}
	w.Header().Set("X-Request-Id", reqID)
	w.WriteHeader(rep.status)
	w.Write(data)
}

// reply is an answer before it is written.
type reply struct {
	status int
	body   any // nil for no body
	header http.Header
}

func (r reply) encode() ([]byte, error) {
	if r.body == nil {
		return nil, nil
	}
	return json.Marshal(r.body)
}

// headers are the reply's headers plus the rate-limit ones DO always sends.
func (r reply) headers() http.Header {
	h := http.Header{}
	for k, vs := range r.header {
		h[k] = vs
	}
	if r.body != nil {
		h.Set("Content-Type", "application/json; charset=utf-8")
	}
	h.Set("Ratelimit-Limit", "5000")
	h.Set("Ratelimit-Remaining", "4999")
	h.Set("Ratelimit-Reset", strconv.FormatInt(Epoch.Add(time.Hour).Unix(), 10))
	return h
}

// apiError is DigitalOcean's error body.
type apiError struct {
	ID        string `json:"id"`
	Message   string `json:"message"`
	RequestID string `json:"request_id,omitempty"`
}

func errReply(status int, id, msg string) reply {
	return reply{status: status, body: apiError{ID: id, Message: msg}}
}

func errID(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusTooManyRequests:
		return "too_many_requests"
	case http.StatusUnprocessableEntity:
		return "unprocessable_entity"
	}
	if status >= 500 {
		return "server_error"
	}
	return "bad_request"
}

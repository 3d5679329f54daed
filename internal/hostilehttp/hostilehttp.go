// Package hostilehttp is an HTTP server for tests that misbehaves on
// purpose, the way a broken or malicious API or object store would: it
// redirects to other hosts, accepts a request and never answers, answers one
// byte at a time, answers null objects, or answers bodies of gigabytes.
//
// A Server answers each request with the first rule whose method and path
// match, in the order the rules were added; a request no rule matches goes
// to the backend given with Proxy (a well-behaved server, such as fakedo),
// or is answered 404. Every request is recorded with its headers, so a test
// can tell what reached the server (an Authorization header, say).
//
// Silent gives a bare TCP listener that accepts connections and never reads
// or writes a byte.
package hostilehttp

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Request is one request the server received.
type Request struct {
	Method string
	Path   string
	Query  string
	Host   string
	Header http.Header
}

// Answer writes the answer to one request. done closes when the server
// stops; an answer that waits must return when done closes or when the
// client goes away (r.Context()).
type Answer func(w http.ResponseWriter, r *http.Request, done <-chan struct{})

type rule struct {
	method, path string
	answer       Answer
}

// Server is a running hostile server. Its methods are safe for concurrent
// use.
type Server struct {
	// URL is http://127.0.0.1:port, without a trailing slash.
	URL string
	// Host is 127.0.0.1:port.
	Host string

	srv  *httptest.Server
	done chan struct{}
	sent atomic.Int64

	mu       sync.Mutex
	rules    []rule
	backend  http.Handler
	requests []Request
}

// New starts a server with no rules; it stops when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{done: make(chan struct{})}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	s.Host = s.srv.Listener.Addr().String()
	t.Cleanup(s.Close)
	return s
}

// Close stops the server: waiting answers return, then the server closes.
func (s *Server) Close() {
	s.mu.Lock()
	select {
	case <-s.done:
	default:
		close(s.done)
	}
	s.mu.Unlock()
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// On adds a rule: requests with this method ("" for any) and this path
// get answer a. The path is exact, or a prefix when it ends in "*"; ""
// matches any.
func (s *Server) On(method, path string, a Answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = append(s.rules, rule{method: method, path: path, answer: a})
}

// Proxy sends every request that no rule matches to the server at target,
// with the Host header rewritten to target's.
func (s *Server) Proxy(target string) error {
	u, err := url.Parse(target)
	if err != nil {
		return err
	}
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(u) }}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.backend = rp
	return nil
}

// Requests returns the requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Sent is how many body bytes the server's answers have written so far (Huge
// and Slow count theirs), to show how much of a huge answer a client read.
func (s *Server) Sent() int64 { return s.sent.Load() }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, Request{
		Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Host: r.Host, Header: r.Header.Clone(),
	})
	var answer Answer
	for _, ru := range s.rules {
		if (ru.method == "" || ru.method == r.Method) && pathMatches(ru.path, r.URL.Path) {
			answer = ru.answer
			break
		}
	}
	backend := s.backend
	s.mu.Unlock()
	switch {
	case answer != nil:
		answer(countingWriter{w, &s.sent}, r, s.done)
	case backend != nil:
		backend.ServeHTTP(w, r)
	default:
		JSON(http.StatusNotFound, `{"id":"not_found","message":"no such route"}`)(w, r, s.done)
	}
}

func pathMatches(pattern, path string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(path, prefix)
	}
	return pattern == "" || pattern == path
}

// WithHeader is a with the header k: v added.
func WithHeader(k, v string, a Answer) Answer {
	return func(w http.ResponseWriter, r *http.Request, done <-chan struct{}) {
		w.Header().Set(k, v)
		a(w, r, done)
	}
}

// countingWriter counts the body bytes an answer writes.
type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n.Add(int64(n))
	return n, err
}

func (c countingWriter) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// JSON answers status with body as application/json.
func JSON(status int, body string) Answer {
	return Body(status, "application/json; charset=utf-8", body)
}

// Body answers status with body of the given content type.
func Body(status int, contentType, body string) Answer {
	return func(w http.ResponseWriter, r *http.Request, _ <-chan struct{}) {
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// Redirect answers status (301, 302, 307, 308) with Location: location.
func Redirect(status int, location string) Answer {
	return func(w http.ResponseWriter, r *http.Request, _ <-chan struct{}) {
		w.Header().Set("Location", location)
		w.WriteHeader(status)
	}
}

// Hang reads the request and never answers, until the client gives up or
// the server stops.
func Hang() Answer {
	return func(w http.ResponseWriter, r *http.Request, done <-chan struct{}) {
		io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}
}

// Slow answers status and then body one byte at a time, every interval,
// until the body is out, the client gives up or the server stops.
func Slow(status int, contentType, body string, every time.Duration) Answer {
	return func(w http.ResponseWriter, r *http.Request, done <-chan struct{}) {
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for i := 0; i < len(body); i++ {
			if _, err := io.WriteString(w, body[i:i+1]); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-tick.C:
			case <-r.Context().Done():
				return
			case <-done:
				return
			}
		}
	}
}

// Huge answers status with a body of prefix followed by size bytes of
// fill, declared in Content-Length unless chunked is set. Writing stops
// when the client stops reading and goes away.
func Huge(status int, contentType, prefix string, fill byte, size int64, chunked bool) Answer {
	return func(w http.ResponseWriter, r *http.Request, done <-chan struct{}) {
		w.Header().Set("Content-Type", contentType)
		if !chunked {
			w.Header().Set("Content-Length", strconv.FormatInt(int64(len(prefix))+size, 10))
		}
		w.WriteHeader(status)
		if _, err := io.WriteString(w, prefix); err != nil {
			return
		}
		block := bytes.Repeat([]byte{fill}, 64<<10)
		for left := size; left > 0; {
			select {
			case <-r.Context().Done():
				return
			case <-done:
				return
			default:
			}
			n := min(left, int64(len(block)))
			if _, err := w.Write(block[:n]); err != nil {
				return
			}
			left -= n
		}
	}
}

// Silent listens on 127.0.0.1, accepts every connection and never reads or
// writes a byte; it returns host:port and stops when the test ends.
func Silent(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("hostilehttp: listen: %v", err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

package s3_test

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// proxy is a reverse proxy in front of MinIO that counts requests by kind
// and the most ranged GETs in flight at once, and lets a test step in
// before a request is forwarded. Signatures stay valid: the proxy forwards
// the Host header the client signed.
type proxy struct {
	URL string

	// before, if set, sees each request first; returning false means it
	// answered the request itself.
	before func(w http.ResponseWriter, r *http.Request) bool

	rp *httputil.ReverseProxy

	mu     sync.Mutex
	counts map[string]int

	inflight, maxInflight atomic.Int64
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{counts: map[string]int{}}
	p.rp = httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind := requestKind(r)
		p.mu.Lock()
		p.counts[kind]++
		if r.Header.Get("X-Amz-Trailer") != "" {
			p.counts["checksummed"]++
		}
		p.mu.Unlock()
		if kind == "GET range" {
			n := p.inflight.Add(1)
			defer p.inflight.Add(-1)
			for {
				m := p.maxInflight.Load()
				if n <= m || p.maxInflight.CompareAndSwap(m, n) {
					break
				}
			}
		}
		if p.before != nil && !p.before(w, r) {
			return
		}
		p.rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// requestKind names an S3 request: "PUT", "PUT part", "POST initiate",
// "POST complete", "GET range", "GET", "GET list", "HEAD", "DELETE".
func requestKind(r *http.Request) string {
	q := r.URL.Query()
	switch {
	case r.Method == http.MethodPut && q.Has("partNumber"):
		return "PUT part"
	case r.Method == http.MethodPost && q.Has("uploads"):
		return "POST initiate"
	case r.Method == http.MethodPost && q.Has("uploadId"):
		return "POST complete"
	case r.Method == http.MethodGet && (q.Has("list-type") || q.Has("prefix") || strings.Count(strings.Trim(r.URL.Path, "/"), "/") == 0):
		return "GET list"
	case r.Method == http.MethodGet && r.Header.Get("Range") != "":
		return "GET range"
	}
	return r.Method
}

// forward sends r on to MinIO.
func (p *proxy) forward(w http.ResponseWriter, r *http.Request) { p.rp.ServeHTTP(w, r) }

func (p *proxy) count(kind string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[kind]
}

func (p *proxy) reset() {
	p.mu.Lock()
	p.counts = map[string]int{}
	p.mu.Unlock()
	p.maxInflight.Store(0)
}

func (p *proxy) snapshot() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]int{}
	for k, v := range p.counts {
		out[k] = v
	}
	return out
}

// objectKey returns the bucket and key of a path-style request.
func objectKey(r *http.Request) (bucket, key string) {
	bucket, key, _ = strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	return bucket, key
}

package digitalocean

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dropback/dropback/internal/safetext"
)

// maxTraceBody is how much of a body the trace shows.
const maxTraceBody = 64 << 10

// redacted replaces secrets in traces and messages.
const redacted = "[REDACTED]"

// tracer is an http.RoundTripper that writes each request and response to w,
// with the Authorization header, any occurrence of the token and the
// credentials in URLs redacted, and control characters escaped.
type tracer struct {
	next  http.RoundTripper
	token string
	mu    sync.Mutex // serialises writes to w
	w     io.Writer
}

func newTracer(next http.RoundTripper, w io.Writer, token string) *tracer {
	return &tracer{next: next, w: w, token: strings.TrimSpace(token)}
}

// RoundTrip implements http.RoundTripper.
func (t *tracer) RoundTrip(req *http.Request) (*http.Response, error) {
	reqBody, err := drain(&req.Body)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	resp, err := t.next.RoundTrip(req)
	elapsed := time.Since(start).Round(time.Millisecond)

	var b strings.Builder
	fmt.Fprintf(&b, "> %s %s\n", req.Method, safetext.Escape(safetext.URL(req.URL.String())))
	writeHeaders(&b, "> ", req.Header)
	writeBody(&b, "> ", reqBody)
	if err != nil {
		fmt.Fprintf(&b, "< error after %s: %s\n", elapsed, safetext.Escape(safetext.Redact(err.Error())))
		t.write(b.String())
		return nil, err
	}
	respBody, rerr := drain(&resp.Body)
	fmt.Fprintf(&b, "< %s %s (%s)\n", resp.Proto, safetext.Escape(resp.Status), elapsed)
	writeHeaders(&b, "< ", resp.Header)
	writeBody(&b, "< ", respBody)
	t.write(b.String())
	if rerr != nil {
		resp.Body.Close()
		return nil, rerr
	}
	return resp, nil
}

func (t *tracer) write(s string) {
	s = redact(s, t.token)
	t.mu.Lock()
	defer t.mu.Unlock()
	io.WriteString(t.w, s+"\n")
}

// drain reads a body and puts back a reader over the same bytes.
func drain(body *io.ReadCloser) ([]byte, error) {
	if *body == nil || *body == http.NoBody {
		return nil, nil
	}
	data, err := io.ReadAll(*body)
	(*body).Close()
	*body = io.NopCloser(bytes.NewReader(data))
	return data, err
}

func writeHeaders(b *strings.Builder, prefix string, h http.Header) {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range h[k] {
			if strings.EqualFold(k, "Authorization") {
				v = redactAuthorization(v)
			}
			fmt.Fprintf(b, "%s%s: %s\n", prefix, safetext.Escape(k), safetext.Escape(safetext.Redact(v)))
		}
	}
}

func writeBody(b *strings.Builder, prefix string, body []byte) {
	if len(body) == 0 {
		return
	}
	b.WriteString(prefix + "\n")
	shown := body
	if len(shown) > maxTraceBody {
		shown = shown[:maxTraceBody]
	}
	for _, line := range strings.Split(strings.TrimRight(string(shown), "\n"), "\n") {
		b.WriteString(safetext.Escape(line) + "\n")
	}
	if len(shown) < len(body) {
		fmt.Fprintf(b, "%s… (%d bytes in all)\n", prefix, len(body))
	}
}

// redactAuthorization keeps an Authorization header's scheme and hides its
// credentials.
func redactAuthorization(v string) string {
	if scheme, _, ok := strings.Cut(v, " "); ok {
		return scheme + " " + redacted
	}
	return redacted
}

// redact hides every occurrence of token in s.
func redact(s, token string) string {
	if token == "" {
		return s
	}
	return strings.ReplaceAll(s, token, redacted)
}

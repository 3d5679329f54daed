package digitalocean

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dropback/dropback/internal/fakedo"
)

// env is a provider wired to a fake API.
type env struct {
	fake  *fakedo.Server
	p     *Provider
	trace *syncBuffer
}

// syncBuffer is a bytes.Buffer safe for the tracer's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newEnv starts a fake and a provider on it with millisecond retry waits.
func newEnv(t *testing.T, edit ...func(*Options)) *env {
	t.Helper()
	fake := fakedo.New(t)
	trace := &syncBuffer{}
	opts := Options{
		Token:        fakedo.DefaultToken,
		APIURL:       fake.URL, // no trailing slash: New adds it
		UserAgent:    "dropback/1.2.3",
		Trace:        trace,
		RetryWaitMin: time.Millisecond,
		RetryWaitMax: 5 * time.Millisecond,
	}
	for _, e := range edit {
		e(&opts)
	}
	p, err := New(context.Background(), opts)
	require.NoError(t, err)
	return &env{fake: fake, p: p, trace: trace}
}

// seed adds the Droplets most tests use: web-1 (123) with backups enabled
// and three backups, the last 1234, and db-1 (456) without backups.
func (e *env) seed() {
	e.fake.AddDroplet(fakedo.Droplet{ID: 123, Name: "web-1", BackupsEnabled: true,
		Policy: fakedo.Policy{Plan: "weekly", Weekday: "SUN", Hour: 8}})
	e.fake.AddDroplet(fakedo.Droplet{ID: 456, Name: "db-1", Region: "fra1"})
	e.fake.AddImage(fakedo.Image{ID: 1232, DropletID: 123, Type: "backup"})
	e.fake.AddImage(fakedo.Image{ID: 1233, DropletID: 123, Type: "backup"})
	e.fake.AddImage(fakedo.Image{ID: 1234, DropletID: 123, Type: "backup"})
	e.fake.AddImage(fakedo.Image{ID: 2001, DropletID: 123, Type: "snapshot"})
	e.fake.ResetRequests()
}

// sent lists the requests made since the last reset as "METHOD /path".
func (e *env) sent() []string {
	var out []string
	for _, r := range e.fake.Requests() {
		out = append(out, r.Method+" "+r.Path)
	}
	return out
}

// actionBodies returns the bodies posted as droplet actions to a Droplet.
func (e *env) actionBodies(dropletPath string) []string {
	return e.fake.Bodies(http.MethodPost, dropletPath+"/actions")
}

func ptr[T any](v T) *T { return &v }

// assertBodies checks request bodies against the JSON documents want, one
// for one. Documents compare as JSON: same members, same values, no extra
// fields.
func assertBodies(t *testing.T, got []string, want ...string) {
	t.Helper()
	require.Len(t, got, len(want), "bodies: %q", got)
	for i := range want {
		assert.JSONEq(t, want[i], got[i])
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

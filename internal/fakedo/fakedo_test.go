package fakedo

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recorder is a TB that keeps what the fake reports instead of failing.
type recorder struct {
	*testing.T
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recorder) reported() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errs...)
}

func do(t *testing.T, s *Server, method, path, token, body string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out map[string]any
	if len(data) > 0 {
		require.NoError(t, json.Unmarshal(data, &out), "body: %s", data)
	}
	return resp.StatusCode, resp.Header, out
}

func TestSpecPathHonoursEnv(t *testing.T) {
	p, err := SpecPath()
	require.NoError(t, err)
	dir := strings.TrimSuffix(p, "/do-api/do-backups-api.yaml")
	t.Setenv("DROPBACK_SHARED", dir)
	p2, err := SpecPath()
	require.NoError(t, err)
	assert.Equal(t, p, p2)
	t.Setenv("DROPBACK_SHARED", t.TempDir())
	_, err = SpecPath()
	assert.Error(t, err)
}

func TestUnknownRouteFailsTheTest(t *testing.T) {
	rec := &recorder{T: t}
	s := New(rec)
	status, _, body := do(t, s, http.MethodGet, "/v2/nothing/here", DefaultToken, "")
	assert.Equal(t, http.StatusNotFound, status)
	assert.Equal(t, "not_found", body["id"])
	assert.NotEmpty(t, body["request_id"])
	require.Len(t, rec.reported(), 1)
	assert.Contains(t, rec.reported()[0], "no such route")
}

func TestRouteTheFakeDoesNotServeFailsTheTest(t *testing.T) {
	rec := &recorder{T: t}
	s := New(rec)
	status, _, _ := do(t, s, http.MethodGet, "/v2/droplets/1/kernels", DefaultToken, "")
	assert.Equal(t, http.StatusNotImplemented, status)
	require.Len(t, rec.reported(), 1)
	assert.Contains(t, rec.reported()[0], "does not serve")
}

func TestInvalidRequestFailsTheTest(t *testing.T) {
	rec := &recorder{T: t}
	s := New(rec)
	s.AddDroplet(Droplet{ID: 123, Name: "web-1"})
	status, _, _ := do(t, s, http.MethodGet, "/v2/droplets?per_page=500", DefaultToken, "")
	assert.Equal(t, http.StatusBadRequest, status)
	status, _, _ = do(t, s, http.MethodPost, "/v2/droplets/123/actions", DefaultToken,
		`{"type":"enable_backups","backup_policy":{"plan":"weekly","weekday":"TUESDAY","hour":16}}`)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Len(t, rec.reported(), 2)
}

func TestAuth(t *testing.T) {
	s := New(t)
	status, _, body := do(t, s, http.MethodGet, "/v2/droplets", "wrong", "")
	assert.Equal(t, http.StatusUnauthorized, status)
	assert.Equal(t, "unauthorized", body["id"])
}

func TestPagingAndState(t *testing.T) {
	s := New(t)
	d := s.AddDroplet(Droplet{Name: "web-1", BackupsEnabled: true})
	s.AddBackups(d.ID, 45)
	status, _, body := do(t, s, http.MethodGet, fmt.Sprintf("/v2/droplets/%d/backups", d.ID), DefaultToken, "")
	require.Equal(t, http.StatusOK, status)
	assert.Len(t, body["backups"], 20)
	assert.EqualValues(t, 45, body["meta"].(map[string]any)["total"])
	next := body["links"].(map[string]any)["pages"].(map[string]any)["next"].(string)
	assert.Contains(t, next, "page=2")

	status, _, body = do(t, s, http.MethodGet, fmt.Sprintf("/v2/droplets/%d/backups?page=3&per_page=20", d.ID), DefaultToken, "")
	require.Equal(t, http.StatusOK, status)
	assert.Len(t, body["backups"], 5)
	assert.NotContains(t, body["links"].(map[string]any)["pages"], "next")
}

func TestFaultsAndActions(t *testing.T) {
	s := New(t)
	d := s.AddDroplet(Droplet{ID: 123, Name: "web-1"})
	s.Inject(Fault{Status: http.StatusTooManyRequests, RetryAfter: "1", Times: 1})
	status, h, _ := do(t, s, http.MethodGet, "/v2/droplets/123", DefaultToken, "")
	assert.Equal(t, http.StatusTooManyRequests, status)
	assert.Equal(t, "1", h.Get("Retry-After"))

	s.SetActionPolls(1)
	s.FailActions("enable_backups")
	status, _, body := do(t, s, http.MethodPost, "/v2/droplets/123/actions", DefaultToken,
		`{"type":"enable_backups","backup_policy":{"plan":"weekly","weekday":"TUE","hour":16}}`)
	require.Equal(t, http.StatusCreated, status, "%v", body)
	id := int(body["action"].(map[string]any)["id"].(float64))
	for _, want := range []string{"in-progress", "errored", "errored"} {
		_, _, body = do(t, s, http.MethodGet, fmt.Sprintf("/v2/actions/%d", id), DefaultToken, "")
		assert.Equal(t, want, body["action"].(map[string]any)["status"])
	}
	got, _ := s.Droplet(d.ID)
	assert.Equal(t, Policy{Plan: "weekly", Weekday: "TUE", Hour: 16}, got.Policy)
	assert.Equal(t, []string{`{"type":"enable_backups","backup_policy":{"plan":"weekly","weekday":"TUE","hour":16}}`},
		s.Bodies(http.MethodPost, "/v2/droplets/123/actions"))
}

package fakedo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
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

func TestEmbeddedSpecLoadsAndCoversTheFake(t *testing.T) {
	doc, err := loadSpec()
	require.NoError(t, err)
	require.NoError(t, doc.Validate(context.Background()), "the embedded description is not valid OpenAPI 3.0")

	described := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			require.NotEmpty(t, op.OperationID, "%s %s has no operationId", method, path)
			described[op.OperationID] = true
		}
	}
	for id := range operations {
		assert.True(t, described[id], "fakedo serves %s, which the embedded description lacks", id)
	}
	for id := range described {
		if operations[id] == nil {
			t.Logf("described, not served yet: %s", id)
		}
	}
}

func TestRouteTheFakeDoesNotServeFailsTheTest(t *testing.T) {
	rec := &recorder{T: t}
	s := New(rec)
	s.ops = maps.Clone(operations)
	delete(s.ops, "account_get")
	status, _, _ := do(t, s, http.MethodGet, "/v2/account", DefaultToken, "")
	assert.Equal(t, http.StatusNotImplemented, status)
	require.Len(t, rec.reported(), 1)
	assert.Contains(t, rec.reported()[0], "does not serve")
}

// TestRequestOutsideTheSpecIsRefused sends requests the API description
// does not allow; each is answered with an error and fails the test.
func TestRequestOutsideTheSpecIsRefused(t *testing.T) {
	tests := []struct {
		name, method, path, body string
		status                   int
		report                   string
	}{
		{"unknown route", http.MethodGet, "/v2/nothing/here", "", http.StatusNotFound, "no such route"},
		{"route outside the subset", http.MethodGet, "/v2/droplets/123/kernels", "", http.StatusNotFound, "no such route"},
		{"method the path lacks", http.MethodDelete, "/v2/actions/1", "", http.StatusNotFound, "no such route"},
		{"path ID not an integer", http.MethodGet, "/v2/droplets/web-1", "", http.StatusBadRequest, "request does not match"},
		{"per_page over its maximum", http.MethodGet, "/v2/droplets?per_page=500", "", http.StatusBadRequest, "request does not match"},
		{"action without a type", http.MethodPost, "/v2/droplets/123/actions", `{"image":1001}`, http.StatusBadRequest, "request does not match"},
		{"unknown action type", http.MethodPost, "/v2/droplets/123/actions", `{"type":"make_coffee"}`, http.StatusBadRequest, "request does not match"},
		{"hour of the wrong type", http.MethodPost, "/v2/droplets/123/actions",
			`{"type":"change_backup_policy","backup_policy":{"plan":"daily","hour":"4"}}`, http.StatusBadRequest, "request does not match"},
		{"hour outside its enum", http.MethodPost, "/v2/droplets/123/actions",
			`{"type":"change_backup_policy","backup_policy":{"plan":"daily","hour":5}}`, http.StatusBadRequest, "request does not match"},
		{"weekday outside its enum", http.MethodPost, "/v2/droplets/123/actions",
			`{"type":"enable_backups","backup_policy":{"plan":"weekly","weekday":"TUESDAY","hour":16}}`, http.StatusBadRequest, "request does not match"},
		{"policy change without a policy", http.MethodPost, "/v2/droplets/123/actions",
			`{"type":"change_backup_policy"}`, http.StatusBadRequest, "request does not match"},
		{"restore image of the wrong type", http.MethodPost, "/v2/droplets/123/actions",
			`{"type":"restore","image":"1001"}`, http.StatusBadRequest, "request does not match"},
		{"image action of an unknown type", http.MethodPost, "/v2/images/1001/actions", `{"type":"shrink"}`, http.StatusBadRequest, "request does not match"},
		{"body that is not JSON", http.MethodPost, "/v2/images/1001/actions", `type=convert`, http.StatusBadRequest, "request does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{T: t}
			s := New(rec)
			s.AddDroplet(Droplet{ID: 123, Name: "web-1", BackupsEnabled: true})
			s.AddImage(Image{ID: 1001, DropletID: 123})
			status, _, body := do(t, s, tt.method, tt.path, DefaultToken, tt.body)
			assert.Equal(t, tt.status, status, "%v", body)
			assert.NotEmpty(t, body["id"])
			assert.NotEmpty(t, body["request_id"])
			require.Len(t, rec.reported(), 1)
			assert.Contains(t, rec.reported()[0], tt.report)
		})
	}
}

// TestResponseOutsideTheSpecFailsTheTest makes the fake answer with a
// Droplet status the description does not have.
func TestResponseOutsideTheSpecFailsTheTest(t *testing.T) {
	rec := &recorder{T: t}
	s := New(rec)
	s.AddDroplet(Droplet{ID: 123, Name: "web-1", Status: "sleeping"})
	status, _, body := do(t, s, http.MethodGet, "/v2/droplets/123", DefaultToken, "")
	assert.Equal(t, http.StatusInternalServerError, status)
	assert.Equal(t, "server_error", body["id"])
	require.Len(t, rec.reported(), 1)
	assert.Contains(t, rec.reported()[0], "response 200 does not match")
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

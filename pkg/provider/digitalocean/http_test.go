package digitalocean

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dropback/dropback/internal/fakedo"
	"github.com/dropback/dropback/pkg/provider"
)

func TestRetryAfter429ThenSuccess(t *testing.T) {
	e := newEnv(t)
	e.seed()
	e.fake.Inject(fakedo.Fault{Path: "/v2/droplets/123", Status: http.StatusTooManyRequests, RetryAfter: "1", Times: 1})
	start := time.Now()
	h, err := e.p.GetHost(context.Background(), "123")
	require.NoError(t, err)
	assert.Equal(t, "web-1", h.Name)
	assert.GreaterOrEqual(t, time.Since(start), time.Second, "Retry-After: 1 is honoured")
	assert.Equal(t, []string{
		"GET /v2/droplets/123", // 429
		"GET /v2/droplets/123", // the one retry
		"GET /v2/droplets/123/backups/policy",
	}, e.sent())
	assert.Equal(t, 2, strings.Count(e.trace.String(), "> GET "+e.fake.URL+"/v2/droplets/123\n"), "the trace sees each attempt")
	assert.Contains(t, e.trace.String(), "429 Too Many Requests")
}

func TestPersistent500sEndInAClearError(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.RetryMax = 3 })
	e.seed()
	e.fake.Inject(fakedo.Fault{Status: http.StatusInternalServerError, Message: "Server was unable to give you a response.", Times: -1})
	_, err := e.p.ListHosts(context.Background())
	require.Error(t, err)
	msg := err.Error()
	assert.Contains(t, msg, "GET /v2/droplets")
	assert.Contains(t, msg, "500 Internal Server Error")
	assert.Contains(t, msg, "Server was unable to give you a response.")
	assert.Contains(t, msg, "request_id fake-req-")
	assert.Contains(t, msg, "gave up after 4 attempts")
	assert.Len(t, e.sent(), 4, "one try and three retries")
	var apiErr *APIError
	require.True(t, errors.As(err, &apiErr))
	assert.Equal(t, 500, apiErr.Status)
}

func TestDefaultRetriesAreGodos(t *testing.T) {
	max, wmin, wmax, err := retrySettings(Options{})
	require.NoError(t, err)
	assert.Equal(t, 4, max)
	assert.Equal(t, time.Second, wmin)
	assert.Equal(t, 30*time.Second, wmax)

	t.Setenv(EnvRetryMax, "2")
	t.Setenv(EnvRetryWaitMin, "10ms")
	t.Setenv(EnvRetryWaitMax, "20ms")
	max, wmin, wmax, err = retrySettings(Options{})
	require.NoError(t, err)
	assert.Equal(t, []any{2, 10 * time.Millisecond, 20 * time.Millisecond}, []any{max, wmin, wmax})
	max, _, _, err = retrySettings(Options{RetryMax: 7})
	require.NoError(t, err)
	assert.Equal(t, 7, max, "options win over the environment")
}

func TestNoRetries(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.RetryMax = -1 })
	e.seed()
	e.fake.Inject(fakedo.Fault{Status: http.StatusServiceUnavailable, Times: -1})
	_, err := e.p.GetHost(context.Background(), "123")
	require.Error(t, err)
	assert.Len(t, e.sent(), 1)
	assert.Contains(t, e.trace.String(), "503 Service Unavailable", "the trace works without retries too")
}

func TestUnauthorizedIsErrAuthWithAHint(t *testing.T) {
	e := newEnv(t)
	e.seed()
	e.fake.SetToken("another-token")
	_, err := e.p.ListBackups(context.Background(), "web-1")
	require.Error(t, err)
	assert.True(t, errors.Is(err, provider.ErrAuth), "%v", err)
	assert.Contains(t, err.Error(), "Unable to authenticate you")
	assert.Contains(t, err.Error(), "request_id fake-req-")
	assert.Contains(t, err.Error(), "dropback auth init")
	assert.Contains(t, err.Error(), "DIGITALOCEAN_ACCESS_TOKEN")
	assert.Len(t, e.sent(), 1, "a 401 is not retried")

	e.fake.SetToken(fakedo.DefaultToken)
	e.fake.Inject(fakedo.Fault{Status: http.StatusForbidden, Message: "You are not authorized to perform this operation", Times: 1})
	_, err = e.p.GetAction(context.Background(), 1)
	assert.True(t, errors.Is(err, provider.ErrAuth), "%v", err)
}

func TestTokenNeverAppearsInTraceOrErrors(t *testing.T) {
	e := newEnv(t)
	e.seed()
	ctx := context.Background()
	// An API that echoes the token back must not make dropback print it.
	e.fake.Inject(fakedo.Fault{Status: http.StatusUnprocessableEntity, Message: "bad token " + fakedo.DefaultToken, Times: 1})
	_, err := e.p.ConvertBackup(ctx, 1234)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), fakedo.DefaultToken)
	assert.Contains(t, err.Error(), "[REDACTED]")

	_, err = e.p.EnableBackups(ctx, "db-1", provider.PolicyRequest{Plan: ptr("weekly"), Weekday: ptr("TUE"), Hour: ptr(16)})
	require.NoError(t, err)
	e.fake.SetToken("another-token")
	_, err = e.p.ListHosts(ctx)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), fakedo.DefaultToken)

	trace := e.trace.String()
	assert.NotContains(t, trace, fakedo.DefaultToken)
	assert.Contains(t, trace, "Authorization: Bearer [REDACTED]")
	assert.Contains(t, trace, "> POST "+e.fake.URL+"/v2/droplets/456/actions")
	assert.Contains(t, trace, `"backup_policy":{"hour":16,"plan":"weekly","weekday":"TUE"}`)
	assert.Contains(t, trace, "< HTTP/1.1 201 Created")
	assert.Contains(t, trace, `"type":"enable_backups"`)
	assert.Contains(t, trace, "401 Unauthorized")
	for _, r := range e.fake.Requests() {
		if r.Header.Get("Authorization") == "Bearer "+fakedo.DefaultToken {
			return // the token did reach the API
		}
	}
	t.Error("the token was never sent")
}

func TestUserAgentAndBaseURL(t *testing.T) {
	for _, url := range []string{"", "/"} {
		var calls atomic.Int32
		e := newEnv(t, func(o *Options) {
			o.APIURL += url
			o.HTTPClient = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				calls.Add(1)
				return http.DefaultTransport.RoundTrip(r)
			})}
		})
		e.seed()
		_, err := e.p.SupportedPolicies(context.Background())
		require.NoError(t, err)
		reqs := e.fake.Requests()
		require.Len(t, reqs, 1)
		assert.True(t, strings.HasPrefix(reqs[0].Header.Get("User-Agent"), "dropback/1.2.3 "), reqs[0].Header.Get("User-Agent"))
		assert.Equal(t, "/v2/droplets/backups/supported_policies", reqs[0].Path)
		assert.EqualValues(t, 1, calls.Load(), "Options.HTTPClient's transport carries the requests")
	}
}

func TestBaseURL(t *testing.T) {
	for in, want := range map[string]string{
		"":                           DefaultAPIURL,
		"http://127.0.0.1:8080":      "http://127.0.0.1:8080/",
		"https://example.com/do/api": "https://example.com/do/api/",
		"https://example.com/":       "https://example.com/",
	} {
		got, err := baseURL(in)
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	_, err := New(context.Background(), Options{APIURL: "example.com"})
	assert.True(t, errors.Is(err, provider.ErrInvalid), "%v", err)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

package digitalocean

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dropback/dropback/internal/fakedo"
	"github.com/dropback/dropback/internal/hostilehttp"
	"github.com/dropback/dropback/internal/httplimit"
	"github.com/dropback/dropback/pkg/provider"
)

// hostileEnv is a provider whose API is a hostile server in front of a
// seeded fake: what the hostile server has no rule for, the fake answers.
type hostileEnv struct {
	*env
	api *hostilehttp.Server
}

func newHostileEnv(t *testing.T, edit ...func(*Options)) *hostileEnv {
	t.Helper()
	fake := newEnv(t)
	fake.seed()
	api := hostilehttp.New(t)
	require.NoError(t, api.Proxy(fake.fake.URL))
	e := newEnv(t, append([]func(*Options){func(o *Options) { o.APIURL = api.URL }}, edit...)...)
	e.fake = fake.fake
	return &hostileEnv{env: e, api: api}
}

func TestRedirectToAnotherHostIsRefused(t *testing.T) {
	for _, retryMax := range []int{0, -1} {
		for _, status := range []int{301, 302, 303, 307, 308} {
			other := hostilehttp.New(t)
			other.On("", "", hostilehttp.JSON(200, `{"droplets":[],"links":{},"meta":{"total":0}}`))
			api := hostilehttp.New(t)
			api.On("", "", hostilehttp.Redirect(status, other.URL+"/v2/droplets"))
			e := newEnv(t, func(o *Options) { o.APIURL, o.RetryMax = api.URL, retryMax })

			_, err := e.p.ListHosts(context.Background())
			var re *RedirectError
			require.True(t, errors.As(err, &re), "retries %d, %d: %v", retryMax, status, err)
			assert.Empty(t, other.Requests(), "retries %d, %d: a request reached the other host", retryMax, status)
			assert.Len(t, api.Requests(), 1, "a refused redirect is not retried")
			assert.Equal(t, "the API at "+origin(mustURL(api.URL))+" redirected to another host "+origin(mustURL(other.URL))+
				"; refusing to send the token there", err.Error())
		}
	}
}

func TestRedirectsStayOnTheAPIsOrigin(t *testing.T) {
	check := sameHostOnly(mustURL("https://api.digitalocean.com/"))
	via := []*http.Request{{URL: mustURL("https://api.digitalocean.com/v2/droplets")}}
	for to, ok := range map[string]bool{
		"https://api.digitalocean.com/v2/other":     true,
		"https://API.digitalocean.com:443/v2/other": true,
		"http://api.digitalocean.com/v2/droplets":   false, // the token in clear
		"https://api.digitalocean.com:8443/v2":      false,
		"https://evil.example/v2/droplets":          false,
		"https://api.digitalocean.com.evil.example": false,
	} {
		err := check(&http.Request{URL: mustURL(to)}, via)
		assert.Equal(t, ok, err == nil, "%s: %v", to, err)
	}
	long := make([]*http.Request, maxRedirects)
	assert.Error(t, check(&http.Request{URL: mustURL("https://api.digitalocean.com/v2")}, long))
}

func TestRedirectOnTheSameHostIsFollowed(t *testing.T) {
	for _, retryMax := range []int{0, -1} {
		e := newHostileEnv(t, func(o *Options) { o.RetryMax = retryMax })
		e.api.On("", "/v2/droplets/123", hostilehttp.Redirect(http.StatusTemporaryRedirect, "/v2/droplets/456"))
		h, err := e.p.GetHost(context.Background(), "123")
		require.NoError(t, err)
		assert.Equal(t, "db-1", h.Name, "the redirect was followed")
	}
}

func TestEachAttemptIsBoundedInTime(t *testing.T) {
	tests := []struct {
		name     string
		retryMax int
		call     func(p *Provider) error
		method   string
		attempts int
	}{
		{"GET, no retries", -1, func(p *Provider) error { _, err := p.ListHosts(context.Background()); return err }, http.MethodGet, 1},
		{"GET, retried", 2, func(p *Provider) error { _, err := p.ListHosts(context.Background()); return err }, http.MethodGet, 3},
		{"POST is not retried", 2, func(p *Provider) error {
			_, err := p.DisableBackups(context.Background(), "456", provider.DisableOptions{})
			return err
		}, http.MethodPost, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newHostileEnv(t, func(o *Options) { o.RetryMax, o.Timeout = tc.retryMax, 300*time.Millisecond })
			e.api.On(tc.method, "", hostilehttp.Hang())
			err := tc.call(e.p)
			var te *httplimit.TimeoutError
			require.True(t, errors.As(err, &te), "%v", err)
			assert.Contains(t, err.Error(), "DigitalOcean API: "+tc.method+" "+e.api.URL)
			// The last attempt ends by its own limit, or, on a machine slow
			// enough that the waits between attempts ate into it, by the
			// limit of all of them together: either says so.
			assert.Contains(t, err.Error(), "no complete answer within 300ms")
			assert.Contains(t, err.Error(), "(DROPBACK_HTTP_TIMEOUT)")
			n := 0
			for _, r := range e.api.Requests() {
				if r.Method == tc.method {
					n++
				}
			}
			assert.Equal(t, tc.attempts, n)
		})
	}
}

func TestRetryingIsBoundedAsAWhole(t *testing.T) {
	// A Retry-After of an hour would keep a retrying request waiting; the
	// request with its retries gets four timeouts.
	e := newHostileEnv(t, func(o *Options) { o.Timeout = 100 * time.Millisecond })
	e.api.On("", "", func(w http.ResponseWriter, r *http.Request, _ <-chan struct{}) {
		w.Header().Set("Retry-After", "3600")
		hostilehttp.JSON(http.StatusTooManyRequests, `{"id":"too_many_requests","message":"slow down"}`)(w, r, nil)
	})
	_, err := e.p.ListHosts(context.Background())
	var te *httplimit.TimeoutError
	require.True(t, errors.As(err, &te), "%v", err)
	assert.Equal(t, 100*time.Millisecond, te.PerAttempt)
	assert.Contains(t, err.Error(), "no complete answer within 100ms per attempt, 400ms in all")
	assert.Len(t, e.api.Requests(), 1, "the hour was not waited")
}

func TestTimeoutFromTheEnvironment(t *testing.T) {
	t.Setenv(httplimit.EnvTimeout, "250ms")
	e := newHostileEnv(t, func(o *Options) { o.RetryMax = -1 })
	e.api.On("", "", hostilehttp.Hang())
	_, err := e.p.ListHosts(context.Background())
	assert.ErrorContains(t, err, "within 250ms")

	t.Setenv(httplimit.EnvTimeout, "soon")
	_, err = New(context.Background(), Options{Token: "t"})
	assert.True(t, errors.Is(err, provider.ErrInvalid), "%v", err)
}

// TestNullAnswers feeds each verb an answer without the object it asks
// for: every one fails with ErrUnexpectedAnswer, none panics.
func TestNullAnswers(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name, method, path, body string
		call                     func(p *Provider) error
	}{
		{"get backup, null image", "GET", "/v2/images/1234", `{"image":null}`,
			func(p *Provider) error { _, err := p.GetBackup(ctx, 1234); return err }},
		{"get backup, no image", "GET", "/v2/images/1234", `{}`,
			func(p *Provider) error { _, err := p.GetBackup(ctx, 1234); return err }},
		{"list backups, no droplet", "GET", "/v2/droplets/123", `{"links":{}}`,
			func(p *Provider) error { _, err := p.ListBackups(ctx, "123"); return err }},
		{"list snapshots, null body", "GET", "/v2/droplets/123", `null`,
			func(p *Provider) error { _, err := p.ListSnapshots(ctx, "123"); return err }},
		{"get host, null droplet", "GET", "/v2/droplets/123", `{"droplet":null}`,
			func(p *Provider) error { _, err := p.GetHost(ctx, "123"); return err }},
		{"get policy, no policy", "GET", "/v2/droplets/123/backups/policy", `{}`,
			func(p *Provider) error { _, err := p.GetPolicy(ctx, "123"); return err }},
		{"set policy, no policy", "GET", "/v2/droplets/123/backups/policy", `{"policy":null}`,
			func(p *Provider) error {
				_, err := p.SetPolicy(ctx, "123", provider.PolicyRequest{Hour: ptr(20)})
				return err
			}},
		{"set policy, no action", "POST", "/v2/droplets/123/actions", `{"action":null}`,
			func(p *Provider) error {
				_, err := p.SetPolicy(ctx, "123", provider.PolicyRequest{Hour: ptr(20)})
				return err
			}},
		{"enable, no action", "POST", "/v2/droplets/456/actions", `{}`,
			func(p *Provider) error { _, err := p.EnableBackups(ctx, "456", provider.PolicyRequest{}); return err }},
		{"enable with policy, no action", "POST", "/v2/droplets/456/actions", `{"action":null}`,
			func(p *Provider) error {
				_, err := p.EnableBackups(ctx, "456", provider.PolicyRequest{Plan: ptr("daily"), Hour: ptr(4)})
				return err
			}},
		{"disable, no action", "POST", "/v2/droplets/456/actions", `{}`,
			func(p *Provider) error { _, err := p.DisableBackups(ctx, "456", provider.DisableOptions{}); return err }},
		{"convert, no action", "POST", "/v2/images/1234/actions", `{"action":null}`,
			func(p *Provider) error { _, err := p.ConvertBackup(ctx, 1234); return err }},
		{"get action, null", "GET", "/v2/actions/7", `{"action":null}`,
			func(p *Provider) error { _, err := p.GetAction(ctx, 7); return err }},
		{"restore in place, no action", "POST", "/v2/droplets/123/actions", `{}`,
			func(p *Provider) error {
				_, err := p.RestoreBackup(ctx, provider.RestoreRequest{Host: "123", Backup: "latest", Force: true})
				return err
			}},
		{"restore to new, no droplet", "POST", "/v2/droplets", `{"droplet":null,"links":{"actions":[{"id":5}]}}`,
			func(p *Provider) error {
				_, err := p.RestoreBackup(ctx, provider.RestoreRequest{Host: "123", Backup: "1234", ToNew: "copy", Size: "s-1vcpu-1gb", Region: "nyc3"})
				return err
			}},
		{"restore to new, no create action", "GET", "/v2/actions/5", `{"action":null}`,
			func(p *Provider) error {
				_, err := p.RestoreBackup(ctx, provider.RestoreRequest{Host: "123", Backup: "1234", ToNew: "copy", Size: "s-1vcpu-1gb", Region: "nyc3"})
				return err
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newHostileEnv(t)
			e.api.On(tc.method, tc.path, hostilehttp.JSON(200, tc.body))
			// A created Droplet whose create action is action 5.
			e.api.On("POST", "/v2/droplets", hostilehttp.JSON(202,
				`{"droplet":{"id":99,"name":"copy"},"links":{"actions":[{"id":5,"rel":"create"}]}}`))
			err := tc.call(e.p)
			require.True(t, errors.Is(err, ErrUnexpectedAnswer), "%v", err)
			assert.Contains(t, err.Error(), tc.method+" "+tc.path+": unexpected answer")
			var hit bool
			for _, r := range e.api.Requests() {
				hit = hit || (r.Method == tc.method && r.Path == tc.path)
			}
			assert.True(t, hit, "the hostile answer was given")
		})
	}
}

// TestNullsInLists shows that lists with null entries or null members read
// as empty, without a panic.
func TestNullsInLists(t *testing.T) {
	ctx := context.Background()
	e := newHostileEnv(t)
	e.api.On("GET", "/v2/droplets", hostilehttp.JSON(200, `{"droplets":[null,{"id":9,"name":"n","region":null,"next_backup_window":null}],"links":null,"meta":null}`))
	e.api.On("GET", "/v2/droplets/backups/policies", hostilehttp.JSON(200, `{"policies":{"9":null,"10":{"backup_policy":null}}}`))
	e.api.On("GET", "/v2/droplets/backups/supported_policies", hostilehttp.JSON(200, `{"supported_policies":[null]}`))
	e.api.On("GET", "/v2/actions", hostilehttp.JSON(200, `{"actions":[null,{"id":3,"region":null,"started_at":null}]}`))
	e.api.On("GET", "/v2/droplets/9/backups", hostilehttp.JSON(200, `{"backups":null}`))
	hosts, err := e.p.ListHosts(ctx)
	require.NoError(t, err)
	require.Len(t, hosts, 1, "a Droplet without an ID is left out")
	assert.Equal(t, 9, hosts[0].ID)
	_, err = e.p.ListPolicies(ctx)
	require.NoError(t, err)
	sps, err := e.p.SupportedPolicies(ctx)
	require.NoError(t, err)
	assert.Empty(t, sps)
	actions, err := e.p.ListActions(ctx)
	require.NoError(t, err)
	assert.Len(t, actions, 2)
	backups, err := e.p.ListBackups(ctx, "")
	require.NoError(t, err)
	assert.Empty(t, backups)
}

func TestHugeAnswersAreNotReadWhole(t *testing.T) {
	const gib = 1 << 30
	for _, tc := range []struct {
		name   string
		answer hostilehttp.Answer
		want   string
	}{
		{"json", hostilehttp.Huge(200, "application/json", `{"droplets":[{"name":"`, 'a', 4*gib, false),
			"the answer is larger than 16 MiB; refusing to read more"},
		{"chunked", hostilehttp.Huge(200, "application/json", `{"droplets":[{"name":"`, 'a', 4*gib, true),
			"the answer is larger than 16 MiB; refusing to read more"},
		{"error body", hostilehttp.Huge(500, "text/plain", "", 'e', 4*gib, false),
			"500 Internal Server Error: eeeeeeeeee"},
	} {
		for _, retryMax := range []int{0, -1} {
			e := newHostileEnv(t, func(o *Options) { o.RetryMax = retryMax })
			e.api.On("GET", "/v2/droplets", tc.answer)
			_, err := e.p.ListHosts(context.Background())
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want, tc.name)
			assert.Less(t, len(err.Error()), 600, "%s: the message stays short", tc.name)
			assert.Less(t, e.api.Sent(), int64(5*(16<<20+16<<20)), "%s: at most the limit was read, per attempt", tc.name)
		}
	}
}

func TestTextFromTheAPIIsEscaped(t *testing.T) {
	e := newHostileEnv(t)
	e.api.On("", "/v2/droplets/123", hostilehttp.JSON(422,
		`{"id":"unprocessable_entity","message":"bad\u001b]0;owned\u0007\r\nError: forged \u202e","request_id":"r\u001b[2J"}`))
	_, err := e.p.GetHost(context.Background(), "123")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `bad\x1b]0;owned\a\r\nError: forged \u202e`)
	assert.Contains(t, err.Error(), `request_id r\x1b[2J`)
	assert.False(t, strings.ContainsAny(err.Error(), "\x1b\x07\r\n\u202e"), "%q", err)

	e.fake.AddDroplet(fakedo.Droplet{ID: 77, Name: "evil\x1b[31m", BackupsEnabled: true})
	e.fake.AddImage(fakedo.Image{ID: 7701, DropletID: 77, Type: "backup"})
	_, err = e.p.DisableBackups(context.Background(), "77", provider.DisableOptions{})
	require.True(t, errors.Is(err, provider.ErrConfirm), "%v", err)
	assert.Contains(t, err.Error(), `droplet evil\x1b[31m (77)`)
}

func TestTraceAndErrorsHideCredentialsInURLs(t *testing.T) {
	api := hostilehttp.New(t)
	api.On("", "", hostilehttp.JSON(200, `{"droplets":[],"links":{},"meta":{"total":0}}`))
	withCreds := strings.Replace(api.URL, "http://", "http://user-secret:pass-secret@", 1) + "/?access_token=query-secret"
	e := newEnv(t, func(o *Options) { o.APIURL = withCreds })
	_, err := e.p.ListHosts(context.Background())
	require.NoError(t, err)
	assert.NotContains(t, e.trace.String(), "-secret")
	assert.Contains(t, e.trace.String(), "> GET http://REDACTED@"+api.Host+"/")

	e = newEnv(t, func(o *Options) {
		o.APIURL, o.RetryMax = "http://user-secret:pass-secret@127.0.0.1:1/?key=query-secret", -1
	})
	_, err = e.p.ListHosts(context.Background())
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "-secret")
	assert.NotContains(t, e.trace.String(), "-secret")

	_, err = New(context.Background(), Options{APIURL: "ftp://tok-secret@example.com/?token=query-secret"})
	require.True(t, errors.Is(err, provider.ErrInvalid), "%v", err)
	assert.NotContains(t, err.Error(), "-secret")
	_, err = New(context.Background(), Options{APIURL: "tok-secret@example.com"})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "-secret")
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func TestARedirectLoopEndsAndIsNotRetried(t *testing.T) {
	api := hostilehttp.New(t)
	api.On("", "", hostilehttp.Redirect(http.StatusFound, "/v2/droplets"))
	e := newEnv(t, func(o *Options) { o.APIURL = api.URL })
	_, err := e.p.ListHosts(context.Background())
	require.ErrorContains(t, err, "stopped after 10 redirects")
	assert.Len(t, api.Requests(), maxRedirects, "one request and its redirects, not retried")
}

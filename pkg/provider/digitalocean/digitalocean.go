// Package digitalocean implements dropback's DigitalOcean contexts on the
// DigitalOcean API through godo. It has the capabilities of pkg/provider that
// DigitalOcean offers, and none of the engine's (repository, on-demand
// backups, verify, prune, scheduling).
//
// Hosts are Droplets, named by integer ID or by name. Backups and snapshots
// are DigitalOcean images. Asynchronous verbs (enable, disable, restore,
// convert, policy changes) return the action as DigitalOcean reported it,
// usually in progress; callers that want to wait poll GetAction.
//
// Requests are retried with exponential backoff on 429 and 5xx responses,
// honouring Retry-After, through godo's RetryConfig. Every attempt, and a
// request with all its retries, is bounded in time by the rule of
// internal/httplimit (DROPBACK_HTTP_TIMEOUT), and answers are read up to
// 16 MiB. The token goes only to the API's own host: a redirect to another
// host (or from https to http) is refused. A Provider is safe for
// concurrent use.
package digitalocean

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/digitalocean/godo"
	"github.com/hashicorp/go-retryablehttp"
	"golang.org/x/oauth2"

	"github.com/dropback/dropback/internal/httplimit"
	"github.com/dropback/dropback/internal/safetext"
	"github.com/dropback/dropback/pkg/provider"
)

// DefaultAPIURL is the DigitalOcean API's base URL.
const DefaultAPIURL = "https://api.digitalocean.com/"

// Retry defaults, as godo has them.
const (
	DefaultRetryMax     = 4
	DefaultRetryWaitMin = time.Second
	DefaultRetryWaitMax = 30 * time.Second
)

// Environment variables that override the retry defaults when the matching
// Options field is zero. They exist for tests that run the compiled binary
// against a fake API and must not wait seconds between attempts.
const (
	EnvRetryMax     = "DROPBACK_DO_RETRY_MAX"      // an integer; 0 keeps the default
	EnvRetryWaitMin = "DROPBACK_DO_RETRY_WAIT_MIN" // a Go duration, e.g. "10ms"
	EnvRetryWaitMax = "DROPBACK_DO_RETRY_WAIT_MAX" // a Go duration
)

// Options configure the DigitalOcean provider.
type Options struct {
	Context   string // context name, for messages; "" means "digitalocean"
	Token     string
	APIURL    string // "" means https://api.digitalocean.com/
	UserAgent string // e.g. "dropback/1.2.3"; godo's own agent is appended
	// Trace, when set, receives every request and response (each attempt of
	// a retried request) with the token redacted.
	Trace      io.Writer
	HTTPClient *http.Client // its Transport and Timeout are used; nil means defaults

	// Timeout bounds each attempt of a request by the rule of
	// internal/httplimit; 0 means $DROPBACK_HTTP_TIMEOUT, else 30 s.
	Timeout time.Duration

	// RetryMax is how many times a request that got a 429 or a 5xx is
	// retried; 0 means DefaultRetryMax, a negative value disables retries.
	RetryMax int
	// RetryWaitMin and RetryWaitMax bound the exponential backoff between
	// attempts; 0 means the defaults. A Retry-After header on a 429 or 503
	// is honoured as it is.
	RetryWaitMin time.Duration
	RetryWaitMax time.Duration
	// Retrying, if not nil, is called before each retry of a request,
	// with the retry's number (from 1) and the most there will be, so
	// that a user waiting on an API that does not answer is told.
	Retrying func(attempt, max int)
}

// Provider drives DigitalOcean Droplet Backups.
type Provider struct {
	opts   Options
	client *godo.Client
}

// The capabilities of a DigitalOcean context.
var (
	_ provider.Provider      = (*Provider)(nil)
	_ provider.Hosts         = (*Provider)(nil)
	_ provider.Backups       = (*Provider)(nil)
	_ provider.Policies      = (*Provider)(nil)
	_ provider.Snapshots     = (*Provider)(nil)
	_ provider.Actions       = (*Provider)(nil)
	_ provider.Account       = (*Provider)(nil)
	_ provider.TagPolicies   = (*Provider)(nil)
	_ provider.SnapshotTaker = (*Provider)(nil)
)

// New returns a provider for the account in opts. It sends no request: a bad
// token is reported by the first verb, as an error wrapping provider.ErrAuth.
func New(ctx context.Context, opts Options) (*Provider, error) {
	if opts.Context == "" {
		opts.Context = provider.ContextDigitalOcean
	}
	base, err := baseURL(opts.APIURL)
	if err != nil {
		return nil, err
	}
	opts.APIURL = base
	client, err := newClient(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("set up the DigitalOcean client: %w", err)
	}
	return &Provider{opts: opts, client: client}, nil
}

// Context is the name of the context this provider serves.
func (p *Provider) Context() string { return p.opts.Context }

// baseURL checks an API URL and gives it the trailing slash godo needs to
// resolve relative paths under it.
func baseURL(raw string) (string, error) {
	if raw == "" {
		return DefaultAPIURL, nil
	}
	if !strings.HasPrefix(raw, "http://") && !strings.HasPrefix(raw, "https://") {
		return "", fmt.Errorf("api url %s: %w: must start with http:// or https://",
			safetext.Escape(safetext.Clip(safetext.URL(raw), 100)), provider.ErrInvalid)
	}
	if !strings.HasSuffix(raw, "/") {
		raw += "/"
	}
	return raw, nil
}

// retrySettings resolves the retry options against the environment and the
// defaults.
func retrySettings(opts Options) (max int, waitMin, waitMax time.Duration, err error) {
	max, waitMin, waitMax = opts.RetryMax, opts.RetryWaitMin, opts.RetryWaitMax
	if v := os.Getenv(EnvRetryMax); max == 0 && v != "" {
		if max, err = strconv.Atoi(v); err != nil {
			return 0, 0, 0, fmt.Errorf("%s: %w", EnvRetryMax, err)
		}
	}
	for _, e := range []struct {
		name string
		d    *time.Duration
	}{{EnvRetryWaitMin, &waitMin}, {EnvRetryWaitMax, &waitMax}} {
		if v := os.Getenv(e.name); *e.d == 0 && v != "" {
			if *e.d, err = time.ParseDuration(v); err != nil {
				return 0, 0, 0, fmt.Errorf("%s: %w", e.name, err)
			}
		}
	}
	if max == 0 {
		max = DefaultRetryMax
	}
	if waitMin == 0 {
		waitMin = DefaultRetryWaitMin
	}
	if waitMax == 0 {
		waitMax = DefaultRetryWaitMax
	}
	if waitMax < waitMin {
		waitMax = waitMin
	}
	return max, waitMin, waitMax, nil
}

// newClient builds the godo client. From the network up: the base
// transport; httplimit, which bounds each attempt and its answer; the
// trace, which thus sees every attempt; godo's retries, if on, bounded as a
// whole by a second httplimit; oauth2, which adds the token. Both HTTP
// clients refuse redirects to another host.
func newClient(ctx context.Context, opts Options) (*godo.Client, error) {
	retryMax, waitMin, waitMax, err := retrySettings(opts)
	if err != nil {
		return nil, err
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		if timeout, err = httplimit.Timeout(os.Getenv); err != nil {
			return nil, fmt.Errorf("%w: %v", provider.ErrInvalid, err)
		}
	}
	var inner http.RoundTripper = http.DefaultTransport
	var clientTimeout time.Duration
	if opts.HTTPClient != nil {
		clientTimeout = opts.HTTPClient.Timeout
		if opts.HTTPClient.Transport != nil {
			inner = opts.HTTPClient.Transport
		}
	}
	inner = &httplimit.Transport{Next: inner, Timeout: timeout}
	if opts.Trace != nil {
		inner = newTracer(inner, opts.Trace, opts.Token)
	}
	api, err := url.Parse(opts.APIURL)
	if err != nil {
		return nil, fmt.Errorf("api url: %w: %v", provider.ErrInvalid, safetext.Redact(err.Error()))
	}
	ts := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: strings.TrimSpace(opts.Token)})
	base := &http.Client{Transport: inner, Timeout: clientTimeout, CheckRedirect: sameHostOnly(api)}
	oauthClient := oauth2.NewClient(context.WithValue(ctx, oauth2.HTTPClient, base), ts)
	oauthClient.Timeout = clientTimeout
	oauthClient.CheckRedirect = sameHostOnly(api)

	clientOpts := []godo.ClientOpt{godo.SetBaseURL(opts.APIURL)}
	if opts.UserAgent != "" {
		clientOpts = append(clientOpts, godo.SetUserAgent(opts.UserAgent))
	}
	if retryMax > 0 {
		clientOpts = append(clientOpts, godo.WithRetryAndBackoffs(godo.RetryConfig{
			RetryMax:     retryMax,
			RetryWaitMin: godo.PtrTo(waitMin.Seconds()),
			RetryWaitMax: godo.PtrTo(waitMax.Seconds()),
		}))
	}
	client, err := godo.New(oauthClient, clientOpts...)
	if err != nil {
		return nil, err
	}
	if retryMax > 0 {
		if err := useTransport(client, inner, clientTimeout, timeout, api); err != nil {
			return nil, err
		}
		if opts.Retrying != nil {
			onRetry(client, func(attempt int) { opts.Retrying(attempt, retryMax) })
		}
	}
	return client, nil
}

// useTransport puts rt under godo's retrying client, and bounds the
// retrying as a whole. godo builds that client from a fresh
// go-retryablehttp client, which drops the transport it was given: without
// this, neither Options.HTTPClient, the limits nor the trace would see a
// request.
func useTransport(client *godo.Client, rt http.RoundTripper, clientTimeout, timeout time.Duration, api *url.URL) error {
	outer, ok := client.HTTPClient.Transport.(*oauth2.Transport)
	if !ok {
		return errors.New("unexpected godo transport: not oauth2")
	}
	retrying, ok := outer.Base.(*retryablehttp.RoundTripper)
	if !ok || retrying.Client == nil || retrying.Client.HTTPClient == nil {
		return errors.New("unexpected godo transport: not retryablehttp")
	}
	retrying.Client.HTTPClient.Transport = rt
	retrying.Client.HTTPClient.Timeout = clientTimeout
	retrying.Client.HTTPClient.CheckRedirect = sameHostOnly(api)
	retrying.Client.CheckRetry = noRetryOnRefusal(retrying.Client.CheckRetry)
	outer.Base = &httplimit.Transport{Next: retrying, Timeout: httplimit.RetryBound(timeout), MaxBody: -1, PerAttempt: timeout}
	client.HTTPClient.CheckRedirect = sameHostOnly(api)
	return nil
}

// onRetry calls f before each retry of godo's retrying client (attempt 1
// is the first retry).
func onRetry(client *godo.Client, f func(attempt int)) {
	outer, ok := client.HTTPClient.Transport.(*oauth2.Transport)
	if !ok {
		return
	}
	limit, ok := outer.Base.(*httplimit.Transport)
	if !ok {
		return
	}
	if retrying, ok := limit.Next.(*retryablehttp.RoundTripper); ok && retrying.Client != nil {
		retrying.Client.RequestLogHook = func(_ retryablehttp.Logger, _ *http.Request, attempt int) {
			if attempt > 0 {
				f(attempt)
			}
		}
	}
}

// noRetryOnRefusal keeps check from retrying what a retry cannot mend: a
// refused redirect, an answer over the size limit, and a POST or PATCH
// that timed out, which the API may have carried out already.
func noRetryOnRefusal(check retryablehttp.CheckRetry) retryablehttp.CheckRetry {
	return func(ctx context.Context, resp *http.Response, err error) (bool, error) {
		var redirect *RedirectError
		var large *httplimit.TooLargeError
		var timeout *httplimit.TimeoutError
		switch {
		case errors.As(err, &redirect), errors.As(err, &large):
			return false, nil
		case errors.As(err, &timeout) && timeout.Method != http.MethodGet && timeout.Method != http.MethodHead &&
			timeout.Method != http.MethodPut && timeout.Method != http.MethodDelete:
			return false, nil
		}
		return check(ctx, resp, err)
	}
}

package digitalocean

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/dropback/dropback/internal/safetext"
)

// maxRedirects is how many same-host redirects a request follows.
const maxRedirects = 10

// RedirectError is a redirect dropback refused to follow, because it leads
// away from the API's host and the token would go with it.
type RedirectError struct {
	From string // the API, scheme://host[:port]
	To   string // where it redirected, scheme://host[:port]
}

func (e *RedirectError) Error() string {
	return fmt.Sprintf("the API at %s redirected to another host %s; refusing to send the token there", e.From, e.To)
}

// sameHostOnly is a CheckRedirect that follows redirects only to the
// API's own scheme, host and port. Go would follow a redirect to another
// port of the same host name with the Authorization header, and oauth2 adds
// the token to any redirected request, so every other redirect is refused.
func sameHostOnly(api *url.URL) func(req *http.Request, via []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if len(via) >= maxRedirects {
			// Worded as net/http words it, which go-retryablehttp knows
			// not to retry.
			return fmt.Errorf("stopped after %d redirects", maxRedirects)
		}
		if origin(req.URL) != origin(api) {
			return &RedirectError{From: origin(api), To: origin(req.URL)}
		}
		return nil
	}
}

// origin is scheme://host:port of u, lower case, with the scheme's default
// port made explicit, and safe to print.
func origin(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	if port == "" {
		switch scheme {
		case "https":
			port = "443"
		case "http":
			port = "80"
		}
	}
	host := strings.ToLower(u.Hostname())
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return safetext.Escape(safetext.Clip(scheme+"://"+host+":"+port, 200))
}

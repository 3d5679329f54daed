package s3_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dropback/dropback/internal/hostilehttp"
	"github.com/dropback/dropback/internal/httplimit"
	"github.com/dropback/dropback/pkg/store"
	"github.com/dropback/dropback/pkg/store/s3"
)

const hostileSecret = "hostile-secret-key-0123456789"

// hostileOptions reach the server at endpoint with a short timeout.
func hostileOptions(endpoint string, timeout time.Duration) s3.Options {
	return s3.Options{
		Endpoint: endpoint, AccessKey: "hostile", SecretKey: hostileSecret, Region: "us-east-1",
		Timeout: timeout, Getenv: func(string) string { return "" },
	}
}

// probeAnswers makes srv pass the conditional-write probe: a first PUT of
// a key succeeds, a second one is refused with 412, a DELETE succeeds.
func probeAnswers(srv *hostilehttp.Server) {
	var mu sync.Mutex
	seen := map[string]bool{}
	srv.On(http.MethodPut, "", func(w http.ResponseWriter, r *http.Request, done <-chan struct{}) {
		mu.Lock()
		again := seen[r.URL.Path]
		seen[r.URL.Path] = true
		mu.Unlock()
		if again {
			hostilehttp.Body(http.StatusPreconditionFailed, "application/xml",
				`<?xml version="1.0" encoding="UTF-8"?><Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error>`)(w, r, done)
			return
		}
		w.Header().Set("ETag", `"d41d8cd98f00b204e9800998ecf8427e"`)
		w.WriteHeader(http.StatusOK)
	})
	srv.On(http.MethodDelete, "/backups/fleet/.dropback-probe/*", func(w http.ResponseWriter, r *http.Request, done <-chan struct{}) {
		w.WriteHeader(http.StatusNoContent)
	})
}

// object is a with the headers of an object's answer.
func object(a hostilehttp.Answer) hostilehttp.Answer {
	return hostilehttp.WithHeader("Last-Modified", "Mon, 02 Jan 2006 15:04:05 GMT",
		hostilehttp.WithHeader("ETag", `"d41d8cd98f00b204e9800998ecf8427e"`, a))
}

func TestHostileServerThatNeverAnswers(t *testing.T) {
	hung := hostilehttp.New(t)
	hung.On("", "", hostilehttp.Hang())
	for name, endpoint := range map[string]string{
		"silent TCP": "http://" + hostilehttp.Silent(t),
		"hung HTTP":  hung.URL,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := openProbed(context.Background(), "s3://backups/fleet", hostileOptions(endpoint, 200*time.Millisecond))
			var te *httplimit.TimeoutError
			if !errors.As(err, &te) {
				t.Fatalf("Open = %v, want a *httplimit.TimeoutError", err)
			}
			msg := err.Error()
			for _, want := range []string{"open s3://backups/fleet", "PUT " + endpoint + "/backups/fleet/.dropback-probe/",
				"no complete answer within 200ms"} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q lacks %q", msg, want)
				}
			}
			if strings.Contains(msg, hostileSecret) || strings.Contains(msg, "\n") {
				t.Errorf("error %q", msg)
			}
		})
	}
}

func TestHostileServerHangsAfterTheProbe(t *testing.T) {
	srv := hostilehttp.New(t)
	probeAnswers(srv)
	srv.On(http.MethodGet, "/backups/fleet/config", object(hostilehttp.Slow(200, "application/octet-stream", strings.Repeat("c", 1000), 20*time.Millisecond)))
	srv.On("", "", hostilehttp.Hang())
	st, err := s3.Open(context.Background(), "s3://backups/fleet", hostileOptions(srv.URL, 200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	checks := map[string]error{}
	checks["list"] = st.List(ctx, "", func(store.Info) error { return nil })
	_, checks["stat"] = st.Stat(ctx, "config")
	_, checks["get slow"] = st.Get(ctx, "config", 0, -1)
	_, checks["get hung"] = st.Get(ctx, "packs/ab", 0, 100)
	checks["delete"] = st.Delete(ctx, "x")
	for what, err := range checks {
		var te *httplimit.TimeoutError
		if !errors.As(err, &te) {
			t.Errorf("%s: %v, want a *httplimit.TimeoutError", what, err)
			continue
		}
		if !strings.Contains(err.Error(), "no complete answer within 200ms") {
			t.Errorf("%s: %v", what, err)
		}
	}
}

func TestHostileServerAnswersHugeBodies(t *testing.T) {
	srv := hostilehttp.New(t)
	probeAnswers(srv)
	const gib = 1 << 30
	list := `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>backups</Name><Contents><Key>`
	srv.On(http.MethodGet, "/backups/fleet/packs/ab", object(hostilehttp.Huge(200, "application/octet-stream", "", 'p', 4*gib, true)))
	srv.On(http.MethodGet, "", hostilehttp.Huge(200, "application/xml", list, 'k', 4*gib, false))
	st, err := s3.Open(context.Background(), "s3://backups/fleet", hostileOptions(srv.URL, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	err = st.List(context.Background(), "", func(store.Info) error { return nil })
	if !errors.As(err, new(*httplimit.TooLargeError)) || !strings.Contains(err.Error(), "larger than 16 MiB") {
		t.Errorf("list: %v", err)
	}
	_, err = st.Get(context.Background(), "packs/ab", 0, 1<<20)
	if !errors.As(err, new(*httplimit.TooLargeError)) || !strings.Contains(err.Error(), "larger than 1 MiB") {
		t.Errorf("ranged get answered with more: %v", err)
	}
	if srv.Sent() > 256<<20 {
		t.Errorf("the server wrote %d bytes: the client read on past the limits", srv.Sent())
	}
}

func TestHostileServerTextIsEscaped(t *testing.T) {
	srv := hostilehttp.New(t)
	srv.On("", "", hostilehttp.Body(http.StatusInternalServerError, "application/xml",
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>Bad\x1b[2J</Code><Message>boom\x1b]0;owned\x07 now</Message></Error>"))
	opts := hostileOptions(srv.URL, time.Minute)
	opts.MaxRetries = 1
	_, err := openProbed(context.Background(), "s3://backups/fleet", opts)
	if err == nil {
		t.Fatal("Open succeeded")
	}
	if strings.ContainsAny(err.Error(), "\x1b\x07") || !strings.Contains(err.Error(), `boom\x1b]0;owned\a now`) || len(err.Error()) > 600 {
		t.Errorf("error %q", err)
	}
}

func TestHostileEndpointSettings(t *testing.T) {
	opts := hostileOptions("", 0)
	opts.Getenv = func(k string) string {
		return map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:1", httplimit.EnvTimeout: "forever"}[k]
	}
	_, err := s3.Open(context.Background(), "s3://backups/fleet", opts)
	if !errors.Is(err, s3.ErrInvalidSetting) || !strings.Contains(err.Error(), "DROPBACK_HTTP_TIMEOUT") {
		t.Errorf("Open = %v", err)
	}
	opts = hostileOptions("ftp://user-secret:pass-secret@host/?token=query-secret", 0)
	_, err = s3.Open(context.Background(), "s3://backups/fleet", opts)
	if !errors.Is(err, s3.ErrInvalidURL) || strings.Contains(err.Error(), "-secret") {
		t.Errorf("Open = %v", err)
	}
}

package integration

// Hostile networks: the compiled binary against an API or an S3 endpoint
// that redirects to another host, accepts and never answers, answers one
// byte at a time, answers null objects, answers gigabytes, or sends control
// characters; and against careless input (a token on /dev/zero, credentials
// in URLs). Each ends with one clear line on stderr, the right exit code, no
// panic, and the token nowhere it should not be.

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dropback/dropback/internal/fakedo"
	"github.com/dropback/dropback/internal/hostilehttp"
)

// hungAfter is how long a run may take before the test calls it hung and
// kills it. It is a guard against a test that never ends, not an
// assertion on speed: every run below ends on a bound of a few seconds.
const hungAfter = 2 * time.Minute

// runNet runs dropback with env and stdin (nil for none), killing it as
// hung after hungAfter.
func runNet(t *testing.T, env []string, stdin io.Reader, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hungAfter)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env = dropbackCmd(t.TempDir(), env).Env
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	code, err := exitCode(cmd.Run())
	require.NoError(t, err)
	require.NoError(t, ctx.Err(), "dropback %v hung: killed after %s\nstderr: %s", args, hungAfter, stderr.String())
	res := result{args: args, code: code, stdout: stdout.String(), stderr: stderr.String()}
	assert.NotContains(t, res.stderr, "panic", "dropback %v panicked", args)
	assert.NotContains(t, res.stdout+res.stderr, fakedo.DefaultToken, "the token is never printed")
	return res
}

// runAPI runs dropback in the digitalocean context against the API at url,
// with millisecond retry waits and a 2 s HTTP timeout.
func runAPI(t *testing.T, url string, env []string, args ...string) result {
	t.Helper()
	env = append([]string{"DROPBACK_DO_RETRY_WAIT_MIN=1ms", "DROPBACK_DO_RETRY_WAIT_MAX=5ms", "DROPBACK_HTTP_TIMEOUT=2s",
		"DIGITALOCEAN_ACCESS_TOKEN=" + fakedo.DefaultToken}, env...)
	return runNet(t, env, nil, append([]string{"--context", "digitalocean", "-u", url}, args...)...)
}

// retryModes runs a test with godo's retries on and off.
var retryModes = map[string][]string{
	"retries-on":  nil,
	"retries-off": {"DROPBACK_DO_RETRY_MAX=-1"},
}

func TestHostileNetDORedirectToAnotherHostKeepsTheToken(t *testing.T) {
	for mode, env := range retryModes {
		for _, status := range []int{http.StatusFound, http.StatusTemporaryRedirect} {
			t.Run(mode+"/"+http.StatusText(status), func(t *testing.T) {
				other := hostilehttp.New(t)
				other.On("", "", hostilehttp.JSON(200, `{"droplets":[],"links":{},"meta":{"total":0}}`))
				api := hostilehttp.New(t)
				api.On("", "", hostilehttp.Redirect(status, other.URL+"/v2/droplets?page=1&per_page=200"))

				r := runAPI(t, api.URL, env, "backups", "list")
				for _, req := range other.Requests() {
					assert.NotContains(t, req.Header.Get("Authorization"), fakedo.DefaultToken, "the token went to %s", other.Host)
				}
				assert.Empty(t, other.Requests(), "nothing is sent to the other host")
				oneCleanLine(t, r, "redirected to another host")
				assert.Equal(t, 1, r.code)
				assert.Contains(t, r.stderr, other.Host)
				assert.Contains(t, r.stderr, "refusing to send the token there")
			})
		}
	}
}

func TestHostileNetDORedirectOnTheSameHostIsFollowed(t *testing.T) {
	api := hostilehttp.New(t)
	api.On("", "/v2/moved/droplets", hostilehttp.JSON(200, `{"droplets":[],"links":{},"meta":{"total":0}}`))
	api.On("", "/v2/droplets", hostilehttp.Redirect(http.StatusTemporaryRedirect, "/v2/moved/droplets?page=1&per_page=200"))
	r := runAPI(t, api.URL, nil, "backups", "list", "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "[]\n", r.stdout)
	reqs := api.Requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, "Bearer "+fakedo.DefaultToken, reqs[1].Header.Get("Authorization"))
}

func TestHostileNetDONeverAnswers(t *testing.T) {
	for mode, env := range retryModes {
		t.Run(mode, func(t *testing.T) {
			api := hostilehttp.New(t)
			api.On("", "", hostilehttp.Hang())
			r := runAPI(t, api.URL, env, "backups", "list")
			oneCleanLine(t, r, "no complete answer within 2s")
			assert.Equal(t, 1, r.code)
			assert.Contains(t, r.stderr, "DROPBACK_HTTP_TIMEOUT")
			if mode == "retries-off" {
				assert.Len(t, api.Requests(), 1)
			}
		})
	}
}

func TestHostileNetDOAnswersByteByByte(t *testing.T) {
	api := hostilehttp.New(t)
	body := `{"droplets":[],"links":{},"meta":{"total":0}}` + strings.Repeat(" ", 200)
	api.On("", "", hostilehttp.Slow(200, "application/json", body, 100*time.Millisecond))
	r := runAPI(t, api.URL, []string{"DROPBACK_DO_RETRY_MAX=-1"}, "hosts", "list")
	oneCleanLine(t, r, "no complete answer within 2s")
	assert.Equal(t, 1, r.code)
}

func TestHostileNetDOWaitTimeoutBoundsAHungPoll(t *testing.T) {
	fake := fakedo.New(t)
	seed(fake)
	fake.SetActionPolls(-1)
	api := hostilehttp.New(t)
	require.NoError(t, api.Proxy(fake.URL))
	api.On(http.MethodGet, "/v2/actions/1000", hostilehttp.Hang())
	// The HTTP timeout is the default 30 s: only --wait-timeout can end
	// the hung poll within the wait, and it exits 5 (still in progress),
	// with the action as last seen on stdout.
	r := runNet(t, []string{"DIGITALOCEAN_ACCESS_TOKEN=" + fakedo.DefaultToken},
		nil, "--context", "digitalocean", "-u", api.URL, "backups", "restore", "123", "latest", "--force", "--wait", "--wait-timeout", "5s")
	assert.Equal(t, 5, r.code)
	assert.Equal(t, "Error: action 1000 (restore) still in-progress after --wait-timeout 5s: timed out\n", r.stderr)
	assert.Contains(t, r.stdout, "in-progress")
	var polled bool
	for _, req := range api.Requests() {
		polled = polled || req.Path == "/v2/actions/1000"
	}
	assert.True(t, polled, "the poll was sent, and hung")
}

func TestHostileNetDOWaitOnAnAPIThatNeverAnswers(t *testing.T) {
	api := hostilehttp.New(t)
	api.On("", "", hostilehttp.Hang())
	r := runAPI(t, api.URL, []string{"DROPBACK_DO_RETRY_MAX=-1"},
		"backups", "restore", "123", "latest", "--force", "--wait", "--wait-timeout", "5s")
	oneCleanLine(t, r, "GET "+api.URL+"/v2/droplets/123: no complete answer within 2s")
	assert.Equal(t, 1, r.code, "a network timeout is an error, not a wait that ran out")
}

func TestHostileNetDONullAnswers(t *testing.T) {
	tests := []struct {
		name, path, body string
		args             []string
	}{
		{"null image", "/v2/images/5", `{"image":null}`, []string{"backups", "get", "5"}},
		{"no image", "/v2/images/5", `{}`, []string{"backups", "get", "5"}},
		{"no droplet", "/v2/droplets/123", `{"links":{}}`, []string{"backups", "list", "123"}},
		{"null droplet", "/v2/droplets/123", `{"droplet":null}`, []string{"hosts", "get", "123"}},
		{"null body", "/v2/droplets/123", `null`, []string{"policy", "get", "123"}},
		{"null action", "/v2/actions/7", `{"action":null}`, []string{"actions", "get", "7"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			api := hostilehttp.New(t)
			api.On(http.MethodGet, tc.path, hostilehttp.JSON(200, tc.body))
			r := runAPI(t, api.URL, nil, tc.args...)
			oneCleanLine(t, r, "unexpected answer")
			assert.Equal(t, 1, r.code)
		})
	}
}

func TestHostileNetDOHugeAnswers(t *testing.T) {
	const gib = 1 << 30
	tests := []struct {
		name   string
		answer hostilehttp.Answer
		want   string
	}{
		{"json body of 4 GiB", hostilehttp.Huge(200, "application/json", `{"droplets":[{"name":"`, 'a', 4*gib, false), "larger than 16 MiB"},
		{"chunked json body", hostilehttp.Huge(200, "application/json", `{"droplets":[{"name":"`, 'a', 4*gib, true), "larger than 16 MiB"},
		{"error body of 4 GiB", hostilehttp.Huge(500, "text/plain", "", 'e', 4*gib, false), "500 Internal Server Error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			api := hostilehttp.New(t)
			api.On("", "", tc.answer)
			r := runAPI(t, api.URL, []string{"DROPBACK_DO_RETRY_MAX=-1"}, "hosts", "list")
			oneCleanLine(t, r, tc.want)
			assert.Equal(t, 1, r.code)
			assert.Less(t, api.Sent(), int64(64<<20), "dropback read at most the limit, plus what the network buffers")
			t.Logf("the server wrote %d bytes of its 4 GiB answer", api.Sent())
		})
	}
}

func TestHostileNetDOControlCharactersAreEscaped(t *testing.T) {
	api := hostilehttp.New(t)
	api.On("", "", hostilehttp.JSON(422, `{"id":"unprocessable_entity","message":"bad\u001b]0;owned\u0007 \u001b[2Jname\r\nError: forged\u202e"}`))
	r := runAPI(t, api.URL, nil, "hosts", "list")
	oneCleanLine(t, r, `bad\x1b]0;owned\a`)
	assert.Equal(t, 2, r.code)
}

func TestHostileNetS3NeverAnswers(t *testing.T) {
	for name, endpoint := range map[string]func(t *testing.T) string{
		"silent TCP": func(t *testing.T) string { return "http://" + hostilehttp.Silent(t) },
		"hung HTTP": func(t *testing.T) string {
			s := hostilehttp.New(t)
			s.On("", "", hostilehttp.Hang())
			return s.URL
		},
	} {
		t.Run(name, func(t *testing.T) {
			url := endpoint(t)
			env := []string{"DROPBACK_REPO=s3://backups/fleet", "AWS_ENDPOINT_URL=" + url, "AWS_REGION=us-east-1",
				"AWS_ACCESS_KEY_ID=hostile", "AWS_SECRET_ACCESS_KEY=hostile-secret-key", "DROPBACK_HTTP_TIMEOUT=2s"}
			r := runNet(t, env, nil, "backups", "list")
			oneCleanLine(t, r, "no complete answer within 2s")
			assert.Equal(t, 1, r.code)
			assert.Contains(t, r.stderr, strings.TrimPrefix(url, "http://"))
			assert.NotContains(t, r.stderr, "hostile-secret-key")
		})
	}
}

func TestHostileNetAuthInitFromAnEndlessPipe(t *testing.T) {
	zero, err := os.Open("/dev/zero")
	require.NoError(t, err)
	defer zero.Close()
	r := runNet(t, nil, zero, "auth", "init")
	oneCleanLine(t, r, "longer than 4096 bytes")
	assert.Equal(t, 2, r.code)
}

func TestHostileNetURLsAreRedacted(t *testing.T) {
	api := hostilehttp.New(t)
	api.On("", "", hostilehttp.JSON(200, `{"droplets":[],"links":{},"meta":{"total":0}}`))
	apiURL := strings.Replace(api.URL, "http://", "http://user-secret1:pass-secret2@", 1) + "/?access_token=query-secret3"
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"ftp scheme refused", []string{"-u", "ftp://tok-secret4@example.com/?token=query-secret5", "hosts", "list"}},
		{"no scheme refused", []string{"-u", "tok-secret6@example.com", "hosts", "list"}},
		{"trace", []string{"-u", apiURL, "--trace", "hosts", "list"}},
		{"unreachable", []string{"-u", "http://user-secret7:pass-secret8@127.0.0.1:1/?key=query-secret9", "hosts", "list"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runNet(t, []string{"DROPBACK_DO_RETRY_MAX=-1", "DIGITALOCEAN_ACCESS_TOKEN=" + fakedo.DefaultToken},
				nil, append([]string{"--context", "digitalocean"}, tc.args...)...)
			assert.NotContains(t, r.stdout+r.stderr, "-secret", "stderr:\n%s", r.stderr)
		})
	}
}

func TestHostileNetAuthControlCharactersAreEscaped(t *testing.T) {
	home := t.TempDir()
	fake := fakedo.New(t) // auth init checks the token
	name := "work\x1b]0;owned\x07\x1b[2J"
	run := func(stdin string, args ...string) result {
		cmd := dropbackCmd(home, []string{"DIGITALOCEAN_API_URL=" + fake.URL}, args...)
		cmd.Stdin = strings.NewReader(stdin)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		code, err := exitCode(cmd.Run())
		require.NoError(t, err)
		return result{args: args, code: code, stdout: stdout.String(), stderr: stderr.String()}
	}
	for _, r := range []result{
		run(fakedo.DefaultToken+"\n", "auth", "init", "--context", name),
		run("", "auth", "switch", name),
		run("", "auth", "list"),
		run("", "auth", "list", "--context", name),
	} {
		assert.Equal(t, 0, r.code, "%v: %s", r.args, r.stderr)
		assert.NotContains(t, r.stdout+r.stderr, "\x1b", "%v printed an escape sequence", r.args)
		assert.NotContains(t, r.stdout+r.stderr, "\x07", "%v printed a bell", r.args)
	}
	cfg, err := os.ReadFile(filepath.Join(home, "config", "dropback", "config.yaml"))
	require.NoError(t, err)
	assert.Contains(t, string(cfg), fakedo.DefaultToken)
}

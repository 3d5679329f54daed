package integration

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dropback/dropback/internal/fakedo"
)

// runHome runs dropback with a home of its own and env, and no flags of
// the test's.
func runHome(t *testing.T, home string, env []string, stdin string, args ...string) result {
	t.Helper()
	cmd := dropbackCmd(home, append([]string{"DROPBACK_DO_RETRY_WAIT_MIN=1ms", "DROPBACK_DO_RETRY_WAIT_MAX=5ms"}, env...), args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	code, err := exitCode(cmd.Run())
	require.NoError(t, err)
	return result{args: args, code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// A doctl user's environment and config file select DigitalOcean and its
// endpoint as doctl would, and no request goes anywhere else.
func TestDoctlConfigurationHabits(t *testing.T) {
	fake := fakedo.New(t)
	seed(fake)
	home := t.TempDir()
	doctlDir := filepath.Join(home, "config", "doctl")
	require.NoError(t, os.MkdirAll(doctlDir, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(doctlDir, "config.yaml"),
		[]byte("access-token: "+fakedo.DefaultToken+"\ncontext: default\nauth-contexts:\n  work: "+fakedo.DefaultToken+"\n"), 0o600))

	apiURL := "DIGITALOCEAN_API_URL=" + fake.URL
	for _, tc := range []struct {
		name string
		env  []string
		args []string
	}{
		{"DIGITALOCEAN_CONTEXT and doctl's default token", []string{apiURL, "DIGITALOCEAN_CONTEXT=default"}, nil},
		{"the digitalocean context uses doctl's current account", []string{apiURL}, []string{"--context", "digitalocean"}},
		{"--context WORK is doctl's work", []string{apiURL}, []string{"--context", "WORK"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake.ResetRequests()
			r := runHome(t, home, tc.env, "", append(tc.args, "backups", "list", "web-1", "--format", "ID", "--no-header")...)
			require.Equal(t, 0, r.code, r.stderr)
			assert.Equal(t, "1232\n1233\n1234\n", r.stdout)
			assert.NotEmpty(t, fake.Requests(), "the requests went to DIGITALOCEAN_API_URL")
		})
	}

	// Without a context, a doctl user still gets the engine, and is told
	// how to reach DigitalOcean.
	r := runHome(t, home, []string{apiURL}, "", "backups", "list")
	assert.Equal(t, 10, r.code, r.stderr)
	assert.Contains(t, r.stderr, "--context digitalocean")
}

func TestAuthInitChecksTheTokenAndSelectsItsContext(t *testing.T) {
	fake := fakedo.New(t)
	seed(fake)
	home := t.TempDir()
	env := []string{"DIGITALOCEAN_API_URL=" + fake.URL}

	r := runHome(t, home, env, "dop_v1_wrong\n", "auth", "init", "--context", "Work")
	assert.Equal(t, 4, r.code, r.stderr)
	assert.Contains(t, r.stderr, "not stored")
	_, err := os.Stat(filepath.Join(home, "config", "dropback", "config.yaml"))
	assert.True(t, os.IsNotExist(err), "a refused token is not stored")

	fake.ResetRequests()
	r = runHome(t, home, env, fakedo.DefaultToken+"\n", "auth", "init", "--context", "Work")
	require.Equal(t, 0, r.code, r.stderr)
	var paths []string
	for _, req := range fake.Requests() {
		paths = append(paths, req.Method+" "+req.Path)
	}
	assert.Equal(t, []string{"GET /v2/account"}, paths, "one request checks the token")
	assert.Contains(t, r.stderr, "dev@example.com")

	r = runHome(t, home, env, "", "hosts", "list", "--format", "Name", "--no-header")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "web-1\ndb-1\n", r.stdout, "the next command runs in the new context")

	r = runHome(t, home, env, "", "auth", "token")
	assert.Equal(t, fakedo.DefaultToken+"\n", r.stdout)
	r = runHome(t, home, env, "", "auth", "remove", "--context", "work")
	require.Equal(t, 0, r.code, r.stderr)
	r = runHome(t, home, env, "", "auth", "list", "--format", "Name,Current", "--no-header")
	assert.Equal(t, "local    *\n", r.stdout)
}

func TestJSONErrorsAsDoctlPrintsThem(t *testing.T) {
	fake := fakedo.New(t)
	seed(fake)
	r := runDO(t, fake, "backups", "get", "424242", "-o", "json")
	assert.Equal(t, 1, r.code)
	var v struct {
		Errors []struct {
			Detail string `json:"detail"`
		} `json:"errors"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &v), r.stdout)
	require.Len(t, v.Errors, 1)
	assert.Contains(t, v.Errors[0].Detail, "get backup 424242")
	assert.Contains(t, r.stderr, "Error: "+v.Errors[0].Detail)
}

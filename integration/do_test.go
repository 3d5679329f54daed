// Package integration runs the compiled dropback binary end to end.
//
// The DigitalOcean tests run it with --context digitalocean against
// fakedo, an in-process fake of the API that validates every request and
// response against the API's OpenAPI description (the subset of
// DigitalOcean's that internal/fakedo/openapi holds) and fails the test on a
// route it does not know. Each case runs in text and in JSON and is
// compared with a golden file under testdata/do; -update rewrites them.
package integration

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dropback/dropback/internal/fakedo"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// binPath is the dropback binary under test: $DROPBACK_BIN, or one TestMain
// builds from ./cmd/dropback.
var binPath string

func TestMain(m *testing.M) {
	if code, ok := rssHelper(); ok {
		os.Exit(code) // this process only ran dropback, to measure it
	}
	flag.Parse()
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if binPath = os.Getenv("DROPBACK_BIN"); binPath != "" {
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "dropback-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binPath = filepath.Join(dir, "dropback")
	build := exec.Command("go", "build", "-o", binPath, "./cmd/dropback")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build dropback: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// result is one run of the binary.
type result struct {
	args   []string
	code   int
	stdout string
	stderr string
}

// runDO runs dropback against the fake in the digitalocean context, with
// an empty home and millisecond retry waits.
func runDO(t *testing.T, fake *fakedo.Server, args ...string) result {
	t.Helper()
	home := t.TempDir()
	full := append([]string{"--context", "digitalocean", "-u", fake.URL, "-t", fakedo.DefaultToken}, args...)
	cmd := dropbackCmd(home, []string{"DROPBACK_DO_RETRY_WAIT_MIN=1ms", "DROPBACK_DO_RETRY_WAIT_MAX=5ms"}, full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	code, err := exitCode(cmd.Run())
	if err != nil {
		t.Fatalf("run dropback: %v", err)
	}
	res := result{args: args, code: code, stdout: stdout.String(), stderr: stderr.String()}
	assert.NotContains(t, res.stdout, fakedo.DefaultToken, "the token is never printed")
	assert.NotContains(t, res.stderr, fakedo.DefaultToken, "the token is never printed")
	res.stdout = strings.ReplaceAll(res.stdout, fake.URL, "FAKE_API")
	res.stderr = strings.ReplaceAll(res.stderr, fake.URL, "FAKE_API")
	return res
}

func (r result) golden() string {
	return fmt.Sprintf("$ dropback %s\nexit: %d\n--- stdout\n%s--- stderr\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// checkGolden compares a run with testdata/do/name.golden.
func checkGolden(t *testing.T, name string, r result) {
	t.Helper()
	path := filepath.Join("testdata", "do", name+".golden")
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(r.golden()), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run with -update to create it")
	assert.Equal(t, string(want), r.golden(), "golden file %s (run with -update to rewrite)", path)
}

// seed gives the fake web-1 (123, weekly backups, backups 1232-1234 and
// snapshot 2001), db-1 (456, no backups) and two finished actions.
func seed(f *fakedo.Server) {
	f.AddDroplet(fakedo.Droplet{ID: 123, Name: "web-1", BackupsEnabled: true,
		Policy: fakedo.Policy{Plan: "weekly", Weekday: "SUN", Hour: 8}})
	f.AddDroplet(fakedo.Droplet{ID: 456, Name: "db-1", Region: "fra1", Size: "s-2vcpu-2gb", DiskGB: 50})
	f.AddImage(fakedo.Image{ID: 1232, DropletID: 123, Type: "backup"})
	f.AddImage(fakedo.Image{ID: 1233, DropletID: 123, Type: "backup"})
	f.AddImage(fakedo.Image{ID: 1234, DropletID: 123, Type: "backup", SizeGB: 3.1})
	f.AddImage(fakedo.Image{ID: 2001, DropletID: 123, Type: "snapshot", Name: "web-1-before-upgrade"})
	done := fakedo.Epoch.Add(90)
	f.AddAction(fakedo.Action{ID: 900, Type: "enable_backups", Status: "completed", ResourceID: 123,
		ResourceType: "droplet", CompletedAt: &done})
	f.AddAction(fakedo.Action{ID: 901, Type: "convert", Status: "errored", ResourceID: 2001,
		ResourceType: "image", CompletedAt: &done})
	f.ResetRequests()
}

// doCase is one command, run in text and in JSON.
type doCase struct {
	name  string
	args  []string
	code  int                                            // expected exit code
	setup func(*fakedo.Server)                           // after seed
	check func(t *testing.T, f *fakedo.Server, r result) // after the run
}

func assertBody(want string) func(*testing.T, *fakedo.Server, result) {
	return func(t *testing.T, f *fakedo.Server, r result) {
		var got []string
		for _, req := range f.Requests() {
			if req.Method != http.MethodGet {
				got = append(got, string(req.Body))
			}
		}
		require.Len(t, got, 1, "one request changes something")
		assert.JSONEq(t, want, got[0])
	}
}

func onlyGets(t *testing.T, f *fakedo.Server, r result) {
	for _, req := range f.Requests() {
		assert.Equal(t, http.MethodGet, req.Method, req.Path)
	}
}

func mentions(words ...string) func(*testing.T, *fakedo.Server, result) {
	return func(t *testing.T, f *fakedo.Server, r result) {
		onlyGets(t, f, r)
		for _, w := range words {
			assert.Contains(t, r.stderr, w)
		}
	}
}

var doCases = []doCase{
	{name: "hosts-list", args: []string{"hosts", "list"}},
	{name: "hosts-get", args: []string{"hosts", "get", "web-1"}},
	{name: "hosts-get-ambiguous", args: []string{"hosts", "get", "api"}, code: 1,
		setup: func(f *fakedo.Server) {
			f.AddDroplet(fakedo.Droplet{ID: 301, Name: "api"})
			f.AddDroplet(fakedo.Droplet{ID: 302, Name: "api"})
		},
		check: mentions("301", "302", "ambiguous")},
	{name: "hosts-get-missing", args: []string{"hosts", "get", "nope"}, code: 1, check: mentions("not found")},
	{name: "hosts-add", args: []string{"hosts", "add", "web-2", "--disk", "/dev/vdb"}, code: 1, check: mentions("doctl compute droplet create")},
	{name: "backups-list", args: []string{"backups", "list", "web-1"}},
	{name: "backups-list-all", args: []string{"backups", "list"}},
	{name: "backups-get", args: []string{"backups", "get", "1234"}},
	{name: "backups-enable", args: []string{"backups", "enable", "123", "--plan", "weekly", "--weekday", "TUE", "--hour", "16"},
		setup: func(f *fakedo.Server) { f.AddDroplet(fakedo.Droplet{ID: 123, Name: "web-1"}) }, // backups off
		check: assertBody(`{"type":"enable_backups","backup_policy":{"plan":"weekly","weekday":"TUE","hour":16}}`)},
	{name: "backups-enable-daily", args: []string{"backups", "enable", "db-1", "--plan", "daily", "--hour", "4"},
		check: assertBody(`{"type":"enable_backups","backup_policy":{"plan":"daily","weekday":"","hour":4}}`)},
	{name: "backups-enable-usage-based", args: []string{"backups", "enable", "db-1", "--plan", "intra_daily_12h"},
		check: assertBody(`{"type":"enable_backups","backup_policy":{"plan":"intra_daily_12h"}}`)},
	{name: "backups-enable-bad-plan", args: []string{"backups", "enable", "db-1", "--plan", "monthly"}, code: 2,
		check: func(t *testing.T, f *fakedo.Server, r result) {
			assert.Contains(t, r.stderr, "weekly, daily, intra_daily_12h, intra_daily_6h, intra_daily_4h")
			assert.Len(t, f.Requests(), 1, "only supported_policies is read")
		}},
	{name: "backups-enable-bad-hour", args: []string{"backups", "enable", "db-1", "--plan", "weekly", "--hour", "5"}, code: 2,
		check: func(t *testing.T, f *fakedo.Server, r result) {
			assert.Contains(t, r.stderr, "0, 4, 8, 12, 16, 20")
			assert.Len(t, f.Requests(), 1, "only supported_policies is read")
		}},
	{name: "backups-disable", args: []string{"backups", "disable", "web-1", "--force"},
		check: assertBody(`{"type":"disable_backups"}`)},
	{name: "backups-disable-keep", args: []string{"backups", "disable", "web-1", "--keep-backups"}, code: 1,
		check: mentions("backups convert")},
	{name: "backups-restore", args: []string{"backups", "restore", "web-1", "1234", "--force"},
		check: assertBody(`{"type":"restore","image":1234}`)},
	{name: "backups-restore-latest-wait", args: []string{"backups", "restore", "123", "latest", "--force", "--wait"},
		setup: func(f *fakedo.Server) { f.SetActionPolls(0) },
		check: func(t *testing.T, f *fakedo.Server, r result) {
			assertBody(`{"type":"restore","image":1234}`)(t, f, r)
			assert.Contains(t, r.stdout, "completed")
		}},
	{name: "backups-restore-errored", args: []string{"backups", "restore", "123", "latest", "--force", "--wait"}, code: 1,
		setup: func(f *fakedo.Server) { f.SetActionPolls(0); f.FailActions("restore") },
		check: func(t *testing.T, f *fakedo.Server, r result) {
			assert.Contains(t, r.stderr, "action 1000 (restore) errored")
		}},
	{name: "backups-restore-timeout", args: []string{"backups", "restore", "123", "latest", "--force", "--wait", "--wait-timeout", "1s"}, code: 5,
		setup: func(f *fakedo.Server) { f.SetActionPolls(-1) },
		check: func(t *testing.T, f *fakedo.Server, r result) {
			assert.Contains(t, r.stderr, "action 1000 (restore) still in-progress after --wait-timeout 1s")
		}},
	// The backup and the Droplet are looked up before anything is asked,
	// so that the question names them; nothing is changed.
	{name: "backups-restore-unconfirmed", args: []string{"backups", "restore", "123", "1234"}, code: 6, check: onlyGets},
	{name: "backups-restore-new", args: []string{"backups", "restore", "web-1", "1233", "--to-new", "web-1-copy",
		"--size", "s-1vcpu-1gb", "--region", "nyc3", "--ssh-keys", "289794", "--tag", "ci"},
		check: assertBody(`{"name":"web-1-copy","region":"nyc3","size":"s-1vcpu-1gb","image":1233,"ssh_keys":[289794],
			"backups":false,"ipv6":false,"private_networking":false,"monitoring":false,"tags":["ci"]}`)},
	{name: "backups-restore-to-path", args: []string{"backups", "restore", "web-1", "1233", "--to", "/tmp/web-1.img"}, code: 1,
		check: mentions("--to-new")},
	{name: "backups-convert", args: []string{"backups", "convert", "1233"}, check: assertBody(`{"type":"convert"}`)},
	{name: "backups-create", args: []string{"backups", "create", "web-1"}, code: 1,
		check: mentions("doctl compute droplet-action snapshot <droplet-id> --snapshot-name NAME")},
	{name: "backups-verify", args: []string{"backups", "verify"}, code: 1, check: mentions("--to-new")},
	{name: "policy-get", args: []string{"policy", "get", "web-1"}},
	{name: "policy-list", args: []string{"policy", "list"}},
	{name: "policy-supported", args: []string{"policy", "supported"}},
	{name: "policy-set", args: []string{"policy", "set", "web-1", "--hour", "20"},
		check: assertBody(`{"type":"change_backup_policy","backup_policy":{"plan":"weekly","weekday":"SUN","hour":20}}`)},
	{name: "policy-set-retention", args: []string{"policy", "set", "web-1", "--retention-days", "30"}, code: 2,
		check: mentions("plan weekly keeps backups 28 days", "takes 28", "intra_daily_4h")},
	{name: "snapshots-list", args: []string{"snapshots", "list", "web-1"}},
	{name: "snapshots-delete", args: []string{"snapshots", "delete", "2001", "--force"},
		check: func(t *testing.T, f *fakedo.Server, r result) {
			_, exists := f.Image(2001)
			assert.False(t, exists)
		}},
	{name: "actions-list", args: []string{"actions", "list"}},
	{name: "actions-get", args: []string{"actions", "get", "900"}},
	{name: "actions-get-errored", args: []string{"actions", "get", "901"}},
	{name: "repo-gc", args: []string{"repo", "gc"}, code: 1, check: mentions("snapshots delete")},
	{name: "auth-401", args: []string{"hosts", "list"}, code: 4,
		setup: func(f *fakedo.Server) { f.SetToken("a-token-dropback-does-not-have") },
		check: mentions("Unable to authenticate you", "request_id", "dropback auth init", "DIGITALOCEAN_ACCESS_TOKEN")},
	{name: "retry-429", args: []string{"hosts", "get", "123"},
		setup: func(f *fakedo.Server) {
			f.Inject(fakedo.Fault{Path: "/v2/droplets/123", Status: http.StatusTooManyRequests, RetryAfter: "1", Times: 1})
		},
		check: func(t *testing.T, f *fakedo.Server, r result) {
			assert.Len(t, f.Bodies(http.MethodGet, "/v2/droplets/123"), 2, "one 429, one retry")
		}},
	{name: "server-500", args: []string{"backups", "list", "web-1"}, code: 1,
		setup: func(f *fakedo.Server) { f.Inject(fakedo.Fault{Status: http.StatusInternalServerError, Times: -1}) },
		check: func(t *testing.T, f *fakedo.Server, r result) {
			assert.Contains(t, r.stderr, "gave up after 5 attempts")
			assert.Len(t, f.Requests(), 5, "one try and godo's four retries")
		}},
	{name: "run-due", args: []string{"run", "--due"}, code: 1, check: mentions("policy set")},
}

func TestDigitalOcean(t *testing.T) { runDOCases(t, doCases) }

// runDOCases runs each case against a seeded fake, in text and in JSON,
// and compares it with its golden file.
func runDOCases(t *testing.T, cases []doCase) {
	for _, c := range cases {
		for _, mode := range []string{"text", "json"} {
			t.Run(c.name+"/"+mode, func(t *testing.T) {
				t.Parallel()
				fake := fakedo.New(t)
				seed(fake)
				if c.setup != nil {
					c.setup(fake)
					fake.ResetRequests()
				}
				args := c.args
				if mode == "json" {
					args = append(append([]string{}, args...), "-o", "json")
				}
				r := runDO(t, fake, args...)
				assert.Equal(t, c.code, r.code, "exit code\nstdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
				if mode == "json" && r.code == 0 && r.stdout != "" {
					assert.True(t, json.Valid([]byte(r.stdout)), "stdout is JSON:\n%s", r.stdout)
				}
				if c.check != nil {
					c.check(t, fake, r)
				}
				checkGolden(t, c.name+"."+mode, r)
			})
		}
	}
}

func TestDigitalOceanTraceRedactsTheToken(t *testing.T) {
	fake := fakedo.New(t)
	seed(fake)
	r := runDO(t, fake, "--trace", "backups", "enable", "db-1", "--plan", "weekly", "--weekday", "TUE", "--hour", "16")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stderr, "> GET FAKE_API/v2/droplets/backups/supported_policies")
	assert.Contains(t, r.stderr, "> POST FAKE_API/v2/droplets/456/actions")
	assert.Contains(t, r.stderr, "Authorization: Bearer [REDACTED]")
	assert.Contains(t, r.stderr, `{"backup_policy":{"hour":16,"plan":"weekly","weekday":"TUE"},"type":"enable_backups"}`)
	assert.Contains(t, r.stderr, "< HTTP/1.1 201 Created")
	assert.Contains(t, r.stderr, "User-Agent: dropback/")
	assert.NotContains(t, r.stdout, "Authorization", "the trace goes to stderr, never stdout")
}

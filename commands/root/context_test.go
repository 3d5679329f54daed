package root

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dropback/dropback/pkg/config"
)

func writeConfig(t *testing.T, c *cli, content string, mode os.FileMode) string {
	t.Helper()
	dir := filepath.Join(c.env["HOME"], ".config", "dropback")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

const twoAccounts = "context: digitalocean\nauth-contexts:\n  digitalocean: file-token\n  work: work-token\n"

func TestContextResolution(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		env     map[string]string
		args    []string
		context string
		token   string
	}{
		{name: "default is local"},
		{name: "file's current context", file: twoAccounts, context: "digitalocean", token: "file-token"},
		{name: "env beats file", file: twoAccounts, env: map[string]string{"DROPBACK_CONTEXT": "work"}, context: "work", token: "work-token"},
		{name: "flag beats env", file: twoAccounts, env: map[string]string{"DROPBACK_CONTEXT": "work"},
			args: []string{"--context", "local"}, context: "local"},
		{name: "token env beats file", file: twoAccounts, env: map[string]string{"DIGITALOCEAN_ACCESS_TOKEN": "env-token"},
			context: "digitalocean", token: "env-token"},
		{name: "token flag beats env", file: twoAccounts, env: map[string]string{"DIGITALOCEAN_ACCESS_TOKEN": "env-token"},
			args: []string{"-t", "flag-token"}, context: "digitalocean", token: "flag-token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCLI(t)
			for k, v := range tt.env {
				c.env[k] = v
			}
			if tt.file != "" {
				writeConfig(t, c, tt.file, 0o600)
			}
			wantCode(t, c.run(t, append(tt.args, "hosts", "list")...), 0)
			want := tt.context
			if want == "" {
				want = "local"
			}
			if c.pc.Context != want || c.pc.Token != tt.token {
				t.Fatalf("provider config = %+v, want context %q token %q", c.pc, want, tt.token)
			}
			if want == "local" && c.pc.Repo == "" {
				t.Fatal("local context without a repository")
			}
		})
	}
}

func TestRepoResolution(t *testing.T) {
	c := newCLI(t)
	home := c.env["HOME"]
	wantCode(t, c.run(t, "hosts", "list"), 0)
	if want := filepath.Join(home, ".local/share/dropback/repo"); c.pc.Repo != want {
		t.Fatalf("repo = %s, want %s", c.pc.Repo, want)
	}
	c.env["XDG_DATA_HOME"] = "/data"
	wantCode(t, c.run(t, "hosts", "list"), 0)
	if c.pc.Repo != "/data/dropback/repo" {
		t.Fatalf("repo = %s", c.pc.Repo)
	}
	c.env["DROPBACK_REPO"] = "s3://bucket/prefix"
	wantCode(t, c.run(t, "hosts", "list"), 0)
	if c.pc.Repo != "s3://bucket/prefix" {
		t.Fatalf("repo = %s", c.pc.Repo)
	}
	wantCode(t, c.run(t, "--repo", "/flag", "hosts", "list"), 0)
	if c.pc.Repo != "/flag" {
		t.Fatalf("repo = %s", c.pc.Repo)
	}
}

// TestEmptyGlobalFlagsAreRefused: an empty --repo or --context (a script's
// unset variable) used to act on the default repository or context.
func TestEmptyGlobalFlagsAreRefused(t *testing.T) {
	for _, args := range [][]string{
		{"--repo", "", "backups", "delete", "web-1", "3", "--force"},
		{"--repo=", "backups", "list"},
		{"--context", "", "backups", "list"},
		{"--password-file", "", "backups", "list"},
	} {
		c := newCLI(t)
		r := c.run(t, args...)
		wantCode(t, r, 2)
		wantOneLineError(t, r, "is empty")
		if len(c.calls("DeleteBackup")) != 0 || len(c.calls("ListBackups")) != 0 {
			t.Fatalf("%v: the command ran on the default", args)
		}
	}
}

func TestProviderConfigFromFlags(t *testing.T) {
	c := newCLI(t)
	wantCode(t, c.run(t, "--context", "digitalocean", "-t", "tok", "-u", "http://127.0.0.1:9/", "--trace", "hosts", "list"), 0)
	if c.pc.APIURL != "http://127.0.0.1:9/" || c.pc.Trace == nil || c.pc.UserAgent != "dropback/1.2.3" {
		t.Fatalf("provider config = %+v", c.pc)
	}
}

func TestMissingTokenIsAnAuthError(t *testing.T) {
	c := newCLI(t)
	r := c.run(t, "--context", "digitalocean", "hosts", "list")
	wantCode(t, r, 4)
	wantOneLineError(t, r, "no access token", "auth init", "DIGITALOCEAN_ACCESS_TOKEN")
}

func TestConfigFileReadableByOthersIsRefused(t *testing.T) {
	c := newCLI(t)
	path := writeConfig(t, c, twoAccounts, 0o644)
	r := c.run(t, "hosts", "list")
	wantCode(t, r, 1)
	wantOneLineError(t, r, "chmod 600 "+path)
	if c.pc != nil {
		t.Fatal("provider built from an insecure config file")
	}
	if strings.Contains(r.err, "file-token") {
		t.Fatal("token leaked into the error")
	}
}

func TestConfigFileNotYAMLIsRefused(t *testing.T) {
	c := newCLI(t)
	writeConfig(t, c, "context: [oops\n", 0o600)
	r := c.run(t, "hosts", "list")
	wantCode(t, r, 1)
	wantOneLineError(t, r, "not valid YAML")
}

func TestConfigFlagChoosesTheFile(t *testing.T) {
	c := newCLI(t)
	path := filepath.Join(t.TempDir(), "other.yaml")
	if err := os.WriteFile(path, []byte(twoAccounts), 0o600); err != nil {
		t.Fatal(err)
	}
	wantCode(t, c.run(t, "-c", path, "hosts", "list"), 0)
	if c.pc.Context != "digitalocean" || c.pc.Token != "file-token" {
		t.Fatalf("provider config = %+v", c.pc)
	}
}

func TestAuthInitFromStdin(t *testing.T) {
	c := newCLI(t)
	c.stdin = "dop_v1_secret\n"
	r := c.run(t, "auth", "init", "--context", "work")
	wantCode(t, r, 0)
	path := filepath.Join(c.env["HOME"], ".config", "dropback", "config.yaml")
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("config mode = %04o", info.Mode().Perm())
	}
	f, err := config.Load(path)
	if err != nil || f.AuthContexts["work"] != "dop_v1_secret" || f.Context != "work" {
		t.Fatalf("config = %+v, %v", f, err)
	}
	if strings.Contains(r.out+r.err, "dop_v1_secret") {
		t.Fatal("token echoed")
	}
}

func TestAuthInitOnATerminalPromptsAndDefaultsToDigitalOcean(t *testing.T) {
	c := newCLI(t)
	c.tty, c.stdin = true, "dop_v1_tty\n"
	r := c.run(t, "auth", "init")
	wantCode(t, r, 0)
	if !strings.Contains(r.err, "access token for context digitalocean") || strings.Contains(r.err, "dop_v1_tty") {
		t.Fatalf("stderr = %q", r.err)
	}
	f, _ := config.Load(filepath.Join(c.env["HOME"], ".config", "dropback", "config.yaml"))
	if f.AuthContexts["digitalocean"] != "dop_v1_tty" {
		t.Fatalf("config = %+v", f)
	}
}

func TestAuthInitRefusals(t *testing.T) {
	c := newCLI(t)
	r := c.run(t, "auth", "init", "--context", "local")
	wantCode(t, r, 2)
	r = c.run(t, "auth", "init")
	wantCode(t, r, 2)
	wantOneLineError(t, r, "no token")
}

func TestAuthListAndSwitch(t *testing.T) {
	c := newCLI(t)
	path := writeConfig(t, c, twoAccounts, 0o600)
	r := c.run(t, "auth", "list", "--no-header")
	wantCode(t, r, 0)
	want := "local                engine\ndigitalocean    *    digitalocean\nwork                 digitalocean\n"
	if r.out != want {
		t.Fatalf("auth list =\n%s\nwant\n%s", r.out, want)
	}
	if strings.Contains(r.out, "token") {
		t.Fatal("tokens listed")
	}
	r = c.run(t, "auth", "switch", "nowhere")
	wantCode(t, r, 1)
	wantOneLineError(t, r, "auth init --context nowhere")

	wantCode(t, c.run(t, "auth", "switch", "work"), 0)
	f, err := config.Load(path)
	if err != nil || f.Context != "work" || f.AuthContexts["digitalocean"] != "file-token" {
		t.Fatalf("config = %+v, %v", f, err)
	}
	wantCode(t, c.run(t, "auth", "switch", "local"), 0)
	wantCode(t, c.run(t, "hosts", "list"), 0)
	if c.pc.Context != "local" {
		t.Fatalf("context after switch = %s", c.pc.Context)
	}
}

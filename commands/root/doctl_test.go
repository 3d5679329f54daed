package root

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dropback/dropback/pkg/config"
	"github.com/dropback/dropback/pkg/provider"
)

// writeDoctlConfig writes doctl's config file where doctl keeps it.
func writeDoctlConfig(t *testing.T, c *cli, content string) {
	t.Helper()
	dir := filepath.Join(c.env["HOME"], ".config", "doctl")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

const doctlConfig = "access-token: doctl-default-token\ncontext: work\nauth-contexts:\n  work: doctl-work-token\n  Home: doctl-home-token\n"

func TestDoctlHabitsSelectTheContext(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		doctl   bool
		args    []string
		context string
		token   string
		apiURL  string
	}{
		{name: "DIGITALOCEAN_CONTEXT selects a context", env: map[string]string{"DIGITALOCEAN_CONTEXT": "work"}, doctl: true,
			context: "work", token: "doctl-work-token"},
		{name: "DROPBACK_CONTEXT beats DIGITALOCEAN_CONTEXT", env: map[string]string{"DIGITALOCEAN_CONTEXT": "work", "DROPBACK_CONTEXT": "local"},
			doctl: true, context: "local"},
		{name: "a context name is lowercased", doctl: true, args: []string{"--context", "WORK"}, context: "work", token: "doctl-work-token"},
		{name: "doctl's auth-contexts match without case", doctl: true, args: []string{"--context", "home"}, context: "home", token: "doctl-home-token"},
		{name: "digitalocean is the account doctl uses now", doctl: true, args: []string{"--context", "digitalocean"},
			context: "digitalocean", token: "doctl-work-token"},
		{name: "doctl's default context", doctl: true, args: []string{"--context", "default"}, context: "default", token: "doctl-default-token"},
		{name: "doctl's file never selects the context", doctl: true, context: "local"},
		{name: "DIGITALOCEAN_API_URL", env: map[string]string{"DIGITALOCEAN_API_URL": "http://127.0.0.1:9/"}, doctl: true,
			args: []string{"--context", "work"}, context: "work", token: "doctl-work-token", apiURL: "http://127.0.0.1:9/"},
		{name: "-u beats DIGITALOCEAN_API_URL", env: map[string]string{"DIGITALOCEAN_API_URL": "http://127.0.0.1:9/"}, doctl: true,
			args: []string{"--context", "work", "-u", "http://127.0.0.1:8/"}, context: "work", token: "doctl-work-token", apiURL: "http://127.0.0.1:8/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCLI(t)
			for k, v := range tt.env {
				c.env[k] = v
			}
			if tt.doctl {
				writeDoctlConfig(t, c, doctlConfig)
			}
			wantCode(t, c.run(t, append(tt.args, "hosts", "list")...), 0)
			if c.pc.Context != tt.context || c.pc.Token != tt.token || c.pc.APIURL != tt.apiURL {
				t.Fatalf("provider config = %+v, want context %q token %q api %q", c.pc, tt.context, tt.token, tt.apiURL)
			}
		})
	}
}

func TestDoctlConfigIsNeverWritten(t *testing.T) {
	c := newCLI(t)
	writeDoctlConfig(t, c, doctlConfig)
	path := filepath.Join(c.env["HOME"], ".config", "doctl", "config.yaml")
	before, _ := os.ReadFile(path)
	c.stdin = "dop_v1_new\n"
	wantCode(t, c.run(t, "auth", "init", "--context", "work"), 0)
	wantCode(t, c.run(t, "auth", "switch", "home"), 0)
	r := c.run(t, "auth", "remove", "home")
	wantCode(t, r, 1)
	wantOneLineError(t, r, "doctl's config file", "doctl auth remove --context home")
	after, _ := os.ReadFile(path)
	if string(before) != string(after) {
		t.Fatalf("doctl's config changed:\n%s", after)
	}
	r = c.run(t, "auth", "list", "--format", "Name,Current,Source", "--no-header")
	wantCode(t, r, 0)
	want := "local                —\ndefault              doctl\ndigitalocean         doctl\nhome            *    doctl\nwork                 dropback\n"
	if r.out != want {
		t.Fatalf("auth list =\n%s\nwant\n%s", r.out, want)
	}
}

func TestAuthInitChecksTheTokenAndMakesTheContextCurrent(t *testing.T) {
	c := newCLI(t)
	c.stdin = "dop_v1_secret\n"
	r := c.run(t, "auth", "init", "--context", "WORK")
	wantCode(t, r, 0)
	if got := c.fake.Calls; len(got) != 1 || got[0] != "CheckAccount " {
		t.Fatalf("calls = %v, want one account check", got)
	}
	if !strings.Contains(r.err, "dev@example.com") || !strings.Contains(r.err, "Now using context work") {
		t.Fatalf("stderr = %q", r.err)
	}
	wantCode(t, c.run(t, "hosts", "list"), 0)
	if c.pc.Context != "work" || c.pc.Token != "dop_v1_secret" {
		t.Fatalf("the next command runs in %+v", c.pc)
	}
}

func TestAuthInitRefusedTokenIsNotStored(t *testing.T) {
	c := newCLI(t)
	c.stdin = "dop_v1_bad\n"
	c.fake.Errs = map[string]error{"CheckAccount": fmt.Errorf("401 Unable to authenticate you: %w", provider.ErrAuth)}
	r := c.run(t, "auth", "init", "--context", "work")
	wantCode(t, r, 4)
	wantOneLineError(t, r, "not stored", "Unable to authenticate you")
	if _, err := os.Stat(filepath.Join(c.env["HOME"], ".config", "dropback", "config.yaml")); !os.IsNotExist(err) {
		t.Fatalf("a config file was written: %v", err)
	}
}

func TestAuthRemoveAndToken(t *testing.T) {
	c := newCLI(t)
	path := writeConfig(t, c, twoAccounts, 0o600)
	r := c.run(t, "auth", "token")
	wantCode(t, r, 0)
	if r.out != "file-token\n" {
		t.Fatalf("auth token = %q", r.out)
	}
	r = c.run(t, "auth", "token", "--context", "Work")
	if r.out != "work-token\n" {
		t.Fatalf("auth token --context Work = %q", r.out)
	}
	wantCode(t, c.run(t, "auth", "token", "--context", "local"), 2)
	wantCode(t, c.run(t, "auth", "remove", "--context", "DigitalOcean"), 0)
	f, err := config.Load(path)
	if err != nil || f.Context != "" || f.AuthContexts["digitalocean"] != "" || f.AuthContexts["work"] != "work-token" {
		t.Fatalf("config = %+v, %v", f, err)
	}
	wantCode(t, c.run(t, "auth", "remove", "nowhere"), 1)
	r = c.run(t, "auth", "token")
	wantCode(t, r, 2)
}

func TestNoRepositoryWithATokenSaysHowToSelectDigitalOcean(t *testing.T) {
	for _, withToken := range []bool{false, true} {
		c := newCLI(t)
		if withToken {
			c.env["DIGITALOCEAN_ACCESS_TOKEN"] = "dop_v1_env"
		}
		c.fake.Errs = map[string]error{"ListBackups": provider.Errorf(provider.ErrNoRepo, "repository not initialised at /r")}
		r := c.run(t, "backups", "list")
		wantCode(t, r, 10)
		if got := strings.Contains(r.err, "--context digitalocean"); got != withToken {
			t.Errorf("token %v: stderr = %q", withToken, r.err)
		}
	}
}

func TestJSONErrorsAreOnStdoutAsDoctlPrintsThem(t *testing.T) {
	c := newCLI(t)
	r := c.run(t, "hosts", "get", "nope", "-o", "json")
	wantCode(t, r, 1)
	var v struct {
		Errors []struct {
			Detail string `json:"detail"`
		} `json:"errors"`
	}
	if err := json.Unmarshal([]byte(r.out), &v); err != nil || len(v.Errors) != 1 {
		t.Fatalf("stdout = %q: %v", r.out, err)
	}
	if !strings.Contains(v.Errors[0].Detail, "get host nope") || !strings.Contains(r.err, "Error: "+v.Errors[0].Detail) {
		t.Fatalf("detail %q, stderr %q", v.Errors[0].Detail, r.err)
	}
	if !strings.HasPrefix(r.out, `{"errors":[{"detail":`) {
		t.Fatalf("not doctl's compact form: %q", r.out)
	}
	// A usage error too; and text output keeps stdout for data only.
	r = c.run(t, "backups", "get", "abc", "-o", "json")
	wantCode(t, r, 2)
	if !strings.HasPrefix(r.out, `{"errors":[{"detail":"invalid backup ID`) {
		t.Fatalf("stdout = %q", r.out)
	}
	r = c.run(t, "hosts", "get", "nope")
	if r.out != "" {
		t.Fatalf("text mode: stdout = %q", r.out)
	}
}

func TestDoctlColumnsWork(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"policy", "get", "web-1", "--format", "DropletID,BackupPolicyPlan"}, "Droplet ID    Plan\n1             daily\n"},
		{[]string{"policy", "get", "web-1", "--format", "dropletid,backuppolicyplan,BackupPolicyHour,NextBackupWindowStart", "--no-header"},
			"1    daily    4    2024-06-02T04:00:00Z\n"},
		{[]string{"backups", "get", "101", "--format", "ID,Name,Type,Distribution,Slug,Public,MinDisk,Created"},
			"ID     Name                Type      Distribution    Slug    Public    Min Disk    Created\n" +
				"101    web-1 2024-05-30    backup                            false     20          2024-05-30T05:12:00Z\n"},
		{[]string{"snapshots", "list", "--format", "ID,CreatedAt,Regions,ResourceId,ResourceType,MinDiskSize,Tags", "--no-header"},
			"301    2024-05-27T05:12:00Z    []            20 GB\n"},
		{[]string{"actions", "get", "1003", "--format", "ID,Status,Type,StartedAt,CompletedAt,ResourceID,ResourceType,Region"},
			"ID      Status     Type       Started At              Completed At            Resource ID    Resource Type    Region\n" +
				"1003    errored    convert    2024-05-31T22:00:00Z    2024-05-31T05:20:00Z    201            backup           —\n"},
		{[]string{"policy", "supported", "--format", "Name,PossibleWindowStarts,WindowLengthHours,RetentionPeriodDays,PossibleDays", "--no-header"},
			"daily     [0 4 8 12 16 20]    4    7     []\nweekly    [0 4 8 12 16 20]    4    28    [SUN MON TUE WED THU FRI SAT]\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := newCLI(t).run(t, tt.args...)
			wantCode(t, r, 0)
			if r.out != tt.want {
				t.Fatalf("got\n%q\nwant\n%q", r.out, tt.want)
			}
		})
	}
}

func TestTemplate(t *testing.T) {
	c := newCLI(t)
	r := c.run(t, "policy", "get", "web-1", "--template", "{{.DropletID}} {{.BackupPolicy.Plan}} {{.BackupPolicy.RetentionPeriodDays}}")
	wantCode(t, r, 0)
	if r.out != "1 daily 7\n" {
		t.Fatalf("got %q", r.out)
	}
	r = c.run(t, "backups", "list", "web-1", "--template", "{{.ID}}:{{.HostName}}")
	if r.out != "101:web-1\n102:web-1\n" {
		t.Fatalf("got %q", r.out)
	}
	for _, bad := range [][]string{
		{"backups", "list", "--template", "{{.ID"},
		{"backups", "list", "--template", "{{.Nope}}"},
		{"backups", "list", "--template", "{{.ID}}", "--format", "ID"},
		{"backups", "list", "--template", "{{.ID}}", "-o", "json"},
	} {
		r := c.run(t, bad...)
		wantCode(t, r, 2)
		if r.out != "" && !strings.HasPrefix(r.out, `{"errors"`) {
			t.Errorf("%v printed %q", bad, r.out)
		}
	}
	// A host whose backups are off has no policy: a template that reads
	// one says which item it could not print, and a guarded one prints
	// every item (found by a walkthrough: "invalid --template").
	r = c.run(t, "policy", "list", "--template", "{{.DropletID}} {{.BackupPolicy.Plan}}")
	wantCode(t, r, 2)
	wantOneLineError(t, r, "--template cannot print item", "{{with .BackupPolicy}}")
	r = c.run(t, "policy", "list", "--template", "{{.DropletID}}:{{with .BackupPolicy}}{{.Plan}}{{end}}")
	wantCode(t, r, 0)
	if !strings.Contains(r.out, "1:daily\n") || strings.Count(r.out, "\n") < 2 {
		t.Fatalf("guarded template: %q", r.out)
	}
	c = newCLI(t)
	r = c.run(t, "backups", "convert", "101", "--template", "{{.ID")
	wantCode(t, r, 2)
	if len(c.calls("ConvertBackup")) != 0 {
		t.Fatal("a bad --template is refused before anything changes")
	}
}

// A delete that deleted nothing prints no list: with -o json the error
// document alone is on stdout, and text prints no empty table (found by a
// walkthrough: `[]`, then the error nowhere on stdout).
func TestFailedDeleteOfNothingPrintsOnlyTheError(t *testing.T) {
	for _, format := range []string{"json", "text"} {
		c := newCLI(t)
		c.fake.Errs = map[string]error{"DeleteBackups": provider.Errorf(provider.ErrAuth, "access denied")}
		r := c.run(t, "backups", "delete", "web-1", "latest", "--force", "-o", format)
		wantCode(t, r, 4)
		if format == "text" {
			if r.out != "" {
				t.Errorf("text: stdout = %q, want nothing", r.out)
			}
			continue
		}
		var v struct {
			Errors []struct {
				Detail string `json:"detail"`
			} `json:"errors"`
		}
		if err := json.Unmarshal([]byte(r.out), &v); err != nil || len(v.Errors) != 1 {
			t.Errorf("json: stdout = %q, want the errors document alone", r.out)
		}
	}
}

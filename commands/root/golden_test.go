package root

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/dropback/dropback/commands/internal/fakeprovider"
)

// Every list and get, and the results of the other verbs, in text and JSON.
var goldenCases = []struct {
	name string
	args []string
}{
	{"hosts-list", []string{"hosts", "list"}},
	{"hosts-get", []string{"hosts", "get", "web-1"}},
	{"hosts-add", []string{"hosts", "add", "app-1", "--disk", "/img/a.img", "--disk", "/img/b.img"}},
	{"backups-list", []string{"backups", "list"}},
	{"backups-list-host", []string{"backups", "list", "web-1"}},
	{"backups-get", []string{"backups", "get", "101"}},
	{"backups-create", []string{"backups", "create", "web-1"}},
	{"backups-restore-to", []string{"backups", "restore", "web-1", "latest", "--to", "/tmp/web-1.img"}},
	{"backups-verify", []string{"backups", "verify"}},
	{"backups-enable", []string{"backups", "enable", "db-1", "--plan", "weekly", "--weekday", "TUE", "--hour", "16"}},
	{"backups-convert", []string{"backups", "convert", "102"}},
	{"snapshots-list", []string{"snapshots", "list"}},
	{"actions-list", []string{"actions", "list"}},
	{"actions-get", []string{"actions", "get", "1003"}},
	{"policy-list", []string{"policy", "list"}},
	{"policy-get", []string{"policy", "get", "web-1"}},
	{"policy-supported", []string{"policy", "supported"}},
	{"policy-set", []string{"policy", "set", "web-1", "--hour", "8"}},
	{"repo-stats", []string{"repo", "stats"}},
	{"repo-init", []string{"repo", "init", "--chunk-size", "4MiB"}},
	{"repo-gc", []string{"repo", "gc"}},
	{"run-due", []string{"run", "--due"}},
	{"auth-list", []string{"auth", "list"}},
}

func TestGolden(t *testing.T) {
	for _, tc := range goldenCases {
		for _, format := range []string{"text", "json"} {
			t.Run(tc.name+"/"+format, func(t *testing.T) {
				c := newCLI(t)
				c.fake.RunReport.Backups = c.fake.Backups[:1]
				r := c.run(t, append(tc.args, "-o", format)...)
				wantCode(t, r, 0)
				ext := ".txt"
				if format == "json" {
					ext = ".json"
					if !json.Valid([]byte(r.out)) {
						t.Fatalf("not JSON: %s", r.out)
					}
				}
				golden(t, tc.name+ext, r.out)
			})
		}
	}
}

func TestJSONEmptyListsAreEmptyArrays(t *testing.T) {
	lists := [][]string{
		{"hosts", "list"}, {"backups", "list"}, {"snapshots", "list"},
		{"actions", "list"}, {"policy", "list"},
	}
	for _, args := range lists {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			c := newCLI(t)
			c.fake = fakeprovider.Empty()
			r := c.run(t, append(args, "-o", "json")...)
			wantCode(t, r, 0)
			if r.out != "[]\n" {
				t.Fatalf("stdout = %q, want []", r.out)
			}
		})
	}
}

func TestJSONOfGetIsAnObject(t *testing.T) {
	c := newCLI(t)
	r := c.run(t, "hosts", "get", "1", "-o", "json")
	wantCode(t, r, 0)
	var v map[string]any
	if err := json.Unmarshal([]byte(r.out), &v); err != nil {
		t.Fatalf("not an object: %v\n%s", err, r.out)
	}
	if v["name"] != "web-1" || v["backup_enabled"] != true {
		t.Fatalf("unexpected object: %v", v)
	}
}

func TestJSONIsTheSameOnATerminal(t *testing.T) {
	pipe := newCLI(t).run(t, "backups", "list", "-o", "json")
	c := newCLI(t)
	c.tty = true
	term := c.run(t, "backups", "list", "-o", "json")
	if pipe.out != term.out {
		t.Fatalf("JSON differs between terminal and pipe:\n%s\n%s", term.out, pipe.out)
	}
}

func TestFormatPicksColumnsInOrderWithoutRegardToCase(t *testing.T) {
	c := newCLI(t)
	r := c.run(t, "hosts", "list", "--format", "name,ID,paths")
	wantCode(t, r, 0)
	want := "Name     ID    Paths\n" +
		"web-1    1     /var/lib/libvirt/images/web-1.img\n" +
		"db-1     2     /dev/vg0/db-root,/dev/vg0/db-data\n"
	if r.out != want {
		t.Fatalf("got\n%s\nwant\n%s", r.out, want)
	}
}

func TestFormatUnknownColumnIsAUsageError(t *testing.T) {
	c := newCLI(t)
	r := c.run(t, "backups", "list", "--format", "ID,Bogus")
	wantCode(t, r, 2)
	wantOneLineError(t, r, `"Bogus"`, "ID, Name, Type, Host, Created, Size, Status")
	if r.out != "" {
		t.Fatalf("stdout = %q, want nothing", r.out)
	}
}

func TestFormatUnknownColumnChangesNothing(t *testing.T) {
	c := newCLI(t)
	r := c.run(t, "backups", "create", "web-1", "--format", "Nope")
	wantCode(t, r, 2)
	if got := c.calls("CreateBackup"); len(got) != 0 {
		t.Fatalf("backup taken despite a bad --format: %v", got)
	}
}

func TestNoHeader(t *testing.T) {
	c := newCLI(t)
	r := c.run(t, "backups", "list", "web-1", "--no-header", "--format", "ID,Type")
	wantCode(t, r, 0)
	if want := "101    backup\n102    backup\n"; r.out != want {
		t.Fatalf("got %q, want %q", r.out, want)
	}
}

func TestEmptyTextListPrintsTheHeaderOnly(t *testing.T) {
	c := newCLI(t)
	c.fake = fakeprovider.Empty()
	r := c.run(t, "hosts", "list")
	wantCode(t, r, 0)
	if want := "ID    Name    Disks    Size    Backups    Created\n"; r.out != want {
		t.Fatalf("got %q, want %q", r.out, want)
	}
	r = c.run(t, "hosts", "list", "--no-header")
	if r.out != "" {
		t.Fatalf("got %q, want nothing", r.out)
	}
}

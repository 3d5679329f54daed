package s3

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestSplitCommand(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		bad  bool
	}{
		{in: "/usr/local/bin/creds", want: []string{"/usr/local/bin/creds"}},
		{in: "  creds   --role  backup ", want: []string{"creds", "--role", "backup"}},
		{in: `"/opt/my tools/creds" --x`, want: []string{"/opt/my tools/creds", "--x"}},
		{in: `sh -c 'echo "$HOME" a'`, want: []string{"sh", "-c", `echo "$HOME" a`}},
		{in: `a\ b "c\"d" "e\f" ''`, want: []string{"a b", `c"d`, `e\f`, ""}},
		{in: `x'y'"z"`, want: []string{"xyz"}},
		{in: "", want: nil},
		{in: `sh -c 'echo`, bad: true},
		{in: `"open`, bad: true},
	}
	for _, tt := range tests {
		got, err := splitCommand(tt.in)
		switch {
		case tt.bad && err == nil:
			t.Errorf("splitCommand(%q) = %q; want an error", tt.in, got)
		case !tt.bad && err != nil:
			t.Errorf("splitCommand(%q): %v", tt.in, err)
		case !tt.bad && !reflect.DeepEqual(got, tt.want):
			t.Errorf("splitCommand(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

func TestRunCredentialProcess(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "my tools")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	script := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return `"` + p + `"`
	}
	good := script("good", `echo '{"Version":1,"AccessKeyId":"AK'"$1"'","SecretAccessKey":"sk","SessionToken":"tok","Expiration":"2099-01-02T03:04:05Z"}'`)
	tests := []struct {
		cmd, want string // want: the access key, or a part of the error
		ok        bool
	}{
		{cmd: good, want: "AK", ok: true},
		{cmd: good + " 'x y'", want: "AKx y", ok: true},
		{cmd: script("fails", "echo starting >&2; echo token expired, run login >&2; exit 3"), want: "exit status 3: token expired, run login"},
		{cmd: script("text", "echo hello"), want: "printed no credentials in JSON"},
		{cmd: script("v2", `echo '{"Version":2,"AccessKeyId":"a","SecretAccessKey":"b"}'`), want: "Version 2"},
		{cmd: script("nokey", `echo '{"Version":1,"AccessKeyId":"a"}'`), want: "no AccessKeyId or no SecretAccessKey"},
		{cmd: filepath.Join(dir, "missing"), want: "no such file"},
	}
	for _, tt := range tests {
		v, err := runCredentialProcess(context.Background(), tt.cmd)
		switch {
		case tt.ok && err != nil:
			t.Errorf("%s: %v", tt.cmd, err)
		case tt.ok && (v.AccessKeyID != tt.want || v.SecretAccessKey != "sk" || v.SessionToken != "tok" || v.Expiration.Year() != 2099):
			t.Errorf("%s: got %+v", tt.cmd, v)
		case !tt.ok && (err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n")):
			t.Errorf("%s: got %v; want one line saying %q", tt.cmd, err, tt.want)
		}
	}
}

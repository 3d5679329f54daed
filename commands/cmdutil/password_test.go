package cmdutil

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

// TestPasswordSources: the first source that is set gives the password;
// with none, a prompt on a terminal, else ErrPassword and stdin unread.
func TestPasswordSources(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pw")
	if err := os.WriteFile(file, []byte("from the file\r\nsecond line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other")
	if err := os.WriteFile(other, []byte("from the env file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		flagFile string
		env      map[string]string
		tty      bool
		stdin    string
		want     string
		wantErr  string // with ErrPassword unless "usage"
		prompted bool
	}{
		{name: "flag file first", flagFile: file, tty: true,
			env:  map[string]string{EnvPasswordFile: other, EnvPasswordCommand: "echo from the command", EnvPassword: "from the env"},
			want: "from the file"},
		{name: "env file before the command", env: map[string]string{EnvPasswordFile: other, EnvPasswordCommand: "echo from the command", EnvPassword: "from the env"},
			want: "from the env file"},
		{name: "command before the variable", env: map[string]string{EnvPasswordCommand: "printf 'from the command\\nrest'", EnvPassword: "from the env"},
			want: "from the command"},
		{name: "the variable", env: map[string]string{EnvPassword: "from the env"}, tty: true, stdin: "typed\n", want: "from the env"},
		{name: "a prompt on a terminal", tty: true, stdin: "typed\n", want: "typed", prompted: true},
		{name: "no terminal", stdin: "typed\n", wantErr: "no password was given"},
		{name: "an empty line typed", tty: true, stdin: "\n", wantErr: "empty", prompted: true},
		{name: "a failing command", env: map[string]string{EnvPasswordCommand: "exit 3"}, wantErr: EnvPasswordCommand + " failed"},
		{name: "a command printing nothing", env: map[string]string{EnvPasswordCommand: "true"}, wantErr: "empty password"},
		{name: "a missing file", flagFile: filepath.Join(dir, "missing"), wantErr: "usage"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ios, in, out, errOut := output.Test()
			ios.SetTTY(tc.tty)
			in.WriteString(tc.stdin)
			f := New("test", ios, func(k string) string { return tc.env[k] }, nil)
			f.Flags.PasswordFile = tc.flagFile
			pw, err := f.Password(context.Background())
			switch {
			case tc.wantErr == "usage":
				var fe *FlagError
				if !errors.As(err, &fe) {
					t.Fatalf("err %v, want a usage error", err)
				}
			case tc.wantErr != "":
				if !errors.Is(err, provider.ErrPassword) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want ErrPassword saying %q", err, tc.wantErr)
				}
			case err != nil || string(pw) != tc.want:
				t.Fatalf("password %q, %v; want %q", pw, err, tc.want)
			}
			if got := strings.Contains(errOut.String(), "Repository password: "); got != tc.prompted {
				t.Errorf("prompted %v, want %v (stderr %q)", got, tc.prompted, errOut)
			}
			if !tc.prompted && in.Len() != len(tc.stdin) {
				t.Errorf("stdin was read without a prompt")
			}
			if out.Len() > 0 || (strings.TrimSpace(tc.stdin) != "" && strings.Contains(errOut.String(), strings.TrimSpace(tc.stdin))) {
				t.Errorf("the password was printed: stdout %q, stderr %q", out, errOut)
			}
		})
	}
}

// TestNewPassword: a new key's password from --new-password-file, else its
// variable, else asked twice on a terminal; none elsewhere.
func TestNewPassword(t *testing.T) {
	file := filepath.Join(t.TempDir(), "new")
	if err := os.WriteFile(file, []byte("from the file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		file    string
		env     string
		tty     bool
		stdin   string
		want    string // "" for none
		wantErr string
		prompts int
	}{
		{name: "the file first", file: file, env: "from the env", tty: true, want: "from the file"},
		{name: "the variable", env: "from the env", tty: true, want: "from the env"},
		{name: "asked twice", tty: true, stdin: "new\nnew\n", want: "new", prompts: 2},
		{name: "two that differ", tty: true, stdin: "new\nother\n", wantErr: "differ", prompts: 2},
		{name: "none without a terminal", stdin: "new\nnew\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ios, in, out, errOut := output.Test()
			ios.SetTTY(tc.tty)
			in.WriteString(tc.stdin)
			f := New("test", ios, func(k string) string {
				if k == EnvNewPassword {
					return tc.env
				}
				return ""
			}, nil)
			pw, err := f.NewPasswordFor(context.Background(), tc.file, EnvNewPassword, "new password")
			if tc.wantErr != "" {
				if !errors.Is(err, provider.ErrPassword) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want ErrPassword saying %q", err, tc.wantErr)
				}
			} else if err != nil || string(pw) != tc.want || (tc.want == "" && pw != nil) {
				t.Fatalf("new password %q, %v; want %q", pw, err, tc.want)
			}
			if got := strings.Count(errOut.String(), ": "); got != tc.prompts {
				t.Errorf("%d prompts, want %d (stderr %q)", got, tc.prompts, errOut)
			}
			if out.Len() > 0 || strings.Contains(errOut.String(), "new\n") {
				t.Errorf("the password was printed: stdout %q, stderr %q", out, errOut)
			}
		})
	}
}

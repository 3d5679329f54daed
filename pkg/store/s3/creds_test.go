package s3_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dropback/dropback/internal/miniotest"
	"github.com/dropback/dropback/pkg/store"
	"github.com/dropback/dropback/pkg/store/s3"
)

// Credentials from a profile of the shared AWS files, with no AWS_* keys:
// a credential_process with no arguments, or quoted ones, works; a profile
// that is missing, or whose source fails, is ErrNoCredentials with one
// line that names the profile and the reason.
func TestProfileCredentials(t *testing.T) {
	srv := miniotest.Start(t)
	bucket := srv.Bucket(t)
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "my tools"), 0o700); err != nil {
		t.Fatal(err)
	}
	write := func(name, text string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	proc := write("creds.sh", fmt.Sprintf("#!/bin/sh\necho '{\"Version\":1,\"AccessKeyId\":\"%s\",\"SecretAccessKey\":\"%s\"}'\n",
		srv.AccessKey, srv.SecretKey), 0o700)
	spaced := write("my tools/creds.sh", fmt.Sprintf("#!/bin/sh\necho '{\"Version\":1,\"AccessKeyId\":\"%s\",\"SecretAccessKey\":\"%s\"}'\n",
		srv.AccessKey, srv.SecretKey), 0o700)
	failing := write("fail.sh", "#!/bin/sh\necho 'session expired: run sso login' >&2\nexit 2\n", 0o700)
	config := write("config", fmt.Sprintf(`[profile bare]
credential_process = %s

[profile quoted]
credential_process = "%s" --unused 'an argument'

[profile failing]
credential_process = %s

[profile region-only]
region = us-east-1
`, proc, spaced, failing), 0o600)
	creds := write("credentials", fmt.Sprintf("[keys]\naws_access_key_id = %s\naws_secret_access_key = %s\n\n[half]\naws_access_key_id = %s\n",
		srv.AccessKey, srv.SecretKey, srv.AccessKey), 0o600)

	tests := []struct {
		profile string
		want    string // "" for credentials that work, else a part of the error
	}{
		{profile: "bare"},
		{profile: "quoted"},
		{profile: "keys"},
		{profile: "nope", want: `AWS_PROFILE=nope: there is no profile "nope" in ` + config},
		{profile: "failing", want: `profile "failing": credential_process: run ` + failing + `: exit status 2: session expired: run sso login`},
		{profile: "half", want: `profile "half" in ` + config + " or " + creds + ` has aws_access_key_id but no aws_secret_access_key`},
	}
	for _, tt := range tests {
		env := map[string]string{"AWS_PROFILE": tt.profile, "AWS_CONFIG_FILE": config,
			"AWS_SHARED_CREDENTIALS_FILE": creds, "HOME": dir}
		opts := s3.Options{Endpoint: srv.Endpoint, Region: srv.Region, ListLag: -1, Getenv: func(k string) string { return env[k] }}
		st, err := s3.Open(context.Background(), "s3://"+bucket+"/p", opts)
		if err == nil {
			err = st.List(context.Background(), "", func(store.Info) error { return nil })
		}
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("profile %s: %v", tt.profile, err)
		case tt.want != "" && (!errors.Is(err, s3.ErrNoCredentials) || !strings.Contains(err.Error(), tt.want) ||
			strings.Contains(err.Error(), "\n")):
			t.Errorf("profile %s: got %v; want ErrNoCredentials saying %q on one line", tt.profile, err, tt.want)
		}
	}
}

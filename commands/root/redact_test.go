package root

import (
	"errors"
	"strings"
	"testing"
)

func TestErrorsRedactURLsWhateverTheScheme(t *testing.T) {
	for _, url := range []string{
		"ftp://tok-secret1@host/",
		"http://user-secret2:pass-secret3@127.0.0.1:9/v2/droplets",
		"https://api.example/v2?access_token=query-secret4&page=2",
		"s3://key-secret5:secret-secret6@bucket/prefix?X-Amz-Signature=query-secret7",
	} {
		c := newCLI(t)
		c.fake.Errs = map[string]error{"ListHosts": errors.New(`Get "` + url + `": dial tcp: connection refused`)}
		r := c.run(t, "hosts", "list")
		wantCode(t, r, 1)
		wantOneLineError(t, r, "REDACTED", "connection refused")
		if strings.Contains(r.err, "-secret") {
			t.Errorf("stderr = %q", r.err)
		}
	}
}

func TestAccessTokenHelpWarnsOfTheProcessList(t *testing.T) {
	c := newCLI(t)
	r := c.run(t, "--help")
	wantCode(t, r, 0)
	var line string
	for _, l := range strings.Split(r.out, "\n") {
		if strings.Contains(l, "--access-token") {
			line = l
		}
	}
	for _, want := range []string{"$DIGITALOCEAN_ACCESS_TOKEN", "dropback auth init", "other users", "process list"} {
		if !strings.Contains(line, want) {
			t.Errorf("--access-token help %q does not mention %q", line, want)
		}
	}
}

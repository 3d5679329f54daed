package safetext

import (
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://api.digitalocean.com/", "https://api.digitalocean.com/"},
		{"http://127.0.0.1:8080/v2/droplets?page=2&per_page=200", "http://127.0.0.1:8080/v2/droplets?page=2&per_page=200"},
		{"ftp://TOKEN@host/", "ftp://REDACTED@host/"},
		{"http://user:pass@host:1/x", "http://REDACTED@host:1/x"},
		{"https://h/?access_token=abc&page=2", "https://h/?access_token=REDACTED&page=2"},
		{"https://h/?X-Amz-Signature=abc&X-Amz-Credential=AKIA", "https://h/?X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED"},
		{"s3://key:secret@bucket/p?sessionToken=x", "s3://REDACTED@bucket/p?sessionToken=REDACTED"},
		{"https://h/?%zz=1", "https://h/?REDACTED"},
		{"TOKEN@example.com", "REDACTED@example.com"},
		{"tok@example.com/path?x=1", "REDACTED@example.com/path?x=1"},
		{"http://[::1:bad", "http://[::1:bad"},
		{"http://user:pa ss@[bad/", "http://REDACTED@[bad/"},
		{"/v2/droplets", "/v2/droplets"},
	}
	for _, tc := range tests {
		if got := URL(tc.in); got != tc.want {
			t.Errorf("URL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRedactFindsURLsInText(t *testing.T) {
	in := `api url "ftp://TOKEN@host/": bad; Get "http://u:p@127.0.0.1:9/v2?token=t1": dial tcp: refused; see https://docs.example/`
	got := Redact(in)
	for _, secret := range []string{"TOKEN", "u:p", "t1"} {
		if strings.Contains(got, secret) {
			t.Errorf("Redact left %q in %q", secret, got)
		}
	}
	if !strings.Contains(got, "https://docs.example/") || !strings.Contains(got, "http://REDACTED@127.0.0.1:9/v2?token=REDACTED") {
		t.Errorf("Redact = %q", got)
	}
}

func TestEscape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain name-1", "plain name-1"},
		{"é ünïcödé 日本", "é ünïcödé 日本"},
		{"a\x1b]0;title\x07b", `a\x1b]0;title\ab`},
		{"line\r\nbreak\ttab", `line\r\nbreak\ttab`},
		{"del\x7f c1\u009b", `del\x7f c1\u009b`},
		{"bidi\u202eevil\u2066", `bidi\u202eevil\u2066`},
	}
	for _, tc := range tests {
		if got := Escape(tc.in); got != tc.want {
			t.Errorf("Escape(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestClip(t *testing.T) {
	if got := Clip("short", 10); got != "short" {
		t.Errorf("Clip = %q", got)
	}
	if got := Clip("ünïcödé-long", 4); got != "ünïc…" {
		t.Errorf("Clip = %q", got)
	}
}

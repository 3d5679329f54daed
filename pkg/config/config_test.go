package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSaveWritesMode0600AndRoundTrips(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "config.yaml")
	f := &File{Context: "digitalocean", Other: map[string]any{"keep-me": "yes"}}
	f.SetToken("digitalocean", "secret-token")
	if err := f.Save(path); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode().Perm(); got != 0o600 {
		t.Fatalf("mode = %04o, want 0600", got)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Context != "digitalocean" || got.AuthContexts["digitalocean"] != "secret-token" {
		t.Fatalf("round trip = %+v", got)
	}
	if got.Other["keep-me"] != "yes" {
		t.Fatalf("unknown key lost: %+v", got.Other)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
}

func TestSaveReplacesLooseModeFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte("context: local\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := (&File{Context: "x"}).Save(path); err != nil {
		t.Fatal(err)
	}
	info, _ := os.Stat(path)
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %04o", info.Mode().Perm())
	}
}

func TestLoadRefusesReadableByOthers(t *testing.T) {
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
		path := filepath.Join(t.TempDir(), "config.yaml")
		if err := os.WriteFile(path, []byte("context: local\n"), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(path, mode)
		_, err := Load(path)
		if !errors.Is(err, ErrInsecure) {
			t.Fatalf("mode %04o: err = %v, want ErrInsecure", mode, err)
		}
		if !strings.Contains(err.Error(), "chmod 600 "+path) {
			t.Fatalf("mode %04o: message does not say how to fix: %v", mode, err)
		}
	}
}

func TestLoadRefusesInvalidYAML(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte("context: [unclosed\n\t- nope"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), "not valid YAML") {
		t.Fatalf("err = %v, want a 'not valid YAML' error", err)
	}
}

func TestLoadMissingAndEmptyFiles(t *testing.T) {
	dir := t.TempDir()
	f, err := Load(filepath.Join(dir, "missing.yaml"))
	if err != nil || f.Context != "" {
		t.Fatalf("missing file: %+v, %v", f, err)
	}
	empty := filepath.Join(dir, "empty.yaml")
	os.WriteFile(empty, nil, 0o600)
	if _, err := Load(empty); err != nil {
		t.Fatalf("empty file: %v", err)
	}
}

func env(m map[string]string) Env { return func(k string) string { return m[k] } }

func fileWith(ctx string, tokens map[string]string) func() (*File, error) {
	return func() (*File, error) { return &File{Context: ctx, AuthContexts: tokens}, nil }
}

func TestContextResolutionOrder(t *testing.T) {
	tests := []struct {
		name string
		flag string
		env  map[string]string
		file func() (*File, error)
		want string
	}{
		{"flag wins", "flagctx", map[string]string{EnvContext: "envctx"}, fileWith("filectx", nil), "flagctx"},
		{"env next", "", map[string]string{EnvContext: "envctx"}, fileWith("filectx", nil), "envctx"},
		{"file next", "", nil, fileWith("filectx", nil), "filectx"},
		{"local last", "", nil, fileWith("", nil), "local"},
		{"no file", "", nil, nil, "local"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Context(tt.flag, env(tt.env), tt.file)
			if err != nil || got != tt.want {
				t.Fatalf("Context = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestContextDoesNotReadFileWhenFlagOrEnvDecides(t *testing.T) {
	bad := func() (*File, error) { return nil, errors.New("must not be read") }
	if _, err := Context("x", env(nil), bad); err != nil {
		t.Fatal(err)
	}
	if _, err := Context("", env(map[string]string{EnvContext: "y"}), bad); err != nil {
		t.Fatal(err)
	}
	if _, err := Context("", env(nil), bad); err == nil {
		t.Fatal("a broken file must be reported when it decides")
	}
}

func TestTokenResolutionOrder(t *testing.T) {
	file := fileWith("", map[string]string{"digitalocean": "file-token", "other": "other-token"})
	tests := []struct {
		name, flag, ctx string
		env             map[string]string
		want            string
	}{
		{"flag wins", "flag-token", "digitalocean", map[string]string{EnvToken: "env-token"}, "flag-token"},
		{"env next", "", "digitalocean", map[string]string{EnvToken: "env-token"}, "env-token"},
		{"file entry of the context", "", "other", nil, "other-token"},
		{"none", "", "unknown", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Token(tt.flag, tt.ctx, env(tt.env), file)
			if err != nil || got != tt.want {
				t.Fatalf("Token = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestPaths(t *testing.T) {
	e := env(map[string]string{"HOME": "/home/u"})
	if p, _ := Path("", e); p != "/home/u/.config/dropback/config.yaml" {
		t.Errorf("default config path = %s", p)
	}
	if p, _ := Path("", env(map[string]string{"HOME": "/home/u", "XDG_CONFIG_HOME": "/x"})); p != "/x/dropback/config.yaml" {
		t.Errorf("XDG config path = %s", p)
	}
	if p, _ := Path("/etc/c.yaml", e); p != "/etc/c.yaml" {
		t.Errorf("flag config path = %s", p)
	}
	if r, _ := Repo("", e); r != "/home/u/.local/share/dropback/repo" {
		t.Errorf("default repo = %s", r)
	}
	if r, _ := Repo("", env(map[string]string{"HOME": "/h", "XDG_DATA_HOME": "/d"})); r != "/d/dropback/repo" {
		t.Errorf("XDG repo = %s", r)
	}
	if r, _ := Repo("", env(map[string]string{"HOME": "/h", EnvRepo: "s3://b/p"})); r != "s3://b/p" {
		t.Errorf("env repo = %s", r)
	}
	if r, _ := Repo("/flag", env(map[string]string{EnvRepo: "/env"})); r != "/flag" {
		t.Errorf("flag repo = %s", r)
	}
}

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
		{"env next", "", map[string]string{EnvContext: "envctx", EnvDOContext: "doctx"}, fileWith("filectx", nil), "envctx"},
		{"doctl's env next", "", map[string]string{EnvDOContext: "doctx"}, fileWith("filectx", nil), "doctx"},
		{"file next", "", nil, fileWith("filectx", nil), "filectx"},
		{"local last", "", nil, fileWith("", nil), "local"},
		{"no file", "", nil, nil, "local"},
		{"lowercase flag", "WORK", nil, nil, "work"},
		{"lowercase env", "", map[string]string{EnvDOContext: " Work "}, nil, "work"},
		{"lowercase file", "", nil, fileWith("DigitalOcean", nil), "digitalocean"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Context(tt.flag, Sources{Env: env(tt.env), File: tt.file, Doctl: mustNotRead})
			if err != nil || got != tt.want {
				t.Fatalf("Context = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// mustNotRead is a doctl file that is never to be read.
func mustNotRead() (*DoctlFile, error) { return nil, errors.New("doctl's file must not be read") }

func TestContextDoesNotReadFileWhenFlagOrEnvDecides(t *testing.T) {
	bad := func() (*File, error) { return nil, errors.New("must not be read") }
	if _, err := Context("x", Sources{Env: env(nil), File: bad}); err != nil {
		t.Fatal(err)
	}
	if _, err := Context("", Sources{Env: env(map[string]string{EnvContext: "y"}), File: bad}); err != nil {
		t.Fatal(err)
	}
	if _, err := Context("", Sources{Env: env(nil), File: bad}); err == nil {
		t.Fatal("a broken file must be reported when it decides")
	}
}

func TestTokenResolutionOrder(t *testing.T) {
	file := fileWith("", map[string]string{"digitalocean": "file-token", "Other": "other-token"})
	doctl := func() (*DoctlFile, error) {
		return &DoctlFile{AccessToken: "doctl-default", Context: "team",
			AuthContexts: map[string]string{"team": "doctl-team", "Legacy": "doctl-legacy"}}, nil
	}
	tests := []struct {
		name, flag, ctx string
		env             map[string]string
		want            string
	}{
		{"flag wins", "flag-token", "digitalocean", map[string]string{EnvToken: "env-token"}, "flag-token"},
		{"env next", "", "digitalocean", map[string]string{EnvToken: "env-token"}, "env-token"},
		{"file entry of the context", "", "other", nil, "other-token"},
		{"file beats doctl's", "", "digitalocean", nil, "file-token"},
		{"doctl's named context", "", "legacy", nil, "doctl-legacy"},
		{"doctl's default context", "", "default", nil, "doctl-default"},
		{"none", "", "unknown", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Token(tt.flag, tt.ctx, Sources{Env: env(tt.env), File: file, Doctl: doctl})
			if err != nil || got != tt.want {
				t.Fatalf("Token = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestDoctlFileIsReadAsDoctlWritesIt(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "doctl", "config.yaml")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	content := "access-token: dop_v1_default\ncontext: Work\nauth-contexts:\n  Work: dop_v1_work\n  home: dop_v1_home\n" +
		"output: text\napps.dev.config: x\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := LoadDoctl(path)
	if err != nil {
		t.Fatal(err)
	}
	for ctx, want := range map[string]string{"digitalocean": "dop_v1_work", "default": "dop_v1_default",
		"work": "dop_v1_work", "HOME": "dop_v1_home", "nope": ""} {
		if got := d.TokenOf(ctx); got != want {
			t.Errorf("TokenOf(%s) = %q, want %q", ctx, got, want)
		}
	}
	if p, _ := DoctlPath(env(map[string]string{"HOME": "/h"})); p != "/h/.config/doctl/config.yaml" {
		t.Errorf("doctl path = %s", p)
	}
	if p, _ := DoctlPath(env(map[string]string{"HOME": "/h", "XDG_CONFIG_HOME": dir})); p != path {
		t.Errorf("doctl path = %s, want %s", p, path)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	loose, err := LoadDoctl(path)
	if err != nil || !errors.Is(loose.Insecure, ErrInsecure) {
		t.Errorf("a doctl file others can read: %+v, %v", loose, err)
	}
	src := Sources{Env: env(nil), Doctl: func() (*DoctlFile, error) { return loose, nil }}
	if _, err := Token("", "work", src); !errors.Is(err, ErrInsecure) {
		t.Errorf("a token from a doctl file others can read: %v", err)
	}
	if tok, err := Token("", "work", Sources{Env: env(map[string]string{EnvToken: "env"}), Doctl: src.Doctl}); err != nil || tok != "env" {
		t.Errorf("a token from elsewhere does not read the loose file: %q, %v", tok, err)
	}
	if d, err := LoadDoctl(filepath.Join(dir, "missing.yaml")); err != nil || d.TokenOf("digitalocean") != "" {
		t.Errorf("missing doctl file: %+v, %v", d, err)
	}
}

func TestAPIURLResolutionOrder(t *testing.T) {
	doctl := func() (*DoctlFile, error) { return &DoctlFile{APIURL: "http://doctl"}, nil }
	src := Sources{Env: env(map[string]string{EnvAPIURL: "http://env"}), Doctl: doctl}
	if u, _ := APIURL("http://flag", src); u != "http://flag" {
		t.Errorf("flag: %s", u)
	}
	if u, _ := APIURL("", src); u != "http://env" {
		t.Errorf("env: %s", u)
	}
	if u, _ := APIURL("", Sources{Env: env(nil), Doctl: doctl}); u != "http://doctl" {
		t.Errorf("doctl's file: %s", u)
	}
}

func TestTokensAreStoredLowercase(t *testing.T) {
	f := &File{AuthContexts: map[string]string{"Work": "old"}}
	f.SetToken("WORK", "new")
	if len(f.AuthContexts) != 1 || f.AuthContexts["work"] != "new" || f.TokenOf("wOrK") != "new" {
		t.Fatalf("auth contexts = %v", f.AuthContexts)
	}
	if !f.RemoveToken("Work") || len(f.AuthContexts) != 0 {
		t.Fatalf("after remove: %v", f.AuthContexts)
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

package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// DoctlFile is doctl's config file, which dropback reads as a fallback for
// tokens and the API URL and never writes:
//
//	access-token: dop_v1_...      # doctl's "default" context
//	context: work                 # doctl's current context
//	auth-contexts:
//	  work: dop_v1_...
//	api-url: https://api.digitalocean.com
type DoctlFile struct {
	AccessToken  string            `yaml:"access-token"`
	Context      string            `yaml:"context"`
	AuthContexts map[string]string `yaml:"auth-contexts"`
	APIURL       string            `yaml:"api-url"`

	// Insecure, when set, is why the file's tokens are not to be used: others
	// may read it. Its other settings are.
	Insecure error `yaml:"-"`
}

// DoctlDefault is the name of doctl's context whose token is the file's
// top-level access-token.
const DoctlDefault = "default"

// DoctlPath returns where doctl keeps its config file on this system:
// $XDG_CONFIG_HOME/doctl/config.yaml, else ~/.config/doctl/config.yaml.
func DoctlPath(env Env) (string, error) {
	dir, err := xdgDir(env, "XDG_CONFIG_HOME", ".config")
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "doctl", "config.yaml"), nil
}

// LoadDoctl reads doctl's config file at path. A missing file is an empty
// DoctlFile. As with dropback's own file, the tokens of one that others may
// read are refused (see Insecure), with how to fix it; since dropback does
// not own the file, its other settings still apply.
func LoadDoctl(path string) (*DoctlFile, error) {
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &DoctlFile{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read doctl's config file: %w", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read doctl's config file: %w", err)
	}
	d := &DoctlFile{}
	if len(bytes.TrimSpace(data)) > 0 {
		if err := yaml.Unmarshal(data, d); err != nil {
			return nil, fmt.Errorf("doctl's config file %s is not valid YAML: %w", path, err)
		}
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		d.Insecure = fmt.Errorf("doctl's config file %s has mode %04o and holds tokens; run chmod 600 %s: %w",
			path, perm, path, ErrInsecure)
	}
	return d, nil
}

// TokenOf returns the token doctl would use in context name, or "". The
// context "digitalocean" (dropback's default DigitalOcean context) is the
// account doctl uses now: its current context's token; "default" is
// doctl's default context, the top-level access-token; any other name is
// looked up in auth-contexts without regard to case.
func (d *DoctlFile) TokenOf(name string) string {
	name = Normalize(name)
	if name == "digitalocean" {
		name = Normalize(d.Context)
	}
	if name == "" || name == DoctlDefault {
		return d.AccessToken
	}
	return lookup(d.AuthContexts, name)
}

// Contexts lists the contexts that have a token in doctl's file, lowercase:
// "default" when access-token is set, and every auth-context.
func (d *DoctlFile) Contexts() []string {
	var out []string
	if d.AccessToken != "" {
		out = append(out, DoctlDefault)
	}
	for name, token := range d.AuthContexts {
		if token != "" && Normalize(name) != DoctlDefault {
			out = append(out, Normalize(name))
		}
	}
	return out
}

// Normalize is a context name as dropback compares it: trimmed and
// lowercase, as doctl has them.
func Normalize(name string) string { return strings.ToLower(strings.TrimSpace(name)) }

// lookup finds name in m without regard to case.
func lookup(m map[string]string, name string) string {
	if v, ok := m[name]; ok {
		return v
	}
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

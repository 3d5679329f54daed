// Package config reads and writes dropback's config file, reads doctl's as a
// fallback (never writing it), and resolves which context, repository,
// token and API URL a command uses.
//
// The file is YAML, like doctl's:
//
//	context: digitalocean
//	auth-contexts:
//	  digitalocean: dop_v1_...
//
// It holds tokens, so it is written with mode 0600 and a file that others can
// read is refused.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"
)

// ErrInsecure is returned for a config file that others may read.
var ErrInsecure = errors.New("config file is readable by others")

// File is the content of the config file. Keys dropback does not know are
// kept as they are when the file is written back.
type File struct {
	// Context is the current context.
	Context string `yaml:"context,omitempty"`
	// AuthContexts maps a context name to its DigitalOcean token.
	AuthContexts map[string]string `yaml:"auth-contexts,omitempty"`
	Other        map[string]any    `yaml:",inline"`
}

// Load reads the config file at path. A missing file is an empty File. A file
// whose mode lets group or others in, or that is not valid YAML, is an error
// that says how to fix it.
func Load(path string) (*File, error) {
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &File{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read config file: %w", err)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("config file %s has mode %04o and may hold tokens; run chmod 600 %s: %w",
			path, perm, path, ErrInsecure)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config file: %w", err)
	}
	f := &File{}
	if len(bytes.TrimSpace(data)) == 0 {
		return f, nil
	}
	if err := yaml.Unmarshal(data, f); err != nil {
		return nil, fmt.Errorf("config file %s is not valid YAML: %w", path, err)
	}
	return f, nil
}

// Save writes f to path atomically with mode 0600: a temporary file in the
// same directory, synced, then renamed over path. The directory is created
// with mode 0700 if it is missing.
func (f *File) Save(path string) error {
	data, err := yaml.Marshal(f)
	if err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write config file: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".config-*.yaml")
	if err != nil {
		return fmt.Errorf("write config file: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if err := writeSynced(tmp, data); err != nil {
		return fmt.Errorf("write config file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write config file: %w", err)
	}
	return nil
}

func writeSynced(tmp *os.File, data []byte) error {
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	return tmp.Close()
}

// SetToken stores token under the context name, lowercase; an entry that
// differs from it only in case is replaced.
func (f *File) SetToken(context, token string) {
	if f.AuthContexts == nil {
		f.AuthContexts = map[string]string{}
	}
	f.RemoveToken(context)
	f.AuthContexts[Normalize(context)] = token
}

// TokenOf returns the token stored for context, matched without regard to
// case, or "".
func (f *File) TokenOf(context string) string { return lookup(f.AuthContexts, Normalize(context)) }

// RemoveToken removes the token of context, matched without regard to
// case, and reports whether there was one.
func (f *File) RemoveToken(context string) bool {
	found := false
	for k := range f.AuthContexts {
		if Normalize(k) == Normalize(context) {
			delete(f.AuthContexts, k)
			found = true
		}
	}
	return found
}

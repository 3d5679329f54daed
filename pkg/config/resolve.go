package config

import (
	"errors"
	"path/filepath"

	"github.com/dropback/dropback/pkg/provider"
)

// Environment variables dropback reads.
const (
	EnvContext = "DROPBACK_CONTEXT"
	EnvRepo    = "DROPBACK_REPO"
	EnvToken   = "DIGITALOCEAN_ACCESS_TOKEN"
	// EnvDOContext and EnvAPIURL are doctl's: a doctl user's habits work
	// unchanged.
	EnvDOContext = "DIGITALOCEAN_CONTEXT"
	EnvAPIURL    = "DIGITALOCEAN_API_URL"
)

// Env looks up an environment variable; os.Getenv in production, a map in
// tests.
type Env func(string) string

// Sources are where settings are read from besides the flags: the
// environment, dropback's config file, and doctl's. The files are read only
// when a setting is not decided before them; either may be nil when there is
// none.
type Sources struct {
	Env   Env
	File  func() (*File, error)
	Doctl func() (*DoctlFile, error)
}

// Path returns the config file's path: flagPath when set, else
// $XDG_CONFIG_HOME/dropback/config.yaml, else ~/.config/dropback/config.yaml.
func Path(flagPath string, env Env) (string, error) {
	if flagPath != "" {
		return flagPath, nil
	}
	dir, err := xdgDir(env, "XDG_CONFIG_HOME", ".config")
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "dropback", "config.yaml"), nil
}

// Repo returns the engine repository: flagRepo when set, else $DROPBACK_REPO,
// else $XDG_DATA_HOME/dropback/repo, else ~/.local/share/dropback/repo.
func Repo(flagRepo string, env Env) (string, error) {
	if flagRepo != "" {
		return flagRepo, nil
	}
	if r := env(EnvRepo); r != "" {
		return r, nil
	}
	dir, err := xdgDir(env, "XDG_DATA_HOME", filepath.Join(".local", "share"))
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "dropback", "repo"), nil
}

// EnvNoCache, set to 1, turns the engine's local cache off, as --no-cache.
const EnvNoCache = "DROPBACK_NO_CACHE"

// CacheDir returns the folder of the engine's local cache, or "" when it is
// off (noCache, or $DROPBACK_NO_CACHE=1): $XDG_CACHE_HOME/dropback, else
// ~/.cache/dropback.
func CacheDir(noCache bool, env Env) (string, error) {
	if noCache || env(EnvNoCache) == "1" {
		return "", nil
	}
	dir, err := xdgDir(env, "XDG_CACHE_HOME", ".cache")
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "dropback"), nil
}

// Context returns the context a command uses, lowercase: flagContext when
// set, else $DROPBACK_CONTEXT, else doctl's $DIGITALOCEAN_CONTEXT, else the
// current context of dropback's file, else "local". doctl's file never
// decides it: a machine with doctl on it still defaults to the engine.
func Context(flagContext string, src Sources) (string, error) {
	for _, c := range []string{flagContext, src.Env(EnvContext), src.Env(EnvDOContext)} {
		if c := Normalize(c); c != "" {
			return c, nil
		}
	}
	if src.File != nil {
		f, err := src.File()
		if err != nil {
			return "", err
		}
		if c := Normalize(f.Context); c != "" {
			return c, nil
		}
	}
	return provider.ContextLocal, nil
}

// Token returns the DigitalOcean token for context: flagToken when set, else
// $DIGITALOCEAN_ACCESS_TOKEN, else the context's entry in dropback's file,
// else the token doctl's file has for it (see DoctlFile.TokenOf). It
// returns "" when there is none.
func Token(flagToken, context string, src Sources) (string, error) {
	if flagToken != "" {
		return flagToken, nil
	}
	if t := src.Env(EnvToken); t != "" {
		return t, nil
	}
	if src.File != nil {
		f, err := src.File()
		if err != nil {
			return "", err
		}
		if t := f.TokenOf(context); t != "" {
			return t, nil
		}
	}
	if src.Doctl != nil {
		d, err := src.Doctl()
		if err != nil {
			return "", err
		}
		t := d.TokenOf(context)
		if t != "" && d.Insecure != nil {
			return "", d.Insecure
		}
		return t, nil
	}
	return "", nil
}

// APIURL returns the DigitalOcean API URL: flagURL when set, else
// $DIGITALOCEAN_API_URL, else doctl's file's api-url, else "" (the
// default).
func APIURL(flagURL string, src Sources) (string, error) {
	if flagURL != "" {
		return flagURL, nil
	}
	if u := src.Env(EnvAPIURL); u != "" {
		return u, nil
	}
	if src.Doctl != nil {
		d, err := src.Doctl()
		if err != nil {
			return "", err
		}
		return d.APIURL, nil
	}
	return "", nil
}

func xdgDir(env Env, variable, fallback string) (string, error) {
	if d := env(variable); d != "" && filepath.IsAbs(d) {
		return d, nil
	}
	home := env("HOME")
	if home == "" {
		return "", errors.New("cannot find the home directory: set HOME or " + variable)
	}
	return filepath.Join(home, fallback), nil
}

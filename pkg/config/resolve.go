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
)

// Env looks up an environment variable; os.Getenv in production, a map in
// tests.
type Env func(string) string

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

// Context returns the context a command uses: flagContext when set, else
// $DROPBACK_CONTEXT, else the file's current context, else "local". The file
// is read only when it is needed; load may be nil when there is none.
func Context(flagContext string, env Env, load func() (*File, error)) (string, error) {
	if flagContext != "" {
		return flagContext, nil
	}
	if c := env(EnvContext); c != "" {
		return c, nil
	}
	if load != nil {
		f, err := load()
		if err != nil {
			return "", err
		}
		if f.Context != "" {
			return f.Context, nil
		}
	}
	return provider.ContextLocal, nil
}

// Token returns the DigitalOcean token for context: flagToken when set, else
// $DIGITALOCEAN_ACCESS_TOKEN, else the context's entry in the file. It
// returns "" when there is none.
func Token(flagToken, context string, env Env, load func() (*File, error)) (string, error) {
	if flagToken != "" {
		return flagToken, nil
	}
	if t := env(EnvToken); t != "" {
		return t, nil
	}
	if load == nil {
		return "", nil
	}
	f, err := load()
	if err != nil {
		return "", err
	}
	return f.AuthContexts[context], nil
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

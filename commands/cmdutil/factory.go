// Package cmdutil holds what every dropback command shares: the Factory of
// lazily built dependencies, the global flag values, argument and flag
// helpers, confirmation, --wait, and the mapping of errors to exit codes.
package cmdutil

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/dropback/dropback/pkg/config"
	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

// GlobalFlags are the values of the root command's persistent flags. The
// root command binds them; everything else reads them through the Factory.
type GlobalFlags struct {
	Output      string
	Format      string
	Template    string
	NoHeader    bool
	AccessToken string
	APIURL      string
	Context     string
	ConfigPath  string
	Repo        string
	// PasswordFile holds the repository's password (see Password).
	PasswordFile string
	Trace        bool
	Quiet        bool
	NoCache      bool
}

// ProviderConfig is everything needed to build the provider of a resolved
// context.
type ProviderConfig struct {
	Context string
	Repo    string // local context only
	// Password gives an encrypted repository's password (local only).
	Password  func(ctx context.Context) ([]byte, error)
	CacheDir  string // local context only; "" for no cache
	Token     string // DigitalOcean contexts only
	APIURL    string
	UserAgent string
	Trace     io.Writer // nil unless --trace
	// Retrying tells the user, before each retry of an API request, that
	// the API did not answer (DigitalOcean contexts).
	Retrying func(attempt, max int)
}

// ProviderConstructor builds a provider; commands.Main passes one that calls
// local.New or digitalocean.New, tests pass a fake.
type ProviderConstructor func(ctx context.Context, pc ProviderConfig) (provider.Provider, error)

// Factory gives commands their dependencies. The getters are lazy: nothing
// is read or built until a command asks, and each is built once.
type Factory struct {
	AppVersion string
	IOStreams  *output.IOStreams
	Env        config.Env
	Flags      *GlobalFlags

	// ConfigPath is the config file's path (-c, else the XDG default).
	ConfigPath func() (string, error)
	// Config reads the config file once.
	Config func() (*config.File, error)
	// Doctl reads doctl's config file once, for the tokens and API URL it
	// holds; dropback never writes it.
	Doctl func() (*config.DoctlFile, error)
	// Context resolves the context: --context, $DROPBACK_CONTEXT, the
	// file's current context, "local".
	Context func() (string, error)
	// Provider builds the provider of the resolved context on first use.
	Provider func(ctx context.Context) (provider.Provider, error)
	// NewProvider builds a provider of any context, as Provider does for the
	// resolved one: for `auth init`, which checks a token before storing it.
	NewProvider ProviderConstructor
	// Printer prints results as the output flags ask.
	Printer func() *output.Printer
	// PollInterval is how often --wait polls; 0 means DefaultPollInterval.
	PollInterval time.Duration
}

// New returns a Factory whose Provider getter builds providers with
// newProvider. env is nil for os.Getenv.
func New(appVersion string, ios *output.IOStreams, env config.Env, newProvider ProviderConstructor) *Factory {
	if env == nil {
		env = os.Getenv
	}
	f := &Factory{AppVersion: appVersion, IOStreams: ios, Env: env, Flags: &GlobalFlags{Output: output.FormatText}}
	f.ConfigPath = func() (string, error) { return config.Path(f.Flags.ConfigPath, f.Env) }
	f.Config = sync.OnceValues(func() (*config.File, error) {
		path, err := f.ConfigPath()
		if err != nil {
			return nil, err
		}
		return config.Load(path)
	})
	f.Doctl = sync.OnceValues(func() (*config.DoctlFile, error) {
		path, err := config.DoctlPath(f.Env)
		if err != nil {
			return nil, err
		}
		return config.LoadDoctl(path)
	})
	f.NewProvider = newProvider
	f.Context = func() (string, error) { return config.Context(f.Flags.Context, f.Sources()) }
	f.Printer = func() *output.Printer {
		return &output.Printer{
			IO:       f.IOStreams,
			JSON:     f.Flags.Output == output.FormatJSON,
			Format:   SplitList(f.Flags.Format),
			Template: f.Flags.Template,
			NoHeader: f.Flags.NoHeader,
			Quiet:    f.Flags.Quiet,
		}
	}
	var mu sync.Mutex
	var built provider.Provider
	f.Provider = func(ctx context.Context) (provider.Provider, error) {
		mu.Lock()
		defer mu.Unlock()
		if built != nil {
			return built, nil
		}
		pc, err := f.ProviderConfig()
		if err != nil {
			return nil, err
		}
		p, err := newProvider(ctx, pc)
		if err != nil {
			return nil, err
		}
		built = p
		return p, nil
	}
	return f
}

// ProviderConfig resolves the context and what its provider needs: the
// repository for local, the token and API URL for any other context.
func (f *Factory) ProviderConfig() (ProviderConfig, error) {
	name, err := f.Context()
	if err != nil {
		return ProviderConfig{}, err
	}
	pc, err := f.ProviderConfigOf(name)
	if err != nil || name == provider.ContextLocal {
		return pc, err
	}
	pc.Token, err = config.Token(f.Flags.AccessToken, name, f.Sources())
	if err != nil {
		return pc, err
	}
	if pc.Token == "" {
		return pc, fmt.Errorf("no access token for context %q: run `dropback auth init --context %s`, set %s or pass -t: %w",
			name, name, config.EnvToken, provider.ErrAuth)
	}
	return pc, nil
}

// ProviderConfigOf is the configuration of context name without its token:
// the repository for local, the API URL for any other context.
func (f *Factory) ProviderConfigOf(name string) (ProviderConfig, error) {
	pc := ProviderConfig{Context: name, UserAgent: "dropback/" + f.AppVersion, Retrying: f.retryNotice}
	if f.Flags.Trace {
		pc.Trace = f.IOStreams.ErrOut
	}
	var err error
	if name == provider.ContextLocal {
		if pc.Repo, err = config.Repo(f.Flags.Repo, f.Env); err != nil {
			return pc, err
		}
		pc.Password = f.Password
		// A cache that cannot be placed is no reason to fail: go without.
		pc.CacheDir, _ = config.CacheDir(f.Flags.NoCache, f.Env)
		return pc, nil
	}
	pc.APIURL, err = config.APIURL(f.Flags.APIURL, f.Sources())
	return pc, err
}

// Sources are the environment and the config files, for package config.
func (f *Factory) Sources() config.Sources {
	return config.Sources{Env: f.Env, File: f.Config, Doctl: f.Doctl}
}

// HasDigitalOceanToken reports whether a DigitalOcean token is at hand:
// -t, $DIGITALOCEAN_ACCESS_TOKEN, or a token in dropback's or doctl's
// config file. A file that cannot be read counts as none.
func (f *Factory) HasDigitalOceanToken() bool {
	if f.Flags.AccessToken != "" || f.Env(config.EnvToken) != "" {
		return true
	}
	if file, err := f.Config(); err == nil && len(file.AuthContexts) > 0 {
		return true
	}
	d, err := f.Doctl()
	return err == nil && len(d.Contexts()) > 0
}

// SplitList splits a comma-separated flag value, dropping empty items.
func SplitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// retryNotice says on a terminal, as live feedback is (not with -q or -o
// json), that an API request is retried: an API that does not answer is
// otherwise seconds of silence. In a pipe, the error alone is the last
// line.
func (f *Factory) retryNotice(attempt, max int) {
	if pr := f.Printer(); pr.Interactive() {
		pr.Noticef("The API request failed; retrying (%d/%d)", attempt, max)
	}
}

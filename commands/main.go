// Package commands is dropback's command line: Main runs it and decides the
// process's exit code.
package commands

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/dropback/dropback/commands/cmdutil"
	"github.com/dropback/dropback/commands/root"
	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
	"github.com/dropback/dropback/pkg/provider/digitalocean"
	"github.com/dropback/dropback/pkg/provider/local"
)

// Version is dropback's version, set at build time with
// -ldflags "-X github.com/dropback/dropback/commands.Version=1.2.3".
var Version = "dev"

// Main runs dropback with the process's arguments and streams and returns
// the exit code. SIGINT and SIGTERM cancel the command's context; a second
// signal kills the process.
func Main() int {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		if _, ok := <-sigs; ok {
			signal.Stop(sigs)
			cancel(cmdutil.ErrInterrupted)
		}
	}()
	defer signal.Stop(sigs)

	ios := output.System()
	ios.SetInterrupt(ctx.Done())
	f := cmdutil.New(Version, ios, nil, NewProvider)
	return root.Execute(ctx, f, os.Args[1:])
}

// NewProvider builds the provider of a resolved context: the engine for
// local, the DigitalOcean API for any other context.
func NewProvider(ctx context.Context, pc cmdutil.ProviderConfig) (provider.Provider, error) {
	if pc.Context == provider.ContextLocal {
		p, err := local.New(ctx, local.Options{Repo: pc.Repo, Password: pc.Password, CacheDir: pc.CacheDir})
		if err != nil {
			return nil, err
		}
		return p, nil
	}
	p, err := digitalocean.New(ctx, digitalocean.Options{
		Context:   pc.Context,
		Token:     pc.Token,
		APIURL:    pc.APIURL,
		UserAgent: pc.UserAgent,
		Trace:     pc.Trace,
		Retrying:  pc.Retrying,
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

package auth

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dropback/dropback/commands/cmdutil"
	"github.com/dropback/dropback/internal/safetext"
	"github.com/dropback/dropback/pkg/config"
	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

// SwitchOptions are the inputs of `auth switch`.
type SwitchOptions struct {
	IO         *output.IOStreams
	Config     func() (*config.File, error)
	Doctl      func() (*config.DoctlFile, error)
	ConfigPath func() (string, error)
	Printer    func() *output.Printer

	Context string
}

// NewCmdSwitch returns `auth switch`.
func NewCmdSwitch(f *cmdutil.Factory, runF func(*SwitchOptions) error) *cobra.Command {
	opts := &SwitchOptions{IO: f.IOStreams, Config: f.Config, Doctl: f.Doctl, ConfigPath: f.ConfigPath, Printer: f.Printer}
	cmd := &cobra.Command{
		Use:   "switch [<context>]",
		Short: "Change the current context",
		Long: `Make a context the current one in the config file: local, or a context stored
by ` + "`auth init`" + `, or one doctl's config file has a token for. The context may
be given as an argument or with --context.`,
		Example: `  dropback auth switch digitalocean
  dropback auth switch local
  dropback auth switch --context work`,
		Args: cmdutil.RangeArgs(0, 1, "one context"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Context = f.Flags.Context
			if len(args) == 1 {
				opts.Context = args[0]
			}
			opts.Context = config.Normalize(opts.Context)
			if opts.Context == "" {
				return cmdutil.FlagErrorf("auth switch: name the context to switch to")
			}
			if runF != nil {
				return runF(opts)
			}
			return runSwitch(opts)
		},
	}
	return cmd
}

func runSwitch(opts *SwitchOptions) error {
	path, err := opts.ConfigPath()
	if err != nil {
		return err
	}
	file, err := opts.Config()
	if err != nil {
		return err
	}
	if file.TokenOf(opts.Context) == "" && opts.Context != provider.ContextLocal && !inDoctl(opts) {
		return fmt.Errorf("switch to context %s: no token stored for it; run `dropback auth init --context %s` first: %w",
			cmdutil.Short(opts.Context), cmdutil.Short(opts.Context), provider.ErrNotFound)
	}
	file.Context = opts.Context
	if err := file.Save(path); err != nil {
		return fmt.Errorf("switch to context %s: %w", cmdutil.Short(opts.Context), err)
	}
	opts.Printer().Noticef("Now using context %s", safetext.Escape(opts.Context))
	return nil
}

// inDoctl reports whether doctl's config file has a token for the context.
func inDoctl(opts *SwitchOptions) bool {
	d, err := opts.Doctl()
	return err == nil && d.TokenOf(opts.Context) != ""
}

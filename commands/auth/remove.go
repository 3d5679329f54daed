package auth

import (
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/dropback/dropback/commands/cmdutil"
	"github.com/dropback/dropback/internal/safetext"
	"github.com/dropback/dropback/pkg/config"
	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

// RemoveOptions are the inputs of `auth remove`.
type RemoveOptions struct {
	IO         *output.IOStreams
	Config     func() (*config.File, error)
	ConfigPath func() (string, error)
	Doctl      func() (*config.DoctlFile, error)
	Printer    func() *output.Printer

	Context string
}

// NewCmdRemove returns `auth remove`.
func NewCmdRemove(f *cmdutil.Factory, runF func(*RemoveOptions) error) *cobra.Command {
	opts := &RemoveOptions{IO: f.IOStreams, Config: f.Config, ConfigPath: f.ConfigPath, Doctl: f.Doctl, Printer: f.Printer}
	cmd := &cobra.Command{
		Use:     "remove [<context>]",
		Aliases: []string{"rm"},
		Short:   "Forget the token of a context",
		Long: `Remove a context's token from dropback's config file, as doctl auth remove
does; the context may be given as an argument or with --context. When it was
the current context, local becomes current. A token in doctl's config file is
never changed: remove it with doctl.`,
		Example: `  dropback auth remove --context work
  dropback auth remove work`,
		Args: cmdutil.RangeArgs(0, 1, "one context"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Context = f.Flags.Context
			if len(args) == 1 {
				opts.Context = args[0]
			}
			opts.Context = config.Normalize(opts.Context)
			if opts.Context == "" {
				return cmdutil.FlagErrorf("auth remove: name the context to remove, e.g. --context work")
			}
			if opts.Context == provider.ContextLocal {
				return cmdutil.FlagErrorf("auth remove: the local context has no token to remove")
			}
			if runF != nil {
				return runF(opts)
			}
			return runRemove(opts)
		},
	}
	return cmd
}

func runRemove(opts *RemoveOptions) error {
	path, err := opts.ConfigPath()
	if err != nil {
		return err
	}
	file, err := opts.Config()
	if err != nil {
		return err
	}
	name := cmdutil.Short(opts.Context)
	if !file.RemoveToken(opts.Context) {
		if d, derr := opts.Doctl(); derr == nil && slices.Contains(d.Contexts(), opts.Context) {
			return fmt.Errorf("remove context %s: its token is in doctl's config file, which dropback never writes; run `doctl auth remove --context %s`: %w",
				name, name, provider.ErrNotFound)
		}
		return fmt.Errorf("remove context %s: no token stored for it (see `dropback auth list`): %w", name, provider.ErrNotFound)
	}
	wasCurrent := config.Normalize(file.Context) == opts.Context
	if wasCurrent {
		file.Context = ""
	}
	if err := file.Save(path); err != nil {
		return fmt.Errorf("remove context %s: %w", name, err)
	}
	pr := opts.Printer()
	pr.Noticef("Removed the token of context %s", safetext.Escape(opts.Context))
	if wasCurrent {
		pr.Noticef("Now using context %s", provider.ContextLocal)
	}
	return nil
}

// Package root builds dropback's command tree: the root command, its global
// flags, and every noun.
package root

import (
	"github.com/spf13/cobra"

	"github.com/dropback/dropback/commands/actions"
	"github.com/dropback/dropback/commands/agent"
	"github.com/dropback/dropback/commands/auth"
	"github.com/dropback/dropback/commands/backups"
	"github.com/dropback/dropback/commands/cmdutil"
	"github.com/dropback/dropback/commands/completion"
	"github.com/dropback/dropback/commands/hosts"
	"github.com/dropback/dropback/commands/policy"
	"github.com/dropback/dropback/commands/repo"
	"github.com/dropback/dropback/commands/run"
	"github.com/dropback/dropback/commands/snapshots"
	"github.com/dropback/dropback/commands/version"
	"github.com/dropback/dropback/pkg/output"
)

// NewCmdRoot returns the root command with every noun and the global flags
// bound to f.Flags.
func NewCmdRoot(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dropback <command> <subcommand> [flags]",
		Short: "Whole-disk backups for self-hosted hosts and DigitalOcean Droplets",
		Long: `dropback backs up whole disks. In the local context (the default) it drives its
embedded block-image engine: deduplicated, compressed, sparse-aware backups of
disk images and block devices into a repository, with no account and no server.
In a DigitalOcean context it drives Droplet Backups through the DigitalOcean API.
The same commands, plans and JSON field names work in both.`,
		Example: `  dropback repo init
  dropback hosts add web-1 --disk /var/lib/libvirt/images/web-1.img
  dropback backups create web-1
  dropback backups restore web-1 latest --to /tmp/web-1.img
  dropback --context digitalocean backups list 123456 -o json`,
		Args:          cmdutil.NounArgs,
		RunE:          cmdutil.NounRunE,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if err := emptyGlobalFlags(cmd); err != nil {
				return err
			}
			return validateGlobalFlags(f.Flags)
		},
	}
	// --version, as most tools have it; `dropback version` says more.
	cmd.Version = f.AppVersion
	cmd.SetVersionTemplate("dropback {{.Version}}\n")
	cmd.Flags().Bool("version", false, "print dropback's version (the version command says more)")
	cmd.CompletionOptions.DisableDefaultCmd = true
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return cmdutil.FlagErrorf("%v (see `%s --help`)", err, c.CommandPath())
	})
	addGlobalFlags(cmd, f.Flags)
	cmd.AddCommand(
		hosts.NewCmdHosts(f),
		backups.NewCmdBackups(f),
		policy.NewCmdPolicy(f),
		snapshots.NewCmdSnapshots(f),
		actions.NewCmdActions(f),
		repo.NewCmdRepo(f),
		run.NewCmdRun(f, nil),
		agent.NewCmdAgent(f, nil),
		auth.NewCmdAuth(f),
		version.NewCmdVersion(f, nil),
		completion.NewCmdCompletion(f, nil),
	)
	cmdutil.RegisterCompletions(cmd, f)
	return cmd
}

func addGlobalFlags(cmd *cobra.Command, g *cmdutil.GlobalFlags) {
	fl := cmd.PersistentFlags()
	fl.StringVarP(&g.Output, "output", "o", output.FormatText, "output format: text or json")
	fl.StringVar(&g.Format, "format", "", "columns to show, comma-separated, e.g. ID,Name (text output)")
	fl.StringVar(&g.Template, "template", "", "print each item through this Go template instead of a table, e.g. '{{.ID}} {{.Name}}' (text output)")
	fl.BoolVar(&g.NoHeader, "no-header", false, "leave out the table header (text output)")
	fl.StringVarP(&g.AccessToken, "access-token", "t", "", "DigitalOcean API token (default $DIGITALOCEAN_ACCESS_TOKEN, then the config file, then doctl's); "+
		"prefer those, or 'dropback auth init': other users can read command-line arguments in the process list")
	fl.StringVarP(&g.APIURL, "api-url", "u", "", "DigitalOcean-compatible API URL, http:// or https:// (default $DIGITALOCEAN_API_URL, then doctl's api-url, then https://api.digitalocean.com/); "+
		"the token is sent to its host only, never through a redirect to another")
	fl.StringVar(&g.Context, "context", "", "context: local, or a DigitalOcean context, lowercase (default $DROPBACK_CONTEXT, then $DIGITALOCEAN_CONTEXT, then the config file, then local)")
	fl.StringVarP(&g.ConfigPath, "config", "c", "", "config file (default $XDG_CONFIG_HOME/dropback/config.yaml)")
	fl.StringVar(&g.Repo, "repo", "", "engine repository: a path or s3://bucket/prefix (default $DROPBACK_REPO, then $XDG_DATA_HOME/dropback/repo)")
	fl.StringVar(&g.PasswordFile, "password-file", "", "file whose first line is the password of an encrypted repository (default $DROPBACK_PASSWORD_FILE, $DROPBACK_PASSWORD_COMMAND, $DROPBACK_PASSWORD, then a prompt)")
	fl.BoolVar(&g.Trace, "trace", false, "print API requests and responses to stderr, token redacted")
	fl.BoolVarP(&g.Quiet, "quiet", "q", false, "no notices, spinners or progress bars on stderr")
	fl.BoolVar(&g.NoCache, "no-cache", false, "read the engine repository without the local cache of manifests and index segments in $XDG_CACHE_HOME/dropback (also $DROPBACK_NO_CACHE=1)")
}

// emptyGlobalFlags refuses a flag that names where to act, given empty (a
// script's unset variable): an empty --repo would act on the default
// repository, an empty --context on the default context.
func emptyGlobalFlags(cmd *cobra.Command) error {
	for _, name := range []string{"repo", "context", "config", "password-file", "access-token", "api-url"} {
		if fl := cmd.Flags().Lookup(name); fl != nil && fl.Changed && fl.Value.String() == "" {
			return cmdutil.FlagErrorf("--%s is empty: give a value, or leave the flag out for the default", name)
		}
	}
	return nil
}

func validateGlobalFlags(g *cmdutil.GlobalFlags) error {
	switch g.Output {
	case output.FormatText, output.FormatJSON:
	default:
		return cmdutil.FlagErrorf("invalid --output %q: use text or json", g.Output)
	}
	if g.Format != "" && len(cmdutil.SplitList(g.Format)) == 0 {
		return cmdutil.FlagErrorf("invalid --format %q: name columns, e.g. ID,Name", g.Format)
	}
	if g.Template != "" && (g.Format != "" || g.Output == output.FormatJSON) {
		return cmdutil.FlagErrorf("--template prints text: it cannot be used with --format or -o json")
	}
	return nil
}

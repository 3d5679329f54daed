package repo

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dropback/dropback/commands/cmdutil"
	"github.com/dropback/dropback/commands/display"
	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

// UpgradeOptions are the inputs of `repo upgrade`.
type UpgradeOptions struct {
	IO       *output.IOStreams
	Provider func(context.Context) (provider.Upgrader, error)
	Printer  func() *output.Printer
	// Password reads the encrypted repository's password, as for repo
	// init; nil when there is none.
	Password func(context.Context) ([]byte, error)

	KDF        string
	Encryption string
}

// NewCmdUpgrade returns `repo upgrade`.
func NewCmdUpgrade(f *cmdutil.Factory, runF func(*UpgradeOptions) error) *cobra.Command {
	opts := &UpgradeOptions{IO: f.IOStreams, Provider: cmdutil.Capability[provider.Upgrader](f, "repo upgrade"), Printer: f.Printer,
		Password: f.InitPassword}
	cmd := &cobra.Command{
		Use:   "upgrade",
		Short: "Rewrite a repository that is not encrypted into an encrypted one",
		Long: `Rewrite a repository that is not encrypted (any made before version 2, or with
--insecure-no-encryption) into an encrypted one, in place. Every backup,
snapshot, host and action keeps its ID; every chunk is copied under a new
secret key, then everything in plain is deleted and the config goes last.

The upgrade runs alone: it takes the gc lease and refuses (exit 11) while
another operation runs; until it ends, every other command refuses too.
Stop older dropbacks that use the repository first. An upgrade cut short
(a crash, Ctrl-C) is finished by running it again with the same password.
The password is read as for repo init, and --encryption chooses the AEAD as
for repo init.`,
		Example: `  DROPBACK_PASSWORD_FILE=/etc/dropback/pw dropback repo upgrade
  dropback --repo s3://backups/fleet repo upgrade`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runUpgrade(cmd.Context(), opts)
		},
	}
	addEncryptionFlag(cmd, &opts.Encryption)
	AddKDFFlag(cmd, f, &opts.KDF)
	cmdutil.DescribeColumns(cmd, output.Infos(display.UpgradeColumns))
	return cmd
}

func runUpgrade(ctx context.Context, opts *UpgradeOptions) error {
	pr := opts.Printer()
	if err := pr.Check(output.Infos(display.UpgradeColumns)); err != nil {
		return err
	}
	p, err := opts.Provider(ctx)
	if err != nil {
		return err
	}
	pw, err := opts.Password(ctx)
	if err != nil {
		return err
	}
	if pw == nil {
		return provider.Errorf(provider.ErrPassword, "upgrade the repository: an encrypted repository needs a password: use %s, or run on a terminal", cmdutil.PasswordSources)
	}
	prog, stop := pr.Progress()
	res, err := p.UpgradeRepo(ctx, provider.RepoUpgradeOptions{Password: pw, KDF: opts.KDF, Encryption: opts.Encryption,
		Progress: prog})
	stop()
	if err != nil {
		return fmt.Errorf("upgrade the repository: %w", err)
	}
	return pr.Print(display.Upgrade(res))
}

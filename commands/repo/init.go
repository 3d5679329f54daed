package repo

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dropback/dropback/commands/cmdutil"
	"github.com/dropback/dropback/commands/display"
	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

// InitOptions are the inputs of `repo init`.
type InitOptions struct {
	IO       *output.IOStreams
	Provider func(context.Context) (provider.Repository, error)
	Printer  func() *output.Printer

	// Password reads the new repository's password: the password
	// sources, else twice on a terminal; nil when there is none.
	Password func(context.Context) ([]byte, error)

	ChunkSize    int64 // 0 means the engine's default
	CreateBucket bool
	NoEncryption bool
	Encryption   string
	KDF          string
}

// addEncryptionFlag adds --encryption, the AEAD of a new encrypted
// repository.
func addEncryptionFlag(cmd *cobra.Command, encryption *string) {
	cmd.Flags().StringVar(encryption, "encryption", "", "the AEAD that seals the repository: xaes-256-gcm or xchacha20-poly1305 (default xaes-256-gcm)")
}

// NewCmdInit returns `repo init`.
func NewCmdInit(f *cmdutil.Factory, runF func(*InitOptions) error) *cobra.Command {
	opts := &InitOptions{IO: f.IOStreams, Provider: cmdutil.Capability[provider.Repository](f, "repo init"), Printer: f.Printer,
		Password: f.InitPassword}
	var chunkSize string
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a repository",
		Long: `Create an empty repository. The chunk size is fixed for the repository's life;
the default is 1 MiB. The place must be empty and must not lie inside another
repository (a subdirectory of one, or a longer prefix in its bucket).

A new repository is encrypted: every chunk, index, manifest, host record
and action is sealed with XAES-256-GCM (AES-256-GCM with 24-byte random
nonces; --encryption xchacha20-poly1305 for XChaCha20-Poly1305, faster on
processors without AES instructions) under a random master key, which a key
object keeps wrapped under the password (Argon2id; docs/format.md). The
password comes from --password-file, DROPBACK_PASSWORD_FILE,
DROPBACK_PASSWORD_COMMAND or DROPBACK_PASSWORD, else it is asked twice on the
terminal; without any, init refuses (exit 12). Keep the password: without
it nothing in the repository can be read. --insecure-no-encryption makes a
repository that anyone who can read its files or bucket can read; repo stats
shows which a repository is. --kdf sets Argon2id's cost (default
$DROPBACK_KDF, else t=3,m=64MiB,p=4, about 0.4 s on 2 cores).

An s3://bucket/prefix repository takes its endpoint and credentials from
AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION;
--create-bucket creates the bucket first (see docs/s3.md).`,
		Example: `  dropback repo init
  DROPBACK_PASSWORD_COMMAND='pass show dropback' dropback repo init
  dropback --repo /srv/backups repo init --chunk-size 4MiB
  dropback --repo /tmp/scratch repo init --insecure-no-encryption
  dropback --repo s3://backups/fleet repo init --create-bucket`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.NoEncryption && cmd.Flags().Changed("encryption") {
				return cmdutil.FlagErrorf("--encryption chooses how a repository is encrypted: it cannot be used with --insecure-no-encryption")
			}
			if chunkSize != "" {
				n, err := ParseSize(chunkSize)
				if err != nil {
					return cmdutil.FlagErrorf("invalid --chunk-size: %v", err)
				}
				opts.ChunkSize = n
			}
			if runF != nil {
				return runF(opts)
			}
			return runInit(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&chunkSize, "chunk-size", "", "chunk size, e.g. 1MiB or 4MiB (default: the engine's, 1MiB)")
	cmd.Flags().BoolVar(&opts.CreateBucket, "create-bucket", false, "create the bucket of an s3:// repository if it does not exist")
	cmd.Flags().BoolVar(&opts.NoEncryption, "insecure-no-encryption", false, "make a repository that is not encrypted: anyone who can read it can read every disk in it")
	addEncryptionFlag(cmd, &opts.Encryption)
	AddKDFFlag(cmd, f, &opts.KDF)
	cmdutil.DescribeColumns(cmd, output.Infos(display.RepoStatsColumns))
	return cmd
}

func runInit(ctx context.Context, opts *InitOptions) error {
	pr := opts.Printer()
	if err := pr.Check(output.Infos(display.RepoStatsColumns)); err != nil {
		return err
	}
	p, err := opts.Provider(ctx)
	if err != nil {
		return err
	}
	req := provider.RepoInitOptions{ChunkSize: opts.ChunkSize, CreateBucket: opts.CreateBucket, KDF: opts.KDF,
		Encryption: opts.Encryption}
	if !opts.NoEncryption {
		if req.Password, err = opts.Password(ctx); err != nil {
			return err
		}
		if req.Password == nil {
			return provider.Errorf(provider.ErrPassword, "initialise repository: a new repository is encrypted, and no password was given: use %s, run on a terminal, or pass --insecure-no-encryption for one that anyone who can read it can read",
				cmdutil.PasswordSources)
		}
	}
	stats, err := p.InitRepo(ctx, req)
	if err != nil {
		return fmt.Errorf("initialise repository: %w", err)
	}
	return pr.Print(display.RepoStats(stats))
}

// ParseSize parses a byte size: a number with an optional unit B, K/KiB,
// M/MiB or G/GiB (powers of 1024).
func ParseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}}
	upper := strings.ToUpper(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(upper, u.suffix) {
			upper, mult = strings.TrimSpace(strings.TrimSuffix(upper, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(upper, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a size such as 1MiB", s)
	}
	return n * mult, nil
}

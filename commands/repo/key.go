package repo

import (
	"context"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dropback/dropback/commands/cmdutil"
	"github.com/dropback/dropback/commands/display"
	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

// EnvKDF holds the default Argon2id parameters of new keys.
const EnvKDF = "DROPBACK_KDF"

// AddKDFFlag adds --kdf, Argon2id's parameters of a new key; when it is
// not given, kdf is $DROPBACK_KDF as the command runs.
func AddKDFFlag(cmd *cobra.Command, f *cmdutil.Factory, kdf *string) {
	cmd.Flags().StringVar(kdf, "kdf", "", "Argon2id parameters of the new key, t=PASSES,m=MEMORY,p=LANES (default $DROPBACK_KDF, else t=3,m=64MiB,p=4)")
	pre := cmd.PreRunE
	cmd.PreRunE = func(cmd *cobra.Command, args []string) error {
		if *kdf == "" {
			*kdf = f.Env(EnvKDF)
		}
		if pre != nil {
			return pre(cmd, args)
		}
		return nil
	}
}

// NewCmdKey returns `repo key` and its verbs.
func NewCmdKey(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key <command>",
		Short: "Manage the passwords of an encrypted repository",
		Long: `An encrypted repository has one master key, kept in one or more key objects,
each wrapped under a password of its own: any of them opens the repository.
Adding, removing or changing a key rewrites no backup.`,
		Example: `  dropback repo key list
  dropback repo key add --new-password-file /etc/dropback/ops.pw
  dropback repo key passwd`,
		Args: cmdutil.NounArgs,
		RunE: cmdutil.NounRunE,
	}
	cmd.AddCommand(NewCmdKeyList(f, nil), NewCmdKeyAdd(f, nil), NewCmdKeyRemove(f, nil), NewCmdKeyPasswd(f, nil))
	return cmd
}

// KeyListOptions are the inputs of `repo key list`.
type KeyListOptions struct {
	IO       *output.IOStreams
	Provider func(context.Context) (provider.KeyManager, error)
	Printer  func() *output.Printer
}

// NewCmdKeyList returns `repo key list`.
func NewCmdKeyList(f *cmdutil.Factory, runF func(*KeyListOptions) error) *cobra.Command {
	opts := &KeyListOptions{IO: f.IOStreams, Provider: cmdutil.Capability[provider.KeyManager](f, "repo key list"), Printer: f.Printer}
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the keys of an encrypted repository",
		Long: `List the repository's keys: each key's ID, when it was made, its Argon2id
parameters, and which one the password opened (Current).`,
		Example: `  dropback repo key list
  dropback repo key list -o json | jq -r '.[].id'`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			pr := opts.Printer()
			if err := pr.Check(output.Infos(display.KeyColumns)); err != nil {
				return err
			}
			p, err := opts.Provider(cmd.Context())
			if err != nil {
				return err
			}
			keys, err := p.ListKeys(cmd.Context())
			if err != nil {
				return err
			}
			return pr.Print(display.Keys(keys))
		},
	}
	cmdutil.DescribeColumns(cmd, output.Infos(display.KeyColumns))
	return cmd
}

// KeyAddOptions are the inputs of `repo key add` and `repo key passwd`.
type KeyAddOptions struct {
	IO       *output.IOStreams
	Provider func(context.Context) (provider.KeyManager, error)
	Printer  func() *output.Printer
	// NewPassword reads the new password from --new-password-file,
	// $DROPBACK_NEW_PASSWORD or the terminal; nil when there is none.
	NewPassword func(ctx context.Context, file string) ([]byte, error)

	NewPasswordFile string
	KDF             string
}

func newKeyOptions(f *cmdutil.Factory, verb string) *KeyAddOptions {
	return &KeyAddOptions{IO: f.IOStreams, Provider: cmdutil.Capability[provider.KeyManager](f, verb), Printer: f.Printer,
		NewPassword: func(ctx context.Context, file string) ([]byte, error) {
			return f.NewPasswordFor(ctx, file, cmdutil.EnvNewPassword, "new password")
		}}
}

// NewCmdKeyAdd returns `repo key add`.
func NewCmdKeyAdd(f *cmdutil.Factory, runF func(*KeyAddOptions) error) *cobra.Command {
	opts := newKeyOptions(f, "repo key add")
	cmd := &cobra.Command{
		Use:   "add",
		Short: "Add a password to an encrypted repository",
		Long: `Add a key that opens the repository with a new password; the password that
opens it now is asked first, as for any command. The new password comes from
--new-password-file, else $DROPBACK_NEW_PASSWORD, else it is asked twice on
the terminal.`,
		Example: `  dropback repo key add
  DROPBACK_NEW_PASSWORD=… dropback repo key add --kdf t=4,m=256MiB,p=4`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runNewKey(cmd.Context(), opts, provider.KeyManager.AddKey, "Added key %s")
		},
	}
	addNewKeyFlags(cmd, f, opts)
	return cmd
}

// NewCmdKeyPasswd returns `repo key passwd`.
func NewCmdKeyPasswd(f *cmdutil.Factory, runF func(*KeyAddOptions) error) *cobra.Command {
	opts := newKeyOptions(f, "repo key passwd")
	cmd := &cobra.Command{
		Use:   "passwd",
		Short: "Change the password of an encrypted repository",
		Long: `Change the password that opens the repository: a key for the new password is
added, then the key the current password opened is removed. Other keys, the
master key and every backup stay as they are.`,
		Example: `  dropback repo key passwd
  dropback repo key passwd --new-password-file new.pw`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runNewKey(cmd.Context(), opts, provider.KeyManager.ChangePassword, "Changed the password: key %s replaces the old one")
		},
	}
	addNewKeyFlags(cmd, f, opts)
	return cmd
}

func addNewKeyFlags(cmd *cobra.Command, f *cmdutil.Factory, opts *KeyAddOptions) {
	cmd.Flags().StringVar(&opts.NewPasswordFile, "new-password-file", "", "file whose first line is the new password (default $DROPBACK_NEW_PASSWORD, then a prompt)")
	AddKDFFlag(cmd, f, &opts.KDF)
	cmdutil.DescribeColumns(cmd, output.Infos(display.KeyColumns))
}

func runNewKey(ctx context.Context, opts *KeyAddOptions,
	add func(provider.KeyManager, context.Context, []byte, string) (*provider.RepoKey, error), notice string) error {
	pr := opts.Printer()
	if err := pr.Check(output.Infos(display.KeyColumns)); err != nil {
		return err
	}
	p, err := opts.Provider(ctx)
	if err != nil {
		return err
	}
	// The repository opens before the new password is asked.
	if _, err := p.ListKeys(ctx); err != nil {
		return err
	}
	pw, err := opts.NewPassword(ctx, opts.NewPasswordFile)
	if err != nil {
		return err
	}
	if pw == nil {
		return provider.Errorf(provider.ErrPassword, "no new password: use --new-password-file or %s, or run on a terminal", cmdutil.EnvNewPassword)
	}
	k, err := add(p, ctx, pw, opts.KDF)
	if err != nil {
		return err
	}
	pr.Noticef(notice, k.ID)
	return pr.Print(display.Key(k))
}

// KeyRemoveOptions are the inputs of `repo key remove`.
type KeyRemoveOptions struct {
	IO       *output.IOStreams
	Provider func(context.Context) (provider.KeyManager, error)
	Printer  func() *output.Printer

	ID    string
	Force bool
}

// NewCmdKeyRemove returns `repo key remove`.
func NewCmdKeyRemove(f *cmdutil.Factory, runF func(*KeyRemoveOptions) error) *cobra.Command {
	opts := &KeyRemoveOptions{IO: f.IOStreams, Provider: cmdutil.Capability[provider.KeyManager](f, "repo key remove"), Printer: f.Printer}
	cmd := &cobra.Command{
		Use:     "remove <id>",
		Aliases: []string{"rm"},
		Short:   "Remove a password from an encrypted repository",
		Long: `Remove a key: its password no longer opens the repository. The key is
named by its ID, or by the start of it when no other key's ID starts the
same. The last key cannot be removed, nor the one the current password
opened (use 'repo key passwd' to change that one). Both are refused before
anything is asked. On a terminal this asks for confirmation; otherwise it
needs --force.`,
		Example: `  dropback repo key remove 3f2a…
  dropback repo key remove 3f2a… --force`,
		Args: cmdutil.ExactArgs(1, "the key ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ID = args[0]
			if runF != nil {
				return runF(opts)
			}
			p, err := opts.Provider(cmd.Context())
			if err != nil {
				return err
			}
			keys, err := p.ListKeys(cmd.Context())
			if err != nil {
				return err
			}
			if opts.ID, err = keyToRemove(keys, opts.ID); err != nil {
				return err
			}
			if err := cmdutil.ConfirmDestructive(opts.IO, opts.Force, "Remove key "+opts.ID+"? Its password will no longer open the repository.", "remove key "+opts.ID); err != nil {
				return err
			}
			if err := p.RemoveKey(cmd.Context(), opts.ID); err != nil {
				return err
			}
			opts.Printer().Noticef("Removed key %s", opts.ID)
			return nil
		},
	}
	cmdutil.AddForceFlag(cmd, &opts.Force, "remove without asking")
	return cmd
}

// keyToRemove resolves id, a key's ID or a prefix of one key's ID, among
// keys, and refuses what the repository would refuse before anything is
// asked: no such key, the key in use, the last readable key.
func keyToRemove(keys []provider.RepoKey, id string) (string, error) {
	var match []provider.RepoKey
	readable := 0
	for _, k := range keys {
		if k.Problem == "" {
			readable++
		}
		if k.ID == id {
			match = []provider.RepoKey{k}
		}
	}
	for _, k := range keys {
		if len(match) == 0 || match[0].ID != id {
			if id != "" && strings.HasPrefix(k.ID, id) {
				match = append(match, k)
			}
		}
	}
	switch {
	case len(match) == 0:
		return "", provider.Errorf(provider.ErrNotFound, "no key %s (see `dropback repo key list`)", cmdutil.Short(id))
	case len(match) > 1:
		return "", provider.Errorf(provider.ErrInvalid, "%d keys begin with %s: give more of the ID", len(match), cmdutil.Short(id))
	case match[0].Current:
		return "", provider.Errorf(provider.ErrInvalid, "key %s is the one this password opened: add another key, open the repository with its password, then remove this one (or use `repo key passwd`)", match[0].ID)
	case match[0].Problem == "" && readable <= 1:
		return "", provider.Errorf(provider.ErrInvalid, "key %s is the last key of the repository: without it nothing in it can be read", match[0].ID)
	}
	return match[0].ID, nil
}

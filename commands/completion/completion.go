// Package completion holds `completion`: shell completion scripts from
// cobra.
package completion

import (
	"github.com/spf13/cobra"

	"github.com/dropback/dropback/commands/cmdutil"
	"github.com/dropback/dropback/pkg/output"
)

// CompletionOptions are the inputs of `completion`.
type CompletionOptions struct {
	IO *output.IOStreams

	Shell string
}

// NewCmdCompletion returns `completion`.
func NewCmdCompletion(f *cmdutil.Factory, runF func(*CompletionOptions) error) *cobra.Command {
	opts := &CompletionOptions{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "completion <bash|zsh|fish|powershell>",
		Short: "Print a shell completion script",
		Long: `Print the completion script of a shell to stdout. Load it from the shell's
start-up file.`,
		Example: `  # bash, in ~/.bashrc
  source <(dropback completion bash)

  # zsh, in a directory of $fpath
  dropback completion zsh > "${fpath[1]}/_dropback"

  # fish
  dropback completion fish > ~/.config/fish/completions/dropback.fish`,
		ValidArgs: []string{"bash", "zsh", "fish", "powershell"},
		Args:      cmdutil.ExactArgs(1, "the shell (bash, zsh, fish or powershell)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Shell = args[0]
			if runF != nil {
				return runF(opts)
			}
			return runCompletion(cmd.Root(), opts)
		},
	}
	return cmd
}

func runCompletion(root *cobra.Command, opts *CompletionOptions) error {
	w := opts.IO.Out
	switch opts.Shell {
	case "bash":
		return root.GenBashCompletionV2(w, true)
	case "zsh":
		return root.GenZshCompletion(w)
	case "fish":
		return root.GenFishCompletion(w, true)
	case "powershell":
		return root.GenPowerShellCompletionWithDesc(w)
	}
	return cmdutil.FlagErrorf("unknown shell \"%s\": use bash, zsh, fish or powershell", cmdutil.Short(opts.Shell))
}

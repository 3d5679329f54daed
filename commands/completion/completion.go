// Package completion holds `completion`: shell completion scripts from
// cobra.
package completion

import (
	"io"

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
start-up file, or install it where the shell finds it (` + "`make install`" + ` does).

Completion knows the context: host names, backup IDs and latest, plans,
window hours, weekdays, -o values, the columns of --format and the contexts.
It reads the local repository, or asks a DigitalOcean context with a
2-second limit; it never writes.

bash: the script works with or without the bash-completion package. Without
it, source the script from ~/.bashrc; with it, a file in
~/.local/share/bash-completion/completions/ is loaded on first use.

zsh: completion must be on (compinit). Source the script from ~/.zshrc after
compinit, or write it as _dropback into a directory of $fpath.

fish: write it into ~/.config/fish/completions/.`,
		Example: `  # bash, without the bash-completion package: in ~/.bashrc
  source <(dropback completion bash)

  # bash, with the bash-completion package (apt install bash-completion)
  mkdir -p ~/.local/share/bash-completion/completions
  dropback completion bash > ~/.local/share/bash-completion/completions/dropback

  # zsh: in ~/.zshrc, after compinit
  source <(dropback completion zsh)

  # zsh: or once, into a directory of your own on $fpath
  mkdir -p ~/.zfunc && dropback completion zsh > ~/.zfunc/_dropback
  # and in ~/.zshrc, before compinit: fpath=(~/.zfunc $fpath)

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

// bashWithoutPackage defines, when the bash-completion package has not,
// the one function of it that cobra's bash script needs, so that sourcing
// the script works on a bare bash too. It joins the words bash split at
// the characters given with -n (":" and "="), as the package's does, so that
// --format=ID,Na completes.
const bashWithoutPackage = `# dropback: bash completion. Works with or without the bash-completion package.
if ! declare -F _get_comp_words_by_ref >/dev/null 2>&1; then
_get_comp_words_by_ref() {
    local exclude="" i j w
    if [[ $1 == -n ]]; then exclude=$2; shift 2; fi
    local -a joined=()
    local jcword=0
    for ((i = 0, j = -1; i < ${#COMP_WORDS[@]}; i++)); do
        w=${COMP_WORDS[i]}
        if ((j >= 0)) && [[ -n $exclude && ( $w == [$exclude] || ${COMP_WORDS[i-1]} == [$exclude] ) ]]; then
            joined[j]+=$w
        else
            joined[++j]=$w
        fi
        ((i == COMP_CWORD)) && jcword=$j
    done
    local v
    for v in "$@"; do
        case $v in
        cur) cur=${joined[jcword]} ;;
        prev) prev=${joined[jcword-1]} ;;
        words) words=("${joined[@]}") ;;
        cword) cword=$jcword ;;
        esac
    done
}
fi
`

func runCompletion(root *cobra.Command, opts *CompletionOptions) error {
	w := opts.IO.Out
	switch opts.Shell {
	case "bash":
		if _, err := io.WriteString(w, bashWithoutPackage); err != nil {
			return err
		}
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

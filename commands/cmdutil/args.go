package cmdutil

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/spf13/cobra"
)

// ExactArgs requires exactly n arguments, named in the error by what.
func ExactArgs(n int, what string) cobra.PositionalArgs { return RangeArgs(n, n, what) }

// RangeArgs requires between lo and hi arguments, named in the error by what.
func RangeArgs(lo, hi int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < lo {
			return FlagErrorf("%s: missing %s", cmd.CommandPath(), what)
		}
		if len(args) > hi {
			return FlagErrorf("%s: too many arguments (takes %s): %s", cmd.CommandPath(), what, strings.Join(args[hi:], " "))
		}
		return nil
	}
}

// NoArgs refuses arguments.
func NoArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return FlagErrorf("%s takes no arguments: %s", cmd.CommandPath(), strings.Join(args, " "))
	}
	return nil
}

// NounArgs is the Args of a command that only groups verbs: any argument is
// an unknown verb.
func NounArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	hint := fmt.Sprintf("run `%s --help`", cmd.CommandPath())
	// The closest verb: one edit away before two.
	for _, d := range []int{1, 2} {
		cmd.SuggestionsMinimumDistance = d
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			hint = fmt.Sprintf("did you mean %q?", s[0])
			break
		}
	}
	return FlagErrorf("unknown command %q for %q; %s", args[0], cmd.CommandPath(), hint)
}

// ParseID parses a positive integer ID argument.
func ParseID(what, s string) (int, error) {
	id, err := strconv.Atoi(s)
	if err != nil || id <= 0 {
		return 0, FlagErrorf("invalid %s %q: must be a positive integer", what, s)
	}
	return id, nil
}

// ParseIDs parses several ID arguments.
func ParseIDs(what string, args []string) ([]int, error) {
	ids := make([]int, 0, len(args))
	for _, a := range args {
		id, err := ParseID(what, a)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// NounRunE makes a grouping command print its help when run bare; NounArgs
// refuses unknown verbs.
func NounRunE(cmd *cobra.Command, args []string) error {
	return cmd.Help()
}

// MutuallyExclusive returns a usage error when more than one of the named
// flags was set.
func MutuallyExclusive(cmd *cobra.Command, names ...string) error {
	var set []string
	for _, n := range names {
		if cmd.Flags().Changed(n) {
			set = append(set, "--"+n)
		}
	}
	if len(set) > 1 {
		return FlagErrorf("%s cannot be used together", strings.Join(set, " and "))
	}
	return nil
}

// Requires returns a usage error when a flag of dependents was set without
// the flag base.
func Requires(cmd *cobra.Command, base string, dependents ...string) error {
	if cmd.Flags().Changed(base) {
		return nil
	}
	for _, d := range dependents {
		if cmd.Flags().Changed(d) {
			return FlagErrorf("--%s only applies with --%s", d, base)
		}
	}
	return nil
}

// Plural returns "1 thing" or "n things".
func Plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

// maxArgInMessage bounds how much of a user-given value an error message
// repeats, so that the error stays one readable line.
const maxArgInMessage = 64

// Short returns s for use in a message: cut to 64 characters with "…", and
// with control and bidirectional-override characters escaped, so that a
// hostile argument can neither break the line nor drive the terminal.
func Short(s string) string {
	r := []rune(s)
	if len(r) > maxArgInMessage {
		r = append(r[:maxArgInMessage], '…')
	}
	var b strings.Builder
	for _, c := range r {
		if unicode.IsControl(c) || unicode.Is(unicode.Bidi_Control, c) {
			q := strconv.QuoteRune(c)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

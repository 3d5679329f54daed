package cmdutil

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

// CompletionTimeout bounds what one completion may ask the context: a
// DigitalOcean context answers over the network, and a shell waits for
// the answer on every Tab. The local context reads its repository.
const CompletionTimeout = 2 * time.Second

// Completer is a cobra ValidArgsFunction or flag completion function.
type Completer = func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective)

const noFiles = cobra.ShellCompDirectiveNoFileComp

// completionContext is the command's context bounded by CompletionTimeout.
func completionContext(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	return context.WithTimeout(ctx, CompletionTimeout)
}

// capabilityOf is the provider's capability C for a completion, or false
// when there is none (no repository, no token, a context without it):
// completion then offers nothing rather than an error.
func capabilityOf[C any](ctx context.Context, f *Factory) (C, bool) {
	var zero C
	p, err := f.Provider(ctx)
	if err != nil {
		return zero, false
	}
	c, ok := p.(C)
	return c, ok
}

// CompleteHosts completes a host argument with the context's host names,
// each described by its ID; only the first argument.
func CompleteHosts(f *Factory) Completer {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, noFiles
		}
		return hostCompletions(cmd, f, toComplete), noFiles
	}
}

func hostCompletions(cmd *cobra.Command, f *Factory, toComplete string) []cobra.Completion {
	ctx, cancel := completionContext(cmd)
	defer cancel()
	p, ok := capabilityOf[provider.Hosts](ctx, f)
	if !ok {
		return nil
	}
	hosts, _ := p.ListHosts(ctx) // what can be read
	var out []cobra.Completion
	for _, h := range hosts {
		if strings.HasPrefix(h.Name, toComplete) {
			out = append(out, cobra.CompletionWithDesc(h.Name, fmt.Sprintf("host %d, %s", h.ID, Plural(len(h.Disks), "disk", "disks"))))
		}
	}
	return out
}

// CompleteBackupRef completes the backup arguments of a verb that names one
// backup, [<host>] <id|latest>: first host names and backup IDs, then,
// after a host, latest and that host's backup IDs.
func CompleteBackupRef(f *Factory) Completer {
	return completeBackups(f, false)
}

// CompleteBackupRefs completes [<host>] <id|latest>..., as verify and
// delete take them: after a host or an ID, more IDs of the same kind.
func CompleteBackupRefs(f *Factory) Completer {
	return completeBackups(f, true)
}

func completeBackups(f *Factory, many bool) Completer {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		switch {
		case len(args) == 0:
			out := hostCompletions(cmd, f, toComplete)
			return append(out, backupCompletions(cmd, f, "", toComplete, nil)...), noFiles
		case isID(args[0]) && many:
			return backupCompletions(cmd, f, "", toComplete, args), noFiles
		case !isID(args[0]) && (many || len(args) == 1):
			out := backupCompletions(cmd, f, args[0], toComplete, args[1:])
			if strings.HasPrefix(Latest, toComplete) && !slices.Contains(args[1:], Latest) {
				out = append([]cobra.Completion{cobra.CompletionWithDesc(Latest, "the host's newest backup")}, out...)
			}
			return out, noFiles
		}
		return nil, noFiles
	}
}

func isID(s string) bool {
	_, err := strconv.Atoi(s)
	return err == nil
}

// backupCompletions are the IDs of the backups and snapshots of host (of
// every host when ""), newest first (the higher ID first in one second), each described by its host and date,
// leaving out those already given.
func backupCompletions(cmd *cobra.Command, f *Factory, host, toComplete string, given []string) []cobra.Completion {
	ctx, cancel := completionContext(cmd)
	defer cancel()
	p, ok := capabilityOf[provider.Backups](ctx, f)
	if !ok {
		return nil
	}
	bs, _ := p.ListBackups(ctx, host)
	if s, ok := p.(provider.Snapshots); ok {
		snaps, _ := s.ListSnapshots(ctx, host)
		bs = append(bs, snaps...)
	}
	slices.SortStableFunc(bs, func(a, b provider.Backup) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return b.ID - a.ID
	})
	var out []cobra.Completion
	for _, b := range bs {
		id := strconv.Itoa(b.ID)
		if !strings.HasPrefix(id, toComplete) || slices.Contains(given, id) {
			continue
		}
		desc := fmt.Sprintf("%s of %s, %s", b.Type, orID(b.HostName, b.HostID), b.CreatedAt.UTC().Format("2006-01-02 15:04"))
		out = append(out, cobra.CompletionWithDesc(id, desc))
	}
	return out
}

func orID(name string, id int) string {
	if name != "" {
		return name
	}
	return "host " + strconv.Itoa(id)
}

// CompleteSnapshots completes snapshot IDs, for snapshots delete.
func CompleteSnapshots(f *Factory) Completer {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		ctx, cancel := completionContext(cmd)
		defer cancel()
		p, ok := capabilityOf[provider.Snapshots](ctx, f)
		if !ok {
			return nil, noFiles
		}
		snaps, _ := p.ListSnapshots(ctx, "")
		var out []cobra.Completion
		for _, s := range snaps {
			id := strconv.Itoa(s.ID)
			if strings.HasPrefix(id, toComplete) && !slices.Contains(args, id) {
				out = append(out, cobra.CompletionWithDesc(id, fmt.Sprintf("snapshot of %s, %s", orID(s.HostName, s.HostID), s.CreatedAt.UTC().Format("2006-01-02 15:04"))))
			}
		}
		return out, noFiles
	}
}

// Fixed is a completion of the given values, each with its description
// (pairs of value and description).
func Fixed(pairs ...string) Completer {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		var out []cobra.Completion
		for i := 0; i+1 < len(pairs); i += 2 {
			if strings.HasPrefix(pairs[i], toComplete) {
				out = append(out, cobra.CompletionWithDesc(pairs[i], pairs[i+1]))
			}
		}
		return out, noFiles
	}
}

// Weekdays are the days a weekly plan takes, as the DigitalOcean API names
// them.
var Weekdays = []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}

// completePlans completes --plan with the plans the context offers (on
// DigitalOcean, the account's supported_policies).
func completePlans(f *Factory) Completer {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		ctx, cancel := completionContext(cmd)
		defer cancel()
		p, ok := capabilityOf[provider.Policies](ctx, f)
		if !ok {
			return nil, noFiles
		}
		plans, err := p.SupportedPolicies(ctx)
		if err != nil {
			return nil, noFiles
		}
		var out []cobra.Completion
		for _, pl := range plans {
			if strings.HasPrefix(pl.Name, toComplete) {
				out = append(out, cobra.CompletionWithDesc(pl.Name, fmt.Sprintf("kept %d days", pl.RetentionPeriodDays)))
			}
		}
		return out, noFiles
	}
}

// completeHours completes --hour with the window starts of the plan the
// command line names, or of the context's first plan.
func completeHours(f *Factory) Completer {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		starts := []int{0, 4, 8, 12, 16, 20}
		ctx, cancel := completionContext(cmd)
		defer cancel()
		if p, ok := capabilityOf[provider.Policies](ctx, f); ok {
			plan, _ := cmd.Flags().GetString("plan")
			if plans, err := p.SupportedPolicies(ctx); err == nil {
				for _, pl := range plans {
					if pl.Name == plan || (plan == "" && len(pl.PossibleWindowStarts) > 0) {
						starts = pl.PossibleWindowStarts
						break
					}
				}
			}
		}
		var out []cobra.Completion
		for _, h := range starts {
			s := strconv.Itoa(h)
			if strings.HasPrefix(s, toComplete) {
				out = append(out, cobra.CompletionWithDesc(s, fmt.Sprintf("window from %02d:00 UTC", h)))
			}
		}
		return out, noFiles
	}
}

// columnsAnnotation holds, on a command, the --format keys of what it
// prints (set by DescribeColumns).
const columnsAnnotation = "dropback_columns"

// completeFormat completes --format with the columns of the command being
// completed, after any already given: "ID,Na" offers "ID,Name".
func completeFormat(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	keys := strings.Split(cmd.Annotations[columnsAnnotation], ",")
	done, last := "", toComplete
	if i := strings.LastIndex(toComplete, ","); i >= 0 {
		done, last = toComplete[:i+1], toComplete[i+1:]
	}
	given := strings.Split(strings.ToLower(done), ",")
	var out []cobra.Completion
	for _, k := range keys {
		if k != "" && strings.HasPrefix(strings.ToLower(k), strings.ToLower(last)) && !slices.Contains(given, strings.ToLower(k)) {
			out = append(out, done+k)
		}
	}
	return out, noFiles | cobra.ShellCompDirectiveNoSpace
}

// completeContexts completes --context with local, digitalocean and every
// context of dropback's and doctl's config files; it reads only files.
func completeContexts(f *Factory) Completer {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		names := []string{provider.ContextLocal, provider.ContextDigitalOcean}
		if file, err := f.Config(); err == nil {
			for name := range file.AuthContexts {
				names = append(names, name)
			}
		}
		if d, err := f.Doctl(); err == nil {
			names = append(names, d.Contexts()...)
		}
		slices.Sort(names)
		names = slices.Compact(names)
		var out []cobra.Completion
		for _, n := range names {
			if strings.HasPrefix(n, toComplete) {
				out = append(out, n)
			}
		}
		return out, noFiles
	}
}

// RegisterCompletions adds flag completions to every command of the tree
// under root: -o, --format and --context on the root, and --plan, --hour
// and --weekday wherever a command has them. Arguments are completed by
// each verb's ValidArgsFunction.
func RegisterCompletions(root *cobra.Command, f *Factory) {
	must(root.RegisterFlagCompletionFunc("output", Fixed(output.FormatText, "tables", output.FormatJSON, "JSON, as the DigitalOcean API")))
	must(root.RegisterFlagCompletionFunc("format", completeFormat))
	must(root.RegisterFlagCompletionFunc("context", completeContexts(f)))
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		flags := c.LocalNonPersistentFlags()
		if flags.Lookup("plan") != nil {
			must(c.RegisterFlagCompletionFunc("plan", completePlans(f)))
		}
		if flags.Lookup("hour") != nil {
			must(c.RegisterFlagCompletionFunc("hour", completeHours(f)))
		}
		if flags.Lookup("weekday") != nil {
			var pairs []string
			for _, d := range Weekdays {
				pairs = append(pairs, d, "weekly backups on "+d)
			}
			must(c.RegisterFlagCompletionFunc("weekday", Fixed(pairs...)))
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

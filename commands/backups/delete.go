package backups

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dropback/dropback/commands/cmdutil"
	"github.com/dropback/dropback/commands/display"
	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

// DeleteOptions are the inputs of `backups delete`.
type DeleteOptions struct {
	IO       *output.IOStreams
	Provider func(context.Context) (deleter, error)
	Printer  func() *output.Printer

	Host    string   // "" when the backups are named by ID alone
	Backups []string // IDs, or latest with Host
	Force   bool
	Last    bool
}

// deleter is what delete needs: the backups to name, and the delete.
type deleter interface {
	provider.Backups
	provider.Snapshots
	provider.BackupDeleter
}

// NewCmdDelete returns `backups delete`.
func NewCmdDelete(f *cmdutil.Factory, runF func(*DeleteOptions) error) *cobra.Command {
	opts := &DeleteOptions{IO: f.IOStreams, Provider: cmdutil.Capability[deleter](f, "backups delete"), Printer: f.Printer}
	cmd := &cobra.Command{
		Use:     "delete [<host>] <id|latest>...",
		Aliases: []string{"rm"},
		Short:   "Delete backups",
		Long: `Delete backups of a host, named by the host and their IDs, or by their IDs
alone. Backups of a host that was removed are deleted the same way; list them
with ` + "`dropback backups list --orphaned`" + `. Snapshots are deleted with
` + "`dropback snapshots delete`" + `.

Only the backup's manifest is deleted: the data it alone referenced stays in
the repository until ` + "`dropback repo gc`" + ` reclaims it, and a restore that is
reading the backup finishes.

Every backup is found and checked before anything is asked. The question
names each backup (ID and date). On a terminal it asks; otherwise it needs
--force. A host's last backup (after which the host has none left to
restore, or might, if some cannot be read) is never deleted without saying
so: the question says it is the last, and without a terminal it needs --last
as well as --force.`,
		Example: `  dropback backups delete web-1 41 42
  dropback backups delete 41 --force
  dropback backups list --orphaned
  dropback backups delete old-vm 7 --force --last`,
		Args:              cmdutil.RangeArgs(1, 1<<20, "the backups: [<host>] <id|latest>..."),
		ValidArgsFunction: cmdutil.CompleteBackupRefs(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			host, backups, err := parseBackupList(args)
			if err != nil {
				return err
			}
			opts.Host, opts.Backups = host, backups
			if runF != nil {
				return runF(opts)
			}
			return runDelete(cmd.Context(), opts)
		},
	}
	cmdutil.AddForceFlag(cmd, &opts.Force, "delete without asking")
	cmd.Flags().BoolVar(&opts.Last, "last", false, "also delete a backup that is its host's last (needed with --force when one is)")
	cmdutil.DescribeColumns(cmd, output.Infos(display.BackupColumns))
	return cmd
}

// parseBackupList reads [<host>] <id|latest>...: a first argument that is
// no ID, or one followed by latest, is a host, and at least one backup
// follows it.
func parseBackupList(args []string) (string, []string, error) {
	host := ""
	if _, err := strconv.Atoi(args[0]); err != nil || slices.Contains(args[1:], cmdutil.Latest) {
		host, args = args[0], args[1:]
	}
	if len(args) == 0 {
		return "", nil, cmdutil.FlagErrorf("name the backups: <host> <id|latest>..., or backup IDs")
	}
	for _, a := range args {
		ref := []string{a}
		if host != "" {
			ref = []string{host, a}
		}
		if _, err := cmdutil.ParseBackupRef(ref); err != nil {
			return "", nil, err
		}
	}
	return host, args, nil
}

func runDelete(ctx context.Context, opts *DeleteOptions) error {
	pr := opts.Printer()
	if err := pr.Check(output.Infos(display.BackupColumns)); err != nil {
		return err
	}
	p, err := opts.Provider(ctx)
	if err != nil {
		return err
	}
	targets, err := findDeletions(ctx, p, opts)
	if err != nil {
		return err
	}
	last, uncertain, err := lastOfHost(ctx, p, targets)
	if err != nil {
		return err
	}
	if err := confirmDelete(opts, targets, last, uncertain); err != nil {
		return err
	}
	ids := make([]int, len(targets))
	for i, b := range targets {
		ids[i] = b.ID
	}
	deleted, err := p.DeleteBackups(ctx, ids, provider.DeleteOptions{AllowLast: len(last) > 0})
	if len(deleted) > 0 {
		pr.Noticef("Deleted %s; `dropback repo gc` reclaims the data only they used", cmdutil.Plural(len(deleted), "backup", "backups"))
	}
	if err != nil {
		err = fmt.Errorf("delete backups: %w", err)
		if len(deleted) > 0 {
			err = fmt.Errorf("%w (%d of %d deleted): %w", err, len(deleted), len(ids), cmdutil.ErrPartial)
		}
	}
	if err != nil && len(deleted) == 0 {
		return err // nothing to list: with -o json the error is the document
	}
	if perr := pr.Print(display.Backups(deleted)); perr != nil && err == nil {
		err = perr
	}
	return err
}

// findDeletions resolves each backup named, once each, and refuses a
// snapshot, before anything is asked or deleted.
func findDeletions(ctx context.Context, p deleter, opts *DeleteOptions) ([]*provider.Backup, error) {
	var out []*provider.Backup
	seen := map[int]bool{}
	for _, a := range opts.Backups {
		b, err := cmdutil.FindBackup(ctx, p, cmdutil.BackupRef{Host: opts.Host, Backup: a})
		if err != nil {
			return nil, err
		}
		if b.Type == provider.TypeSnapshot {
			return nil, cmdutil.FlagErrorf("%d is a snapshot, which backups delete leaves alone; delete it with `dropback snapshots delete %d`", b.ID, b.ID)
		}
		if !seen[b.ID] {
			seen[b.ID] = true
			out = append(out, b)
		}
	}
	return out, nil
}

// lastOfHost returns, for each host that the deletions would leave with no
// backup or snapshot, the name it is shown by. When some backups cannot be
// read (uncertain), every host is counted as left with none: it may be.
func lastOfHost(ctx context.Context, p deleter, targets []*provider.Backup) (map[int]string, bool, error) {
	backups, berr := p.ListBackups(ctx, "")
	snapshots, serr := p.ListSnapshots(ctx, "")
	if (berr != nil && backups == nil) || (serr != nil && snapshots == nil) {
		return nil, false, fmt.Errorf("list backups: %w", errors.Join(berr, serr))
	}
	uncertain := berr != nil || serr != nil
	going := map[int]bool{}
	for _, b := range targets {
		going[b.ID] = true
	}
	left := map[int]int{}
	for _, b := range append(backups, snapshots...) {
		if !going[b.ID] {
			left[b.HostID]++
		}
	}
	last := map[int]string{}
	for _, b := range targets {
		if left[b.HostID] == 0 || uncertain {
			last[b.HostID] = hostLabel(b)
		}
	}
	return last, uncertain, nil
}

func hostLabel(b *provider.Backup) string {
	if b.HostName != "" {
		return b.HostName
	}
	return strconv.Itoa(b.HostID)
}

// confirmDelete asks, naming each backup, and in so many words when one is
// its host's last; without a terminal it needs --force, and --last too for
// a last backup.
func confirmDelete(opts *DeleteOptions, targets []*provider.Backup, last map[int]string, uncertain bool) error {
	names := make([]string, len(targets))
	for i, b := range targets {
		names[i] = cmdutil.DescribeBackup(b)
	}
	what := "delete " + strings.Join(names, ", ")
	question := "Delete " + strings.Join(names, ", ") + "?"
	if len(last) == 0 {
		return cmdutil.ConfirmDestructive(opts.IO, opts.Force, question, what)
	}
	var hosts []string
	for _, h := range last {
		hosts = append(hosts, cmdutil.Short(h))
	}
	slices.Sort(hosts)
	warning := fmt.Sprintf("This is the LAST backup of host %s: after it, the host has no backup left to restore.", strings.Join(hosts, ", host "))
	if uncertain {
		warning = fmt.Sprintf("This may be the LAST backup of host %s: some backups cannot be read, so the host may have none left to restore.", strings.Join(hosts, ", host "))
	}
	if !opts.Last && !opts.IO.CanPrompt() {
		return fmt.Errorf("%s: %s Pass --force --last to delete it without a terminal: %w", what, warning, provider.ErrConfirm)
	}
	return cmdutil.ConfirmDestructive(opts.IO, opts.Force && opts.Last, warning+" "+question, what)
}

package backups

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/dropback/dropback/commands/cmdutil"
	"github.com/dropback/dropback/commands/display"
	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

// VerifyOptions are the inputs of `backups verify`.
type VerifyOptions struct {
	IO       *output.IOStreams
	Provider func(context.Context) (verifier, error)
	Printer  func() *output.Printer

	// Host, when set, limits the check to its backups and snapshots, or
	// to those of Backups among them.
	Host string
	// Backups are IDs, or latest with Host; none checks every backup of
	// Host, or the whole repository.
	Backups []string
}

// verifier is what verify needs: the check, and the backups to name.
type verifier interface {
	provider.Verifier
	provider.Backups
	provider.Snapshots
}

// NewCmdVerify returns `backups verify`.
func NewCmdVerify(f *cmdutil.Factory, runF func(*VerifyOptions) error) *cobra.Command {
	opts := &VerifyOptions{IO: f.IOStreams, Provider: cmdutil.Capability[verifier](f, "backups verify"), Printer: f.Printer}
	cmd := &cobra.Command{
		Use:   "verify [<host>] [<id|latest>...]",
		Short: "Check the integrity of backups",
		Long: `Re-read, decompress and re-hash every chunk of the given backups, of every
backup of a host, or of the whole repository, and print each backup's
verdict. Exits with code 7 if any backup or object is damaged (see
docs/exit-codes.md).

Backups are named as everywhere: a host and IDs or latest, or IDs alone. A
first argument that is not a number is a host; name a host by its ID with a
backup after it (verify 3 latest).

Engine only: DigitalOcean verifies its images itself.`,
		Example: `  dropback backups verify
  dropback backups verify web-1
  dropback backups verify web-1 latest
  dropback backups verify 41 42
  dropback backups verify -o json | jq '.backups[] | select(.status == "damaged")'`,
		Args:              cobra.ArbitraryArgs,
		ValidArgsFunction: cmdutil.CompleteBackupRefs(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := parseVerifyArgs(args, opts); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return runVerify(cmd.Context(), opts)
		},
	}
	cmdutil.DescribeColumns(cmd, output.Infos(display.VerifyColumns))
	return cmd
}

func runVerify(ctx context.Context, opts *VerifyOptions) error {
	pr := opts.Printer()
	if err := pr.Check(output.Infos(display.VerifyColumns)); err != nil {
		return err
	}
	p, err := opts.Provider(ctx)
	if err != nil {
		return err
	}
	ids, err := verifyIDs(ctx, p, opts)
	if err != nil {
		return err
	}
	counter, stop := pr.Progress()
	report, err := p.VerifyBackups(ctx, ids, provider.VerifyOptions{Progress: counter})
	stop()
	if err != nil {
		return fmt.Errorf("verify backups: %w", err)
	}
	if err := pr.Print(display.Verify(report)); err != nil {
		return err
	}
	for _, n := range report.Notices {
		pr.Noticef("%s", n)
	}
	if !pr.JSON {
		for _, problem := range report.Problems {
			fmt.Fprintf(opts.IO.ErrOut, "problem: %s\n", problem)
		}
	}
	return verdict(report)
}

// parseVerifyArgs reads [<host>] [<id|latest>...]: a first argument that is
// no ID is a host, or so is one followed by latest.
func parseVerifyArgs(args []string, opts *VerifyOptions) error {
	if len(args) > 0 {
		_, err := strconv.Atoi(args[0])
		if err != nil || slices.Contains(args[1:], cmdutil.Latest) {
			opts.Host, args = args[0], args[1:]
		}
	}
	for _, a := range args {
		ref := []string{a}
		if opts.Host != "" {
			ref = []string{opts.Host, a}
		}
		if _, err := cmdutil.ParseBackupRef(ref); err != nil {
			return err
		}
	}
	opts.Backups = args
	return nil
}

// verifyIDs resolves the backups to check: none for the whole repository,
// every backup and snapshot of a host, or each one named, checked to be
// the host's.
func verifyIDs(ctx context.Context, p verifier, opts *VerifyOptions) ([]int, error) {
	var ids []int
	if opts.Host != "" && len(opts.Backups) == 0 {
		bs, err := p.ListBackups(ctx, opts.Host)
		if err != nil {
			return nil, fmt.Errorf("list the backups of host %s: %w", cmdutil.Short(opts.Host), err)
		}
		ss, err := p.ListSnapshots(ctx, opts.Host)
		if err != nil {
			return nil, fmt.Errorf("list the snapshots of host %s: %w", cmdutil.Short(opts.Host), err)
		}
		for _, b := range append(bs, ss...) {
			ids = append(ids, b.ID)
		}
		if len(ids) == 0 {
			return nil, provider.Errorf(provider.ErrNotFound, "host %s has no backups to verify", cmdutil.Short(opts.Host))
		}
		slices.Sort(ids)
		return ids, nil
	}
	for _, a := range opts.Backups {
		b, err := cmdutil.FindBackup(ctx, p, cmdutil.BackupRef{Host: opts.Host, Backup: a})
		if err != nil {
			return nil, err
		}
		if !slices.Contains(ids, b.ID) { // named twice (an ID and latest), checked once
			ids = append(ids, b.ID)
		}
	}
	return ids, nil
}

// verdict is the error of a report that found damage.
func verdict(r *provider.VerifyReport) error {
	damaged := 0
	for _, b := range r.Backups {
		if b.Status != "ok" {
			damaged++
		}
	}
	switch {
	case damaged > 0:
		return fmt.Errorf("verify: %d of %s damaged: %w", damaged, cmdutil.Plural(len(r.Backups), "backup", "backups"), provider.ErrCorrupt)
	case len(r.Problems) > 0:
		return fmt.Errorf("verify: %s found: %w", cmdutil.Plural(len(r.Problems), "problem", "problems"), provider.ErrCorrupt)
	}
	return nil
}

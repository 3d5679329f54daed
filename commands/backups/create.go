package backups

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/dropback/dropback/commands/cmdutil"
	"github.com/dropback/dropback/commands/display"
	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

// CreateOptions are the inputs of `backups create`.
type CreateOptions struct {
	IO       *output.IOStreams
	Provider func(context.Context) (provider.BackupTaker, error)
	Printer  func() *output.Printer

	Host         string
	Time         string
	AcceptResize bool
	AllowLive    bool
	NoFreeze     bool
	FullRead     bool
}

// NewCmdCreate returns `backups create`.
func NewCmdCreate(f *cmdutil.Factory, runF func(*CreateOptions) error) *cobra.Command {
	opts := &CreateOptions{IO: f.IOStreams, Provider: cmdutil.Capability[provider.BackupTaker](f, "backups create"), Printer: f.Printer}
	cmd := &cobra.Command{
		Use:   "create <host>",
		Short: "Take a backup of a host now",
		Long: `Take an on-demand backup of every disk of a host. Only the chunks that changed
since earlier backups are stored. A progress bar with throughput and ETA shows
on a terminal, and a summary line after it: what was read, what was new, what
that took in the repository, the time and the speed (in JSON: summary). A
backup that is interrupted says how much it wrote, which the next gc reclaims.

A disk that vanished or changed identity fails the backup, and nothing is
stored: a disk that is missing or is no disk, a block device that reads as 0
bytes (a detached loop device, a drive without its medium), and a disk whose
size differs from the host's last backup of it, which a disk that was swapped,
truncated or emptied would show. If the disk was resized on purpose, pass
--accept-resize once; the backups after it compare with the new size. A
scheduled pass (run --due, agent) reports such a host as failed.

A host that is a running guest (hosts add --qemu or --libvirt) is read at one
point in time while it runs: with its filesystems frozen for that instant when
the guest agent answers (--no-freeze skips it), else crash-consistent, as
backups get shows. After its first backup, only what the guest wrote since is
read. A --disk image that a running QEMU has open is refused (exit 14): its
backup would mix moments; --allow-live backs it up as it is. See docs/vms.md.

Engine only: DigitalOcean has no on-demand backup; take a snapshot of the
Droplet instead.`,
		Example: `  dropback backups create web-1
  dropback backups create web-1 -o json | jq .backup.id
  dropback backups create web-1 --time 2026-11-01T04:00:00Z

  # The disk was grown on purpose since the last backup
  dropback backups create web-1 --accept-resize`,
		Args:              cmdutil.ExactArgs(1, "the host (name or ID)"),
		ValidArgsFunction: cmdutil.CompleteHosts(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Host = args[0]
			if runF != nil {
				return runF(opts)
			}
			return runCreate(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Time, "time", "", "date the backup at this RFC 3339 time instead of now, as when importing a history")
	cmd.Flags().BoolVar(&opts.AcceptResize, "accept-resize", false, "back up a disk whose size differs from the host's last backup of it")
	cmd.Flags().BoolVar(&opts.AllowLive, "allow-live", false, "back up a disk image a running QEMU has open, as it is (not one point in time)")
	cmd.Flags().BoolVar(&opts.NoFreeze, "no-freeze", false, "do not freeze a running guest's filesystems through its guest agent (crash-consistent)")
	cmd.Flags().BoolVar(&opts.FullRead, "full-read", false, "read a running guest's disks whole instead of only what changed since its last backup")
	cmdutil.DescribeColumns(cmd, output.Infos(display.BackupColumns))
	return cmd
}

func runCreate(ctx context.Context, opts *CreateOptions) error {
	pr := opts.Printer()
	if err := pr.Check(output.Infos(display.BackupColumns)); err != nil {
		return err
	}
	var at time.Time
	if opts.Time != "" {
		var err error
		if at, err = time.Parse(time.RFC3339, opts.Time); err != nil {
			return cmdutil.FlagErrorf("invalid --time %q: give an RFC 3339 time such as 2026-11-01T04:00:00Z", cmdutil.Short(opts.Time))
		}
	}
	p, err := opts.Provider(ctx)
	if err != nil {
		return err
	}
	counter, stop := pr.Progress()
	res, err := p.CreateBackup(ctx, opts.Host, provider.CreateOptions{Progress: counter, Time: at, AcceptResize: opts.AcceptResize,
		AllowLive: opts.AllowLive, NoFreeze: opts.NoFreeze, FullRead: opts.FullRead})
	stop()
	if err != nil {
		return cmdutil.WithLeft(fmt.Errorf("back up host %s: %w", cmdutil.Short(opts.Host), err), abandoned(ctx, err))
	}
	for _, n := range res.Notices {
		pr.Noticef("%s", n)
	}
	if err := pr.Print(display.Create(res)); err != nil {
		return err
	}
	if res.Summary != nil && pr.Interactive() {
		pr.Noticef("%s", display.SummaryLine(res.Summary, opts.IO.TerminalWidth()))
	}
	return cmdutil.CheckAction(&res.Action)
}

// abandoned says what a failed backup left in the repository: the data it
// wrote, if any; after an interruption, that it wrote nothing, if so.
func abandoned(ctx context.Context, err error) string {
	var a *provider.AbandonedError
	if !errors.As(err, &a) {
		if errors.Is(context.Cause(ctx), cmdutil.ErrInterrupted) {
			return "nothing was backed up, and nothing was written to the repository"
		}
		return ""
	}
	return fmt.Sprintf("nothing was backed up, and the %s it wrote stays in the repository until `dropback repo gc` reclaims it, once it is %d minutes old",
		output.Bytes(a.StoredBytes), int(cmdutil.GCMinAge/time.Minute))
}

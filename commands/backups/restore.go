package backups

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dropback/dropback/commands/cmdutil"
	"github.com/dropback/dropback/commands/display"
	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

// RestoreOptions are the inputs of `backups restore`.
type RestoreOptions struct {
	IO       *output.IOStreams
	Provider func(context.Context) (restorer, error)
	Printer  func() *output.Printer

	Ref     cmdutil.BackupRef
	To      string
	ToNew   string
	Size    string
	Region  string
	SSHKeys []string
	VPCUUID string
	Tags    []string
	Force   bool
	Wait    cmdutil.WaitFlags
}

// NewCmdRestore returns `backups restore`.
func NewCmdRestore(f *cmdutil.Factory, runF func(*RestoreOptions) error) *cobra.Command {
	opts := &RestoreOptions{IO: f.IOStreams, Provider: cmdutil.Capability[restorer](f, "backups restore"), Printer: f.Printer}
	cmd := &cobra.Command{
		Use:   "restore " + cmdutil.BackupRefUse,
		Short: "Restore a backup or snapshot",
		Long: `Restore a backup or snapshot of a host.

By default the restore is in place: the host's disks are overwritten (the engine
writes only the chunks that differ; DigitalOcean runs a restore action). That
asks for confirmation on a terminal and needs --force otherwise.

--to PATH restores to a new sparse file instead (a directory for a host with
several disks); engine only. The file is written under a hidden name and takes
PATH once complete, so a failed restore leaves nothing. Anything already at
PATH needs --force: a file is replaced; a symbolic link is replaced itself,
never followed; a block device is written in place, and only when PATH names
the device itself, not a link to it.

Before it writes a byte, an engine restore refuses a target that cannot take
the disk, and changes nothing: a block device smaller than the disk, a device
that is mounted or opened exclusively by another process, and a disk image
locked by another process (a running VM, another restore, or a backup reading
it). Each file it writes in place stays locked, and each device open
exclusively, until it ends, so two restores of one disk never run at once, and
a backup of the disk is refused meanwhile. A regular file restored in place
takes the size of the backed-up disk.

--to-new NAME creates a new host from the backup
(on DigitalOcean a new Droplet, shaped by --size, --region, --ssh-keys,
--vpc-uuid and --tag).

Every argument and target is checked before anything is asked. The question
names the backup (ID and date) and every path the restore overwrites. If the
restore is interrupted, the last line says what it left: a disk restored in
place is partly restored, and the command that finishes it is named.

` + cmdutil.BackupRefHelp,
		Example: `  # Restore the latest backup to a new image file
  dropback backups restore web-1 latest --to /srv/restore/web-1.img

  # Restore in place from a script
  dropback backups restore web-1 42 --force

  # Restore onto a spare block device (never mounted, at least the disk's size)
  dropback backups restore web-1 latest --to /dev/sdc --force

  # CI: restore a Droplet in place and read the finished action
  dropback --context digitalocean backups restore 123456 latest --force --wait -o json

  # Create a new Droplet from a backup
  dropback --context digitalocean backups restore 123456 987654 --to-new web-1-test --size s-1vcpu-1gb --region nyc3`,
		Args:              cmdutil.BackupRefArgs,
		ValidArgsFunction: cmdutil.CompleteBackupRef(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := cmdutil.ParseBackupRef(args)
			if err != nil {
				return err
			}
			opts.Ref = ref
			if err := validateRestore(cmd); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return runRestore(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.To, "to", "", "restore to this new file (or directory, for several disks) instead of in place")
	fl.StringVar(&opts.ToNew, "to-new", "", "create a new host with this name from the backup")
	fl.StringVar(&opts.Size, "size", "", "size slug of the new Droplet (with --to-new)")
	fl.StringVar(&opts.Region, "region", "", "region of the new Droplet (with --to-new)")
	fl.StringSliceVar(&opts.SSHKeys, "ssh-keys", nil, "SSH key IDs or fingerprints for the new Droplet (with --to-new)")
	fl.StringVar(&opts.VPCUUID, "vpc-uuid", "", "VPC of the new Droplet (with --to-new)")
	fl.StringArrayVar(&opts.Tags, "tag", nil, "tag of the new Droplet (with --to-new, repeatable)")
	cmdutil.AddForceFlag(cmd, &opts.Force, "restore in place without asking, or over an existing --to file, link or block device")
	cmdutil.AddWaitFlags(cmd, f, &opts.Wait)
	cmdutil.DescribeColumns(cmd, output.Infos(display.RestoreColumns))
	return cmd
}

func validateRestore(cmd *cobra.Command) error {
	if err := cmdutil.MutuallyExclusive(cmd, "to", "to-new"); err != nil {
		return err
	}
	// An empty --to or --to-new (a script's unset variable) must not
	// become the in place restore that no flag at all means.
	for _, name := range []string{"to", "to-new"} {
		if fl := cmd.Flags().Lookup(name); fl.Changed && fl.Value.String() == "" {
			return cmdutil.FlagErrorf("--%s is empty: give a path (or, for --to-new, a name); to restore in place, leave the flag out", name)
		}
	}
	return cmdutil.Requires(cmd, "to-new", "size", "region", "ssh-keys", "vpc-uuid", "tag")
}

func runRestore(ctx context.Context, opts *RestoreOptions) error {
	pr := opts.Printer()
	if err := pr.Check(output.Infos(display.RestoreColumns)); err != nil {
		return err
	}
	p, err := opts.Provider(ctx)
	if err != nil {
		return err
	}
	b, err := cmdutil.FindBackup(ctx, p, opts.Ref)
	if err != nil {
		return err
	}
	req, err := restoreRequest(opts, b)
	if err != nil {
		return err
	}
	what := "restore " + cmdutil.DescribeBackup(b)
	plan, err := planRestore(ctx, p, req)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	overwrite, err := confirmRestore(opts, b, req, plan)
	if err != nil {
		return err
	}
	req.Force = req.Force || overwrite
	counter, stop := pr.Progress()
	req.Progress = counter
	res, err := p.RestoreBackup(ctx, req)
	stop()
	if err != nil {
		return cmdutil.WithLeft(fmt.Errorf("%s: %w", what, err), restoreLeft(ctx, b, req, plan))
	}
	for _, n := range res.Notices {
		pr.Noticef("%s", n)
	}
	a, err := cmdutil.Settle(ctx, p, pr, &res.Action, opts.Wait)
	res.Action = *a
	if perr := pr.Print(display.Restore(res)); perr != nil && err == nil {
		err = perr
	}
	return err
}

// planRestore is the context's plan of req, where it can make one (the
// engine): the paths it would write, each already checked.
func planRestore(ctx context.Context, p restorer, req provider.RestoreRequest) (*provider.RestorePlan, error) {
	planner, ok := p.(provider.RestorePlanner)
	if !ok || req.ToNew != "" {
		return nil, nil
	}
	return planner.PlanRestore(ctx, req)
}

// confirmRestore asks before a restore overwrites anything, naming the
// backup and every path it overwrites; with --force it asks nothing.
// Without a plan (DigitalOcean) an in-place restore names the Droplet. It
// reports whether the user agreed to overwrite what is at a --to path.
func confirmRestore(opts *RestoreOptions, b *provider.Backup, req provider.RestoreRequest, plan *provider.RestorePlan) (bool, error) {
	inPlace := req.To == "" && req.ToNew == ""
	var paths []string
	if plan != nil {
		for _, t := range plan.Targets {
			if t.InPlace || t.Exists {
				paths = append(paths, t.Path)
			}
		}
	}
	if !inPlace && (len(paths) == 0 || !opts.Force && !opts.IO.CanPrompt()) {
		// Nothing to overwrite; or, with no one to ask, the restore
		// itself refuses what is there, saying what it is.
		return false, nil
	}
	desc := cmdutil.DescribeBackup(b)
	question := fmt.Sprintf("Restore %s over %s?", desc, strings.Join(paths, ", "))
	if len(paths) == 0 {
		question = fmt.Sprintf("Restore %s in place? It overwrites the disk of host %s.", desc, cmdutil.Short(req.Host))
	}
	what := "restore " + desc
	if inPlace {
		what += " in place"
	} else {
		what += " over " + strings.Join(paths, ", ")
	}
	if err := cmdutil.ConfirmDestructive(opts.IO, opts.Force, question, what); err != nil {
		return false, err
	}
	return true, nil
}

// restoreLeft says what a restore that failed after it began left behind:
// a disk restored in place is partly restored until the same restore is
// run again; a new file is never left half written.
func restoreLeft(ctx context.Context, b *provider.Backup, req provider.RestoreRequest, plan *provider.RestorePlan) string {
	if plan == nil || !errors.Is(context.Cause(ctx), cmdutil.ErrInterrupted) && !errors.Is(ctx.Err(), context.Canceled) {
		return ""
	}
	var partly, untouched []string
	for _, t := range plan.Targets {
		if t.InPlace || t.Exists {
			partly = append(partly, t.Path)
		} else {
			untouched = append(untouched, t.Path)
		}
	}
	if len(partly) == 0 {
		return fmt.Sprintf("nothing was written to %s; run the restore again", strings.Join(untouched, ", "))
	}
	again := fmt.Sprintf("dropback backups restore %s %d --force", cmdutil.Short(req.Host), b.ID)
	if req.To != "" {
		again = fmt.Sprintf("dropback backups restore %d --to %s --force", b.ID, cmdutil.Short(req.To))
	}
	return fmt.Sprintf("%s may be partly restored from backup %d; finish it with `%s`", strings.Join(partly, ", "), b.ID, again)
}

// restoreRequest is the request of opts for backup b, which FindBackup
// resolved: by its ID, so that the backup confirmed is the one restored,
// and, for a bare ID, of the backup's own host.
func restoreRequest(opts *RestoreOptions, b *provider.Backup) (provider.RestoreRequest, error) {
	host := opts.Ref.Host
	if host == "" {
		if b.HostID == 0 && opts.To == "" && opts.ToNew == "" {
			return provider.RestoreRequest{}, fmt.Errorf("backup %d has no host any more to restore in place: restore it to a path with --to: %w", b.ID, provider.ErrInvalid)
		}
		host = strconv.Itoa(b.HostID)
	}
	return provider.RestoreRequest{
		Host: host, Backup: strconv.Itoa(b.ID),
		To: opts.To, ToNew: opts.ToNew, Force: opts.Force || (opts.To == "" && opts.ToNew == ""),
		Size: opts.Size, Region: opts.Region, SSHKeys: opts.SSHKeys, VPCUUID: opts.VPCUUID, Tags: opts.Tags,
	}, nil
}

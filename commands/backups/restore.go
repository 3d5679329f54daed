package backups

import (
	"context"
	"fmt"
	"strconv"

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

	Host    string
	Backup  string // an ID or "latest"
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
		Use:   "restore <host> <id|latest>",
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
locked by another process (a running VM, or another restore). Each file it
writes in place stays locked, and each device open exclusively, until it ends,
so two restores of one disk never run at once. A regular file restored in place
takes the size of the backed-up disk.

--to-new NAME creates a new host from the backup
(on DigitalOcean a new Droplet, shaped by --size, --region, --ssh-keys,
--vpc-uuid and --tag).`,
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
		Args: cmdutil.ExactArgs(2, "the host and the backup (ID or latest)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Host, opts.Backup = args[0], args[1]
			if err := validateRestore(cmd, opts); err != nil {
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

func validateRestore(cmd *cobra.Command, opts *RestoreOptions) error {
	if opts.Backup != "latest" {
		if _, err := strconv.Atoi(opts.Backup); err != nil {
			return cmdutil.FlagErrorf("invalid backup %q: give a backup ID or latest", cmdutil.Short(opts.Backup))
		}
	}
	if err := cmdutil.MutuallyExclusive(cmd, "to", "to-new"); err != nil {
		return err
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
	what := fmt.Sprintf("restore backup %s of host %s", cmdutil.Short(opts.Backup), cmdutil.Short(opts.Host))
	req := restoreRequest(opts)
	req.Force = opts.Force // with --to: overwrite an existing file
	if opts.To == "" && opts.ToNew == "" {
		question := fmt.Sprintf("Overwrite the disks of host %s with backup %s?", cmdutil.Short(opts.Host), opts.Backup)
		if err := cmdutil.ConfirmDestructive(opts.IO, opts.Force, question, what+" in place"); err != nil {
			return err
		}
		req.Force = true
	}
	counter, stop := pr.Progress()
	req.Progress = counter
	res, err := p.RestoreBackup(ctx, req)
	stop()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
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

func restoreRequest(opts *RestoreOptions) provider.RestoreRequest {
	return provider.RestoreRequest{
		Host: opts.Host, Backup: opts.Backup,
		To: opts.To, ToNew: opts.ToNew,
		Size: opts.Size, Region: opts.Region, SSHKeys: opts.SSHKeys, VPCUUID: opts.VPCUUID, Tags: opts.Tags,
	}
}

package backups

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/dropback/dropback/commands/cmdutil"
	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

// MountOptions are the inputs of `backups mount`.
type MountOptions struct {
	IO       *output.IOStreams
	Provider func(context.Context) (provider.Exporter, error)
	Printer  func() *output.Printer
	Env      func(string) string

	Host   string
	Backup string // an ID or "latest"
	Dir    string
	Disk   string
}

// NewCmdMount returns `backups mount`.
func NewCmdMount(f *cmdutil.Factory, runF func(*MountOptions) error) *cobra.Command {
	opts := &MountOptions{IO: f.IOStreams, Provider: cmdutil.Capability[provider.Exporter](f, "backups mount"), Printer: f.Printer, Env: f.Env}
	cmd := &cobra.Command{
		Use:   "mount <host> <id|latest> <dir>",
		Short: "Mount a backup's disks as read-only image files (FUSE)",
		Long: `Mount the disks of a backup on DIR, an existing directory, with FUSE: one
read-only file per disk, named after the disk with .img added, until Ctrl-C
(SIGINT) or SIGTERM. Nothing is restored: the files read the backup in place,
so one file from a 100 GiB disk costs the chunks that hold it.

Mount a file system of a disk with a loop device, read-only:
  mount -o loop,ro DIR/vda.img /mnt            (a disk without partitions)
  losetup -P -r --show -f DIR/vda.img           (partitions: /dev/loopNp1, …)

On Ctrl-C dropback unmounts DIR; while a loop device or a process still uses
it, it says so and waits. Every byte read is checked against the backup; a
damaged chunk fails the read with EIO.

Needs FUSE (/dev/fuse, and fusermount3 from fuse3 when not root); without it
dropback says what to run instead (backups serve, backups export).

Engine only: DigitalOcean backups cannot be downloaded.`,
		Example: `  mkdir -p /tmp/web-1 && dropback backups mount web-1 latest /tmp/web-1 &
  mount -o loop,ro /tmp/web-1/vda.img /mnt && cp /mnt/etc/nginx/nginx.conf . && umount /mnt`,
		Args: cmdutil.ExactArgs(3, "the host, the backup (ID or latest) and the directory"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Host, opts.Backup, opts.Dir = args[0], args[1], args[2]
			if err := validateBackupRef(opts.Backup); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return runMount(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Disk, "disk", "", "mount only this disk of the backup")
	return cmd
}

func runMount(ctx context.Context, opts *MountOptions) error {
	pr := opts.Printer()
	p, err := opts.Provider(ctx)
	if err != nil {
		return err
	}
	limitMemory(opts.Env)
	if abs, err := filepath.Abs(opts.Dir); err == nil {
		opts.Dir = abs
	}
	var printErr error
	err = p.MountBackup(ctx, provider.MountRequest{
		Host: opts.Host, Backup: opts.Backup, Disk: opts.Disk, Dir: opts.Dir,
		Logf: func(format string, args ...any) { pr.Noticef("mount: "+format, args...) },
		Ready: func(s provider.ServedBackup) {
			printErr = printServed(pr, opts.IO, s, "Mounted", "until Ctrl-C or SIGTERM")
		},
	})
	if err != nil {
		return fmt.Errorf("mount backup %s of host %s: %w", cmdutil.Short(opts.Backup), cmdutil.Short(opts.Host), err)
	}
	pr.Noticef("Unmounted %s.", cmdutil.Short(opts.Dir))
	return printErr
}

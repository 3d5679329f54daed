package backups

import (
	"context"
	"fmt"
	"os"
	"slices"

	"github.com/spf13/cobra"

	"github.com/dropback/dropback/commands/cmdutil"
	"github.com/dropback/dropback/commands/display"
	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

// ExportOptions are the inputs of `backups export`.
type ExportOptions struct {
	IO       *output.IOStreams
	Provider func(context.Context) (provider.Exporter, error)
	Printer  func() *output.Printer
	Env      func(string) string

	Host   string
	Backup string // an ID or "latest"
	Format string
	Disk   string
	To     string
	Force  bool
}

// NewCmdExport returns `backups export`.
func NewCmdExport(f *cmdutil.Factory, runF func(*ExportOptions) error) *cobra.Command {
	opts := &ExportOptions{IO: f.IOStreams, Provider: cmdutil.Capability[provider.Exporter](f, "backups export"), Printer: f.Printer, Env: f.Env}
	cmd := &cobra.Command{
		Use:   "export <host> <id|latest> --to FILE|DIR|-",
		Short: "Write a backup's disks as raw or qcow2 images",
		Long: `Write the disks of a backup as disk images, without touching the host:
--image-format raw (the default) or qcow2.

--to FILE writes a new file (a directory, for a backup of several disks: one
file per disk, named after it, with .qcow2 added for qcow2). The file is written
under a hidden name and takes its path once complete, so a failed export leaves
nothing; anything already there needs --force. A raw file is sparse: it has
holes where the disk has zeros. A qcow2 image leaves them unallocated, and is
written by dropback itself in one pass (qemu-img check passes on it).

--to - writes one disk (choose it with --disk when there are several) to
standard output, front to back, for a pipe: raw with every byte, zeros
included; qcow2 as to a file.

Every byte written is checked against the backup; a damaged chunk stops the
export with exit code 7. The table printed at the end (not with --to -) lists
each image.

Engine only: DigitalOcean backups cannot be downloaded.`,
		Example: `  # A qcow2 image for another hypervisor
  dropback backups export web-1 latest --image-format qcow2 --to web-1.qcow2

  # One disk, raw, through a pipe
  dropback backups export web-1 42 --disk vdb --to - | ssh other 'dd of=/dev/vdb bs=4M'

  # Every disk of a backup, into a directory
  dropback backups export db-1 latest --image-format qcow2 --to /srv/export/db-1/`,
		Args: cmdutil.ExactArgs(2, "the host and the backup (ID or latest)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Host, opts.Backup = args[0], args[1]
			if err := validateBackupRef(opts.Backup); err != nil {
				return err
			}
			if !slices.Contains([]string{provider.ImageRaw, provider.ImageQcow2}, opts.Format) {
				return cmdutil.FlagErrorf("invalid --image-format %q: raw or qcow2", cmdutil.Short(opts.Format))
			}
			if opts.To == "" {
				return cmdutil.FlagErrorf("say where the images go: --to FILE, --to DIR or --to - for standard output")
			}
			if opts.To == "-" && opts.Force {
				return cmdutil.FlagErrorf("--force only applies to --to FILE or DIR")
			}
			if runF != nil {
				return runF(opts)
			}
			return runExport(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Format, "image-format", provider.ImageRaw, "image format: raw or qcow2")
	fl.StringVar(&opts.Disk, "disk", "", "export only this disk of the backup")
	fl.StringVar(&opts.To, "to", "", "new file, directory (one file per disk), or - for standard output")
	cmdutil.AddForceFlag(cmd, &opts.Force, "replace an existing file or symbolic link at --to")
	cmdutil.DescribeColumns(cmd, output.Infos(display.ExportColumns))
	return cmd
}

func runExport(ctx context.Context, opts *ExportOptions) error {
	pr := opts.Printer()
	toStdout := opts.To == "-"
	if !toStdout {
		if err := pr.Check(output.Infos(display.ExportColumns)); err != nil {
			return err
		}
	} else if opts.IO.IsStdoutTTY() {
		return cmdutil.FlagErrorf("standard output is a terminal: redirect it to a file or a pipe, or give --to FILE")
	}
	p, err := opts.Provider(ctx)
	if err != nil {
		return err
	}
	limitMemory(opts.Env)
	defer cpuProfile(opts.Env, pr)()
	counter, stop := pr.Progress()
	res, err := p.ExportBackup(ctx, provider.ExportRequest{
		Host: opts.Host, Backup: opts.Backup, Disk: opts.Disk, Format: opts.Format,
		To: opts.To, Stdout: opts.IO.Out, Force: opts.Force, Progress: counter,
	})
	stop()
	if err != nil {
		return fmt.Errorf("export backup %s of host %s: %w", cmdutil.Short(opts.Backup), cmdutil.Short(opts.Host), err)
	}
	for _, n := range res.Notices {
		pr.Noticef("%s", n)
	}
	if toStdout {
		if f, ok := opts.IO.Out.(*os.File); ok {
			_ = f.Sync() // a file redirected to: what was written is on its disk
		}
		return nil
	}
	return pr.Print(display.Export(res))
}

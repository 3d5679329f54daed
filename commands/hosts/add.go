package hosts

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dropback/dropback/commands/cmdutil"
	"github.com/dropback/dropback/commands/display"
	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

// AddOptions are the inputs of `hosts add`.
type AddOptions struct {
	IO       *output.IOStreams
	Provider func(context.Context) (provider.HostRegistry, error)
	Printer  func() *output.Printer

	Name  string
	Disks []string
	// A running guest instead of disks (docs/vms.md).
	QMP, Agent          string
	Libvirt, LibvirtURI string
	Devices             []string
	Scratch             string
}

// NewCmdAdd returns `hosts add`.
func NewCmdAdd(f *cmdutil.Factory, runF func(*AddOptions) error) *cobra.Command {
	opts := &AddOptions{IO: f.IOStreams, Provider: cmdutil.Capability[provider.HostRegistry](f, "hosts add"), Printer: f.Printer}
	cmd := &cobra.Command{
		Use:   "add <name> (--disk <path>... | --qemu <qmp-socket> | --libvirt <domain>)",
		Short: "Register a self-hosted host and its disks",
		Long: `Register a self-hosted host with one or more disks: raw disk image files or
block devices. The disks are read, never written, by a backup. A block device
that reads as 0 bytes (a loop device with nothing attached, a drive without its
medium) is refused. Engine only: on DigitalOcean, Droplets are hosts already.

A running QEMU/KVM guest is registered by its QMP socket (--qemu) or its
libvirt domain (--libvirt) instead: its backups read every disk at one point in
time while it runs, freeze its filesystems for that instant when it runs the
guest agent, and read only what changed since the last backup through dirty
bitmaps. Its disks are found through the hypervisor: every writable disk, or
those named with --device. The guest must be running. See docs/vms.md.`,
		Example: `  # A KVM guest with one raw disk image, backed up as a file while it is off
  dropback hosts add web-1 --disk /var/lib/libvirt/images/web-1.img

  # A machine with two block devices
  dropback hosts add db-1 --disk /dev/vg0/db-root --disk /dev/vg0/db-data

  # A running QEMU guest started with -qmp unix:/run/web-2.qmp,server=on,wait=off
  dropback hosts add web-2 --qemu /run/web-2.qmp

  # A libvirt domain, only its system disk
  dropback hosts add web-3 --libvirt web-3 --device vda`,
		Args: cmdutil.ExactArgs(1, "the host name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			kinds := 0
			for _, set := range []bool{len(opts.Disks) > 0, opts.QMP != "", opts.Libvirt != ""} {
				if set {
					kinds++
				}
			}
			if kinds == 0 && (len(opts.Devices) > 0 || opts.Agent != "" || opts.Scratch != "") {
				return cmdutil.FlagErrorf("hosts add: --device, --qemu-agent and --scratch need a running guest: give --qemu or --libvirt")
			}
			if kinds != 1 {
				return cmdutil.FlagErrorf("hosts add: give at least one --disk, or a running guest with --qemu or --libvirt (only one of them)")
			}
			if runF != nil {
				return runF(opts)
			}
			return runAdd(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringArrayVar(&opts.Disks, "disk", nil, "disk image file or block device (repeatable)")
	cmd.Flags().StringVar(&opts.QMP, "qemu", "", "QMP socket of a running QEMU guest")
	cmd.Flags().StringVar(&opts.Agent, "qemu-agent", "", "host end of the guest agent's channel (default: found through QMP)")
	cmd.Flags().StringVar(&opts.Libvirt, "libvirt", "", "libvirt domain of a running guest")
	cmd.Flags().StringVar(&opts.LibvirtURI, "libvirt-uri", "", "libvirt connection (default qemu:///system)")
	cmd.Flags().StringArrayVar(&opts.Devices, "device", nil, "back up only this disk of the guest: QEMU drive or device ID, libvirt target (repeatable)")
	cmd.Flags().StringVar(&opts.Scratch, "scratch", "", "directory the hypervisor can write, for what the guest overwrites during a backup (default: the system's temporary directory)")
	cmdutil.DescribeColumns(cmd, output.Infos(display.HostColumns))
	return cmd
}

func runAdd(ctx context.Context, opts *AddOptions) error {
	pr := opts.Printer()
	if err := pr.Check(output.Infos(display.HostColumns)); err != nil {
		return err
	}
	p, err := opts.Provider(ctx)
	if err != nil {
		return err
	}
	h, err := p.AddHost(ctx, provider.HostSpec{Name: opts.Name, Disks: opts.Disks, QMP: opts.QMP, Agent: opts.Agent,
		Libvirt: opts.Libvirt, LibvirtURI: opts.LibvirtURI, Devices: opts.Devices, Scratch: opts.Scratch})
	if err != nil {
		return fmt.Errorf("add host %s: %w", cmdutil.Short(opts.Name), err)
	}
	if err := pr.Print(display.Host(h)); err != nil {
		return err
	}
	for _, n := range h.Notices {
		pr.Noticef("%s", n)
	}
	return nil
}

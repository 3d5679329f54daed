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
}

// NewCmdAdd returns `hosts add`.
func NewCmdAdd(f *cmdutil.Factory, runF func(*AddOptions) error) *cobra.Command {
	opts := &AddOptions{IO: f.IOStreams, Provider: cmdutil.Capability[provider.HostRegistry](f, "hosts add"), Printer: f.Printer}
	cmd := &cobra.Command{
		Use:   "add <name> --disk <path> [--disk <path>...]",
		Short: "Register a self-hosted host and its disks",
		Long: `Register a self-hosted host with one or more disks: raw disk image files or
block devices. The disks are read, never written, by a backup. A block device
that reads as 0 bytes (a loop device with nothing attached, a drive without its
medium) is refused. Engine only: on DigitalOcean, Droplets are hosts already.`,
		Example: `  # A KVM guest with one raw disk image
  dropback hosts add web-1 --disk /var/lib/libvirt/images/web-1.img

  # A machine with two block devices
  dropback hosts add db-1 --disk /dev/vg0/db-root --disk /dev/vg0/db-data`,
		Args: cmdutil.ExactArgs(1, "the host name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			if len(opts.Disks) == 0 {
				return cmdutil.FlagErrorf("hosts add: at least one --disk is required")
			}
			if runF != nil {
				return runF(opts)
			}
			return runAdd(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringArrayVar(&opts.Disks, "disk", nil, "disk image file or block device (repeatable)")
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
	h, err := p.AddHost(ctx, provider.HostSpec{Name: opts.Name, Disks: opts.Disks})
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

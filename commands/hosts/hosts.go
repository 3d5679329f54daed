// Package hosts holds the `hosts` commands: the machines whose disks are
// backed up (registered self-hosted hosts on the engine, Droplets on
// DigitalOcean).
package hosts

import (
	"github.com/spf13/cobra"

	"github.com/dropback/dropback/commands/cmdutil"
)

// NewCmdHosts returns the `hosts` command and its verbs.
func NewCmdHosts(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "hosts <command>",
		Short: "Manage the hosts whose disks are backed up",
		Long: `A host is a machine whose whole disks are backed up. In the local context it
is a self-hosted machine registered with its disk image files or block devices;
in a DigitalOcean context it is a Droplet. A host is named by its name or its
integer ID.`,
		Example: `  dropback hosts add web-1 --disk /var/lib/libvirt/images/web-1.img
  dropback hosts list
  dropback --context digitalocean hosts get 123456`,
		Args: cmdutil.NounArgs,
		RunE: cmdutil.NounRunE,
	}
	cmd.AddCommand(NewCmdAdd(f, nil), NewCmdList(f, nil), NewCmdGet(f, nil), NewCmdRemove(f, nil))
	return cmd
}

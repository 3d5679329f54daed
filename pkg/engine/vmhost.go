package engine

// VMKind names the hypervisor of a running guest's host.
const (
	VMQemu    = "qemu"
	VMLibvirt = "libvirt"
)

// VMRecord says how to reach a running guest's hypervisor, for a host whose
// disks are read through a point in time (docs/vms.md). The engine only
// keeps it, in the host record.
type VMRecord struct {
	// Kind is VMQemu or VMLibvirt.
	Kind string `json:"kind"`
	// QMP is the guest's QMP socket, Agent the host end of its guest
	// agent's channel ("" finds it through QMP).
	QMP   string `json:"qmp,omitempty"`
	Agent string `json:"agent,omitempty"`
	// Domain is the libvirt domain, URI the libvirt connection.
	Domain string `json:"domain,omitempty"`
	URI    string `json:"uri,omitempty"`
	// Devices are the disks chosen with --device; empty: every writable
	// disk of the guest.
	Devices []string `json:"devices,omitempty"`
	// Scratch is where the hypervisor keeps what the guest overwrites
	// while a backup reads ("" for the system's temporary directory).
	Scratch string `json:"scratch,omitempty"`
}

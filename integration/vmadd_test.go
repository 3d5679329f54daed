package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dropback/dropback/internal/qemutest"
)

// hosts add refuses, with exit 2, one line and nothing stored, what would
// make every backup of the guest fail: a --qemu path that is no socket, a
// --scratch that is no directory, --device without a guest. Its errors
// name the host once.
func TestVMHostAddRefusesWhatCannotWork(t *testing.T) {
	e := newLocal(t)
	v := startGuestDisks(t, e.dir, qemutest.Disk{ID: "vda", Format: "qcow2"})
	file := filepath.Join(e.dir, "vda.qcow2")
	missing := filepath.Join(e.dir, "missing")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"qemu is a file", []string{"--qemu", file}, file + " is not a socket"},
		{"qemu is missing", []string{"--qemu", missing}, "add host x7: cannot reach the hypervisor"},
		{"scratch is missing", []string{"--qemu", v.QMP, "--scratch", missing}, "--scratch " + missing + ": no such directory"},
		{"scratch is a file", []string{"--qemu", v.QMP, "--scratch", file}, "--scratch " + file + " is not a directory"},
		{"device without a guest", []string{"--device", "vda"}, "--device, --qemu-agent and --scratch need a running guest: give --qemu or --libvirt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.run(append([]string{"hosts", "add", "x7"}, tt.args...)...)
			assert.Equal(t, 2, r.code, r.stderr)
			oneCleanLine(t, r, tt.want)
			assert.NotContains(t, r.stderr, "host x7: host x7")
		})
	}
	var hosts []struct{ Name string }
	e.json(&hosts, "hosts", "list")
	assert.Empty(t, hosts, "nothing is stored")
}

// A running guest's qcow2 disk shows the size the guest sees, not 0; a
// disk whose size cannot be read shows null, not 0.
func TestVMHostShowsTheGuestsSize(t *testing.T) {
	e := newLocal(t)
	v := startGuestDisks(t, e.dir, qemutest.Disk{ID: "vda", Format: "qcow2"}, qemutest.Disk{ID: "vdb", Format: "raw", Drive: true})
	e.ok("hosts", "add", "vm1", "--qemu", v.QMP)
	type host struct {
		Disks []struct {
			Name      string `json:"name"`
			SizeBytes *int64 `json:"size_bytes"`
		} `json:"disks"`
	}
	var h host
	e.json(&h, "hosts", "get", "vm1")
	require.Len(t, h.Disks, 2)
	for _, d := range h.Disks {
		require.NotNil(t, d.SizeBytes, "disk %s", d.Name)
		assert.Equal(t, int64(16*mib), *d.SizeBytes, "disk %s", d.Name)
	}
	assert.Contains(t, e.ok("hosts", "list"), "32.0 MiB")

	e.backupVM("vm1")
	v.Quit(t)
	// The refusal of an in-place restore onto the qcow2 image names a
	// directory, as --to must be one for a guest of several disks.
	r := e.run("backups", "restore", "vm1", "latest", "--force")
	assert.Equal(t, 2, r.code, r.stderr)
	oneCleanLine(t, r, "restore it with --to DIR, then `qemu-img convert -f raw -O qcow2 DIR/vda "+filepath.Join(e.dir, "vda.qcow2")+"`")

	require.NoError(t, os.Remove(filepath.Join(e.dir, "vda.qcow2")))
	h = host{}
	e.json(&h, "hosts", "get", "vm1")
	for _, d := range h.Disks {
		if d.Name == "vda" {
			assert.Nil(t, d.SizeBytes, "the size of a missing image is not known")
		} else {
			assert.NotNil(t, d.SizeBytes, "disk %s", d.Name)
		}
	}
	line := strings.Split(e.ok("hosts", "list"), "\n")[1]
	assert.Contains(t, line, "—", "the host's size is not known: %q", line)
}

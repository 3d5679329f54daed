// Package libvirttest gives tests a real libvirtd and QEMU TCG domains in
// it. It uses the system libvirtd when one answers, and otherwise starts one
// (with virtlogd) when the test runs as root, stopping it when the test
// ends; elsewhere it skips the test with one line saying why.
package libvirttest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Socket is the system libvirtd's socket.
const Socket = "/run/libvirt/libvirt-sock"

// URI is the connection to it.
const URI = "qemu:///system"

// Start makes sure a libvirtd answers on Socket, starting one if need be.
func Start(t testing.TB) {
	t.Helper()
	if answers() {
		return
	}
	for _, bin := range []string{"libvirtd", "virtlogd", "virsh", "qemu-system-x86_64"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("libvirt tests skipped: %s is missing (scripts/deps.sh installs libvirt-daemon-system)", bin)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("libvirt tests skipped: no libvirtd runs, and only root can start the system one")
	}
	dir := t.TempDir()
	for _, d := range []struct{ bin, pid string }{{"virtlogd", "virtlogd.pid"}, {"libvirtd", "libvirtd.pid"}} {
		pidfile := filepath.Join(dir, d.pid)
		out, err := exec.Command(d.bin, "--daemon", "--pid-file", pidfile).CombinedOutput()
		if err != nil {
			t.Skipf("libvirt tests skipped: %s does not start here: %v: %s", d.bin, err, strings.TrimSpace(string(out)))
		}
		t.Cleanup(func() { stop(pidfile) })
	}
	for i := 0; !answers(); i++ {
		if i == 300 {
			t.Skip("libvirt tests skipped: libvirtd started but does not answer on " + Socket)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func answers() bool {
	c, err := net.Dial("unix", Socket)
	if err != nil {
		return false
	}
	c.Close()
	return exec.Command("virsh", "-c", URI, "version").Run() == nil
}

// stop ends a daemon this package started, by the PID it wrote.
func stop(pidfile string) {
	data, err := os.ReadFile(pidfile)
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 1 {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
		time.Sleep(50 * time.Millisecond)
	}
}

// Domain is a transient QEMU TCG domain with one qcow2 disk, vda.
type Domain struct {
	Name, File, Dir string
}

// StartDomain creates and starts a domain whose disk vda is a qcow2 image
// of size bytes, in a directory QEMU (which libvirt runs as its own user)
// can write; it is destroyed when the test ends.
func StartDomain(t testing.TB, size int64) *Domain {
	t.Helper()
	dir, err := os.MkdirTemp("", "libvirttest")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o1777); err != nil {
		t.Fatal(err)
	}
	d := &Domain{Name: fmt.Sprintf("dropback-test-%d", time.Now().UnixNano()%1e9), File: filepath.Join(dir, "vda.qcow2"), Dir: dir}
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", d.File, strconv.FormatInt(size, 10)).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v: %s", err, out)
	}
	xml := fmt.Sprintf(`<domain type='qemu'>
  <name>%s</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='%s'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
    <memballoon model='none'/>
  </devices>
</domain>`, d.Name, d.File)
	path := filepath.Join(dir, "domain.xml")
	if err := os.WriteFile(path, []byte(xml), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := d.virsh("create", path); err != nil {
		t.Fatalf("virsh create: %v: %s", err, out)
	}
	t.Cleanup(func() { _, _ = d.virsh("destroy", d.Name) })
	return d
}

func (d *Domain) virsh(args ...string) (string, error) {
	out, err := exec.Command("virsh", append([]string{"-c", URI}, args...)...).CombinedOutput()
	return string(out), err
}

// Virsh runs virsh on the domain's connection and fails the test on error.
func (d *Domain) Virsh(t testing.TB, args ...string) string {
	t.Helper()
	out, err := d.virsh(args...)
	if err != nil {
		t.Fatalf("virsh %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return out
}

// Write writes n bytes of pattern at off on vda, as the guest would.
func (d *Domain) Write(t testing.TB, pattern byte, off, n int64) {
	t.Helper()
	d.io(t, fmt.Sprintf("write -P %d %d %d", pattern, off, n))
}

func (d *Domain) io(t testing.TB, cmd string) {
	t.Helper()
	out := d.Virsh(t, "qemu-monitor-command", d.Name, "--hmp", fmt.Sprintf("qemu-io -d virtio-disk0/virtio-backend %q", cmd))
	if strings.Contains(strings.ToLower(out), "error") {
		t.Fatalf("qemu-io %q: %s", cmd, out)
	}
}

// Image returns the bytes the guest sees on vda now.
func (d *Domain) Image(t testing.TB) []byte {
	t.Helper()
	d.io(t, "flush")
	out := filepath.Join(d.Dir, "image.raw")
	if b, err := exec.Command("qemu-img", "convert", "-U", "-f", "qcow2", "-O", "raw", d.File, out).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v: %s", err, b)
	}
	defer os.Remove(out)
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

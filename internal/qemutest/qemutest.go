// Package qemutest starts real QEMU guests for tests: TCG, no guest OS, a
// QMP socket for the code under test and a second one for the test itself,
// through which it writes to the guest's disks as the guest would (qemu-io
// on the guest's block backend, so that copy-before-write and dirty bitmaps
// see the writes) and checks the guest's state.
package qemutest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/digitalocean/go-qemu/qmp"
)

// Disk is a disk of a test guest.
type Disk struct {
	// Path is the image; Format "qcow2" or "raw".
	Path, Format string
	// ID names the guest's device (virtio-blk-pci), and the disk as
	// dropback sees it.
	ID string
	// Drive attaches the disk with -drive id=ID (the block backend is named)
	// instead of -blockdev and -device id=ID.
	Drive bool
	// ReadOnly attaches the disk read-only.
	ReadOnly bool
}

// Options describe a test guest.
type Options struct {
	Disks []Disk
	// AgentChannel gives the guest a virtio-serial port for the guest
	// agent, with its host end a unix socket QEMU listens on (no agent
	// answers there: the guest runs no OS).
	AgentChannel bool
}

// VM is a running QEMU.
type VM struct {
	// QMP is the socket for the code under test.
	QMP string
	// Agent is the host end of the agent channel, if the guest has one.
	Agent  string
	Dir    string
	opts   Options
	cmd    *exec.Cmd
	exited chan struct{}
	mon    *qmp.SocketMonitor
}

// Available skips the test when qemu-system-x86_64 is missing.
func Available(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("qemu-system-x86_64 is missing (scripts/deps.sh installs qemu-system-x86)")
	}
}

// MakeImage creates an image of the given format and size.
func MakeImage(t testing.TB, path, format string, size int64) {
	t.Helper()
	out, err := exec.Command("qemu-img", "create", "-q", "-f", format, path, strconv.FormatInt(size, 10)).CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-img create: %v: %s", err, out)
	}
}

// Start starts a guest and stops it when the test ends.
func Start(t testing.TB, opts Options) *VM {
	t.Helper()
	Available(t)
	dir, err := os.MkdirTemp("", "qemutest")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	v := &VM{Dir: dir, opts: opts, QMP: filepath.Join(dir, "qmp.sock")}
	if opts.AgentChannel {
		v.Agent = filepath.Join(dir, "qga.sock")
	}
	v.start(t)
	t.Cleanup(func() { v.Kill() })
	return v
}

func (v *VM) args() []string {
	a := []string{"-accel", "tcg", "-machine", "pc", "-nodefaults", "-no-user-config", "-display", "none",
		"-m", "64", "-boot", "strict=on",
		"-qmp", "unix:" + v.QMP + ",server=on,wait=off",
		"-qmp", "unix:" + filepath.Join(v.Dir, "test.sock") + ",server=on,wait=off",
	}
	for i, d := range v.opts.Disks {
		ro := "off"
		if d.ReadOnly {
			ro = "on"
		}
		if d.Drive {
			a = append(a, "-drive", fmt.Sprintf("if=none,id=%s,file=%s,format=%s,readonly=%s", d.ID, d.Path, d.Format, ro),
				"-device", fmt.Sprintf("virtio-blk-pci,drive=%s,id=dev-%s", d.ID, d.ID))
			continue
		}
		a = append(a, "-blockdev", fmt.Sprintf("driver=file,filename=%s,node-name=file%d,read-only=%s", d.Path, i, ro),
			"-blockdev", fmt.Sprintf("driver=%s,file=file%d,node-name=disk%d,read-only=%s", d.Format, i, i, ro),
			"-device", fmt.Sprintf("virtio-blk-pci,drive=disk%d,id=%s", i, d.ID))
	}
	if v.Agent != "" {
		a = append(a, "-chardev", "socket,path="+v.Agent+",server=on,wait=off,id=qga0",
			"-device", "virtio-serial", "-device", "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0")
	}
	return a
}

func (v *VM) start(t testing.TB) {
	t.Helper()
	cmd := exec.Command("qemu-system-x86_64", v.args()...)
	// QEMU dies with the test process, also when a test times out and no
	// cleanup runs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out := &LockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start qemu: %v", err)
	}
	v.cmd, v.exited = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(v.exited) }()
	sock := filepath.Join(v.Dir, "test.sock")
	for {
		select {
		case <-v.exited:
			t.Fatalf("qemu exited: %s", out.String())
		default:
		}
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mon, err := qmp.NewSocketMonitor("unix", sock, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := mon.Connect(); err != nil {
		t.Fatal(err)
	}
	v.mon = mon
}

// LockedBuffer is a buffer that one goroutine writes while another reads:
// QEMU's output, or a daemon's.
type LockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *LockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Restart quits QEMU cleanly (persistent bitmaps are saved) and starts it
// again on the same images and sockets.
func (v *VM) Restart(t testing.TB) {
	t.Helper()
	v.Quit(t)
	v.start(t)
}

// Crash kills QEMU without letting it save anything (a host that lost
// power) and starts it again on the same images and sockets.
func (v *VM) Crash(t testing.TB) {
	t.Helper()
	v.Kill()
	v.start(t)
}

// Quit asks QEMU to quit and waits until it has.
func (v *VM) Quit(t testing.TB) {
	t.Helper()
	_, _ = v.mon.Run([]byte(`{"execute":"quit"}`))
	_ = v.mon.Disconnect()
	v.waitGone()
}

// Kill stops QEMU at once, if it still runs. Safe to call twice.
func (v *VM) Kill() {
	if v.cmd == nil {
		return
	}
	if v.mon != nil {
		_ = v.mon.Disconnect()
	}
	_ = v.cmd.Process.Kill()
	v.waitGone()
}

// waitGone waits until QEMU has exited.
func (v *VM) waitGone() {
	<-v.exited
	v.cmd = nil
}

// Run runs a QMP command on the test's own monitor and returns its return
// value.
func (v *VM) Run(t testing.TB, name string, args any) json.RawMessage {
	t.Helper()
	out, err := v.TryRun(name, args)
	if err != nil {
		t.Fatalf("QMP %s: %v", name, err)
	}
	return out
}

// TryRun runs a QMP command and returns its error. A query whose reply
// came garbled (go-qemu's monitor may hand over a buffer its reader refills
// when an event follows at once) is asked again.
func (v *VM) TryRun(name string, args any) (json.RawMessage, error) {
	out, err := v.tryRunOnce(name, args)
	for try := 1; try < 3 && err != nil && strings.HasPrefix(name, "query-"); try++ {
		out, err = v.tryRunOnce(name, args)
	}
	return out, err
}

func (v *VM) tryRunOnce(name string, args any) (json.RawMessage, error) {
	cmd, _ := json.Marshal(qmp.Command{Execute: name, Args: args})
	raw, err := v.mon.Run(cmd)
	if err != nil {
		return nil, err
	}
	var r struct {
		Return json.RawMessage `json:"return"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, err
	}
	return r.Return, nil
}

// IO runs a qemu-io command on the disk with the given ID, through the
// guest's block backend: what the guest writes there.
func (v *VM) IO(t testing.TB, id, command string) {
	t.Helper()
	if err := v.TryIO(id, command); err != nil {
		t.Fatal(err)
	}
}

// TryIO is IO for a goroutine other than the test's: it returns the error.
func (v *VM) TryIO(id, command string) error {
	target := id
	for _, d := range v.opts.Disks {
		if d.ID == id && !d.Drive {
			target = "-d " + id + "/virtio-backend"
		}
	}
	var out string
	raw, err := v.TryRun("human-monitor-command", map[string]string{"command-line": fmt.Sprintf("qemu-io %s %q", target, command)})
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return err
	}
	if strings.Contains(strings.ToLower(out), "error") || strings.Contains(out, "failed") {
		return fmt.Errorf("qemu-io %s %q: %s", id, command, out)
	}
	return nil
}

// Image returns the bytes the guest sees on disk d now, flushed first.
func (v *VM) Image(t testing.TB, id string) []byte {
	t.Helper()
	v.IO(t, id, "flush")
	for _, d := range v.opts.Disks {
		if d.ID != id {
			continue
		}
		out := filepath.Join(v.Dir, "image-"+id+".raw")
		if b, err := exec.Command("qemu-img", "convert", "-U", "-f", d.Format, "-O", "raw", d.Path, out).CombinedOutput(); err != nil {
			t.Fatalf("qemu-img convert: %v: %s", err, b)
		}
		defer os.Remove(out)
		data, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	t.Fatalf("no disk %s", id)
	return nil
}

// Write writes n bytes of pattern at off on disk id, as the guest would.
func (v *VM) Write(t testing.TB, id string, pattern byte, off, n int64) {
	t.Helper()
	v.IO(t, id, fmt.Sprintf("write -P %d %d %d", pattern, off, n))
}

// Status is the guest's run state ("running", "paused", ...).
func (v *VM) Status(t testing.TB) string {
	t.Helper()
	var st struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(v.Run(t, "query-status", nil), &st); err != nil {
		t.Fatal(err)
	}
	return st.Status
}

// Leftovers lists what dropback's backups added to the guest and did not
// remove: nodes, block jobs and exports whose names begin with "dbk-", and
// dirty bitmaps other than those named in keep.
func (v *VM) Leftovers(t testing.TB, keep ...string) []string {
	t.Helper()
	var out []string
	var nodes []struct {
		NodeName string `json:"node-name"`
		Bitmaps  []struct {
			Name string `json:"name"`
		} `json:"dirty-bitmaps"`
	}
	mustDecode(t, v.Run(t, "query-named-block-nodes", map[string]bool{"flat": true}), &nodes)
	for _, n := range nodes {
		if strings.HasPrefix(n.NodeName, "dbk-") {
			out = append(out, "node "+n.NodeName)
		}
		for _, b := range n.Bitmaps {
			if b.Name != "" && !contains(keep, b.Name) {
				out = append(out, "bitmap "+b.Name)
			}
		}
	}
	var jobs []struct {
		Device string `json:"device"`
	}
	mustDecode(t, v.Run(t, "query-block-jobs", nil), &jobs)
	for _, j := range jobs {
		out = append(out, "job "+j.Device)
	}
	var exports []struct {
		ID string `json:"id"`
	}
	mustDecode(t, v.Run(t, "query-block-exports", nil), &exports)
	for _, e := range exports {
		out = append(out, "export "+e.ID)
	}
	return out
}

// Bitmaps lists the named dirty bitmaps of every node, as node/name.
func (v *VM) Bitmaps(t testing.TB) []string {
	t.Helper()
	var nodes []struct {
		NodeName string `json:"node-name"`
		Bitmaps  []struct {
			Name string `json:"name"`
		} `json:"dirty-bitmaps"`
	}
	mustDecode(t, v.Run(t, "query-named-block-nodes", map[string]bool{"flat": true}), &nodes)
	var out []string
	for _, n := range nodes {
		for _, b := range n.Bitmaps {
			if b.Name != "" {
				out = append(out, b.Name)
			}
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func mustDecode(t testing.TB, raw json.RawMessage, v any) {
	t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
}

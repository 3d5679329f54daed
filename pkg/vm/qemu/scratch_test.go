package qemu_test

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dropback/dropback/pkg/vm"
)

// scratchFiles lists the names in dir, sorted.
func scratchFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names
}

// age sets the times of every file in dir to an hour ago.
func age(t *testing.T, dir string) {
	t.Helper()
	old := time.Now().Add(-time.Hour)
	for _, name := range scratchFiles(t, dir) {
		if err := os.Chtimes(filepath.Join(dir, name), old, old); err != nil {
			t.Fatal(err)
		}
	}
}

// deadSocket leaves a unix socket at path that no one listens on, as a
// killed QEMU does.
func deadSocket(t *testing.T, path string) {
	t.Helper()
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
}

// A backup sweeps the scratch files earlier backups left that nothing
// uses, and leaves alone those of a backup of another guest that runs in
// the same scratch directory, young files, and files not named as
// dropback names its own.
func TestScratchLeftoversAreSwept(t *testing.T) {
	ctx := context.Background()
	scratch := t.TempDir()
	a, b := guest(t, false, "qcow2"), guest(t, false, "raw")
	running, err := open(t, a, "").PointInTime(ctx, vm.Request{Scratch: scratch})
	if err != nil {
		t.Fatal(err)
	}
	ofA := scratchFiles(t, scratch) // its image, socket and owner file
	if len(ofA) != 3 {
		t.Fatalf("the running backup's scratch files: %q", ofA)
	}
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", filepath.Join(scratch, "dropback-0a0b0c-0.qcow2"), "1M").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	deadSocket(t, filepath.Join(scratch, "dropback-0a0b0c.nbd"))
	deadSocket(t, filepath.Join(scratch, "other-0a0b0c.nbd"))
	// The owner file of a backup that died: no one holds its lock.
	for _, name := range []string{"dropback-notes.qcow2", "dropback-0a0b0c-0.qcow2.bak", "dropback-0a0b0c.lock"} {
		if err := os.WriteFile(filepath.Join(scratch, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	age(t, scratch)
	young := filepath.Join(scratch, "dropback-d0d0d0-0.qcow2")
	if err := os.WriteFile(young, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	next, err := open(t, b, "").PointInTime(ctx, vm.Request{Scratch: scratch})
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Join(next.Notices(), "\n"); !strings.Contains(n, "removed 3 scratch file(s) that earlier backups left in "+scratch) {
		t.Fatalf("notices %q", n)
	}
	left := scratchFiles(t, scratch)
	for _, name := range append(ofA, "dropback-notes.qcow2", "dropback-0a0b0c-0.qcow2.bak", "other-0a0b0c.nbd", "dropback-d0d0d0-0.qcow2") {
		if !slices.Contains(left, name) {
			t.Errorf("%s was removed", name)
		}
	}
	for _, name := range []string{"dropback-0a0b0c-0.qcow2", "dropback-0a0b0c.nbd", "dropback-0a0b0c.lock"} {
		if slices.Contains(left, name) {
			t.Errorf("the leftover %s is still there", name)
		}
	}
	if got := readAll(t, running.Exports()[0]); len(got) != 16*mib {
		t.Fatalf("the other guest's backup reads %d bytes", len(got))
	}
	for _, p := range []vm.PointInTime{running, next} {
		if err := p.End(ctx, true); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"dropback-0a0b0c-0.qcow2.bak", "dropback-d0d0d0-0.qcow2", "dropback-notes.qcow2", "other-0a0b0c.nbd"}
	if got := scratchFiles(t, scratch); !slices.Equal(got, want) {
		t.Fatalf("after both backups ended: %q, want %q", got, want)
	}
}

// When QEMU is killed during a backup, ending the point in time removes
// its scratch files and says once that QEMU is gone.
func TestEndAfterQEMUIsGone(t *testing.T) {
	ctx := context.Background()
	scratch := t.TempDir()
	v := guest(t, false, "qcow2", "raw")
	p, err := open(t, v, "").PointInTime(ctx, vm.Request{Scratch: scratch})
	if err != nil {
		t.Fatal(err)
	}
	if got := scratchFiles(t, scratch); len(got) != 4 { // two images, the socket, the owner file
		t.Fatalf("scratch files: %q", got)
	}
	v.Kill()
	err = p.End(ctx, false)
	if !errors.Is(err, vm.ErrNotRunning) {
		t.Fatalf("End: %v, want ErrNotRunning", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "QEMU is gone") || strings.Count(msg, "connection refused") != 1 {
		t.Fatalf("End: %s", msg)
	}
	if got := scratchFiles(t, scratch); len(got) > 0 {
		t.Fatalf("left in the scratch directory: %q", got)
	}
}

// When only the QMP socket is gone and QEMU runs on, holding the scratch
// files, ending the point in time neither says that QEMU is gone nor
// removes them.
func TestEndAfterTheQMPSocketIsGone(t *testing.T) {
	ctx := context.Background()
	scratch := t.TempDir()
	v := guest(t, false, "qcow2")
	g := open(t, v, "")
	p, err := g.PointInTime(ctx, vm.Request{Scratch: scratch})
	if err != nil {
		t.Fatal(err)
	}
	before := scratchFiles(t, scratch)
	if err := os.Remove(v.QMP); err != nil {
		t.Fatal(err)
	}
	g.Close() // End connects again, to a socket that is gone
	err = p.End(ctx, false)
	if err == nil || errors.Is(err, vm.ErrNotRunning) || strings.Contains(err.Error(), "QEMU is gone") {
		t.Fatalf("End: %v, want an error that does not say QEMU is gone", err)
	}
	// The owner file goes with the backup; what QEMU still uses stays,
	// kept from sweeps by QEMU's locks.
	want := slices.DeleteFunc(before, func(n string) bool { return strings.HasSuffix(n, ".lock") })
	if got := scratchFiles(t, scratch); !slices.Equal(got, want) {
		t.Fatalf("scratch files %q, want %q, which QEMU still uses", got, want)
	}
}

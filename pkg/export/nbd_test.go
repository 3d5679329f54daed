package export

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/dropback/dropback/pkg/nbd"
)

// serveDisks serves the disks on a unix socket until the test ends.
func serveDisks(t *testing.T, disks ...Disk) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "nbd") // a short path: sockets have a 108-byte limit
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := nbd.NewServer(NBDExports(disks), nbd.ServerOptions{Logf: t.Logf})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return sock
}

// Each disk is an export by its name: qemu-img reads it equal to the disk,
// and nbdinfo --map shows its zero extents as holes that read as zeros.
func TestNBDExports(t *testing.T) {
	needTools(t, "qemu-img", "nbdinfo")
	a := diskCases[0].disk
	b := diskCases[3].disk
	sock := serveDisks(t, a, b)
	for _, d := range []*memDisk{a, b} {
		raw := filepath.Join(t.TempDir(), "raw")
		if err := os.WriteFile(raw, d.data, 0o600); err != nil {
			t.Fatal(err)
		}
		uri := "nbd+unix:///" + d.name + "?socket=" + sock
		run(t, "qemu-img", "compare", "-f", "raw", "-F", "raw", raw, uri)
		var m []struct {
			Offset int64  `json:"offset"`
			Length int64  `json:"length"`
			Type   uint32 `json:"type"`
		}
		out := run(t, "nbdinfo", "--map", "--json", uri)
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("nbdinfo --map: %v\n%s", err, out)
		}
		want := d.Extents(0, d.Size())
		if len(m) != len(want) {
			t.Fatalf("nbdinfo --map of %s: %s; want %+v", d.name, out, want)
		}
		for i, e := range want {
			flags := uint32(0)
			if e.Zero {
				flags = nbd.StateHole | nbd.StateZero
			}
			if m[i].Offset != e.Offset || m[i].Length != e.Length || m[i].Type != flags {
				t.Fatalf("nbdinfo --map of %s: %s; want %+v", d.name, out, want)
			}
		}
	}
}

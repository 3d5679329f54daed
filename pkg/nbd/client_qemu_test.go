package nbd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// qemuNBD serves file (of format raw or qcow2) read-only with qemu-nbd as
// export "disk" on a fresh unix socket, and stops it when the test ends.
func qemuNBD(t testing.TB, format, file string, args ...string) string {
	t.Helper()
	needTools(t, "qemu-nbd")
	sock := socketPath(t)
	pidFile := filepath.Join(filepath.Dir(sock), "pid")
	a := []string{"--fork", "--persistent", "--shared=16", "--read-only", "--pid-file=" + pidFile,
		"--socket=" + sock, "-x", "disk"}
	run(t, "qemu-nbd", append(append(append(a, "-f", format), args...), file)...)
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGTERM) })
	return sock
}

// testRegions is the data of the sparse test image; the rest are holes.
// The image is larger than MaxRead so that a whole read is split.
func testRegions(size int64) []region {
	return []region{
		{off: 0, length: 64 << 10},
		{off: 1 << 20, length: 300 << 10, pattern: 0xab},
		{off: 4 << 20, length: 4 << 10},
		{off: 8 << 20, length: 1 << 20},
		{off: 33 << 20, length: 2 << 20},
		{off: size - 8<<10, length: 8 << 10},
	}
}

const testSize = 40<<20 + 12<<10

func dialUnix(t *testing.T, sock, export string, contexts ...string) *Client {
	t.Helper()
	c, err := Dial(context.Background(), "unix", sock, export, contexts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// checkReads reads want through c: the whole image at once, then random
// ranges from several goroutines at once, then across the end.
func checkReads(t *testing.T, c *Client, want []byte) {
	t.Helper()
	ctx := context.Background()
	got := make([]byte, len(want))
	if n, err := c.ReadAt(ctx, got, 0); err != nil || n != len(want) || !bytes.Equal(got, want) {
		t.Fatalf("whole read: n=%d err=%v, equal=%v", n, err, bytes.Equal(got, want))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for range 16 {
				off := rng.Int64N(int64(len(want)))
				n := min(rng.Int64N(2<<20)+1, int64(len(want))-off)
				p := make([]byte, n)
				if k, err := c.ReadAt(ctx, p, off); err != nil || int64(k) != n {
					errs <- fmt.Errorf("read %d at %d: n=%d err=%w", n, off, k, err)
					return
				}
				if !bytes.Equal(p, want[off:off+n]) {
					errs <- fmt.Errorf("read %d at %d: wrong data", n, off)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	tail := make([]byte, 10000)
	n, err := c.ReadAt(ctx, tail, int64(len(want))-4096)
	if n != 4096 || err != io.EOF || !bytes.Equal(tail[:n], want[len(want)-4096:]) {
		t.Errorf("read across the end: n=%d err=%v", n, err)
	}
}

// allocationMap returns the hole map of the whole export as c sees it.
func allocationMap(t *testing.T, c *Client, name string, mask uint32) []Extent {
	t.Helper()
	id, ok := c.MetaContext(name)
	if !ok {
		t.Fatalf("the server did not grant %s", name)
	}
	var exts []Extent
	err := c.MapExtents(context.Background(), 0, c.Size(), id, func(e Extent) error {
		if n := len(exts); n > 0 && exts[n-1].End() != e.Offset {
			return fmt.Errorf("extent %+v does not follow %+v", e, exts[n-1])
		}
		exts = append(exts, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return holeMap(exts, mask)
}

func TestClientQemuNBDRaw(t *testing.T) {
	regions := testRegions(testSize)
	path, want := sparseImage(t, testSize, regions)
	sock := qemuNBD(t, "raw", path)
	c := dialUnix(t, sock, "disk", ContextBaseAllocation, "qemu:no-such-context")
	if c.Size() != testSize || !c.ReadOnly() || !c.StructuredReplies() {
		t.Fatalf("size %d, read-only %v, structured %v", c.Size(), c.ReadOnly(), c.StructuredReplies())
	}
	if _, ok := c.MetaContext("qemu:no-such-context"); ok {
		t.Error("a context the server does not have was granted")
	}
	checkReads(t, c, want)
	got := allocationMap(t, c, ContextBaseAllocation, StateHole)
	if exp := runsToMap(testSize, dataRuns(testSize, regions), StateHole); !slices.Equal(got, exp) {
		t.Errorf("base:allocation\n got %v\nwant %v", got, exp)
	}
}

func TestClientQemuNBDDirtyBitmap(t *testing.T) {
	needTools(t, "qemu-img", "qemu-io")
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.qcow2")
	run(t, "qemu-img", "create", "-q", "-f", "qcow2", img, "64M")
	run(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 3M", "-c", "write -P 0x12 40M 1M", img)
	run(t, "qemu-img", "bitmap", "--add", "--granularity", "65536", img, "b0")
	// Writes after the bitmap exists: whole granules, and 4 KiB inside one.
	run(t, "qemu-io", "-f", "qcow2",
		"-c", "write -P 0x22 2M 64k", "-c", "write -P 0x33 5M 192k",
		"-c", "write -P 0x44 41024k 64k", "-c", "write -P 0x55 10248k 4k", img)
	dirty := []Extent{
		{Offset: 2 << 20, Length: 64 << 10},
		{Offset: 5 << 20, Length: 192 << 10},
		{Offset: 10 << 20, Length: 64 << 10},
		{Offset: 41024 << 10, Length: 64 << 10},
	}
	raw := filepath.Join(dir, "disk.raw")
	run(t, "qemu-img", "convert", "-f", "qcow2", "-O", "raw", img, raw)
	want, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}

	sock := qemuNBD(t, "qcow2", img, "-B", "b0")
	bitmap := DirtyBitmapContext("b0")
	c := dialUnix(t, sock, "disk", ContextBaseAllocation, bitmap)
	got := allocationMap(t, c, bitmap, StateDirty)
	var exp []Extent
	for _, e := range runsToMap(c.Size(), dirty, StateDirty) {
		e.Flags ^= StateDirty // runsToMap flags the gaps; here the runs are dirty
		exp = append(exp, e)
	}
	if !slices.Equal(got, exp) {
		t.Errorf("dirty bitmap\n got %v\nwant %v", got, exp)
	}
	alloc := allocationMap(t, c, ContextBaseAllocation, StateHole|StateZero)
	for _, e := range alloc {
		if e.Offset < 20<<20 && e.End() > 20<<20 && e.Flags != StateHole|StateZero {
			t.Errorf("never written offset 20M is in %+v, not a hole", e)
		}
	}
	checkReads(t, c, want)
}

func TestClientQemuNBDUnknownExport(t *testing.T) {
	path, _ := sparseImage(t, 1<<20, nil)
	sock := qemuNBD(t, "raw", path)
	_, err := Dial(context.Background(), "unix", sock, "nope")
	var oe *OptionError
	if !errors.Is(err, ErrUnknownExport) || !errors.As(err, &oe) || oe.Message == "" {
		t.Fatalf("dial unknown export: %v", err)
	}
	t.Log(err)
}

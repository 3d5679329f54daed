package export

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// mountDisks mounts the disks on a new directory, or skips the test with
// one line where FUSE cannot be used.
func mountDisks(t *testing.T, disks ...Disk) (string, *Mount) {
	t.Helper()
	dir := t.TempDir()
	m, err := MountDisks(dir, disks, MountOptions{ModTime: time.Unix(1700000000, 0), Logf: t.Logf})
	if errors.Is(err, ErrNoFUSE) {
		t.Skipf("FUSE cannot be used here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Unmount() })
	return dir, m
}

func TestMount(t *testing.T) {
	a, b := diskCases[0].disk, diskCases[3].disk
	dir, m := mountDisks(t, a, b)
	if got := m.Files(); len(got) != 2 || got[0] != "sparse.img" || got[1] != "odd.img" {
		t.Fatalf("files %v", got)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 2 {
		t.Fatalf("the mount lists %v, %v", entries, err)
	}
	for _, d := range []*memDisk{a, b} {
		path := filepath.Join(dir, FileName(d.name))
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, d.data) {
			t.Fatalf("%s reads other bytes than the disk (%v)", path, err)
		}
		fi, err := os.Stat(path)
		if err != nil || fi.Mode() != 0o444 || fi.ModTime().Unix() != 1700000000 {
			t.Fatalf("%s: %v, %v", path, fi.Mode(), err)
		}
		if _, err := os.OpenFile(path, os.O_RDWR, 0); !errors.Is(err, syscall.EROFS) {
			t.Fatalf("opening %s for writing: %v, want EROFS", path, err)
		}
	}
	// SEEK_DATA and SEEK_HOLE follow the disk's extents.
	f, err := os.Open(filepath.Join(dir, "sparse.img"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, c := range []struct {
		off    int64
		whence int
		want   int64
	}{
		{0, unix.SEEK_HOLE, 2 * testChunk},
		{2 * testChunk, unix.SEEK_DATA, 10 * testChunk},
		{10*testChunk + 5, unix.SEEK_DATA, 10*testChunk + 5},
		{10 * testChunk, unix.SEEK_HOLE, 13 * testChunk},
		{63 * testChunk, unix.SEEK_HOLE, 64 * testChunk},
	} {
		got, err := unix.Seek(int(f.Fd()), c.off, c.whence)
		if err != nil || got != c.want {
			t.Errorf("lseek(%d, %d) = %d, %v; want %d", c.off, c.whence, got, err, c.want)
		}
	}
}

// A mount that is in use cannot be unmounted, and stays; once it is no
// longer used, it unmounts.
func TestMountBusy(t *testing.T) {
	dir, m := mountDisks(t, diskCases[1].disk)
	f, err := os.Open(filepath.Join(dir, "full.img"))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Unmount(); err == nil {
		t.Fatal("a mount with an open file unmounted")
	}
	if _, err := f.ReadAt(make([]byte, 10), 0); err != nil {
		t.Fatalf("reading after a refused unmount: %v", err)
	}
	f.Close()
	if err := m.Unmount(); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("after the unmount the directory holds %v", entries)
	}
}

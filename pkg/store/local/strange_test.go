package local

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/dropback/dropback/pkg/store"
	"github.com/dropback/dropback/pkg/store/storetest"
)

// plant is the local store's storetest.Planter: it makes FIFOs, sockets
// and symbolic links in the store's directory.
func plant(t *testing.T, st store.Store, name string, kind storetest.Strange, secret []byte) (bool, func() []byte) {
	t.Helper()
	s := st.(*Store)
	p := filepath.Join(s.root, filepath.FromSlash(name))
	dir := filepath.Dir(p)
	if kind == storetest.DirSymlinkOut {
		dir = filepath.Dir(dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	readBack := func(path string) func() []byte {
		return func() []byte {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Errorf("read %s: %v", path, err)
			}
			return data
		}
	}
	switch kind {
	case storetest.FIFO:
		if err := syscall.Mkfifo(p, 0o600); err != nil {
			t.Fatal(err)
		}
		return true, nil
	case storetest.Socket:
		l, err := net.Listen("unix", p)
		if err != nil {
			t.Skipf("no Unix socket at %s: %v", p, err)
		}
		t.Cleanup(func() { l.Close() })
		return true, nil
	case storetest.SymlinkOut:
		out := filepath.Join(t.TempDir(), "outside")
		writeFile(t, out, secret)
		symlink(t, out, p)
		return true, readBack(out)
	case storetest.SymlinkIn:
		in := p + ".target"
		writeFile(t, in, secret)
		symlink(t, filepath.Base(in), p)
		return true, readBack(in)
	case storetest.DirSymlinkOut:
		out := t.TempDir()
		writeFile(t, filepath.Join(out, filepath.Base(p)), secret)
		symlink(t, out, filepath.Dir(p))
		return true, readBack(filepath.Join(out, filepath.Base(p)))
	}
	return false, nil
}

func writeFile(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, p string) {
	t.Helper()
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

// A link in place of the directory of temporary files is refused: Put
// writes nothing through it, and the cleanup of stale temporary files
// deletes nothing where it points.
func TestTempDirLinkIsRefused(t *testing.T) {
	root, out := t.TempDir(), t.TempDir()
	old := filepath.Join(out, "put-old-looking")
	writeFile(t, old, []byte("keep me"))
	past := time.Now().Add(-2 * staleTemp)
	if err := os.Chtimes(old, past, past); err != nil {
		t.Fatal(err)
	}
	symlink(t, out, filepath.Join(root, tmpDir))
	s := open(t, root)
	err := s.Put(context.Background(), "obj", []byte("x"))
	if !errors.Is(err, store.ErrNotObject) {
		t.Errorf("Put with a linked %s: got %v, want ErrNotObject", tmpDir, err)
	}
	if data, err := os.ReadFile(old); err != nil || string(data) != "keep me" {
		t.Errorf("the file the link points to: %q, %v", data, err)
	}
	if entries, _ := os.ReadDir(out); len(entries) != 1 {
		t.Errorf("Put wrote through the link: %d files there", len(entries))
	}
}

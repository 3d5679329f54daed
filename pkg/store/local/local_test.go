package local

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dropback/dropback/pkg/store"
	"github.com/dropback/dropback/pkg/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, t.TempDir())
	}, storetest.WithPlanter(plant))
}

func open(t *testing.T, root string) *Store {
	t.Helper()
	s, err := Open(root)
	if err != nil {
		t.Fatalf("Open(%q): %v", root, err)
	}
	return s
}

// files lists the regular files under root, relative and sorted.
func files(t *testing.T, root string) []string {
	t.Helper()
	var got []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(root, p)
			got = append(got, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	return got
}

func TestLayout(t *testing.T) {
	root := t.TempDir()
	s := open(t, root)
	ctx := context.Background()
	if err := s.Put(ctx, "packs/ab/abcdef", []byte("pack")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "config", []byte("cfg")); err != nil {
		t.Fatal(err)
	}
	// Objects are plain files at their names, and no temporary file is left.
	if got, want := files(t, root), []string{"config", "packs/ab/abcdef"}; !slices.Equal(got, want) {
		t.Fatalf("files = %q, want %q", got, want)
	}
	b, err := os.ReadFile(filepath.Join(root, "packs", "ab", "abcdef"))
	if err != nil || string(b) != "pack" {
		t.Fatalf("object file holds %q, %v", b, err)
	}
	fi, err := os.Stat(filepath.Join(root, "config"))
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		t.Errorf("object mode %v, want private to its owner", perm)
	}
	if fi, err := os.Stat(filepath.Join(root, "packs")); err != nil || fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("directory mode %v (%v), want private to its owner", fi.Mode(), err)
	}
}

func TestReopen(t *testing.T) {
	root := t.TempDir()
	ctx := context.Background()
	if err := open(t, root).Put(ctx, "a/b", []byte("kept")); err != nil {
		t.Fatal(err)
	}
	b, err := open(t, root).Get(ctx, "a/b", 0, -1)
	if err != nil || string(b) != "kept" {
		t.Fatalf("Get after reopening = %q, %v", b, err)
	}
}

func TestTempFilesHidden(t *testing.T) {
	root := t.TempDir()
	s := open(t, root)
	ctx := context.Background()
	if err := s.Put(ctx, "obj", []byte("x")); err != nil {
		t.Fatal(err)
	}
	// A writer that crashed left a temporary file behind.
	stale := filepath.Join(root, tmpDir, "put-crashed")
	if err := os.WriteFile(stale, []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := s.List(ctx, "", func(fi store.Info) error {
		got = append(got, fi.Name)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"obj"}) {
		t.Fatalf("List = %q, want [obj]", got)
	}
	for _, name := range []string{".tmp", ".tmp/put-crashed"} {
		if _, err := s.Get(ctx, name, 0, -1); err == nil || errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get(%q): got %v, want a reserved-name error", name, err)
		}
		if err := s.Put(ctx, name, nil); err == nil {
			t.Errorf("Put(%q) succeeded, want a reserved-name error", name)
		}
	}
	// ".tmpx" is an ordinary name.
	if err := s.Put(ctx, ".tmpx/y", []byte("y")); err != nil {
		t.Fatalf("Put(.tmpx/y): %v", err)
	}
}

func TestStaleTempsRemoved(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, tmpDir), 0o700); err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(root, tmpDir, "put-old")
	young := filepath.Join(root, tmpDir, "put-young")
	for _, p := range []string{old, young} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	past := time.Now().Add(-2 * staleTemp)
	if err := os.Chtimes(old, past, past); err != nil {
		t.Fatal(err)
	}
	if err := open(t, root).Put(context.Background(), "obj", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale temporary file still there (%v)", err)
	}
	if _, err := os.Stat(young); err != nil {
		t.Errorf("a writer's temporary file was removed: %v", err)
	}
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(file); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("Open of a file: got %v, want a not-a-directory error", err)
	}
	if _, err := Open(""); err == nil {
		t.Error("Open of an empty path succeeded")
	}

	// A missing root reads as empty and is not created until a Put.
	root := filepath.Join(dir, "new", "repo")
	s := open(t, root)
	ctx := context.Background()
	if _, err := s.Stat(ctx, "config"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Stat in a missing root: got %v, want ErrNotFound", err)
	}
	if err := s.List(ctx, "", func(store.Info) error { return errors.New("called") }); err != nil {
		t.Fatalf("List in a missing root: %v", err)
	}
	if err := s.Delete(ctx, "config"); err != nil {
		t.Fatalf("Delete in a missing root: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "new")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("reading a missing root created it (%v)", err)
	}
	if err := s.Put(ctx, "config", []byte("c")); err != nil {
		t.Fatalf("Put in a missing root: %v", err)
	}
	if got := files(t, root); !slices.Equal(got, []string{"config"}) {
		t.Fatalf("files = %q, want [config]", got)
	}

	// A relative root is made absolute.
	t.Chdir(dir)
	if s := open(t, "rel"); s.Location() != filepath.Join(dir, "rel") {
		t.Errorf("Location = %q, want %q", s.Location(), filepath.Join(dir, "rel"))
	}
}

func TestNameConflicts(t *testing.T) {
	s := open(t, t.TempDir())
	ctx := context.Background()
	if err := s.Put(ctx, "a/b", []byte("x")); err != nil {
		t.Fatal(err)
	}
	// "a" is a directory here, so it cannot be an object too; the error
	// must not claim that the object exists.
	err := s.Put(ctx, "a", []byte("y"))
	if err == nil || errors.Is(err, store.ErrExists) {
		t.Errorf("Put over a directory: got %v, want a conflict error", err)
	}
	err = s.Put(ctx, "a/b/c", []byte("z"))
	if err == nil || errors.Is(err, store.ErrExists) {
		t.Errorf("Put below an object: got %v, want a conflict error", err)
	}
	if b, err := s.Get(ctx, "a/b", 0, -1); err != nil || string(b) != "x" {
		t.Errorf("Get(a/b) = %q, %v; want x", b, err)
	}
}

func TestErrorsSayWhat(t *testing.T) {
	s := open(t, t.TempDir())
	_, err := s.Get(context.Background(), "packs/00/missing", 0, 10)
	if err == nil || !strings.Contains(err.Error(), "get packs/00/missing") {
		t.Errorf("Get error %q does not name the operation and object", err)
	}
}

func BenchmarkGet(b *testing.B) {
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	data := bytes.Repeat([]byte("dropback"), 4<<20) // 32 MiB
	if err := s.Put(ctx, "pack", data); err != nil {
		b.Fatal(err)
	}
	const chunk = 1 << 20
	b.SetBytes(chunk)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		off := int64(i%32) * chunk
		if _, err := s.Get(ctx, "pack", off, chunk); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPut(b *testing.B) {
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	data := bytes.Repeat([]byte("dropback"), 4<<20) // 32 MiB
	b.SetBytes(int64(len(data)))
	for i := 0; b.Loop(); i++ {
		if err := s.Put(ctx, "packs/"+strings.Repeat("x", i%3+1)+"/"+time.Now().Format(time.RFC3339Nano), data); err != nil {
			b.Fatal(err)
		}
	}
}

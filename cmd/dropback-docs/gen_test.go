package main

import (
	"os"
	"path/filepath"
	"testing"
)

const docsDir = "../../docs/cli"

// TestDocsMatchTheTree fails when docs/cli was not regenerated after a
// command changed. Fix it with: go run ./cmd/dropback-docs
func TestDocsMatchTheTree(t *testing.T) {
	pages := Pages(Tree())
	if len(pages) < 30 {
		t.Fatalf("only %d pages generated", len(pages))
	}
	for name, want := range pages {
		got, err := os.ReadFile(filepath.Join(docsDir, name))
		if err != nil {
			t.Errorf("%s is missing: run go run ./cmd/dropback-docs", name)
			continue
		}
		if string(got) != want {
			t.Errorf("%s is out of date: run go run ./cmd/dropback-docs", name)
		}
	}
	existing, err := filepath.Glob(filepath.Join(docsDir, "dropback*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range existing {
		if _, ok := pages[filepath.Base(path)]; !ok {
			t.Errorf("%s documents a command that no longer exists: run go run ./cmd/dropback-docs", path)
		}
	}
}

func TestWriteRemovesStalePages(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "dropback_gone.md")
	if err := os.WriteFile(stale, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := write(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatal("stale page kept")
	}
	if _, err := os.Stat(filepath.Join(dir, "dropback_backups_restore.md")); err != nil {
		t.Fatal(err)
	}
}

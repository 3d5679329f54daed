// Command dropback-docs writes the command reference, one Markdown page per
// command, from dropback's cobra tree:
//
//	go run ./cmd/dropback-docs -out docs/cli
//
// A test fails when the pages checked in under docs/cli differ from the tree.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	out := flag.String("out", "docs/cli", "directory to write the pages to")
	flag.Parse()
	if err := write(*out); err != nil {
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		os.Exit(1)
	}
}

// write replaces the pages in dir with the tree's: stale dropback*.md pages
// of removed commands are deleted.
func write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	pages := Pages(Tree())
	old, err := filepath.Glob(filepath.Join(dir, "dropback*.md"))
	if err != nil {
		return err
	}
	for _, path := range old {
		if _, ok := pages[filepath.Base(path)]; !ok {
			if err := os.Remove(path); err != nil {
				return err
			}
		}
	}
	for name, content := range pages {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("wrote %d pages to %s\n", len(pages), strings.TrimSuffix(dir, "/"))
	return nil
}

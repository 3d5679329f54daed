package store

import (
	"fmt"
	"strings"
)

// CheckName reports whether name is a valid object name: non-empty,
// slash-separated, with no empty, "." or ".." element, no leading or trailing
// slash and no NUL or backslash.
func CheckName(name string) error {
	if name == "" {
		return fmt.Errorf("invalid object name %q: empty", name)
	}
	if strings.ContainsAny(name, "\x00\\") {
		return fmt.Errorf("invalid object name %q: contains NUL or backslash", name)
	}
	for _, el := range strings.Split(name, "/") {
		if el == "" || el == "." || el == ".." {
			return fmt.Errorf("invalid object name %q", name)
		}
	}
	return nil
}

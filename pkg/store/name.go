package store

import (
	"errors"
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

// CheckPrefix reports whether prefix can start a valid object name, as List
// takes it: the part before its last slash, if any, is a valid name, and it
// holds no NUL or backslash.
func CheckPrefix(prefix string) error {
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		if err := CheckName(prefix[:i]); err != nil {
			return fmt.Errorf("invalid prefix: %w", err)
		}
	}
	if strings.ContainsAny(prefix, "\x00\\") {
		return errors.New("invalid prefix: contains NUL or backslash")
	}
	return nil
}

package output

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrNoTerminal is returned when a question cannot be asked because stdin or
// stderr is not a terminal.
var ErrNoTerminal = errors.New("cannot prompt: not a terminal")

// Confirm asks a yes/no question on the terminal; anything but "y" or "yes"
// is no. Without a terminal it returns ErrNoTerminal and asks nothing.
func (s *IOStreams) Confirm(prompt string) (bool, error) {
	answer, err := s.Prompt(prompt + " [y/N]: ")
	if err != nil {
		return false, err
	}
	switch strings.ToLower(answer) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}

// Prompt writes prompt to stderr and reads one answer line from stdin,
// trimmed. End of input is an empty answer. Without a terminal it returns
// ErrNoTerminal.
func (s *IOStreams) Prompt(prompt string) (string, error) {
	if !s.CanPrompt() {
		return "", ErrNoTerminal
	}
	fmt.Fprint(s.ErrOut, prompt)
	line, err := s.readInterruptible(s.ReadLine, nil)
	if errors.Is(err, io.EOF) {
		fmt.Fprintln(s.ErrOut)
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read answer: %w", err)
	}
	return strings.TrimSpace(line), nil
}

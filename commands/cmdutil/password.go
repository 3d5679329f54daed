package cmdutil

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/dropback/dropback/pkg/output"
	"github.com/dropback/dropback/pkg/provider"
)

// The password of an encrypted repository comes from the first of these
// that is set, else from a prompt on the terminal. It is never a flag's
// value, never printed, and never traced.
const (
	EnvPassword        = "DROPBACK_PASSWORD"
	EnvPasswordFile    = "DROPBACK_PASSWORD_FILE"
	EnvPasswordCommand = "DROPBACK_PASSWORD_COMMAND"
	// EnvNewPassword is the new password of `repo key add` and `repo key
	// passwd`, beside their --new-password-file.
	EnvNewPassword = "DROPBACK_NEW_PASSWORD"
	// maxPassword is the longest password read from a file or a command.
	maxPassword = 4 << 10
)

// PasswordSources says where a password may come from, for messages.
const PasswordSources = "--password-file, " + EnvPasswordFile + ", " + EnvPasswordCommand + " or " + EnvPassword

// Password reads the repository's password: --password-file, else
// $DROPBACK_PASSWORD_FILE, else the first line $DROPBACK_PASSWORD_COMMAND
// prints (run by sh), else $DROPBACK_PASSWORD, else a prompt when stdin and
// stderr are a terminal. With none of them it fails wrapping
// provider.ErrPassword.
func (f *Factory) Password(ctx context.Context) ([]byte, error) {
	pw, err := f.givenPassword(ctx)
	if err != nil || pw != nil {
		return pw, err
	}
	if !f.IOStreams.CanPrompt() {
		return nil, provider.Errorf(provider.ErrPassword, "the repository is encrypted and no password was given: use %s, or run on a terminal", PasswordSources)
	}
	return promptPassword(f.IOStreams, "Repository password: ")
}

// givenPassword is the password of a flag or the environment, or nil.
func (f *Factory) givenPassword(ctx context.Context) ([]byte, error) {
	if path := f.Flags.PasswordFile; path != "" {
		return readPasswordFile("--password-file", path)
	}
	if path := f.Env(EnvPasswordFile); path != "" {
		return readPasswordFile(EnvPasswordFile, path)
	}
	if cmd := f.Env(EnvPasswordCommand); cmd != "" {
		return runPasswordCommand(ctx, f.IOStreams, cmd)
	}
	if pw := f.Env(EnvPassword); pw != "" {
		return []byte(pw), nil
	}
	return nil, nil
}

// NewPasswordFor reads the password of a new repository or key: file (a
// command's --new-password-file, or for `repo init` the password sources),
// else env, else a prompt on the terminal asked twice. what names it for
// the prompt and messages ("new password").
func (f *Factory) NewPasswordFor(ctx context.Context, file, env, what string) ([]byte, error) {
	if file != "" {
		return readPasswordFile("--new-password-file", file)
	}
	if env != "" {
		if pw := f.Env(env); pw != "" {
			return []byte(pw), nil
		}
	}
	if !f.IOStreams.CanPrompt() {
		return nil, nil
	}
	first, err := promptPassword(f.IOStreams, "Enter the "+what+": ")
	if err != nil {
		return nil, err
	}
	again, err := promptPassword(f.IOStreams, "Enter it again: ")
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(first, again) {
		return nil, provider.Errorf(provider.ErrPassword, "the two passwords differ; nothing changed")
	}
	return first, nil
}

// InitPassword is the password of a new repository: that of the password
// sources, else one asked twice on the terminal; nil when there is none.
func (f *Factory) InitPassword(ctx context.Context) ([]byte, error) {
	pw, err := f.givenPassword(ctx)
	if err != nil || pw != nil {
		return pw, err
	}
	return f.NewPasswordFor(ctx, "", "", "password of the new repository")
}

func promptPassword(ios *output.IOStreams, prompt string) ([]byte, error) {
	fmt.Fprint(ios.ErrOut, prompt)
	pw, err := ios.ReadSecret()
	fmt.Fprintln(ios.ErrOut)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read the password: %w", err)
	}
	if pw == "" {
		return nil, provider.Errorf(provider.ErrPassword, "the password is empty")
	}
	return []byte(pw), nil
}

// readPasswordFile reads the first line of a file, without its line ending.
func readPasswordFile(what, path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, FlagErrorf("%s: %v", what, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPassword+1))
	if err != nil {
		return nil, FlagErrorf("%s: read %s: %v", what, path, err)
	}
	return firstLine(what, data)
}

func firstLine(what string, data []byte) ([]byte, error) {
	if len(data) > maxPassword {
		data = data[:maxPassword]
	}
	line, _, _ := bytes.Cut(data, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) == 0 {
		return nil, provider.Errorf(provider.ErrPassword, "%s gives an empty password", what)
	}
	return line, nil
}

// runPasswordCommand runs cmd with sh and returns the first line it prints.
// Its stderr is dropback's; its stdin is none, so that it cannot take the
// user's input.
func runPasswordCommand(ctx context.Context, ios *output.IOStreams, cmd string) ([]byte, error) {
	c := exec.CommandContext(ctx, "sh", "-c", cmd)
	var out bytes.Buffer
	c.Stdout = &limitedWriter{w: &out, n: maxPassword + 1}
	c.Stderr = ios.ErrOut
	if err := c.Run(); err != nil {
		return nil, provider.Errorf(provider.ErrPassword, "%s failed: %v", EnvPasswordCommand, strings.TrimSpace(err.Error()))
	}
	return firstLine(EnvPasswordCommand, out.Bytes())
}

// limitedWriter keeps the first n bytes written and drops the rest.
type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		_, _ = l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}

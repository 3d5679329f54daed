package integration

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// runPw runs dropback on e's repository with env in place of the tests'
// password.
func (e *localEnv) runPw(env []string, args ...string) result {
	e.t.Helper()
	cmd := e.command(args...)
	kept := cmd.Env[:0]
	for _, kv := range cmd.Env {
		if !strings.HasPrefix(kv, "DROPBACK_PASSWORD=") {
			kept = append(kept, kv)
		}
	}
	cmd.Env = append(kept, env...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	code, err := exitCode(cmd.Run())
	require.NoError(e.t, err)
	r := result{args: args, code: code, stdout: out.String(), stderr: errb.String()}
	for _, kv := range env {
		if _, pw, ok := strings.Cut(kv, "PASSWORD="); ok && pw != "" {
			require.NotContains(e.t, r.stdout+r.stderr, pw, "dropback %v printed the password", args)
		}
	}
	return r
}

// The password of an encrypted repository from each of its sources, a wrong
// one, none, and the keys that hold it.
func TestPasswords(t *testing.T) {
	e := newLocal(t)
	var stats struct {
		Encryption    string `json:"encryption"`
		FormatVersion int    `json:"format_version"`
	}
	e.json(&stats, "repo", "stats")
	require.Equal(t, "xaes-256-gcm", stats.Encryption)
	require.Equal(t, 2, stats.FormatVersion)

	file := filepath.Join(e.dir, "pw")
	require.NoError(t, os.WriteFile(file, []byte(testPassword+"\nsecond line\n"), 0o600))
	for name, env := range map[string][]string{
		"DROPBACK_PASSWORD":          {"DROPBACK_PASSWORD=" + testPassword},
		"DROPBACK_PASSWORD_FILE":     {"DROPBACK_PASSWORD_FILE=" + file},
		"DROPBACK_PASSWORD_COMMAND":  {"DROPBACK_PASSWORD_COMMAND=head -n 1 " + file},
		"--password-file before env": {"DROPBACK_PASSWORD=wrong"},
	} {
		args := []string{"backups", "list"}
		if strings.HasPrefix(name, "--") {
			args = append(args, "--password-file", file)
		}
		r := e.runPw(env, args...)
		require.Equal(t, 0, r.code, "%s: %s", name, r.stderr)
	}
	for name, tc := range map[string]struct {
		env  []string
		want string
	}{
		"wrong password":      {[]string{"DROPBACK_PASSWORD=wrong-password"}, "wrong password"},
		"no password":         {nil, "no password was given"},
		"a failing command":   {[]string{"DROPBACK_PASSWORD_COMMAND=exit 3"}, "DROPBACK_PASSWORD_COMMAND failed"},
		"an empty file":       {[]string{"DROPBACK_PASSWORD_FILE=/dev/null"}, "empty password"},
		"init with none":      {nil, "--insecure-no-encryption"},
		"a wrong one for gc":  {[]string{"DROPBACK_PASSWORD=wrong-password"}, "wrong password"},
		"a wrong one for key": {[]string{"DROPBACK_PASSWORD=wrong-password"}, "wrong password"},
	} {
		args := map[string][]string{"init with none": {"--repo", filepath.Join(e.dir, "new"), "repo", "init"},
			"a wrong one for gc": {"repo", "gc"}, "a wrong one for key": {"repo", "key", "list"}}[name]
		if args == nil {
			args = []string{"backups", "list"}
		}
		r := e.runPw(tc.env, args...)
		require.Equal(t, 12, r.code, "%s: %s", name, r.stderr)
		require.Equal(t, 1, strings.Count(strings.TrimSpace(r.stderr), "\n")+1, "%s: one line: %q", name, r.stderr)
		require.Contains(t, r.stderr, tc.want, name)
	}
	r := e.runPw(nil, "--repo", filepath.Join(e.dir, "plain"), "repo", "init", "--insecure-no-encryption", "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, `"encryption": "none"`)

	// Keys: add one, open with it, the one in use cannot go, passwd.
	r = e.runPw([]string{"DROPBACK_PASSWORD=" + testPassword, "DROPBACK_NEW_PASSWORD=second password"}, "repo", "key", "add", "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	var added struct {
		ID string `json:"id"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &added))
	require.Equal(t, 0, e.runPw([]string{"DROPBACK_PASSWORD=second password"}, "backups", "list").code)
	var keys []struct {
		ID      string `json:"id"`
		Current bool   `json:"current"`
	}
	e.json(&keys, "repo", "key", "list")
	require.Len(t, keys, 2)
	first := keys[0].ID
	if first == added.ID {
		first = keys[1].ID
	}
	r = e.runPw([]string{"DROPBACK_PASSWORD=" + testPassword}, "repo", "key", "remove", first, "--force")
	require.Equal(t, 2, r.code, "removing the key in use: %s", r.stderr)
	// What cannot be removed is refused before anything is asked, as
	// other verbs check their arguments first: without --force and with
	// no terminal, the refusal, not the request for --force.
	r = e.runPw([]string{"DROPBACK_PASSWORD=" + testPassword}, "repo", "key", "remove", first)
	require.Equal(t, 2, r.code, "removing the key in use, without --force: %s", r.stderr)
	require.Contains(t, r.stderr, "the one this password opened")
	r = e.runPw([]string{"DROPBACK_PASSWORD=" + testPassword}, "repo", "key", "remove", "0123abcd")
	require.NotEqual(t, 6, r.code, "removing a key that does not exist asked for --force: %s", r.stderr)
	require.Contains(t, r.stderr, "no key 0123abcd")
	r = e.runPw([]string{"DROPBACK_PASSWORD=" + testPassword}, "repo", "key", "remove", added.ID)
	require.Equal(t, 6, r.code, "removing a key without --force and no terminal: %s", r.stderr)
	// A key is named by the start of its ID too.
	r = e.runPw([]string{"DROPBACK_PASSWORD=" + testPassword}, "repo", "key", "remove", added.ID[:6])
	require.Equal(t, 6, r.code, "removing a key by a prefix of its ID: %s", r.stderr)
	require.Contains(t, r.stderr, added.ID, "the prefix resolved to the key")
	r = e.runPw([]string{"DROPBACK_PASSWORD=second password", "DROPBACK_NEW_PASSWORD=third password"}, "repo", "key", "passwd")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, 12, e.runPw([]string{"DROPBACK_PASSWORD=second password"}, "backups", "list").code)
	require.Equal(t, 0, e.runPw([]string{"DROPBACK_PASSWORD=third password"}, "backups", "list").code)
	require.Equal(t, 0, e.runPw([]string{"DROPBACK_PASSWORD=" + testPassword}, "backups", "list").code)

	// The new password from --new-password-file, first line only.
	newFile := filepath.Join(e.dir, "new-pw")
	require.NoError(t, os.WriteFile(newFile, []byte("fourth password\nnot this\n"), 0o600))
	r = e.runPw([]string{"DROPBACK_PASSWORD=third password", "DROPBACK_NEW_PASSWORD=not this either"}, "repo", "key", "passwd", "--new-password-file", newFile)
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, 12, e.runPw([]string{"DROPBACK_PASSWORD=third password"}, "backups", "list").code)
	require.Equal(t, 0, e.runPw([]string{"DROPBACK_PASSWORD=fourth password"}, "backups", "list").code)
	require.Equal(t, 12, e.runPw([]string{"DROPBACK_PASSWORD=not this either"}, "backups", "list").code)
	// --trace prints no password (runPw checks every output).
	require.Equal(t, 0, e.runPw([]string{"DROPBACK_PASSWORD=fourth password"}, "--trace", "repo", "key", "list").code)
}

// repo init --encryption: a repository sealed with either AEAD backs up
// and restores the same bytes, and says which it is; an unknown one, or
// one beside --insecure-no-encryption, is refused with one line and makes
// nothing.
func TestInitWithEachEncryption(t *testing.T) {
	for _, aead := range []string{"xaes-256-gcm", "xchacha20-poly1305"} {
		t.Run(aead, func(t *testing.T) {
			e := &localEnv{t: t, dir: t.TempDir()}
			e.repo, e.home = filepath.Join(e.dir, "repo"), filepath.Join(e.dir, "home")
			e.ok("repo", "init", "--encryption", aead)
			var stats struct {
				Encryption string `json:"encryption"`
			}
			e.json(&stats, "repo", "stats")
			require.Equal(t, aead, stats.Encryption)
			disk := filepath.Join(e.dir, "web-1.img")
			makeDisk(t, disk, 8*mib, 1, part{0, 3 * mib, "random"}, part{4 * mib, 3 * mib, "text"})
			e.ok("hosts", "add", "web-1", "--disk", disk)
			e.ok("backups", "create", "web-1")
			out := filepath.Join(e.dir, "out.img")
			e.ok("backups", "restore", "web-1", "latest", "--to", out)
			require.Equal(t, sha(t, disk), sha(t, out))
			e.ok("backups", "verify")
		})
	}
	for name, args := range map[string][]string{
		"unknown":       {"--encryption", "rot13"},
		"and plain too": {"--encryption", "xaes-256-gcm", "--insecure-no-encryption"},
		"empty":         {"--encryption", ""},
	} {
		t.Run(name, func(t *testing.T) {
			e := &localEnv{t: t, dir: t.TempDir()}
			e.repo, e.home = filepath.Join(e.dir, "repo"), filepath.Join(e.dir, "home")
			r := e.run(append([]string{"repo", "init"}, args...)...)
			if name == "empty" {
				// An empty value is the default, as for --kdf.
				require.Equal(t, 0, r.code, r.stderr)
				return
			}
			require.Equal(t, 2, r.code, "init %v: %s", args, r.stderr)
			require.NotContains(t, strings.TrimSpace(r.stderr), "\n", "one line: %q", r.stderr)
			_, err := os.Stat(filepath.Join(e.repo, "config"))
			require.True(t, errors.Is(err, os.ErrNotExist), "a refused init made a repository")
		})
	}
}

// repo upgrade through the binary: a plain repository with a backup becomes
// an encrypted one that restores it.
func TestUpgradeThroughTheBinary(t *testing.T) {
	e := &localEnv{t: t, dir: t.TempDir()}
	e.repo, e.home = filepath.Join(e.dir, "repo"), filepath.Join(e.dir, "home")
	e.ok("repo", "init", "--insecure-no-encryption")
	disk := filepath.Join(e.dir, "web-1.img")
	makeDisk(t, disk, 8*mib, 1, part{0, 4 * mib, "random"}, part{5 * mib, 2 * mib, "text"})
	e.ok("hosts", "add", "web-1", "--disk", disk)
	e.ok("backups", "create", "web-1")
	r := e.runPw(nil, "repo", "upgrade")
	require.Equal(t, 12, r.code, "upgrade without a password: %s", r.stderr)
	r = e.run("repo", "upgrade", "--encryption", "rot13")
	require.Equal(t, 2, r.code, "upgrade with an unknown encryption: %s", r.stderr)
	require.Equal(t, 1, strings.Count(strings.TrimSpace(r.stderr), "\n")+1, "one line: %q", r.stderr)
	require.Equal(t, 0, e.runPw(nil, "backups", "list").code, "a refused upgrade left the repository plain")
	e.ok("repo", "upgrade", "--encryption", "xchacha20-poly1305")
	out := filepath.Join(e.dir, "out.img")
	e.ok("backups", "restore", "web-1", "latest", "--to", out)
	require.Equal(t, sha(t, disk), sha(t, out))
	var stats struct {
		Encryption string `json:"encryption"`
	}
	e.json(&stats, "repo", "stats")
	require.Equal(t, "xchacha20-poly1305", stats.Encryption)
	require.Equal(t, 12, e.runPw(nil, "backups", "list").code)
	r = e.run("repo", "upgrade")
	require.Equal(t, 2, r.code, "upgrading an encrypted repository: %s", r.stderr)
}

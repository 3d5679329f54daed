package integration

// Completion as a shell gets it: `dropback __complete <words>` answers one
// candidate a line (value, tab, description) and a directive line; the bash
// script, sourced into a bash without the bash-completion package, fills
// COMPREPLY from it.

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dropback/dropback/internal/fakedo"
)

// candidates runs __complete and returns the values it offers.
func candidates(t *testing.T, e *localEnv, words ...string) []string {
	t.Helper()
	out := e.ok(append([]string{"__complete"}, words...)...)
	var vals []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" || strings.HasPrefix(line, ":") {
			continue
		}
		v, _, _ := strings.Cut(line, "\t")
		vals = append(vals, v)
	}
	return vals
}

// completionRepo is a repository with hosts web-1 (backups 1 and 2) and
// db-1 (backup 3).
func completionRepo(t *testing.T) *localEnv {
	t.Helper()
	e := newLocal(t)
	for _, h := range []string{"web-1", "db-1"} {
		disk := filepath.Join(e.dir, h+".img")
		makeDisk(t, disk, 4*mib, 7, part{0, mib, "text"})
		e.ok("hosts", "add", h, "--disk", disk)
	}
	e.ok("backups", "create", "web-1")
	e.ok("backups", "create", "web-1")
	e.ok("backups", "create", "db-1")
	return e
}

// TestCompletionPerArgumentKind: one case per kind of argument or flag
// value completion knows.
func TestCompletionPerArgumentKind(t *testing.T) {
	e := completionRepo(t)
	tests := []struct {
		name  string
		words []string
		want  []string
	}{
		{"host", []string{"backups", "create", ""}, []string{"web-1", "db-1"}},
		{"host by prefix", []string{"policy", "get", "we"}, []string{"web-1"}},
		{"backup: hosts and IDs", []string{"backups", "get", ""}, []string{"web-1", "db-1", "3", "2", "1"}},
		{"backup of a host: latest and its IDs", []string{"backups", "restore", "web-1", ""}, []string{"latest", "2", "1"}},
		{"nothing after a whole backup", []string{"backups", "get", "web-1", "2", ""}, nil},
		{"more IDs for verify", []string{"backups", "verify", "1", ""}, []string{"3", "2"}},
		{"more IDs of the host for delete", []string{"backups", "delete", "web-1", "2", ""}, []string{"latest", "1"}},
		{"plans", []string{"backups", "enable", "web-1", "--plan", ""}, []string{"daily", "weekly", "intra_daily_12h", "intra_daily_6h", "intra_daily_4h"}},
		{"hours", []string{"policy", "set", "web-1", "--hour", ""}, []string{"0", "4", "8", "12", "16", "20"}},
		{"weekdays", []string{"policy", "set", "web-1", "--weekday", "S"}, []string{"SUN", "SAT"}},
		{"output", []string{"hosts", "list", "-o", ""}, []string{"text", "json"}},
		{"format columns of the command", []string{"repo", "stats", "--format", "Ded"}, []string{"DedupRatio"}},
		{"format after a column", []string{"backups", "list", "--format", "ID,Na"}, []string{"ID,Name"}},
		{"contexts", []string{"hosts", "list", "--context", ""}, []string{"digitalocean", "local"}},
		{"shells", []string{"completion", ""}, []string{"bash", "zsh", "fish", "powershell"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, candidates(t, e, tt.words...))
		})
	}
}

// TestCompletionInTheDigitalOceanContext completes Droplets and their
// backups from the API, and gives up on an API that does not answer
// instead of holding the shell.
func TestCompletionInTheDigitalOceanContext(t *testing.T) {
	fake := fakedo.New(t)
	seed(fake)
	r := runDO(t, fake, "__complete", "backups", "restore", "web-1", "")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "latest\t")
	assert.Contains(t, r.stdout, "1234\tbackup of web-1")
	r = runDO(t, fake, "__complete", "backups", "list", "")
	assert.Contains(t, r.stdout, "web-1\t")
	assert.Contains(t, r.stdout, "db-1\t")

	// A listener that accepts and never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, "--context", "digitalocean", "-u", "http://"+ln.Addr().String(), "-t", fakedo.DefaultToken,
		"__complete", "backups", "list", "")
	cmd.Env = dropbackCmd(t.TempDir(), nil).Env
	out, err := cmd.Output()
	require.NoError(t, err, "completion against a silent API did not end by itself")
	assert.Equal(t, ":4\n", string(out), "no candidates, files not offered")
}

// TestBashCompletionWithoutThePackage sources `dropback completion bash` into
// a bash that has no bash-completion package and completes as a user's Tab
// would: host names, latest and IDs after a host, and --format=ID,Na.
func TestBashCompletionWithoutThePackage(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	e := completionRepo(t)
	script := filepath.Join(e.dir, "dropback.bash")
	writeFile(t, script, e.ok("completion", "bash"))
	tests := []struct {
		line string
		want []string
	}{
		{"dropback backups create ", []string{"db-1", "web-1"}},
		{"dropback backups restore web-1 ", []string{"latest", "2", "1"}},
		{"dropback backups list --format=ID,Na", []string{`ID\,Name`}}, // as bash puts it in the line
		{"dropback hosts list -o j", []string{"json"}},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			// The words as bash splits them (COMP_WORDBREAKS has = and :).
			words := strings.Fields(strings.NewReplacer("=", " = ").Replace(tt.line))
			if strings.HasSuffix(tt.line, " ") {
				words = append(words, "")
			}
			words[0] = binPath
			quoted := make([]string, len(words))
			for i, w := range words {
				quoted[i] = "'" + w + "'"
			}
			prog := strings.Join([]string{
				"COLUMNS=200",
				"source " + script,
				"COMP_WORDS=(" + strings.Join(quoted, " ") + ")",
				"COMP_CWORD=" + itoa(len(words)-1),
				"COMP_LINE='" + tt.line + "'",
				"COMP_POINT=${#COMP_LINE}",
				"COMP_TYPE=9",
				"__start_dropback",
				`printf '%s\n' "${COMPREPLY[@]}"`,
			}, "\n")
			cmd := exec.Command(bash, "--norc", "--noprofile", "-c", prog)
			cmd.Env = e.command().Env
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			require.NoError(t, err, stderr.String())
			// Several candidates come with their descriptions, as bash
			// lists them: "web-1   (host 1, 1 disk)".
			var got []string
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				if f := strings.Fields(line); len(f) > 0 {
					got = append(got, f[0])
				}
			}
			if strings.Contains(tt.line, "=") {
				// bash completes the word after "=": the value alone.
				assert.Equal(t, tt.want, got, stderr.String())
				return
			}
			slices.Sort(got)
			want := slices.Clone(tt.want)
			slices.Sort(want)
			assert.Equal(t, want, got, stderr.String())
		})
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestMakeInstallHonoursPrefixAndDestdir: make install places the binary and
// the three shells' completions under $(DESTDIR)$(PREFIX), and the
// installed bash completion is the one the binary prints. It installs the
// binary the tests built (-o build: make takes the build as done), which
// saves a second, uncached build of the whole tree.
func TestMakeInstallHonoursPrefixAndDestdir(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	dest := t.TempDir()
	cmd := exec.Command("make", "-o", "build", "install", "BIN="+binPath, "DESTDIR="+dest, "PREFIX=/opt/db")
	cmd.Dir = ".."
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	root := filepath.Join(dest, "opt", "db")
	for _, f := range []string{"bin/dropback", "share/bash-completion/completions/dropback", "share/zsh/site-functions/_dropback", "share/fish/vendor_completions.d/dropback.fish"} {
		fi, err := os.Stat(filepath.Join(root, f))
		require.NoError(t, err, "make install did not place %s", f)
		assert.NotZero(t, fi.Size(), f)
	}
	bashScript, err := os.ReadFile(filepath.Join(root, "share/bash-completion/completions/dropback"))
	require.NoError(t, err)
	e := newLocal(t)
	assert.Equal(t, e.ok("completion", "bash"), string(bashScript))
}

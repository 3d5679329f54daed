package integration

// Corruption: a byte flipped in, a truncation of, or the deletion of each
// kind of repository object. Restoring a backup the damage affects fails
// loudly; backups it does not affect restore; `backups verify` reports the
// damage and names the backups it affects; the next backup of the same disk
// stores what was lost again, so it is whole.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dropback/dropback/pkg/engine"
)

// damage flips a bit in the middle of, truncates or deletes the file p. In
// a JSON record the flip turns a digit into another, which leaves valid JSON
// with one value changed: only the record's BLAKE3 seal tells.
func damage(t *testing.T, p, how string) {
	t.Helper()
	data, err := os.ReadFile(p)
	require.NoError(t, err)
	switch how {
	case "flip":
		at := len(data) / 2
		if json.Valid(data) {
			for at < len(data) && (data[at] < '0' || data[at] > '8') {
				at++
			}
			require.Less(t, at, len(data), "no digit in the second half of %s", p)
			data[at] ^= 0x01 // 0↔1, 2↔3, …
		} else {
			data[at] ^= 0x20
		}
	case "truncate":
		data = data[:len(data)/2]
	case "delete":
		require.NoError(t, os.Remove(p))
		return
	}
	require.NoError(t, os.WriteFile(p, data, 0o600))
}

// manifestFile is what the test needs of a manifest, a sealed record
// (docs/format.md).
type manifestFile struct {
	Body struct {
		HostID int `json:"host_id"`
		Disks  []struct {
			Image string `json:"image"`
		} `json:"disks"`
		IndexSegments []string `json:"index_segments"`
	} `json:"body"`
}

// corruptEnv is a repository with a backup of web-1 (the one damaged) and
// one of db-1 (which must stay whole).
type corruptEnv struct {
	*localEnv
	web, db       string
	bw, bd        backupJSON
	webSum, dbSum string
	webPacks      []string
	manifest      manifestFile
	webHost       int
}

func newCorruptEnv(t *testing.T) *corruptEnv {
	e := &corruptEnv{localEnv: newShmLocal(t)}
	e.web, e.db = filepath.Join(e.dir, "web-1.img"), filepath.Join(e.dir, "db-1.img")
	makeDisk(t, e.web, 20*mib, 1, part{0, 12 * mib, "random"}, part{14 * mib, 4 * mib, "text"})
	makeDisk(t, e.db, 6*mib, 2, part{0, 3 * mib, "text"}, part{4 * mib, mib, "random"})
	e.ok("hosts", "add", "web-1", "--disk", e.web)
	e.ok("hosts", "add", "db-1", "--disk", e.db)
	e.ok("backups", "enable", "web-1", "--plan", "daily") // a second revision of its record
	e.bw, e.webSum = e.create("web-1"), sha(t, e.web)
	e.webPacks = packs(t, e.repo) // the first backup's alone
	e.bd, e.dbSum = e.create("db-1"), sha(t, e.db)
	// The manifest is encrypted: the engine reads it, with the password.
	r, err := engine.Open(context.Background(), mustLocalStore(t, e.repo), engine.Options{Password: testPasswordFunc})
	require.NoError(t, err)
	m, err := r.Manifest(context.Background(), e.bw.ID)
	require.NoError(t, err)
	e.manifest.Body.HostID, e.manifest.Body.IndexSegments = m.HostID, m.IndexSegments
	for _, d := range m.Disks {
		e.manifest.Body.Disks = append(e.manifest.Body.Disks, struct {
			Image string `json:"image"`
		}{d.Image})
	}
	e.webHost = e.manifest.Body.HostID
	return e
}

func (e *corruptEnv) manifestPath() string {
	return filepath.Join(e.repo, "backups", fmt.Sprintf("%010d", e.bw.ID))
}

// hostRevisions lists the files of web-1's host record, oldest first.
func (e *corruptEnv) hostRevisions() []string {
	files, err := filepath.Glob(filepath.Join(e.repo, "hosts", fmt.Sprintf("%010d", e.webHost), "*"))
	require.NoError(e.t, err)
	sort.Strings(files)
	return files
}

// target returns the files that make up the object of the given kind that
// web-1's backup uses.
func (e *corruptEnv) target(kind string) []string {
	switch kind {
	case "pack":
		return e.webPacks[:1]
	case "index segment":
		return []string{filepath.Join(e.repo, "index", e.manifest.Body.IndexSegments[0])}
	case "image index":
		return []string{filepath.Join(e.repo, "images", e.manifest.Body.Disks[0].Image)}
	case "manifest":
		return []string{e.manifestPath()}
	case "config":
		return []string{filepath.Join(e.repo, "config")}
	case "host record":
		revs := e.hostRevisions()
		return revs[len(revs)-1:]
	}
	panic(kind)
}

// fails runs a command that must fail loudly: a non-zero exit and one line
// on stderr.
func (e *localEnv) fails(what string, args ...string) result {
	e.t.Helper()
	r := e.run(args...)
	require.NotEqual(e.t, 0, r.code, "%s succeeded: %s", what, r.stdout)
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	require.Len(e.t, lines, 1, "%s: one line on stderr, got:\n%s", what, r.stderr)
	require.NotEmpty(e.t, lines[0], "%s: an error message", what)
	return r
}

// verdicts runs `backups verify -o json` and returns the status of each
// backup and the problems.
func (e *localEnv) verdicts() (map[int]string, []string, int) {
	e.t.Helper()
	r := e.run("backups", "verify", "-o", "json")
	var v verifyJSON
	require.NoError(e.t, json.Unmarshal([]byte(r.stdout), &v), "verify output %q, stderr %q", r.stdout, r.stderr)
	out := map[int]string{}
	for _, b := range v.Backups {
		out[b.ID] = b.Status
	}
	return out, v.Problems, r.code
}

func TestCorruption(t *testing.T) {
	for _, kind := range []string{"pack", "index segment", "image index", "manifest", "config", "host record"} {
		for _, how := range []string{"flip", "truncate", "delete"} {
			t.Run(kind+" "+how, func(t *testing.T) {
				e := newCorruptEnv(t)
				files := e.target(kind)
				if kind == "host record" && how == "delete" {
					files = e.hostRevisions() // the whole record; one revision gone looks like it was never written
				}
				saved := map[string][]byte{}
				for _, f := range files {
					data, err := os.ReadFile(f)
					require.NoError(t, err)
					saved[f] = data
					damage(t, f, how)
				}
				out := filepath.Join(e.dir, "out.img")
				restoreWeb := []string{"backups", "restore", "web-1", fmt.Sprint(e.bw.ID), "--to", out}

				if kind == "config" {
					// Nothing can be read without the config: every command
					// says so, and putting a copy back brings all back.
					r := e.fails("verify without a config", "backups", "verify")
					assert.Contains(t, r.stderr, "config")
					// A config that is gone while objects remain is damage;
					// one that cannot be read is no config dropback knows.
					wantCode := map[string]int{"delete": 7, "flip": 13, "truncate": 13}[how]
					assert.Equal(t, wantCode, r.code, "verify without a config: %s", r.stderr)
					e.fails("restore without a config", restoreWeb...)
					e.fails("backup without a config", "backups", "create", "web-1")
					if how == "delete" {
						r := e.fails("repo init over a repository that lost its config", "repo", "init")
						assert.Contains(t, r.stderr, "not empty")
					}
					for f, data := range saved {
						require.NoError(t, os.WriteFile(f, data, 0o600))
					}
					e.verifyClean("config put back")
					e.restores(e.bw, e.webSum, "config put back")
					return
				}

				// 1. Restoring the affected backup fails loudly and leaves
				// no file; the other backup restores.
				hostGone := kind == "host record" && how == "delete"
				if kind == "host record" && !hostGone {
					e.restores(e.bw, e.webSum, "damaged host record") // the revision before stands in
				} else {
					e.fails("restore of the damaged backup", restoreWeb...)
					_, err := os.Stat(out)
					assert.True(t, os.IsNotExist(err), "a failed restore left %s", out)
				}
				e.restores(e.bd, e.dbSum, "the other backup")

				// 2. Verify reports the damage and names the backup.
				status, problems, code := e.verdicts()
				assert.Equal(t, 7, code, "verify exit code: damaged")
				assert.NotEmpty(t, problems, "verify lists the damage")
				assert.Equal(t, "ok", status[e.bd.ID], "verify: the other backup is ok; problems %v", problems)
				if kind == "host record" {
					assert.Contains(t, strings.Join(problems, "\n"), "host", "verify names the host record")
				} else {
					assert.Equal(t, "damaged", status[e.bw.ID], "verify names backup %d; problems %v", e.bw.ID, problems)
				}

				// 3. The next backup of the same disk is whole.
				if hostGone {
					e.ok("hosts", "add", "web-1", "--disk", e.web)
				}
				nb := e.create("web-1")
				e.restores(nb, e.webSum, "the next backup")
				status, problems, _ = e.verdicts()
				assert.Equal(t, "ok", status[nb.ID], "verify of the next backup; problems %v", problems)
				assert.Equal(t, "ok", status[e.bd.ID], "verify of the other backup; problems %v", problems)
				switch kind {
				case "pack", "index segment", "image index":
					// The lost data is stored again (or the index rebuilt
					// from the packs): the old backup is whole again too.
					e.restores(e.bw, e.webSum, "the damaged backup once the data is back")
				case "manifest":
					// A damaged manifest stops gc until the backup is
					// deleted (a lost one has nothing left to keep); once
					// it is, all is clean.
					if how != "delete" {
						r := e.fails("gc over a damaged manifest", "repo", "gc", "--min-age", "0")
						assert.Contains(t, r.stderr, "snapshots delete")
					}
					e.ok("snapshots", "delete", fmt.Sprint(e.bw.ID), "--force")
					e.ok("repo", "gc", "--min-age", "0")
					e.verifyClean("the damaged backup deleted")
				}
			})
		}
	}
}

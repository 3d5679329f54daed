package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Objects of 6 GiB (256 MiB in MinIO) in place of each kind of object:
// each is refused without being read, in one line, and the rest works.
func TestHostileRepoHugeObjects(t *testing.T) {
	restoreWeb := func(h *hostileRepo) []string {
		return []string{"backups", "restore", "web-1", fmt.Sprint(h.web.ID), "--to", filepath.Join(h.dir, "out.img")}
	}
	cases := []struct {
		name string
		fn   func(t *testing.T, h *hostileRepo)
	}{
		{"manifest", func(t *testing.T, h *hostileRepo) {
			h.plantHuge(fmt.Sprintf("backups/%010d", h.db.ID))
			r := h.fails(7, fmt.Sprintf("backup %d", h.db.ID), "backups", "list")
			assert.Contains(t, r.stdout, "web-1", "the other backups are listed")
			h.webWorks()
		}},
		{"image index", func(t *testing.T, h *hostileRepo) {
			h.plantHuge("images/" + h.webImage)
			h.fails(7, h.webImage, restoreWeb(h)...)
			h.dbWorks()
		}},
		{"pack", func(t *testing.T, h *hostileRepo) {
			h.plantHuge(h.webPacks[0])
			h.fails(7, "pack", restoreWeb(h)...)
			r := h.run("backups", "verify")
			assert.Equal(t, 7, r.code, "verify: %s", r.stderr)
			h.dbWorks()
		}},
		{"index segment", func(t *testing.T, h *hostileRepo) {
			h.plantHuge("index/" + h.webSeg)
			h.dbWorks()
		}},
		{"gc mark", func(t *testing.T, h *hostileRepo) {
			h.plantHuge("gc/condemned/00000000000000000001-0000000000000000")
			h.ok("repo", "gc")
			h.dbWorks()
		}},
		{"gc record", func(t *testing.T, h *hostileRepo) {
			h.plantHuge("gc/done/00000000000000000001-0000000000000000")
			h.ok("repo", "stats")
			h.dbWorks()
		}},
		{"damage record", func(t *testing.T, h *hostileRepo) {
			h.plantHuge("damaged/00000000000000000001-0000000000000000")
			h.dbWorks()
		}},
		{"operation marker", func(t *testing.T, h *hostileRepo) {
			h.plantHuge("running/0123456789abcdef-0000000001")
			h.ok("repo", "stats")
			h.dbWorks()
		}},
		{"action", func(t *testing.T, h *hostileRepo) {
			acts := h.names("actions/0000000001/")
			h.plantHuge(acts[len(acts)-1])
			r := h.fails(7, "action 1", "actions", "list")
			assert.Contains(t, r.stdout, "backup", "the other actions are listed")
		}},
		{"host record", func(t *testing.T, h *hostileRepo) {
			for _, rev := range h.names("hosts/0000000002/") {
				h.plantHuge(rev)
			}
			r := h.fails(7, "host 2", "hosts", "list")
			assert.Contains(t, r.stdout, "web-1", "the other hosts are listed")
			h.create("web-1")
			h.webWorks()
		}},
		{"config", func(t *testing.T, h *hostileRepo) {
			h.plantHuge("config")
			h.fails(7, "config", "backups", "list")
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hostileBackends(t, c.fn)
		})
	}
}

// An index segment, named by its hash as a real one, whose lengths are
// forged (a restore once allocated 12.6 GB for its 10 chunks), is damage:
// the backups whose chunks are indexed elsewhere restore, and verify
// reports it.
func TestHostileRepoForgedIndexSegment(t *testing.T) {
	hostileBackends(t, func(t *testing.T, h *hostileRepo) {
		name, seg := h.forgedSegment()
		h.plantBytes(name, seg)
		h.webWorks()
		h.dbWorks()
		r := h.run("backups", "verify")
		assert.Equal(t, 7, r.code, "verify: %s", r.stderr)
		assert.Contains(t, r.stderr, strings.TrimPrefix(name, "index/"), "verify names the segment")
	})
}

// A planted backup at the highest ID stops the next backup with one line;
// it is never numbered past it, and the backups there are stay.
func TestHostileRepoMaxID(t *testing.T) {
	hostileBackends(t, func(t *testing.T, h *hostileRepo) {
		h.plantBytes("backups/9999999999", []byte("planted"))
		h.fails(7, "9999999999", "backups", "create", "web-1")
		r := h.fails(7, "9999999999", "backups", "list")
		assert.Contains(t, r.stdout, "web-1")
		for _, name := range h.names("backups/") {
			assert.Len(t, strings.TrimPrefix(name, "backups/"), 10, "backup object %s", name)
		}
		h.webWorks()
		h.dbWorks()
	})
}

// One planted backup at ID 1000000 makes verify report the backups below it
// as one range, not a line each (it once took 57 s, 1.5 GB and 2 million
// lines).
func TestHostileRepoFarID(t *testing.T) {
	hostileBackends(t, func(t *testing.T, h *hostileRepo) {
		h.plantBytes("backups/0001000000", []byte("planted"))
		r := h.run("backups", "verify")
		assert.Equal(t, 7, r.code)
		assert.Less(t, strings.Count(r.stdout+r.stderr, "\n"), 30, "verify output:\n%s%s", r.stdout, r.stderr)
		assert.Contains(t, r.stderr, fmt.Sprintf("backups %d to 999999", h.db.ID+1))
		h.webWorks()
	})
}

// A damaged host record affects that host alone: the other lists, backs
// up and restores; listing and scheduling name the damage.
func TestHostileRepoDamagedHost(t *testing.T) {
	hostileBackends(t, func(t *testing.T, h *hostileRepo) {
		for _, rev := range h.names("hosts/0000000002/") {
			h.plantBytes(rev, []byte(`{"blake3": "damaged"`))
		}
		r := h.fails(7, "host 2", "hosts", "list")
		assert.Contains(t, r.stdout, "web-1")
		h.fails(7, "host 2", "backups", "list", "db-1")
		h.ok("backups", "enable", "web-1", "--plan", "daily")
		r = h.run("run", "--due")
		assert.NotEqual(t, 0, r.code)
		assert.Contains(t, r.stderr, "host 2")
		h.create("web-1")
		h.webWorks()
	})
}

// A damaged action record leaves the other actions listed.
func TestHostileRepoDamagedAction(t *testing.T) {
	hostileBackends(t, func(t *testing.T, h *hostileRepo) {
		acts := h.names("actions/0000000001/")
		h.plantBytes(acts[len(acts)-1], []byte("{"))
		h.fails(7, "action 1", "actions", "list")
		var listed []struct {
			ID int `json:"id"`
		}
		r := h.run("actions", "list", "-o", "json")
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &listed), "stdout %q", r.stdout)
		assert.NotEmpty(t, listed)
		h.webWorks()
	})
}

// A FIFO in place of an object blocked every command forever, and Ctrl-C
// with it; now each is refused at once, in one line.
func TestHostileRepoFIFOs(t *testing.T) {
	for _, c := range []struct {
		name  string
		obj   func(h *hostileRepo) string
		args  func(h *hostileRepo) []string
		code  int
		works func(h *hostileRepo)
	}{
		{"config", func(h *hostileRepo) string { return "config" },
			func(h *hostileRepo) []string { return []string{"backups", "list"} }, 7, nil},
		{"manifest", func(h *hostileRepo) string { return fmt.Sprintf("backups/%010d", h.db.ID) },
			func(h *hostileRepo) []string { return []string{"backups", "list"} }, 7, (*hostileRepo).webWorks},
		{"pack", func(h *hostileRepo) string { return h.webPacks[0] },
			func(h *hostileRepo) []string {
				return []string{"backups", "restore", "web-1", fmt.Sprint(h.web.ID), "--to", filepath.Join(h.dir, "out.img")}
			}, 7, (*hostileRepo).dbWorks},
		{"image index", func(h *hostileRepo) string { return "images/" + h.webImage },
			func(h *hostileRepo) []string {
				return []string{"backups", "restore", "web-1", fmt.Sprint(h.web.ID), "--to", filepath.Join(h.dir, "out.img")}
			}, 7, (*hostileRepo).dbWorks},
		{"action", func(h *hostileRepo) string { acts := h.names("actions/0000000001/"); return acts[len(acts)-1] },
			func(h *hostileRepo) []string { return []string{"actions", "list"} }, 7, (*hostileRepo).webWorks},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHostileLocal(t)
			p := filepath.Join(h.dir, "repo", filepath.FromSlash(c.obj(h)))
			require.NoError(t, os.Remove(p))
			require.NoError(t, syscall.Mkfifo(p, 0o600))
			h.fails(c.code, "FIFO", c.args(h)...)
			if c.works != nil {
				c.works(h)
			}
		})
	}
}

// Symbolic links in the repository are never followed: a manifest that
// links to a file elsewhere, and a directory of packs that links to one
// elsewhere, are damage.
func TestHostileRepoSymlinks(t *testing.T) {
	h := newHostileLocal(t)
	repo := filepath.Join(h.dir, "repo")
	secret := filepath.Join(h.dir, "secret")
	require.NoError(t, os.WriteFile(secret, h.get(fmt.Sprintf("backups/%010d", h.db.ID)), 0o600))
	manifest := filepath.Join(repo, "backups", fmt.Sprintf("%010d", h.db.ID))
	require.NoError(t, os.Remove(manifest))
	require.NoError(t, os.Symlink(secret, manifest))
	r := h.fails(7, "symbolic link", "backups", "list")
	assert.Contains(t, r.stdout, "web-1")

	packDir := filepath.Dir(filepath.Join(repo, filepath.FromSlash(h.webPacks[0])))
	elsewhere := filepath.Join(h.dir, "elsewhere")
	require.NoError(t, os.Rename(packDir, elsewhere))
	require.NoError(t, os.Symlink(elsewhere, packDir))
	h.fails(7, "", "backups", "restore", "web-1", fmt.Sprint(h.web.ID), "--to", filepath.Join(h.dir, "out.img"))
}

// The root directory is not a repository whose config was lost.
func TestHostileRepoRootIsNoRepository(t *testing.T) {
	h := &hostileRepo{t: t, dir: t.TempDir(), env: []string{"DROPBACK_REPO=/"}}
	h.home = filepath.Join(h.dir, "home")
	r := h.fails(13, "not a dropback repository", "backups", "list")
	assert.NotContains(t, r.stderr, "lost")
}

package integration

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dropback/dropback/internal/miniotest"
)

// A script reads a backup's size and what it added from -o json: a backup
// of an empty disk holds 0 bytes, and one of an unchanged disk added 0, and
// both say so rather than leave the fields out (found by a walkthrough).
func TestBackupJSONGivesZeroSizes(t *testing.T) {
	e := newLocal(t)
	disk := filepath.Join(e.dir, "empty.img")
	makeDisk(t, disk, 4*mib, 1)
	e.ok("hosts", "add", "empty", "--disk", disk)
	e.create("empty")
	e.create("empty")
	var list []map[string]json.RawMessage
	e.json(&list, "backups", "list", "empty")
	require.Len(t, list, 2)
	for _, b := range list {
		assert.JSONEq(t, "0", string(b["size_bytes"]), "size_bytes of a backup of an empty disk")
		assert.JSONEq(t, "0", string(b["new_bytes"]), "new_bytes of a backup that added nothing")
	}
}

// A backup taken with --time earlier than one taken before it lists in its
// place by time, so that the last one listed is the host's latest (found by
// a walkthrough: the list went by ID).
func TestBackupsListByTimeTaken(t *testing.T) {
	e := newLocal(t)
	disk := filepath.Join(e.dir, "web-1.img")
	makeDisk(t, disk, 4*mib, 1, part{0, 4 * mib, "random"})
	e.ok("hosts", "add", "web-1", "--disk", disk)
	e.ok("backups", "create", "web-1", "--time", "2026-11-29T04:00:00Z")
	e.ok("backups", "create", "web-1", "--time", "2026-11-20T04:00:00Z")
	var list []backupJSON
	e.json(&list, "backups", "list", "web-1")
	require.Len(t, list, 2)
	var latest backupJSON
	e.json(&latest, "backups", "get", "web-1", "latest")
	assert.Equal(t, latest.ID, list[1].ID, "the last one listed is latest")
	assert.True(t, list[0].ID > list[1].ID, "the backup dated earlier lists first: %+v", list)
}

// `repo init` refuses a place inside another repository, on a path and on
// S3: the outer repository's stats and gc would count the inner one's
// objects as its own (found by a walkthrough). A place beside it is fine.
func TestInitInsideARepositoryIsRefused(t *testing.T) {
	e := newLocal(t)
	inner := filepath.Join(e.repo, "packs", "sub")
	r := e.run("--repo", inner, "repo", "init")
	oneCleanLine(t, r, "lies inside the repository at "+e.repo)
	assert.Equal(t, 2, r.code)
	assert.NoDirExists(t, inner)
	e.ok("--repo", filepath.Join(e.dir, "beside"), "repo", "init")

	s := newS3(t, miniotest.Start(t))
	r = s.run("--repo", s.repo+"/packs", "repo", "init")
	oneCleanLine(t, r, "lies inside the repository at "+s.repo)
	assert.Equal(t, 2, r.code)
	s.ok("--repo", "s3://"+s.bucket+"/beside", "repo", "init")
}

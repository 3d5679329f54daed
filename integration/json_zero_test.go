package integration

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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

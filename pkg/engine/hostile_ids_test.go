package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// A planted backup, host or action at the highest ID stops the next
// allocation with one clear error: no ID overflows, wraps to a negative one
// or grows an eleventh digit, and the backup that could not be numbered
// leaves nothing visible behind.
func TestAllocationStopsAtTheMaximumID(t *testing.T) {
	e := newHostileEnv(t)
	e.write(objectName("backups", MaxID), []byte("planted"))
	_, err := e.r.Backup(e.ctx, BackupRequest{HostID: e.webHost.ID, HostName: "web-1", Disks: e.webHost.Disks})
	corrupt(t, "a backup after ID 9999999999", err, "9999999999")
	ms, _, err := e.r.ManifestsAndDamage(e.ctx)
	if err != nil || len(ms) != 2 {
		t.Fatalf("after the refused backup: %d backups, %v; want the 2 there were", len(ms), err)
	}
	for _, m := range ms {
		if m.ID <= 0 || m.ID > MaxID {
			t.Errorf("a backup has ID %d", m.ID)
		}
	}

	e.write(hostObject(MaxID, 1), []byte("planted"))
	_, err = e.r.AddHost(e.ctx, HostRecord{Name: "new-1"})
	corrupt(t, "a host after ID 9999999999", err, "9999999999")

	e.write(actionObject(MaxID, 1), []byte("planted"))
	_, err = e.r.StartAction(e.ctx, "backup", "host", 1)
	corrupt(t, "an action after ID 9999999999", err, "9999999999")

	e.write(hostObject(e.webHost.ID, MaxID), []byte("planted"))
	h, _, _ := e.r.HostsAndDamage(e.ctx)
	if len(h) > 0 {
		_, err = e.r.UpdateHost(e.ctx, h[0])
		corrupt(t, "a host revision after 9999999999", err, "9999999999")
	}
}

// Names that are not ten digits are no backups: a planted name of more
// digits neither counts as the highest ID nor is listed.
func TestObjectIDsAreTenDigits(t *testing.T) {
	e := newHostileEnv(t)
	for _, name := range []string{"backups/99999999999", "backups/9223372036854775807", "backups/+000000009", "backups/-000000001", "backups/42"} {
		e.write(name, fzManifest())
	}
	ids, err := e.r.listIDs(e.ctx, "backups")
	if err != nil || len(ids) != 2 {
		t.Errorf("listIDs = %v, %v; want the 2 backups", ids, err)
	}
	m := e.backup(e.r, e.webHost)
	if m.ID != e.db.ID+1 {
		t.Errorf("the next backup has ID %d, want %d", m.ID, e.db.ID+1)
	}
}

// One planted manifest at a high ID makes verify report one range of
// missing backups, not a line for each, and LostBackups answers in ranges.
func TestLostBackupsAreRanges(t *testing.T) {
	e := newHostileEnv(t)
	const far = 1_000_000
	e.write(objectName("backups", far), fzManifest())
	if err := e.r.DeleteBackup(e.ctx, 500); err != nil { // a recorded deletion in the middle
		t.Fatal(err)
	}
	lost, err := e.r.LostBackups(e.ctx)
	want := []IDRange{{e.db.ID + 1, 499}, {501, far - 1}}
	if err != nil || fmt.Sprint(lost) != fmt.Sprint(want) {
		t.Fatalf("LostBackups = %v, %v; want %v", lost, err, want)
	}
	res, err := e.r.Verify(e.ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Problems) > 10 || len(res.Backups) > 10 {
		t.Fatalf("verify reports %d problems and %d verdicts, want a few", len(res.Problems), len(res.Backups))
	}
	found := false
	for _, p := range res.Problems {
		found = found || strings.Contains(p, "501 to 999999")
	}
	if !found {
		t.Errorf("no problem names the range 501 to 999999: %q", res.Problems)
	}
	if lost, err := e.r.BackupLost(e.ctx, 777); err != nil || !lost {
		t.Errorf("BackupLost(777) = %v, %v; want true", lost, err)
	}
	if lost, err := e.r.BackupLost(e.ctx, 500); err != nil || lost {
		t.Errorf("BackupLost(500) = %v, %v; want false: its deletion was recorded", lost, err)
	}
}

// The next gc lease after a planted generation at the maximum fails with
// an error instead of looping.
func TestLeaseGenerationsAreBounded(t *testing.T) {
	e := newHostileEnv(t)
	data, _ := json.Marshal(map[string]string{"op": "planted"})
	e.write("gc/lease/9223372036854775807", data)
	e.write("gc/lease/99999999999", data)
	within(t, "gc", func() {
		if _, err := e.r.GC(e.ctx, GCOptions{}); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Errorf("gc beside planted lease generations: %v", err)
		}
	})
}

//go:build linux

package engine

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// holdLock locks path as another process would (an open file description
// of its own), until the test ends.
func holdLock(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := lockFile(f); err != nil {
		t.Fatal(err)
	}
}

func TestTargetChecks(t *testing.T) {
	cases := []struct {
		name string
		// setup makes what is at dir/t and returns the target's path.
		setup     func(t *testing.T, dir string) string
		inPlace   bool
		overwrite bool
		want      error // nil, or the sentinel
	}{
		{"a new file", func(t *testing.T, d string) string { return filepath.Join(d, "new.img") }, false, false, nil},
		{"a new file in a missing directory", func(t *testing.T, d string) string { return filepath.Join(d, "no", "new.img") }, false, true, ErrInvalid},
		{"a file", file, false, false, ErrTargetExists},
		{"a file, overwrite", file, false, true, nil},
		{"a link to a file", linkTo(file), false, false, ErrTargetExists},
		{"a link to a file, overwrite", linkTo(file), false, true, nil},
		{"a dangling link", linkTo(func(t *testing.T, d string) string { return filepath.Join(d, "nowhere") }), false, false, ErrTargetExists},
		{"a link to a character device, overwrite", linkTo(func(*testing.T, string) string { return "/dev/null" }), false, true, nil},
		{"a directory", func(t *testing.T, d string) string { return d }, false, true, ErrInvalid},
		{"a fifo", fifo, false, true, ErrInvalid},
		{"a character device", func(*testing.T, string) string { return "/dev/null" }, false, true, ErrInvalid},
		{"in place: a file", file, true, false, nil},
		{"in place: a link to a file", linkTo(file), true, false, nil},
		{"in place: a file locked by another process", func(t *testing.T, d string) string {
			p := file(t, d)
			holdLock(t, p)
			return p
		}, true, false, ErrInUse},
		{"in place: a missing file", func(t *testing.T, d string) string { return filepath.Join(d, "gone.img") }, true, false, ErrInvalid},
		{"in place: a fifo", fifo, true, false, ErrInvalid},
		{"in place: a character device", func(*testing.T, string) string { return "/dev/null" }, true, false, ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := tc.setup(t, dir)
			before := state(t, dir)
			err := CheckTarget(RestoreTarget{Path: p, InPlace: tc.inPlace, Overwrite: tc.overwrite}, 4096)
			switch {
			case tc.want == nil && err != nil:
				t.Fatalf("CheckTarget: %v", err)
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("CheckTarget = %v, want %v", err, tc.want)
			}
			if after := state(t, dir); after != before {
				t.Fatalf("CheckTarget changed the directory:\n%s\nbecame\n%s", before, after)
			}
		})
	}
}

func file(t *testing.T, d string) string {
	p := filepath.Join(d, "disk.img")
	if err := os.WriteFile(p, []byte("what was there"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func fifo(t *testing.T, d string) string {
	p := filepath.Join(d, "fifo")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// linkTo makes a symbolic link to what to makes.
func linkTo(to func(*testing.T, string) string) func(*testing.T, string) string {
	return func(t *testing.T, d string) string {
		dest := to(t, d)
		p := filepath.Join(d, "link.img")
		if err := os.Symlink(dest, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
}

// state describes every entry of dir: name, type, link target, content.
func state(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, en := range entries {
		p := filepath.Join(dir, en.Name())
		b.WriteString(en.Name() + " " + en.Type().String())
		if dest, err := os.Readlink(p); err == nil {
			b.WriteString(" -> " + dest)
		} else if en.Type().IsRegular() {
			data, _ := os.ReadFile(p)
			b.WriteString(" " + strconv.Quote(string(data)))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// An in-place restore holds its lock for the whole run: a second one is
// refused while it runs, and the next one after it succeeds.
func TestTargetInPlaceLockIsHeld(t *testing.T) {
	p := file(t, t.TempDir())
	tg := RestoreTarget{Path: p, InPlace: true}
	first, err := openTargetFor(tg, 10)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckTarget(tg, 10); !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "e.g. a running VM") {
		t.Fatalf("a second in-place restore: %v, want ErrInUse naming the lock", err)
	}
	first.close()
	if err := CheckTarget(tg, 10); err != nil {
		t.Fatalf("after the first restore: %v", err)
	}
}

// A restore checks and holds every target before it writes any: a second
// disk whose target is in use leaves the first disk's target untouched.
func TestTargetRestoreChecksEveryTargetFirst(t *testing.T) {
	r, _ := newRepo(t)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.img"), filepath.Join(dir, "b.img")
	makeDisk(t, a, 4*testChunk, region{0, 4 * testChunk, "random"})
	makeDisk(t, b, 2*testChunk, region{0, 2 * testChunk, "text"})
	m := backup(t, r, a, b)
	writeAt(t, a, 0, bytes.Repeat([]byte("changed "), 1000))
	writeAt(t, b, 0, bytes.Repeat([]byte("changed "), 1000))
	sumA := fileHash(t, a)
	holdLock(t, b)
	_, err := r.Restore(context.Background(), m, []RestoreTarget{{Path: a, InPlace: true}, {Path: b, InPlace: true}}, nil)
	if !errors.Is(err, ErrInUse) {
		t.Fatalf("Restore = %v, want ErrInUse", err)
	}
	if fileHash(t, a) != sumA {
		t.Fatal("the first disk was written though the second target was in use")
	}
}

// With Overwrite, a symbolic link at the path is replaced by the restored
// file, and what it pointed at is never written; a file is replaced.
func TestTargetRestoreReplacesALinkAndNeverFollowsIt(t *testing.T) {
	r, _ := newRepo(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	makeDisk(t, src, 3*testChunk, region{0, 3 * testChunk, "random"})
	m := backup(t, r, src)
	victim := file(t, dir)
	link := filepath.Join(dir, "out.img")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	for range 2 { // over the link, then over the file it became
		if _, err := r.Restore(context.Background(), m, []RestoreTarget{{Path: link, Overwrite: true}}, nil); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Lstat(link); err != nil || !fi.Mode().IsRegular() || fileHash(t, link) != fileHash(t, src) {
			t.Fatalf("the restored file is not at the link's path: %v", err)
		}
		if data, _ := os.ReadFile(victim); string(data) != "what was there" {
			t.Fatalf("the link was followed: the file it pointed at holds %q", data)
		}
	}
	if err := CheckTarget(RestoreTarget{Path: link}, 1); !errors.Is(err, ErrTargetExists) {
		t.Fatalf("without Overwrite: %v", err)
	}
}

// A file that appears at the path while a restore without Overwrite writes
// is kept, and the restore fails; no temporary file remains.
func TestTargetRestoreKeepsAFileThatAppeared(t *testing.T) {
	for _, unnamed := range []bool{true, false} {
		dir := t.TempDir()
		path := filepath.Join(dir, "out.img")
		tmp, err := createTemp(dir, "out.img")
		if err != nil {
			t.Fatal(err)
		}
		if (tmp.name == "") != unnamed {
			// Make the other kind: a named temporary file.
			tmp.discard()
			f, err := os.CreateTemp(dir, tempPrefix("out.img")+strconv.Itoa(os.Getpid())+"-*")
			if err != nil {
				t.Fatal(err)
			}
			tmp = &tempFile{f: f, name: f.Name(), dir: dir, base: "out.img"}
		}
		if _, err := tmp.f.WriteString("restored"); err != nil {
			t.Fatal(err)
		}
		file := file(t, dir)
		if err := os.Rename(file, path); err != nil {
			t.Fatal(err)
		}
		err = tmp.publish(path, false)
		tmp.discard()
		if !errors.Is(err, ErrTargetExists) {
			t.Fatalf("unnamed %v: publish = %v, want ErrTargetExists", unnamed, err)
		}
		if got := state(t, dir); got != "out.img ---------- \"what was there\"\n" {
			t.Fatalf("unnamed %v: the directory holds\n%s", unnamed, got)
		}
	}
}

// removeStaleTemps removes the temporary files of restores to the same
// path that were killed, and keeps those of restores that still run,
// of other paths, and what it cannot tell.
func TestTargetStaleTempsAreRemoved(t *testing.T) {
	dir := t.TempDir()
	ended := exec.Command("true")
	if err := ended.Run(); err != nil {
		t.Fatal(err)
	}
	dead, mine := strconv.Itoa(ended.Process.Pid), strconv.Itoa(os.Getpid())
	names := map[string]bool{ // name: kept
		".web.img.dropback-123456":          false, // an older version's name
		".web.img.dropback-" + dead + "-77": false, // its creator ended
		".web.img.dropback-" + mine + "-78": true,  // its creator runs
		".web.img.dropback-" + dead + "-79": true,  // locked: a restore of another PID namespace
		".db.img.dropback-" + dead + "-80":  true,  // another target
		"web.img":                           true,
	}
	for n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	holdLock(t, filepath.Join(dir, ".web.img.dropback-"+dead+"-79"))
	if err := os.Symlink(filepath.Join(dir, "web.img"), filepath.Join(dir, ".web.img.dropback-1")); err != nil {
		t.Fatal(err)
	}
	names[".web.img.dropback-1"] = true // not a regular file

	removeStaleTemps(dir, "web.img")
	var want, got []string
	for n, kept := range names {
		if kept {
			want = append(want, n)
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, en := range entries {
		got = append(got, en.Name())
	}
	sort.Strings(want)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("left %v, want %v", got, want)
	}
}

func TestTargetFindMount(t *testing.T) {
	const info = `22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
35 22 7:0 / /mnt/with\040space rw - ext4 /dev/loop0 rw
36 22 259:3 / /srv rw - xfs /dev/nvme0n1p3 rw
`
	parent := func(majMin string) string {
		return map[string]string{"8:1": "8:0", "259:3": "259:0"}[majMin]
	}
	for _, tc := range []struct{ dev, want string }{
		{"7:0", "/mnt/with space"},
		{"8:0", "/"}, // a partition of it is mounted
		{"259:0", "/srv"},
		{"7:1", ""},
	} {
		if got := findMount(info, tc.dev, parent); got != tc.want {
			t.Errorf("findMount(%s) = %q, want %q", tc.dev, got, tc.want)
		}
	}
	// The real table reads, and a device nothing is mounted from is not.
	if mnt, err := mountPoint("/dev/null"); err != nil || mnt != "" {
		t.Fatalf("mountPoint(/dev/null) = %q, %v", mnt, err)
	}
}

// A backup is refused while a restore in place holds the disk, and stores
// nothing: read meanwhile, the disk is a mix of what it held and what the
// restore wrote, which would become the host's latest backup (found by a
// walkthrough). Once the restore ends, the backup goes on.
func TestBackupRefusedWhileARestoreWritesTheDisk(t *testing.T) {
	r, _ := newRepo(t)
	src := filepath.Join(t.TempDir(), "src.img")
	makeDisk(t, src, 4*testChunk, region{0, 4 * testChunk, "random"})
	first := backup(t, r, src)
	restoring, err := openTargetFor(RestoreTarget{Path: src, InPlace: true}, 4*testChunk)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Backup(context.Background(), BackupRequest{HostID: 1, HostName: "web-1", Disks: []DiskSource{{Name: "disk0", Path: src}}})
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "restore in place") {
		t.Fatalf("backup during a restore in place: %v, want ErrInUse naming the restore", err)
	}
	ms, err := r.Manifests(context.Background())
	if err != nil || len(ms) != 1 || ms[0].ID != first.ID {
		t.Fatalf("backups after the refused one: %v (%v), want only %d", ms, err, first.ID)
	}
	restoring.close()
	backup(t, r, src)
}

// A restore in place is refused while a backup reads the disk, and writes
// nothing.
func TestRestoreInPlaceRefusedWhileABackupReadsTheDisk(t *testing.T) {
	r, _ := newRepo(t)
	src := filepath.Join(t.TempDir(), "src.img")
	makeDisk(t, src, 4*testChunk, region{0, 4 * testChunk, "random"})
	m := backup(t, r, src)
	writeAt(t, src, 0, bytes.Repeat([]byte("changed "), 1000))
	sum := fileHash(t, src)
	reading, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer reading.Close()
	if err := lockShared(reading); err != nil {
		t.Fatal(err)
	}
	_, err = r.Restore(context.Background(), m, []RestoreTarget{{Path: src, InPlace: true}}, nil)
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "a backup reading it") {
		t.Fatalf("restore in place during a backup: %v, want ErrInUse naming the backup", err)
	}
	if fileHash(t, src) != sum {
		t.Fatal("the refused restore wrote the disk")
	}
	// Two backups may read one disk at once.
	backup(t, r, src)
}

// A restore in place that fails says which disks it had written by then,
// which may be partly restored (found by a walkthrough: it said only that
// the repository was damaged); one that wrote nothing does not say so.
func TestRestoreInPlaceThatFailsSaysWhatItWrote(t *testing.T) {
	setup := func(t *testing.T) (*Repo, *Manifest, string, string) {
		r, _ := newRepo(t)
		dir := t.TempDir()
		a, b := filepath.Join(dir, "a.img"), filepath.Join(dir, "b.img")
		makeDisk(t, a, 8*testChunk, region{0, 8 * testChunk, "random"})
		makeDisk(t, b, 9*testChunk, region{0, 9 * testChunk, "random"}) // other bytes than a's
		m := backup(t, r, a, b)
		writeAt(t, a, 0, make([]byte, 8*testChunk)) // every chunk differs
		writeAt(t, b, 0, make([]byte, 9*testChunk))
		return r, m, a, b
	}
	restore := func(r *Repo, m *Manifest, a, b string) error {
		_, err := r.Restore(context.Background(), m, []RestoreTarget{{Path: a, InPlace: true}, {Path: b, InPlace: true}}, nil)
		return err
	}
	t.Run("second disk damaged", func(t *testing.T) {
		r, m, a, b := setup(t)
		im, err := r.LoadDiskImage(context.Background(), m, 1)
		if err != nil {
			t.Fatal(err)
		}
		flipChunk(t, r, im.Chunks[3])
		before := fileHash(t, b)
		err = restore(r, m, a, b)
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("restore over a damaged chunk: %v, want ErrCorrupt", err)
		}
		msg := err.Error()
		if !strings.Contains(msg, "disk disk1") || !strings.Contains(msg, "may be partly restored") || !strings.Contains(msg, a) {
			t.Fatalf("the first disk was restored before the error, and the error does not say so: %v", err)
		}
		if wrote := fileHash(t, b) != before; wrote != strings.Contains(msg, b+" in place") {
			t.Fatalf("second disk written: %v; error: %v", wrote, err)
		}
	})
	t.Run("nothing written", func(t *testing.T) {
		r, m, a, b := setup(t)
		sumA, sumB := fileHash(t, a), fileHash(t, b)
		// Both disks' chunks lie in packs that are now gone: every read
		// fails before anything is written.
		err := filepath.WalkDir(filepath.Join(r.Store().Location(), "packs"), func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				err = os.Remove(p)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		err = restore(r, m, a, b)
		if !errors.Is(err, ErrCorrupt) || strings.Contains(err.Error(), "partly restored") {
			t.Fatalf("restore with every pack gone: %v, want ErrCorrupt that claims no partial restore", err)
		}
		if fileHash(t, a) != sumA || fileHash(t, b) != sumB {
			t.Fatal("a disk was written")
		}
	})
}

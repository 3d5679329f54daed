package integration

// backups export and backups mount, as a user would run them: every image
// written is checked by qemu-img (check, compare), an ext4 disk's files are
// read back with debugfs, and a FUSE mount is read through a loop device.

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type exportJSON struct {
	BackupID int    `json:"backup_id"`
	Format   string `json:"format"`
	Disks    []struct {
		Name       string `json:"name"`
		Path       string `json:"path"`
		SizeBytes  int64  `json:"size_bytes"`
		ImageBytes int64  `json:"image_bytes"`
	} `json:"disks"`
}

// pipeTo runs dropback args with standard output into the file out.
func (e *localEnv) pipeTo(t *testing.T, out string, args ...string) {
	t.Helper()
	f, err := os.Create(out)
	require.NoError(t, err)
	defer f.Close()
	cmd := e.command(args...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = f, &stderr
	require.NoError(t, cmd.Run(), "dropback %v: %s", args, stderr.String())
}

// Every image export writes passes qemu-img check and compares equal to
// the disk: sparse, full, all zeros, odd sizes; to files and through a
// pipe, the same bytes.
func TestExportImages(t *testing.T) {
	needTools(t, "qemu-img")
	cases := []struct {
		name  string
		size  int64
		parts []part
	}{
		{"sparse", 64 * mib, []part{{0, 3 * mib, "random"}, {5 * mib, 4 * mib, "zero"}, {10*mib + 333, 70000, "text"}, {63 * mib, mib, "text"}}},
		{"full", 16 * mib, []part{{0, 16 * mib, "random"}}},
		{"all zeros", 32 * mib, []part{{0, 8 * mib, "zero"}}},
		{"odd size", 9*mib + 4097, []part{{0, 9*mib + 4097, "text"}}},
		{"smaller than a sector", 300, []part{{0, 300, "random"}}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newLocal(t)
			src := filepath.Join(e.dir, "vda")
			makeDisk(t, src, tc.size, uint64(i), tc.parts...)
			e.ok("hosts", "add", "web-1", "--disk", src)
			e.create("web-1")

			qcow := filepath.Join(e.dir, "out.qcow2")
			var res exportJSON
			e.json(&res, "backups", "export", "web-1", "latest", "--image-format", "qcow2", "--to", qcow)
			require.Len(t, res.Disks, 1)
			assert.Equal(t, qcow, res.Disks[0].Path)
			assert.Equal(t, tc.size, res.Disks[0].SizeBytes)
			fi, err := os.Stat(qcow)
			require.NoError(t, err)
			assert.Equal(t, fi.Size(), res.Disks[0].ImageBytes)
			runTool(t, "qemu-img", "check", "-f", "qcow2", qcow)
			runTool(t, "qemu-img", "compare", "-f", "raw", "-F", "qcow2", src, qcow)

			piped := filepath.Join(e.dir, "piped.qcow2")
			e.pipeTo(t, piped, "backups", "export", "web-1", "latest", "--image-format", "qcow2", "--to", "-")
			assert.Equal(t, sha(t, qcow), sha(t, piped), "qcow2 through a pipe")

			raw := filepath.Join(e.dir, "out.raw")
			e.ok("backups", "export", "web-1", "latest", "--to", raw)
			assert.Equal(t, sha(t, src), sha(t, raw))
			var data int64
			for _, p := range tc.parts {
				if p.kind != "zero" {
					data += p.n
				}
			}
			assert.LessOrEqual(t, onDisk(t, raw), data+int64(len(tc.parts)+1)*8192, "the raw image is not sparse")
			rawPiped := filepath.Join(e.dir, "piped.raw")
			e.pipeTo(t, rawPiped, "backups", "export", "web-1", "latest", "--to", "-")
			assert.Equal(t, sha(t, src), sha(t, rawPiped), "raw through a pipe")
		})
	}
}

// A backup of several disks exports into a directory, one image per disk;
// --to - needs --disk.
func TestExportSeveralDisks(t *testing.T) {
	needTools(t, "qemu-img")
	e := newLocal(t)
	a, b := filepath.Join(e.dir, "vda"), filepath.Join(e.dir, "vdb")
	makeDisk(t, a, 20*mib, 1, part{0, 5 * mib, "random"})
	makeDisk(t, b, 7*mib+5, 2, part{mib, 2 * mib, "text"})
	e.ok("hosts", "add", "db-1", "--disk", a, "--disk", b)
	e.create("db-1")
	dir := filepath.Join(e.dir, "export")
	e.ok("backups", "export", "db-1", "latest", "--image-format", "qcow2", "--to", dir)
	for _, disk := range []string{a, b} {
		img := filepath.Join(dir, filepath.Base(disk)+".qcow2")
		runTool(t, "qemu-img", "check", img)
		runTool(t, "qemu-img", "compare", "-f", "raw", "-F", "qcow2", disk, img)
	}
	r := e.run("backups", "export", "db-1", "latest", "--to", "-")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "choose it with --disk")
	out := filepath.Join(e.dir, "vdb.raw")
	e.pipeTo(t, out, "backups", "export", "db-1", "latest", "--disk", "vdb", "--to", "-")
	assert.Equal(t, sha(t, b), sha(t, out))
}

// makeExt4Disk makes an ext4 image of size bytes from a directory of
// files with mkfs.ext4 -d, and returns the files' contents by path.
func makeExt4Disk(t *testing.T, dir, disk string, size int64) map[string][]byte {
	t.Helper()
	needTools(t, "mkfs.ext4", "debugfs")
	files := map[string][]byte{
		"/etc/hostname":       []byte("web-1\n"),
		"/etc/nginx/app.conf": bytes.Repeat([]byte("server { listen 80; }\n"), 300),
		"/var/lib/data.bin":   make([]byte, 3*mib+17),
	}
	for i := range files["/var/lib/data.bin"] {
		files["/var/lib/data.bin"][i] = byte(i * 7 % 251)
	}
	root := filepath.Join(dir, "root")
	for name, data := range files {
		p := filepath.Join(root, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, data, 0o644))
	}
	require.NoError(t, os.WriteFile(disk, nil, 0o644))
	require.NoError(t, os.Truncate(disk, size))
	runTool(t, "mkfs.ext4", "-q", "-F", "-d", root, disk)
	return files
}

// debugfsCat reads one file of an ext4 image without mounting it.
func debugfsCat(t *testing.T, image, path string) []byte {
	t.Helper()
	out, err := exec.Command("debugfs", "-R", "cat "+path, image).Output()
	require.NoError(t, err, "debugfs cat %s", path)
	return out
}

// An ext4 disk, backed up and exported, gives its files back: read with
// debugfs from the raw image, and from the qcow2 image converted back.
func TestExportExt4FilesReadWithDebugfs(t *testing.T) {
	needTools(t, "qemu-img", "e2fsck")
	e := newLocal(t)
	disk := filepath.Join(e.dir, "vda")
	files := makeExt4Disk(t, e.dir, disk, 64*mib)
	e.ok("hosts", "add", "web-1", "--disk", disk)
	e.create("web-1")
	raw := filepath.Join(e.dir, "vda.raw")
	e.ok("backups", "export", "web-1", "latest", "--to", raw)
	for path, want := range files {
		assert.Equal(t, want, debugfsCat(t, raw, path), "%s from the raw export", path)
	}
	qcow := filepath.Join(e.dir, "vda.qcow2")
	e.ok("backups", "export", "web-1", "latest", "--image-format", "qcow2", "--to", qcow)
	back := filepath.Join(e.dir, "back.raw")
	runTool(t, "qemu-img", "convert", "-f", "qcow2", "-O", "raw", qcow, back)
	runTool(t, "e2fsck", "-fn", back)
	assert.Equal(t, files["/etc/nginx/app.conf"], debugfsCat(t, back, "/etc/nginx/app.conf"))
}

// An export never writes over a file without --force, nor over a host's
// disk; a damaged backup stops it with exit 7 and leaves no file.
func TestExportRefusals(t *testing.T) {
	e := newLocal(t)
	src := filepath.Join(e.dir, "vda")
	makeDisk(t, src, 8*mib, 1, part{0, 8 * mib, "random"})
	e.ok("hosts", "add", "web-1", "--disk", src)
	e.create("web-1")
	out := filepath.Join(e.dir, "out.raw")
	require.NoError(t, os.WriteFile(out, []byte("keep me"), 0o644))

	r := e.run("backups", "export", "web-1", "latest", "--to", out)
	assert.Equal(t, 6, r.code, r.stderr)
	assert.Contains(t, r.stderr, "pass --force")
	data, _ := os.ReadFile(out)
	assert.Equal(t, "keep me", string(data))
	e.ok("backups", "export", "web-1", "latest", "--to", out, "--force")
	assert.Equal(t, sha(t, src), sha(t, out))

	r = e.run("backups", "export", "web-1", "latest", "--to", src, "--force")
	assert.Equal(t, 2, r.code, r.stderr)
	assert.Contains(t, r.stderr, "is a disk of host web-1")
	r = e.run("backups", "export", "web-1", "latest", "--image-format", "vmdk", "--to", out)
	assert.Equal(t, 2, r.code, r.stderr)

	// Damage one byte of one pack: the export fails, and leaves nothing.
	for _, p := range packs(t, e.repo) {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		b[len(b)/2] ^= 0x40
		require.NoError(t, os.Chmod(p, 0o600))
		require.NoError(t, os.WriteFile(p, b, 0o600))
	}
	bad := filepath.Join(e.dir, "bad.qcow2")
	r = e.run("backups", "export", "web-1", "latest", "--image-format", "qcow2", "--to", bad)
	assert.Equal(t, 7, r.code, r.stderr)
	assert.NoFileExists(t, bad)
	entries, _ := os.ReadDir(e.dir)
	for _, en := range entries {
		assert.False(t, strings.HasPrefix(en.Name(), ".bad.qcow2"), "a temporary file was left: %s", en.Name())
	}
}

// fuseUsable reports why FUSE cannot be used here, or "".
func fuseUnusable() string {
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		return err.Error()
	}
	f.Close()
	return ""
}

// A mounted backup's disk files read as the disks; an ext4 disk's files
// come back through debugfs and through a loop mount; Ctrl-C unmounts it,
// waiting while something still uses it.
func TestMountReadsAndUnmounts(t *testing.T) {
	if why := fuseUnusable(); why != "" {
		t.Skipf("FUSE cannot be used here: %s", why)
	}
	e := newLocal(t)
	disk := filepath.Join(e.dir, "vda")
	files := makeExt4Disk(t, e.dir, disk, 64*mib)
	other := filepath.Join(e.dir, "vdb.img")
	makeDisk(t, other, 5*mib+3, 9, part{mib, mib, "random"})
	e.ok("hosts", "add", "web-1", "--disk", disk, "--disk", other)
	e.create("web-1")
	dir := filepath.Join(e.dir, "mnt")
	require.NoError(t, os.Mkdir(dir, 0o755))
	d := e.start(false, "backups", "mount", "web-1", "latest", dir)
	s := d.served()
	require.Len(t, s.Disks, 2)
	assert.Equal(t, filepath.Join(dir, "vda.img"), s.Disks[0].Path)
	assert.Equal(t, filepath.Join(dir, "vdb.img"), s.Disks[1].Path)
	assert.Equal(t, sha(t, disk), sha(t, s.Disks[0].Path))
	assert.Equal(t, sha(t, other), sha(t, s.Disks[1].Path))
	assert.Equal(t, files["/etc/hostname"], debugfsCat(t, s.Disks[0].Path, "/etc/hostname"))
	_, err := os.OpenFile(s.Disks[0].Path, os.O_WRONLY, 0)
	assert.ErrorIs(t, err, syscall.EROFS)

	// mount -o loop,ro, where this machine allows loop mounts.
	mnt := filepath.Join(e.dir, "fs")
	require.NoError(t, os.Mkdir(mnt, 0o755))
	if out, err := exec.Command("mount", "-o", "loop,ro", s.Disks[0].Path, mnt).CombinedOutput(); err != nil {
		t.Logf("no loop mount here (%v: %s); debugfs read the files instead", err, out)
	} else {
		got, err := os.ReadFile(filepath.Join(mnt, "var/lib/data.bin"))
		assert.NoError(t, err)
		assert.Equal(t, files["/var/lib/data.bin"], got, "a file through the loop mount")
		// Ctrl-C while the loop mount holds the file: the mount stays
		// until it is let go.
		require.NoError(t, d.cmd.Process.Signal(syscall.SIGINT))
		waitForText(t, d, "is in use")
		_, err = os.Stat(s.Disks[1].Path)
		assert.NoError(t, err, "the mount went while in use")
		runTool(t, "umount", mnt)
		assert.Equal(t, 0, d.wait(), d.stderr.String())
		entries, _ := os.ReadDir(dir)
		assert.Empty(t, entries, "the directory after the mount ended")
		return
	}
	assert.Equal(t, 0, d.stop(syscall.SIGINT), d.stderr.String())
	entries, _ := os.ReadDir(dir)
	assert.Empty(t, entries, "the directory after the mount ended")
}

// waitForText waits until the daemon printed text on stderr.
func waitForText(t *testing.T, d *daemon, text string) {
	t.Helper()
	deadline := time.Now().Add(readyWithin)
	for !strings.Contains(d.stderr.String(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("dropback did not say %q within %v: %s", text, readyWithin, d.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Without FUSE, mount says what to run instead, and exits 1.
func TestMountWithoutFUSESaysWhatToRun(t *testing.T) {
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare is missing: no way to hide /dev/fuse here")
	}
	e := newLocal(t)
	src := filepath.Join(e.dir, "vda")
	makeDisk(t, src, 4*mib, 1, part{0, mib, "random"})
	e.ok("hosts", "add", "web-1", "--disk", src)
	e.create("web-1")
	dir := t.TempDir()
	// A mount namespace of its own, whose /dev has no fuse device.
	cmd := e.command()
	cmd.Path, _ = exec.LookPath("unshare")
	cmd.Args = []string{"unshare", "-m", "sh", "-c", `mount -t tmpfs none /dev && exec "$0" "$@"`, binPath, "backups", "mount", "web-1", "latest", dir}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) && err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stderr.String(), "unshare:") || strings.Contains(stderr.String(), "mount:") {
		t.Skipf("no mount namespace here: %s", stderr.String())
	}
	assert.Equal(t, 1, exit.ExitCode(), stderr.String())
	assert.Contains(t, stderr.String(), "FUSE is unavailable")
	assert.Contains(t, stderr.String(), "install fuse3")
	assert.Contains(t, stderr.String(), "dropback backups serve web-1")
	assert.Equal(t, 1, strings.Count(stderr.String(), "\n"), "one line: %s", stderr.String())
}

package integration

// The local tests run the binary on the embedded engine as a user would:
// real sparse images, ext4 filesystems made by mkfs.ext4 -d and checked by
// e2fsck after restore, byte counts read from -o json.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	localstore "github.com/dropback/dropback/pkg/store/local"
)

const mib = 1 << 20

// testPasswordFunc gives testPassword, to open repositories in process.
func testPasswordFunc(context.Context) ([]byte, error) { return []byte(testPassword), nil }

// mustLocalStore opens the store of a local repository, for the tests that
// open it in process.
func mustLocalStore(t *testing.T, repo string) *localstore.Store {
	t.Helper()
	st, err := localstore.Open(repo)
	require.NoError(t, err)
	return st
}

// testPassword and testKDF are those of the repositories the tests make.
const (
	testPassword = "integration password"
	testKDF      = "t=1,m=64KiB,p=1"
)

// localEnv is a repository and a scratch directory for one test.
type localEnv struct {
	t    *testing.T
	dir  string
	repo string
	home string
}

func newLocal(t *testing.T) *localEnv {
	t.Helper()
	return initLocal(t, t.TempDir())
}

// newPlainLocal is newLocal with a repository that is not encrypted, for
// tests that plant records as another process would write them.
func newPlainLocal(t *testing.T) *localEnv {
	t.Helper()
	dir := t.TempDir()
	e := &localEnv{t: t, dir: dir, repo: filepath.Join(dir, "repo"), home: filepath.Join(dir, "home")}
	e.ok("repo", "init", "--insecure-no-encryption")
	return e
}

// initLocal makes a repository under dir with repo init.
func initLocal(t *testing.T, dir string) *localEnv {
	t.Helper()
	e := &localEnv{t: t, dir: dir, repo: filepath.Join(dir, "repo"), home: filepath.Join(dir, "home")}
	e.ok("repo", "init")
	return e
}

// dropbackCmd is the binary run with args, an empty home under home, and
// the extra environment env.
func dropbackCmd(home string, env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(binPath, args...)
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"XDG_CONFIG_HOME=" + filepath.Join(home, "config"),
		"XDG_DATA_HOME=" + filepath.Join(home, "data"),
		// Repositories are encrypted, as users get them; the KDF is cheap,
		// since these tests run dropback hundreds of times.
		"DROPBACK_PASSWORD=" + testPassword,
		"DROPBACK_KDF=" + testKDF,
	}, env...)
	return cmd
}

// exitCode maps the error of cmd.Run or cmd.Wait to the exit code (-1 for
// a process killed by a signal); the error is not nil when the binary did
// not run.
func exitCode(err error) (int, error) {
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), nil
	}
	return 0, err
}

// command is the exec.Cmd that localEnv.run runs.
func (e *localEnv) command(args ...string) *exec.Cmd {
	return dropbackCmd(e.home, []string{"DROPBACK_REPO=" + e.repo}, args...)
}

func (e *localEnv) run(args ...string) result {
	e.t.Helper()
	cmd := e.command(args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	code, err := exitCode(cmd.Run())
	if err != nil {
		e.t.Fatalf("run dropback: %v", err)
	}
	res := result{args: args, code: code, stdout: stdout.String(), stderr: stderr.String()}
	assert.NotContains(e.t, res.stderr, "panic", "dropback %v panicked", args)
	return res
}

// ok runs dropback and fails the test unless it exits 0.
func (e *localEnv) ok(args ...string) string {
	e.t.Helper()
	r := e.run(args...)
	require.Equal(e.t, 0, r.code, "dropback %s\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.stdout, r.stderr)
	return r.stdout
}

// json runs dropback with -o json and decodes its output into v.
func (e *localEnv) json(v any, args ...string) {
	e.t.Helper()
	out := e.ok(append(args, "-o", "json")...)
	require.NoError(e.t, json.Unmarshal([]byte(out), v), "output of %v: %s", args, out)
}

// part is a region of a test disk: random, text, zero (written zeros).
type part struct {
	off, n int64
	kind   string
}

// makeDisk writes a sparse file: holes everywhere but in the parts.
func makeDisk(t *testing.T, path string, size int64, seed uint64, parts ...part) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, f.Truncate(size))
	rng := rand.New(rand.NewPCG(seed, 99))
	for _, p := range parts {
		buf := make([]byte, p.n)
		switch p.kind {
		case "random":
			for i := range buf {
				buf[i] = byte(rng.Uint32())
			}
		case "text":
			for i := range buf {
				buf[i] = "etaoin shrdlu\n"[rng.IntN(14)]
			}
		}
		_, err := f.WriteAt(buf, p.off)
		require.NoError(t, err)
	}
}

func sha(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return fmt.Sprintf("%x", sha256.Sum256(data))
}

// onDisk is the number of bytes a file really occupies.
func onDisk(t *testing.T, path string) int64 {
	t.Helper()
	var st syscall.Stat_t
	require.NoError(t, syscall.Stat(path, &st))
	return st.Blocks * 512
}

type backupJSON struct {
	ID            int     `json:"id"`
	Name          string  `json:"name"`
	Type          string  `json:"type"`
	Status        string  `json:"status"`
	CreatedAt     string  `json:"created_at"`
	SizeGigabytes float64 `json:"size_gigabytes"`
	HostName      string  `json:"host_name"`
	NewBytes      int64   `json:"new_bytes"`
}

func (e *localEnv) create(host string) backupJSON {
	e.t.Helper()
	var out struct {
		Backup backupJSON `json:"backup"`
	}
	e.json(&out, "backups", "create", host)
	require.NotZero(e.t, out.Backup.ID)
	return out.Backup
}

func TestLocalRoundTrips(t *testing.T) {
	cases := []struct {
		name  string
		size  int64
		parts []part
	}{
		{"sparse with holes, zero runs and random data", 64 * mib, []part{
			{0, 3 * mib, "random"}, {5 * mib, 4 * mib, "zero"}, {10*mib + 333, 70000, "text"},
			{30 * mib, 2 * mib, "random"}, {63 * mib, mib, "text"},
		}},
		{"size not a multiple of the chunk size or of 512", 9*mib + 4097, []part{{0, 9*mib + 4097, "random"}}},
		{"empty disk", 0, nil},
		{"all holes", 32 * mib, nil},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newLocal(t)
			src := filepath.Join(e.dir, "src.img")
			makeDisk(t, src, tc.size, uint64(i), tc.parts...)
			e.ok("hosts", "add", "web-1", "--disk", src)
			e.create("web-1")
			dst := filepath.Join(e.dir, "dst.img")
			e.ok("backups", "restore", "web-1", "latest", "--to", dst)
			assert.Equal(t, sha(t, src), sha(t, dst), "restored image differs")
			fi, err := os.Stat(dst)
			require.NoError(t, err)
			assert.Equal(t, tc.size, fi.Size())
			var data int64
			for _, p := range tc.parts {
				if p.kind != "zero" {
					data += p.n
				}
			}
			assert.LessOrEqual(t, onDisk(t, dst), data+int64(len(tc.parts)+1)*8192,
				"restored file is not sparse where the source had holes or zeros")
		})
	}
}

func TestLocalTwoDisks(t *testing.T) {
	e := newLocal(t)
	a, b := filepath.Join(e.dir, "vda.img"), filepath.Join(e.dir, "vdb.img")
	makeDisk(t, a, 20*mib, 1, part{0, 5 * mib, "random"})
	makeDisk(t, b, 7*mib+5, 2, part{mib, 2 * mib, "text"})
	e.ok("hosts", "add", "db-1", "--disk", a, "--disk", b)
	e.create("db-1")
	out := filepath.Join(e.dir, "restored")
	e.ok("backups", "restore", "db-1", "latest", "--to", out)
	assert.Equal(t, sha(t, a), sha(t, filepath.Join(out, "vda.img")))
	assert.Equal(t, sha(t, b), sha(t, filepath.Join(out, "vdb.img")))
}

func TestLocalExt4SurvivesRestore(t *testing.T) {
	for _, tool := range []string{"mkfs.ext4", "e2fsck"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: scripts/deps.sh installs e2fsprogs", tool)
		}
	}
	e := newLocal(t)
	files := filepath.Join(e.dir, "files")
	require.NoError(t, os.MkdirAll(filepath.Join(files, "etc"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(files, "etc", "hostname"), []byte("web-1\n"), 0o644))
	big := make([]byte, 3*mib)
	for i := range big {
		big[i] = byte(i * 7 % 251)
	}
	require.NoError(t, os.WriteFile(filepath.Join(files, "data.bin"), big, 0o644))
	disk := filepath.Join(e.dir, "ext4.img")
	require.NoError(t, os.WriteFile(disk, nil, 0o644))
	require.NoError(t, os.Truncate(disk, 64*mib))
	out, err := exec.Command("mkfs.ext4", "-q", "-F", "-d", files, disk).CombinedOutput()
	require.NoError(t, err, "%s", out)

	e.ok("hosts", "add", "web-1", "--disk", disk)
	e.create("web-1")
	dst := filepath.Join(e.dir, "restored.img")
	e.ok("backups", "restore", "web-1", "latest", "--to", dst)
	assert.Equal(t, sha(t, disk), sha(t, dst))
	out, err = exec.Command("e2fsck", "-fn", dst).CombinedOutput()
	assert.NoError(t, err, "e2fsck -fn on the restored image: %s", out)
	assert.Less(t, onDisk(t, dst), int64(32*mib), "restored ext4 image is not sparse")
}

type restoreJSON struct {
	BackupID     int   `json:"backup_id"`
	BytesWritten int64 `json:"bytes_written"`
}

func TestLocalIncrementalBackupAndInPlaceRestore(t *testing.T) {
	e := newLocal(t)
	disk := filepath.Join(e.dir, "disk.img")
	makeDisk(t, disk, 100*mib, 3, part{0, 100 * mib, "random"})
	e.ok("hosts", "add", "web-1", "--disk", disk)
	first := e.create("web-1")
	assert.GreaterOrEqual(t, first.NewBytes, int64(100*mib), "first backup stores every chunk")
	firstSum := sha(t, disk)

	// A 1% change: one MiB rewritten, inside one chunk.
	makeDisk(t, disk, 100*mib, 4, part{42 * mib, mib, "random"})
	second := e.create("web-1")
	assert.Greater(t, second.NewBytes, int64(0))
	assert.LessOrEqual(t, second.NewBytes, int64(mib+4096), "second backup stores only the changed chunk")

	// In place needs --force when nobody can be asked; nothing changes.
	secondSum := sha(t, disk)
	r := e.run("backups", "restore", "web-1", fmt.Sprint(first.ID))
	assert.Equal(t, 6, r.code, "declined")
	assert.Contains(t, r.stderr, "--force")
	assert.Equal(t, secondSum, sha(t, disk), "a refused restore changed the disk")

	var res restoreJSON
	e.json(&res, "backups", "restore", "web-1", fmt.Sprint(first.ID), "--force")
	assert.Equal(t, first.ID, res.BackupID)
	assert.Equal(t, int64(mib), res.BytesWritten, "in-place restore writes only the changed chunk")
	assert.Equal(t, firstSum, sha(t, disk))
}

// packs lists the pack files of a repository.
func packs(t *testing.T, repo string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(filepath.Join(repo, "packs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return err
	})
	require.NoError(t, err)
	sort.Strings(out)
	return out
}

type verifyJSON struct {
	Backups []struct {
		ID     int    `json:"id"`
		Status string `json:"status"`
	} `json:"backups"`
	Problems []string `json:"problems"`
}

func TestLocalVerifyFindsAFlippedByteInAnyPack(t *testing.T) {
	e := newLocal(t)
	a, b := filepath.Join(e.dir, "a.img"), filepath.Join(e.dir, "b.img")
	makeDisk(t, a, 40*mib, 5, part{0, 40 * mib, "random"})
	makeDisk(t, b, 8*mib, 6, part{0, 8 * mib, "text"})
	e.ok("hosts", "add", "web-1", "--disk", a)
	e.ok("hosts", "add", "db-1", "--disk", b)
	ba, bb := e.create("web-1"), e.create("db-1")
	var clean verifyJSON
	e.json(&clean, "backups", "verify")
	require.Len(t, clean.Backups, 2)
	require.Empty(t, clean.Problems)

	all := packs(t, e.repo)
	require.GreaterOrEqual(t, len(all), 2, "the test wants backups in several packs")
	for _, p := range all {
		t.Run(filepath.Base(p)[:12], func(t *testing.T) {
			orig, err := os.ReadFile(p)
			require.NoError(t, err)
			damaged := bytes.Clone(orig)
			damaged[len(damaged)/3] ^= 0x40 // inside the blobs, before the trailer
			require.NoError(t, os.Chmod(p, 0o600))
			require.NoError(t, os.WriteFile(p, damaged, 0o600))
			defer os.WriteFile(p, orig, 0o600)

			r := e.run("backups", "verify", "-o", "json")
			assert.Equal(t, 7, r.code, "verify of a damaged repository exits 7 (damaged)")
			var v verifyJSON
			require.NoError(t, json.Unmarshal([]byte(r.stdout), &v), r.stdout)
			damagedIDs := map[int]bool{}
			for _, b := range v.Backups {
				if b.Status == "damaged" {
					damagedIDs[b.ID] = true
				}
			}
			require.NotEmpty(t, damagedIDs, "verify names the affected backup")
			host := map[int]string{ba.ID: "web-1", bb.ID: "db-1"}
			for id := range damagedIDs {
				out := filepath.Join(e.dir, "out.img")
				r := e.run("backups", "restore", host[id], fmt.Sprint(id), "--to", out)
				assert.Equal(t, 7, r.code, "restoring damaged backup %d exits 7 (damaged): %s", id, r.stderr)
				assert.NotContains(t, r.stdout, "completed")
				_, err := os.Stat(out)
				assert.True(t, os.IsNotExist(err), "a failed restore leaves no file")
			}
		})
	}
}

func TestLocalJSONIsStable(t *testing.T) {
	e := newLocal(t)
	for _, args := range [][]string{{"hosts", "list"}, {"backups", "list"}, {"snapshots", "list"}, {"actions", "list"}, {"policy", "list"}} {
		out := e.ok(append(args, "-o", "json")...)
		assert.Equal(t, "[]", strings.TrimSpace(out), "%v on an empty repository", args)
	}
	disk := filepath.Join(e.dir, "disk.img")
	makeDisk(t, disk, 4*mib, 7, part{0, mib, "text"})
	e.ok("hosts", "add", "web-1", "--disk", disk)
	e.create("web-1")
	var list []map[string]any
	e.json(&list, "backups", "list")
	require.Len(t, list, 1)
	for _, k := range []string{"id", "name", "type", "created_at", "size_gigabytes", "status"} {
		assert.Contains(t, list[0], k, "a backup carries the DigitalOcean image field %q", k)
	}
	for k := range list[0] {
		assert.Equal(t, strings.ToLower(k), k, "field %q is snake_case", k)
		assert.NotContains(t, k, "-")
	}
	assert.Equal(t, "backup", list[0]["type"])
	assert.Equal(t, "available", list[0]["status"])

	assert.Equal(t, "web-1\n", e.ok("hosts", "list", "--format", "Name", "--no-header"), "--format and --no-header")
}

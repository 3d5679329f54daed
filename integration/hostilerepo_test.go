package integration

// A hostile repository: anyone with write access to it (any host of a
// fleet sharing a directory or a bucket) can plant objects of gigabytes,
// forged lengths, IDs at the maximum, damaged host and action records, and
// on a filesystem FIFOs and symbolic links. Each case plants one such
// object, in a local repository and in a bucket of a real MinIO, and runs
// the commands that meet it. Each command ends within hostileDeadline (the
// child is killed past it, and the test fails rather than hangs), peaks
// below hostileRSS of memory (the child's own rusage), says what is wrong
// in one line on stderr, and everything the object does not hold keeps
// working: the other host's backups still list and restore byte-identical.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/zeebo/blake3"

	"github.com/dropback/dropback/internal/miniotest"
)

const (
	// hostileDeadline is when a command is taken for blocked and killed:
	// a guard against hanging forever, not a measure of speed.
	hostileDeadline = 2 * time.Minute
	// hostileRSS is the most memory a command may take.
	hostileRSS = 200 << 20
)

// hostileRepo is a repository with one backup of web-1 and one of db-1,
// and the means to plant objects in it behind dropback's back.
type hostileRepo struct {
	t         *testing.T
	dir, home string
	env       []string // DROPBACK_REPO, and the AWS_* variables of S3
	// plant writes size bytes of body as the object name, replacing it.
	plant func(name string, body io.Reader, size int64)
	// names lists the objects under prefix; get reads one.
	names func(prefix string) []string
	get   func(name string) []byte
	// huge is the size of an object far larger than any kind can be.
	huge int64

	web, db          backupJSON
	webDisk, dbDisk  string
	webPacks         []string // the packs of web-1's backup
	webImage, webSeg string
}

// hostileBackends runs fn on a local repository and on one in MinIO.
func hostileBackends(t *testing.T, fn func(t *testing.T, h *hostileRepo)) {
	t.Run("local", func(t *testing.T) { fn(t, newHostileLocal(t)) })
	t.Run("s3", func(t *testing.T) { fn(t, newHostileS3(t)) })
}

func newHostileLocal(t *testing.T) *hostileRepo {
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	h := &hostileRepo{t: t, dir: dir, home: filepath.Join(dir, "home"), env: []string{"DROPBACK_REPO=" + repo}, huge: 6 << 30}
	h.plant = func(name string, body io.Reader, size int64) {
		p := filepath.Join(repo, filepath.FromSlash(name))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o700))
		_ = os.Remove(p)
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE, 0o600)
		require.NoError(t, err)
		defer f.Close()
		if _, ok := body.(zeros); ok {
			require.NoError(t, f.Truncate(size)) // sparse: `truncate -s 6G`
			return
		}
		_, err = io.Copy(f, body)
		require.NoError(t, err)
	}
	h.names = func(prefix string) []string {
		var out []string
		_ = filepath.WalkDir(filepath.Join(repo, filepath.FromSlash(prefix)), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				rel, _ := filepath.Rel(repo, p)
				out = append(out, filepath.ToSlash(rel))
			}
			return nil
		})
		sort.Strings(out)
		return out
	}
	h.get = func(name string) []byte {
		data, err := os.ReadFile(filepath.Join(repo, filepath.FromSlash(name)))
		require.NoError(t, err)
		return data
	}
	h.setUp()
	return h
}

func newHostileS3(t *testing.T) *hostileRepo {
	srv := miniotest.Start(t)
	dir := t.TempDir()
	bucket := miniotest.BucketName(t)
	srv.RemoveAtEnd(t, bucket)
	client := srv.Client(t)
	const prefix = "fleet/"
	h := &hostileRepo{t: t, dir: dir, home: filepath.Join(dir, "home"),
		env: append([]string{"DROPBACK_REPO=s3://" + bucket + "/fleet"}, srv.Env()...), huge: 256 << 20}
	ctx := context.Background()
	h.plant = func(name string, body io.Reader, size int64) {
		_, err := client.PutObject(ctx, bucket, prefix+name, body, size, minio.PutObjectOptions{})
		require.NoError(t, err)
	}
	h.names = func(p string) []string {
		var out []string
		for obj := range client.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix + p, Recursive: true}) {
			require.NoError(t, obj.Err)
			out = append(out, strings.TrimPrefix(obj.Key, prefix))
		}
		sort.Strings(out)
		return out
	}
	h.get = func(name string) []byte {
		obj, err := client.GetObject(ctx, bucket, prefix+name, minio.GetObjectOptions{})
		require.NoError(t, err)
		defer obj.Close()
		data, err := io.ReadAll(obj)
		require.NoError(t, err)
		return data
	}
	h.ok("repo", "init", "--create-bucket", "--insecure-no-encryption")
	h.setUp()
	return h
}

// zeros reads as endless zero bytes: the body of a huge object.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// setUp makes the two hosts and their backups.
func (h *hostileRepo) setUp() {
	t := h.t
	// Plain repositories: the objects planted here are what a writer to a
	// plain one can forge; an encrypted one refuses them before it decodes
	// anything (pkg/engine/crypt_test.go).
	if len(h.names("config")) == 0 {
		h.ok("repo", "init", "--insecure-no-encryption")
	}
	h.webDisk, h.dbDisk = filepath.Join(h.dir, "web-1.img"), filepath.Join(h.dir, "db-1.img")
	makeDisk(t, h.webDisk, 6*mib, 1, part{0, 3 * mib, "random"}, part{4 * mib, mib, "text"})
	makeDisk(t, h.dbDisk, 4*mib, 2, part{0, 2 * mib, "text"}, part{3 * mib, mib, "random"})
	h.ok("hosts", "add", "web-1", "--disk", h.webDisk)
	h.ok("hosts", "add", "db-1", "--disk", h.dbDisk)
	h.web = h.create("web-1")
	h.webPacks = h.names("packs/")
	h.db = h.create("db-1")
	var m struct {
		Body struct {
			Disks []struct {
				Image string `json:"image"`
			} `json:"disks"`
			IndexSegments []string `json:"index_segments"`
		} `json:"body"`
	}
	require.NoError(t, json.Unmarshal(h.get(fmt.Sprintf("backups/%010d", h.web.ID)), &m))
	h.webImage, h.webSeg = m.Body.Disks[0].Image, m.Body.IndexSegments[0]
}

// run runs dropback, killing it past hostileDeadline, and checks that it
// ended, took less than hostileRSS of memory and did not panic.
//
// The memory is the child's rusage's Maxrss, measured by a small helper
// (this test binary, see rssHelper) that starts dropback and reports it. A
// child that Go starts shares its parent's memory until it executes (vfork),
// and the kernel counts the parent's peak at that moment in the child's
// Maxrss: measured from this process, whose peak grows with every test
// that ran before, the figure would be this process's; from the helper,
// it is dropback's own, or the helper's few MiB at most.
func (h *hostileRepo) run(args ...string) result {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hostileDeadline)
	defer cancel()
	rssFile := filepath.Join(h.t.TempDir(), "rss")
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(dropbackCmd(h.home, h.env).Env, rssHelperEnv+"="+rssFile, rssHelperBin+"="+binPath)
	cmd.WaitDelay = 10 * time.Second // dropback dies with the helper, closing its output
	stdout, stderr := &cappedBuffer{}, &cappedBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	code, err := exitCode(cmd.Run())
	require.NoError(h.t, err, "run dropback %v", args)
	res := result{args: args, code: code, stdout: stdout.String(), stderr: stderr.String()}
	require.NoError(h.t, ctx.Err(), "dropback %v did not end within %v: killed", args, hostileDeadline)
	data, err := os.ReadFile(rssFile)
	require.NoError(h.t, err, "the peak memory of dropback %v", args)
	var rss int64
	_, err = fmt.Sscan(string(data), &rss)
	require.NoError(h.t, err)
	h.t.Logf("dropback %s: exit %d, peak memory %d MiB", strings.Join(args, " "), code, rss>>20)
	assert.Less(h.t, rss, int64(hostileRSS), "dropback %v took %d MiB", args, rss>>20)
	assert.NotContains(h.t, res.stderr, "panic", "dropback %v panicked", args)
	return res
}

const (
	// rssHelperEnv names the file where the helper writes the peak memory
	// of the dropback it ran; rssHelperBin, the binary.
	rssHelperEnv = "DROPBACK_TEST_RSS_FILE"
	rssHelperBin = "DROPBACK_TEST_RSS_BIN"
)

// rssHelper is what this test binary does when run does not start
// dropback itself but the binary, with rssHelperEnv set: it runs dropback
// with its own arguments, standard streams and environment, writes its
// Maxrss in bytes to the file, and returns its exit code. dropback dies
// with the helper, so a deadline that kills the helper kills it too.
func rssHelper() (int, bool) {
	out := os.Getenv(rssHelperEnv)
	if out == "" {
		return 0, false
	}
	cmd := exec.Command(os.Getenv(rssHelperBin), os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, rssHelperEnv+"=") && !strings.HasPrefix(kv, rssHelperBin+"=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// SIGINT and SIGTERM are passed on, so that a test can stop a
	// long-running dropback (serve, mount) and still read its peak.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "rss helper:", err)
		return 125, true
	}
	go func() {
		for s := range sigs {
			_ = cmd.Process.Signal(s)
		}
	}()
	err := cmd.Wait()
	code, err := exitCode(err)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rss helper:", err)
		return 125, true
	}
	rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10 // KiB on Linux
	if err := os.WriteFile(out, []byte(fmt.Sprint(rss)), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, "rss helper:", err)
		return 125, true
	}
	return code, true
}

// cappedBuffer keeps the first MiB written to it, and counts the rest. It
// has no ReadFrom, which would let io.Copy around the cap.
type cappedBuffer struct {
	buf     bytes.Buffer
	dropped int
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	room := max(0, 1<<20-b.buf.Len())
	b.dropped += max(0, len(p)-room)
	b.buf.Write(p[:min(room, len(p))])
	return len(p), nil
}

func (b *cappedBuffer) String() string {
	if b.dropped > 0 {
		return b.buf.String() + fmt.Sprintf("\n[%d more bytes]\n", b.dropped)
	}
	return b.buf.String()
}

func (h *hostileRepo) ok(args ...string) string {
	h.t.Helper()
	r := h.run(args...)
	require.Equal(h.t, 0, r.code, "dropback %s\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.stdout, r.stderr)
	return r.stdout
}

func (h *hostileRepo) create(host string) backupJSON {
	h.t.Helper()
	var out struct {
		Backup backupJSON `json:"backup"`
	}
	require.NoError(h.t, json.Unmarshal([]byte(h.ok("backups", "create", host, "-o", "json")), &out))
	return out.Backup
}

// fails runs a command that must fail with code, saying want in one clear
// line on stderr; what it could still do goes to stdout.
func (h *hostileRepo) fails(code int, want string, args ...string) result {
	h.t.Helper()
	r := h.run(args...)
	assert.Equal(h.t, code, r.code, "exit code of dropback %v; stderr: %s", args, r.stderr)
	line := strings.TrimSuffix(r.stderr, "\n")
	assert.NotContains(h.t, line, "\n", "one line on stderr of dropback %v, got:\n%s", args, r.stderr)
	assert.Contains(h.t, strings.ToLower(line), strings.ToLower(want), "dropback %v", args)
	assert.False(h.t, strings.ContainsFunc(line, func(c rune) bool {
		return unicode.IsControl(c) || unicode.Is(unicode.Bidi_Control, c)
	}), "control characters on stderr: %q", line)
	assert.Less(h.t, len(line), 800, "the error line stays short: %q", line)
	return r
}

// restores restores backup b of host to a new file and compares it.
func (h *hostileRepo) restores(host string, b backupJSON, disk string) {
	h.t.Helper()
	out := filepath.Join(h.dir, fmt.Sprintf("restored-%d.img", b.ID))
	h.ok("backups", "restore", host, fmt.Sprint(b.ID), "--to", out)
	assert.Equal(h.t, sha(h.t, disk), sha(h.t, out), "backup %d of %s does not restore byte-identical", b.ID, host)
	os.Remove(out)
}

// lists requires `backups list host` to list backup b. A damaged manifest
// elsewhere may make it exit 7, naming it: it may be one of this host's.
func (h *hostileRepo) lists(host string, b backupJSON) {
	h.t.Helper()
	r := h.run("backups", "list", host, "-o", "json")
	require.Contains(h.t, []int{0, 7}, r.code, "backups list %s: %s", host, r.stderr)
	var got []backupJSON
	require.NoError(h.t, json.Unmarshal([]byte(r.stdout), &got), "backups list %s: %q", host, r.stdout)
	ids := []int{}
	for _, g := range got {
		ids = append(ids, g.ID)
	}
	assert.Contains(h.t, ids, b.ID, "backups of %s", host)
}

// webWorks and dbWorks check that a host's backups list and restore, and
// that it can be backed up again.
func (h *hostileRepo) webWorks() {
	h.t.Helper()
	h.lists("web-1", h.web)
	h.restores("web-1", h.web, h.webDisk)
}

func (h *hostileRepo) dbWorks() {
	h.t.Helper()
	h.lists("db-1", h.db)
	h.restores("db-1", h.db, h.dbDisk)
}

// plantHuge replaces the object name by one of h.huge zero bytes.
func (h *hostileRepo) plantHuge(name string) { h.plant(name, zeros{}, h.huge) }

// plantBytes replaces the object name by data.
func (h *hostileRepo) plantBytes(name string, data []byte) {
	h.plant(name, bytes.NewReader(data), int64(len(data)))
}

// forgedSegment is an index segment, named by its BLAKE3 as a real one,
// that lists web-1's first pack with a blob of 1.26 GB.
func (h *hostileRepo) forgedSegment() (string, []byte) {
	pack := strings.TrimPrefix(h.webPacks[0], "packs/")[3:]
	id, err := hexID(pack)
	require.NoError(h.t, err)
	seg := []byte("DBINDX01")
	seg = binary.LittleEndian.AppendUint32(seg, 1)
	seg = append(seg, id...)
	seg = binary.LittleEndian.AppendUint32(seg, 10)
	for i := range 10 {
		var chunk [32]byte
		chunk[0] = byte(i)
		seg = append(seg, chunk[:]...)
		seg = binary.LittleEndian.AppendUint32(seg, 8)
		seg = binary.LittleEndian.AppendUint32(seg, 1_260_000_000)
		seg = binary.LittleEndian.AppendUint32(seg, 1<<20)
		seg = append(seg, 1)
	}
	sum := blake3.Sum256(seg)
	return fmt.Sprintf("index/%x", sum), seg
}

func hexID(s string) ([]byte, error) {
	var b []byte
	if _, err := fmt.Sscanf(s, "%x", &b); err != nil || len(b) != 32 {
		return nil, errors.New("not a pack ID: " + s)
	}
	return b, nil
}

package integration

// The S3 tests run the binary with --repo s3://bucket/prefix and the AWS_*
// variables against a real MinIO with four drive folders (erasure-coded),
// started by scripts/minio.sh through internal/miniotest: round trips,
// four hosts backing up into one repository at once while gc runs, a
// backup killed midway, MinIO stopped midway, and a drive folder removed.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dropback/dropback/internal/miniotest"
)

// s3Env is a repository in a bucket of a MinIO, and a scratch directory.
type s3Env struct {
	t      *testing.T
	srv    *miniotest.Server
	dir    string
	home   string
	bucket string
	repo   string
}

// newS3 makes a repository in a new bucket of srv, with repo init
// --create-bucket; the bucket goes when t ends.
func newS3(t *testing.T, srv *miniotest.Server) *s3Env {
	t.Helper()
	dir := t.TempDir()
	bucket := miniotest.BucketName(t)
	srv.RemoveAtEnd(t, bucket)
	e := &s3Env{t: t, srv: srv, dir: dir, home: filepath.Join(dir, "home"),
		bucket: bucket, repo: "s3://" + bucket + "/fleet"}
	e.ok("repo", "init", "--create-bucket")
	return e
}

func (e *s3Env) command(args ...string) *exec.Cmd {
	return dropbackCmd(e.home, append([]string{"DROPBACK_REPO=" + e.repo}, e.srv.Env()...), args...)
}

// wait finishes a started command and returns its result. It may run on
// another goroutine than the test's.
func (e *s3Env) wait(cmd *exec.Cmd, args []string, stdout, stderr *bytes.Buffer) result {
	code, err := exitCode(cmd.Wait())
	if err != nil {
		e.t.Errorf("run dropback %v: %v", args, err)
		code = -1
	}
	res := result{args: args, code: code, stdout: stdout.String(), stderr: stderr.String()}
	assert.NotContains(e.t, res.stderr, "panic", "dropback %v panicked", args)
	assert.NotContains(e.t, res.stderr+res.stdout, e.srv.SecretKey, "dropback %v printed the secret key", args)
	return res
}

// start starts dropback; its result arrives on the channel when it ends.
func (e *s3Env) start(args ...string) (*exec.Cmd, <-chan result) {
	e.t.Helper()
	cmd := e.command(args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(e.t, cmd.Start())
	done := make(chan result, 1)
	go func() { done <- e.wait(cmd, args, &stdout, &stderr) }()
	return cmd, done
}

func (e *s3Env) run(args ...string) result {
	e.t.Helper()
	_, done := e.start(args...)
	return <-done
}

func (e *s3Env) ok(args ...string) string {
	e.t.Helper()
	r := e.run(args...)
	require.Equal(e.t, 0, r.code, "dropback %s\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.stdout, r.stderr)
	return r.stdout
}

func (e *s3Env) json(v any, args ...string) {
	e.t.Helper()
	out := e.ok(append(args, "-o", "json")...)
	require.NoError(e.t, json.Unmarshal([]byte(out), v), "output of %v: %s", args, out)
}

func (e *s3Env) create(host string) backupJSON {
	e.t.Helper()
	var out struct {
		Backup backupJSON `json:"backup"`
	}
	e.json(&out, "backups", "create", host)
	require.NotZero(e.t, out.Backup.ID)
	return out.Backup
}

// restoresIdentical restores a backup of host to a new file and compares
// it with disk.
func (e *s3Env) restoresIdentical(host, id, disk string) {
	e.t.Helper()
	out := filepath.Join(e.dir, "restored-"+host+"-"+id+".img")
	e.ok("backups", "restore", host, id, "--to", out)
	assert.Equal(e.t, sha(e.t, disk), sha(e.t, out), "backup %s of %s does not restore byte-identical", id, host)
	os.Remove(out)
}

// verifyClean runs a full verify and requires every backup to be intact.
func (e *s3Env) verifyClean() {
	e.t.Helper()
	var v verifyJSON
	e.json(&v, "backups", "verify")
	require.Empty(e.t, v.Problems)
	for _, b := range v.Backups {
		require.NotEqual(e.t, "damaged", b.Status, "backup %d", b.ID)
	}
}

// packCount is the number of packs in the repository.
func (e *s3Env) packCount() int {
	e.t.Helper()
	n := 0
	for obj := range e.srv.Client(e.t).ListObjects(context.Background(), e.bucket, minio.ListObjectsOptions{Prefix: "fleet/packs/", Recursive: true}) {
		require.NoError(e.t, obj.Err)
		n++
	}
	return n
}

// waitForPack waits until the repository holds more than before packs, so
// that the backup whose result arrives on done is known to be midway.
func (e *s3Env) waitForPack(done <-chan result, before int) {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case r := <-done:
			e.t.Fatalf("the backup ended before writing a pack: %+v", r)
		default:
		}
		if e.packCount() > before {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	e.t.Fatal("no pack appeared within 30s")
}

type repoStatsJSON struct {
	Location    string `json:"location"`
	Backups     int    `json:"backups"`
	DataBytes   int64  `json:"data_bytes"`
	UniqueBytes int64  `json:"unique_bytes"`
	StoredBytes int64  `json:"stored_bytes"`
}

func TestS3RoundTrip(t *testing.T) {
	e := newS3(t, miniotest.Start(t))
	src := filepath.Join(e.dir, "web-1.img")
	makeDisk(t, src, 64*mib, 11, part{0, 3 * mib, "random"}, part{5 * mib, 4 * mib, "zero"},
		part{10*mib + 333, 70000, "text"}, part{30 * mib, 20 * mib, "random"}, part{63 * mib, mib, "text"})
	e.ok("hosts", "add", "web-1", "--disk", src)
	b := e.create("web-1")
	e.restoresIdentical("web-1", "latest", src)

	// An incremental backup stores only the changed chunk.
	makeDisk(t, src, 64*mib, 12, part{40 * mib, mib, "random"})
	second := e.create("web-1")
	assert.LessOrEqual(t, second.NewBytes, int64(mib+4096))
	e.restoresIdentical("web-1", fmt.Sprint(second.ID), src)

	var st repoStatsJSON
	e.json(&st, "repo", "stats")
	assert.Equal(t, e.repo, st.Location)
	assert.Equal(t, 2, st.Backups)
	e.verifyClean()

	// repo init again refuses: the repository exists.
	r := e.run("repo", "init", "--create-bucket")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "already")
	// A prefix beside it holds no repository.
	r = e.run("--repo", "s3://"+e.bucket+"/elsewhere", "backups", "list")
	assert.Equal(t, 10, r.code, "no repository: %s", r.stderr)
	assert.Contains(t, r.stderr, "repo init")
	assert.Equal(t, b.ID+1, second.ID)
}

// TestS3FourHostsAtOnce backs up four hosts into one repository from four
// processes at once while a gc runs; each disk shares half its content
// with the others.
func TestS3FourHostsAtOnce(t *testing.T) {
	e := newS3(t, miniotest.Start(t))
	const size, half, hosts = 32 * mib, 16 * mib, 4
	disks := make([]string, hosts)
	for i := range disks {
		disks[i] = filepath.Join(e.dir, fmt.Sprintf("host-%d.img", i+1))
		makeDisk(t, disks[i], size, 500, part{0, half, "random"})                     // shared
		makeDisk(t, disks[i], size, uint64(600+i), part{half, size - half, "random"}) // its own
		e.ok("hosts", "add", fmt.Sprintf("host-%d", i+1), "--disk", disks[i])
	}

	var wg sync.WaitGroup
	results := make([]result, hosts)
	for i := range hosts {
		wg.Go(func() { results[i] = e.run("backups", "create", fmt.Sprintf("host-%d", i+1), "-o", "json") })
	}
	gcs := make([]result, 2)
	wg.Go(func() {
		for i := range gcs {
			gcs[i] = e.run("repo", "gc", "--min-age", "0", "-o", "json")
		}
	})
	wg.Wait()
	for i, r := range results {
		require.Equal(t, 0, r.code, "backup of host-%d: %s", i+1, r.stderr)
	}
	for _, r := range gcs {
		require.Equal(t, 0, r.code, "gc during the backups: %s", r.stderr)
	}
	for i, d := range disks {
		e.restoresIdentical(fmt.Sprintf("host-%d", i+1), "latest", d)
	}
	e.ok("repo", "gc", "--min-age", "0")
	var st repoStatsJSON
	e.json(&st, "repo", "stats")
	assert.Equal(t, 4, st.Backups)
	assert.Equal(t, int64(hosts*size), st.DataBytes)
	assert.Equal(t, int64(half+hosts*(size-half)), st.UniqueBytes, "the shared half is stored once")
	t.Logf("stats after gc: %+v", st)
	e.verifyClean()
	for i, d := range disks {
		e.restoresIdentical(fmt.Sprintf("host-%d", i+1), "latest", d)
	}
}

// TestS3KilledBackupBlocksNothing kills a backup midway with SIGKILL: the
// next backup, a gc and a verify run without any manual step.
func TestS3KilledBackupBlocksNothing(t *testing.T) {
	e := newS3(t, miniotest.Start(t))
	src := filepath.Join(e.dir, "web-1.img")
	makeDisk(t, src, 96*mib, 21, part{0, 96 * mib, "random"})
	e.ok("hosts", "add", "web-1", "--disk", src)

	cmd, done := e.start("backups", "create", "web-1")
	e.waitForPack(done, 0)
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	r := <-done
	require.Equal(t, -1, r.code, "killed: %+v", r)

	var list []backupJSON
	e.json(&list, "backups", "list")
	assert.Empty(t, list, "a killed backup is never visible")
	b := e.create("web-1")
	var gc struct {
		DeletedPacks int `json:"deleted_packs"`
	}
	e.json(&gc, "repo", "gc", "--min-age", "0")
	e.verifyClean()
	e.restoresIdentical("web-1", fmt.Sprint(b.ID), src)
}

// TestS3MinIOStoppedMidBackup stops MinIO in the middle of a backup and
// starts it again: the backup fails with one line, the repository stays
// valid, and the next backup succeeds.
func TestS3MinIOStoppedMidBackup(t *testing.T) {
	srv := miniotest.StartPrivate(t)
	e := newS3(t, srv)
	src := filepath.Join(e.dir, "web-1.img")
	makeDisk(t, src, 128*mib, 31, part{0, 16 * mib, "random"})
	e.ok("hosts", "add", "web-1", "--disk", src)
	first := e.create("web-1")
	makeDisk(t, src, 128*mib, 32, part{0, 128 * mib, "random"}) // all new

	before := e.packCount()
	_, done := e.start("backups", "create", "web-1")
	e.waitForPack(done, before)
	require.NoError(t, srv.Stop())
	started := time.Now()
	r := <-done
	t.Logf("the backup failed %v after MinIO stopped: %s", time.Since(started).Round(time.Millisecond), strings.TrimSpace(r.stderr))
	assert.NotEqual(t, 0, r.code, "a backup whose store went away fails")
	assert.Equal(t, 1, strings.Count(strings.TrimSpace(r.stderr), "\n")+1, "one line on stderr: %q", r.stderr)
	assert.True(t, strings.HasPrefix(r.stderr, "Error: "), r.stderr)

	require.NoError(t, srv.Restart())
	var list []backupJSON
	e.json(&list, "backups", "list")
	require.Len(t, list, 1, "only the first backup is visible")
	assert.Equal(t, first.ID, list[0].ID)
	e.verifyClean()
	second := e.create("web-1")
	e.restoresIdentical("web-1", fmt.Sprint(second.ID), src)
	e.ok("repo", "gc", "--min-age", "0")
	e.verifyClean()
}

// TestS3DriveRemoved removes one of MinIO's four drive folders while it
// runs: backups and restores go on working from the other three.
func TestS3DriveRemoved(t *testing.T) {
	srv := miniotest.StartPrivate(t)
	e := newS3(t, srv)
	src := filepath.Join(e.dir, "web-1.img")
	makeDisk(t, src, 48*mib, 41, part{0, 24 * mib, "random"}, part{30 * mib, 8 * mib, "text"})
	e.ok("hosts", "add", "web-1", "--disk", src)
	first := e.create("web-1")
	firstSum := sha(t, src)

	require.NoError(t, os.RemoveAll(srv.Drive(3)))

	e.restoresIdentical("web-1", fmt.Sprint(first.ID), src)
	makeDisk(t, src, 48*mib, 42, part{10 * mib, 4 * mib, "random"})
	second := e.create("web-1")
	e.restoresIdentical("web-1", fmt.Sprint(second.ID), src)
	e.verifyClean()

	out := filepath.Join(e.dir, "first.img")
	e.ok("backups", "restore", "web-1", fmt.Sprint(first.ID), "--to", out)
	assert.Equal(t, firstSum, sha(t, out))
}

// TestS3RefusesAServerThatIgnoresConditionalWrites puts a proxy in front of
// MinIO that makes it overwrite despite If-None-Match: * (it deletes the
// key before forwarding a conditional PUT): dropback refuses the
// repository, unless DROPBACK_S3_SINGLE_WRITER=1.
func TestS3RefusesAServerThatIgnoresConditionalWrites(t *testing.T) {
	srv := miniotest.Start(t)
	e := newS3(t, srv)
	target, err := url.Parse(srv.Endpoint)
	require.NoError(t, err)
	c := srv.Client(t)
	rp := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && r.Header.Get("If-None-Match") == "*" {
			bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
			_ = c.RemoveObject(r.Context(), bucket, key, minio.RemoveObjectOptions{})
		}
		rp.ServeHTTP(w, r)
	}))
	defer proxy.Close()
	overwriting := *srv
	overwriting.Endpoint = proxy.URL
	e.srv = &overwriting

	// A command that writes checks first; one that only reads need not.
	disk := filepath.Join(t.TempDir(), "disk.img")
	makeDisk(t, disk, mib, 1, part{0, mib, "random"})
	r := e.run("hosts", "add", "web-1", "--disk", disk)
	assert.Equal(t, 1, r.code, r.stderr)
	assert.Contains(t, r.stderr, "concurrent writers")
	assert.Contains(t, r.stderr, "DROPBACK_S3_SINGLE_WRITER=1")
	assert.Equal(t, 1, strings.Count(strings.TrimSpace(r.stderr), "\n")+1, "one line: %q", r.stderr)

	cmd := e.command("hosts", "list", "-o", "json")
	cmd.Env = append(cmd.Env, "DROPBACK_S3_SINGLE_WRITER=1")
	out, err := cmd.Output()
	require.NoError(t, err)
	assert.Equal(t, "[]", strings.TrimSpace(string(out)))
}

// A setting repo init cannot use is refused before --create-bucket makes
// the bucket: a failed init leaves nothing behind to clean up.
func TestS3InitWithABadSettingMakesNoBucket(t *testing.T) {
	srv := miniotest.Start(t)
	for _, env := range []string{"DROPBACK_MAX_MEMORY=lots", "DROPBACK_READ_PARALLELISM=0"} {
		bucket := miniotest.BucketName(t)
		srv.RemoveAtEnd(t, bucket)
		e := &s3Env{t: t, srv: srv, dir: t.TempDir(), bucket: bucket, repo: "s3://" + bucket + "/fleet"}
		e.home = filepath.Join(e.dir, "home")
		cmd := e.command("repo", "init", "--create-bucket")
		cmd.Env = append(cmd.Env, env)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		require.NoError(t, cmd.Start())
		r := e.wait(cmd, []string{"repo", "init"}, &stdout, &stderr)
		name, _, _ := strings.Cut(env, "=")
		assert.NotEqual(t, 0, r.code, "%s: repo init went through", env)
		assert.Contains(t, r.stderr, name, "%s: the refusal names the setting", env)
		assert.Equal(t, 1, strings.Count(strings.TrimSpace(r.stderr), "\n")+1, "%s: one line: %q", env, r.stderr)
		exists, err := srv.Client(t).BucketExists(t.Context(), bucket)
		require.NoError(t, err)
		assert.False(t, exists, "%s: the refused init made bucket %s", env, bucket)
	}
}

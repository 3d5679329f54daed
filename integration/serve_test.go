package integration

// backups serve and mount, driven as a user would, with the clients the
// issue names: qemu-img, qemu-io, nbdinfo and nbdcopy over the NBD export,
// a qcow2 overlay on it, and reads through a FUSE mount with debugfs and a
// loop device.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dropback/dropback/internal/qemutest"
)

// daemon is a dropback that runs until it is stopped: serve or mount.
type daemon struct {
	t       *testing.T
	cmd     *exec.Cmd
	stderr  *qemutest.LockedBuffer
	ready   chan servedJSON // the JSON it prints once ready
	done    chan int        // its exit code
	rssFile string
}

type servedJSON struct {
	BackupID int `json:"backup_id"`
	Disks    []struct {
		Name      string `json:"name"`
		SizeBytes int64  `json:"size_bytes"`
		URI       string `json:"uri"`
		Path      string `json:"path"`
	} `json:"disks"`
}

// readyWithin bounds how long a test waits for a daemon to say it is ready
// or has stopped; it is no assertion about speed, only a cap on a hang.
const readyWithin = 2 * time.Minute

// start runs dropback args -o json until stopped. With measure, it runs
// under the test binary's helper, which reports its peak memory.
func (e *localEnv) start(measure bool, args ...string) *daemon {
	e.t.Helper()
	return e.startWith(nil, measure, args...)
}

// startWith is start with the extra environment env.
func (e *localEnv) startWith(env []string, measure bool, args ...string) *daemon {
	e.t.Helper()
	d := &daemon{t: e.t, stderr: &qemutest.LockedBuffer{}, ready: make(chan servedJSON, 1), done: make(chan int, 1)}
	d.cmd = e.command(append(args, "-o", "json")...)
	d.cmd.Env = append(d.cmd.Env, env...)
	if measure {
		d.rssFile = filepath.Join(e.t.TempDir(), "rss")
		d.cmd.Path, d.cmd.Args[0] = os.Args[0], os.Args[0]
		d.cmd.Env = append(d.cmd.Env, rssHelperEnv+"="+d.rssFile, rssHelperBin+"="+binPath)
	}
	stdout, err := d.cmd.StdoutPipe()
	require.NoError(e.t, err)
	d.cmd.Stderr = d.stderr
	require.NoError(e.t, d.cmd.Start())
	go func() {
		var s servedJSON
		if json.NewDecoder(stdout).Decode(&s) == nil {
			d.ready <- s
		}
		close(d.ready)
		_, _ = io.Copy(io.Discard, stdout)
		code, _ := exitCode(d.cmd.Wait())
		d.done <- code
	}()
	e.t.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			_ = d.cmd.Process.Kill()
		}
	})
	return d
}

// served waits until the daemon is ready and returns what it serves.
func (d *daemon) served() servedJSON {
	d.t.Helper()
	select {
	case s, ok := <-d.ready:
		require.True(d.t, ok, "dropback %v did not get ready: %s", d.cmd.Args, d.stderr.String())
		return s
	case <-time.After(readyWithin):
		d.t.Fatalf("dropback %v is not ready after %v: %s", d.cmd.Args, readyWithin, d.stderr.String())
	}
	return servedJSON{}
}

// stderrSays reports whether the daemon's stderr shows text, waiting for
// what it wrote to be copied: stdout and stderr are copied apart, and the
// JSON on stdout may be read before the lines written to stderr first.
func (d *daemon) stderrSays(text string) bool {
	for deadline := time.Now().Add(readyWithin); ; time.Sleep(10 * time.Millisecond) {
		if strings.Contains(d.stderr.String(), text) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// stop signals the daemon and returns its exit code.
func (d *daemon) stop(sig syscall.Signal) int {
	d.t.Helper()
	require.NoError(d.t, d.cmd.Process.Signal(sig))
	return d.wait()
}

func (d *daemon) wait() int {
	d.t.Helper()
	select {
	case code := <-d.done:
		assert.NotContains(d.t, d.stderr.String(), "panic")
		return code
	case <-time.After(readyWithin):
		d.t.Fatalf("dropback %v did not stop within %v: %s", d.cmd.Args, readyWithin, d.stderr.String())
	}
	return -1
}

// peak is the daemon's peak memory, once it ended.
func (d *daemon) peak() int64 {
	d.t.Helper()
	data, err := os.ReadFile(d.rssFile)
	require.NoError(d.t, err)
	var rss int64
	_, err = fmt.Sscan(string(data), &rss)
	require.NoError(d.t, err)
	return rss
}

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: scripts/deps.sh installs it", tool)
		}
	}
}

func runTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	require.NoError(t, err, "%s %s: %s", name, strings.Join(args, " "), out)
	return string(out)
}

// serveDisk is a disk of holes, written zeros, random and text data, a
// run of the byte 0x5a for qemu-io to check, and an odd size.
func serveDisk(t *testing.T, path string) {
	t.Helper()
	makeDisk(t, path, 64*mib+12345, 7,
		part{0, 3 * mib, "random"}, part{3 * mib, 2 * mib, "zero"}, part{8 * mib, 4*mib + 100, "text"},
		part{40 * mib, mib, "random"}, part{64 * mib, 12345, "text"})
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	_, err = f.WriteAt(bytes.Repeat([]byte{0x5a}, 256<<10), 20*mib)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

// socketDir is a directory for sockets with a short path (at most 108
// bytes in all), removed when the test ends.
func socketDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "db-sock")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// wantMap checks nbdinfo --map of uri against the disk at path: a hole
// that reads as zeros exactly where a chunk of the disk is all zeros.
func wantMap(t *testing.T, uri, path string) {
	t.Helper()
	disk, err := os.ReadFile(path)
	require.NoError(t, err)
	var got []struct {
		Offset int64 `json:"offset"`
		Length int64 `json:"length"`
		Type   int   `json:"type"`
	}
	out := runTool(t, "nbdinfo", "--map", "--json", uri)
	require.NoError(t, json.Unmarshal([]byte(out), &got), out)
	var end int64
	for _, e := range got {
		require.Equal(t, end, e.Offset, "nbdinfo --map: %s", out)
		for off := e.Offset; off < e.Offset+e.Length; off += mib {
			chunk := disk[off:min(off+mib, int64(len(disk)))]
			zero := !slicesContainsNonZero(chunk)
			want := 0
			if zero {
				want = 3 // hole, zero
			}
			require.Equal(t, want, e.Type, "nbdinfo --map at %d: %s", off, out)
		}
		end = e.Offset + e.Length
	}
	require.Equal(t, int64(len(disk)), end, "nbdinfo --map: %s", out)
}

func slicesContainsNonZero(b []byte) bool { return !bytes.Equal(b, make([]byte, len(b))) }

// A served backup reads, through every client, as the disk it was taken
// of; clients see its holes; several read at once; SIGTERM stops it and
// leaves no socket and no operation marker.
func TestServeToNBDClients(t *testing.T) {
	needTools(t, "qemu-img", "qemu-io", "nbdinfo", "nbdcopy")
	e := newLocal(t)
	src := filepath.Join(e.dir, "vda")
	serveDisk(t, src)
	e.ok("hosts", "add", "web-1", "--disk", src)
	e.create("web-1")
	sock := filepath.Join(socketDir(t), "s.sock")
	d := e.start(false, "backups", "serve", "web-1", "latest", "--socket", sock)
	s := d.served()
	require.Len(t, s.Disks, 1)
	uri := s.Disks[0].URI
	assert.Equal(t, "nbd+unix:///vda?socket="+sock, uri)
	assert.True(t, d.stderrSays(uri), "the URI is printed on stderr: %q", d.stderr.String())

	runTool(t, "qemu-img", "compare", "-f", "raw", "-F", "raw", src, uri)
	wantMap(t, uri, src)
	// QEMU sees a disk in whole sectors: the convert leaves out the last
	// 12345 % 512 bytes, as it would of the raw file.
	out := filepath.Join(e.dir, "converted.raw")
	runTool(t, "qemu-img", "convert", "-f", "raw", "-O", "raw", uri, out)
	want := filepath.Join(e.dir, "sectors.raw")
	runTool(t, "qemu-img", "convert", "-f", "raw", "-O", "raw", src, want)
	assert.Equal(t, sha(t, want), sha(t, out), "qemu-img convert from the export")

	// Random reads with qemu-io, some checked against the pattern.
	args := []string{"-r", "-f", "raw", "-c", "read -P 0x5a 20M 256k", "-c", "read -P 0 3M 2M", "-c", "read -P 0 30M 1M"}
	rng := rand.New(rand.NewPCG(5, 6))
	for range 200 {
		off := rng.Int64N(64*mib) &^ 511
		args = append(args, "-c", fmt.Sprintf("read %d %d", off, 512*(1+rng.Int64N(64))))
	}
	qio := runTool(t, "qemu-io", append(args, uri)...)
	assert.NotContains(t, qio, "fail", "qemu-io: %s", qio)

	// Several clients, and several connections each, at once.
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			copied := filepath.Join(e.dir, fmt.Sprintf("copy%d.raw", i))
			if o, err := exec.Command("nbdcopy", "--connections=4", uri, copied).CombinedOutput(); err != nil {
				t.Errorf("nbdcopy: %v: %s", err, o)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if o, err := exec.Command("qemu-img", "compare", "-f", "raw", "-F", "raw", src, uri).CombinedOutput(); err != nil {
			t.Errorf("qemu-img compare while others read: %v: %s", err, o)
		}
	}()
	wg.Wait()
	for i := range 3 {
		assert.Equal(t, sha(t, src), sha(t, filepath.Join(e.dir, fmt.Sprintf("copy%d.raw", i))), "nbdcopy %d", i)
	}

	assert.Equal(t, 0, d.stop(syscall.SIGTERM), "serve stopped by SIGTERM: %s", d.stderr.String())
	assert.NoFileExists(t, sock, "the socket outlived the serve")
	running, _ := filepath.Glob(filepath.Join(e.repo, "running", "*"))
	assert.Empty(t, running, "operation markers after the serve")
}

// A qcow2 overlay whose backing file is the export boots a VM from the
// backup at once: writes land in the overlay, the backup stays as it was,
// and the overlay converts to a standalone image on local disk.
func TestServeOverlayLeavesTheBackupUntouched(t *testing.T) {
	needTools(t, "qemu-img", "qemu-io")
	e := newLocal(t)
	src := filepath.Join(e.dir, "vda")
	serveDisk(t, src)
	e.ok("hosts", "add", "web-1", "--disk", src)
	e.create("web-1")
	sock := filepath.Join(socketDir(t), "s.sock")
	d := e.start(false, "backups", "serve", "web-1", "latest", "--socket", sock)
	uri := d.served().Disks[0].URI

	overlay := filepath.Join(e.dir, "overlay.qcow2")
	runTool(t, "qemu-img", "create", "-f", "qcow2", "-b", uri, "-F", "raw", overlay)
	runTool(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0x11 1M 64k", "-c", "write -P 0x22 30M 1M", overlay)
	qio := runTool(t, "qemu-io", "-r", "-f", "qcow2", "-c", "read -P 0x11 1M 64k", "-c", "read -P 0x5a 20M 256k", "-c", "read -P 0x22 30M 1M", overlay)
	assert.NotContains(t, qio, "fail", "reads through the overlay: %s", qio)
	runTool(t, "qemu-img", "check", overlay)
	runTool(t, "qemu-img", "compare", "-f", "raw", "-F", "raw", src, uri) // the backup is as it was

	// Copy the overlay's base to local disk: a standalone image with the
	// overlay's writes.
	local := filepath.Join(e.dir, "local.qcow2")
	runTool(t, "qemu-img", "convert", "-O", "qcow2", overlay, local)
	want := filepath.Join(e.dir, "want.raw")
	data, err := os.ReadFile(src)
	require.NoError(t, err)
	copy(data[mib:], bytes.Repeat([]byte{0x11}, 64<<10))
	copy(data[30*mib:], bytes.Repeat([]byte{0x22}, mib))
	require.NoError(t, os.WriteFile(want, data, 0o600))
	runTool(t, "qemu-img", "compare", "-f", "raw", "-F", "qcow2", want, local)

	// Or while the VM runs: QEMU's block-stream pulls the backing file into
	// the overlay, which then stands on its own.
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Fatal("qemu-system-x86_64 is missing: scripts/deps.sh installs qemu-system-x86")
	}
	blockStream(t, overlay)
	assert.NotContains(t, runTool(t, "qemu-img", "info", overlay), "backing file", "the overlay after block-stream")

	assert.Equal(t, 0, d.stop(syscall.SIGINT))
	runTool(t, "qemu-img", "compare", "-f", "raw", "-F", "qcow2", want, overlay) // without the serve
	e.ok("backups", "verify")
}

// blockStream starts QEMU, paused, on the overlay and streams its backing
// file into it over QMP, waiting for the job to complete.
func blockStream(t *testing.T, overlay string) {
	t.Helper()
	qmp := filepath.Join(socketDir(t), "qmp")
	cmd := exec.Command("qemu-system-x86_64", "-S", "-nodefaults", "-display", "none", "-machine", "pc",
		"-qmp", "unix:"+qmp+",server=on,wait=on", "-drive", "file="+overlay+",format=qcow2,if=virtio,id=vda")
	var out qemutest.LockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	quit := false
	defer func() {
		if !quit {
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	var conn net.Conn
	var err error
	for deadline := time.Now().Add(readyWithin); ; time.Sleep(50 * time.Millisecond) {
		if conn, err = net.Dial("unix", qmp); err == nil || time.Now().After(deadline) {
			break
		}
	}
	require.NoError(t, err, "QMP of QEMU: %s", out.String())
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(readyWithin)))
	dec, enc := json.NewDecoder(conn), json.NewEncoder(conn)
	// next reads messages until one has the key.
	next := func(key string) map[string]any {
		for {
			var m map[string]any
			require.NoError(t, dec.Decode(&m), "QMP: %s", out.String())
			require.NotContains(t, m, "error", "QMP: %v", m)
			if _, ok := m[key]; ok {
				return m
			}
		}
	}
	next("QMP")
	for _, c := range []map[string]any{
		{"execute": "qmp_capabilities"},
		{"execute": "block-stream", "arguments": map[string]any{"device": "vda", "job-id": "pull"}},
	} {
		require.NoError(t, enc.Encode(c))
		next("return")
	}
	for {
		ev := next("event")
		if ev["event"] == "BLOCK_JOB_COMPLETED" {
			require.NotContains(t, ev["data"], "error", "block-stream: %v", ev)
			break
		}
	}
	// QEMU writes the overlay's new header as it quits.
	require.NoError(t, enc.Encode(map[string]any{"execute": "quit"}))
	select {
	case err := <-exited:
		quit = true
		require.NoError(t, err, "QEMU: %s", out.String())
	case <-time.After(readyWithin):
		t.Fatalf("QEMU did not quit: %s", out.String())
	}
}

// On TCP the export is served on loopback; an address other hosts reach
// is refused unless asked for; a disk the backup lacks is named.
func TestServeTCPAndRefusals(t *testing.T) {
	needTools(t, "qemu-img")
	e := newLocal(t)
	a, b := filepath.Join(e.dir, "vda"), filepath.Join(e.dir, "vdb")
	serveDisk(t, a)
	makeDisk(t, b, 9*mib+5, 2, part{mib, 2 * mib, "text"})
	e.ok("hosts", "add", "db-1", "--disk", a, "--disk", b)
	e.create("db-1")

	d := e.start(false, "backups", "serve", "db-1", "latest", "--listen", "127.0.0.1:0")
	s := d.served()
	require.Len(t, s.Disks, 2)
	for i, disk := range []string{a, b} {
		assert.True(t, strings.HasPrefix(s.Disks[i].URI, "nbd://127.0.0.1:"), s.Disks[i].URI)
		runTool(t, "qemu-img", "compare", "-f", "raw", "-F", "raw", disk, s.Disks[i].URI)
	}
	assert.Equal(t, 0, d.stop(syscall.SIGINT))

	r := e.run("backups", "serve", "db-1", "latest", "--listen", "0.0.0.0:10809")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "--allow-remote")
	r = e.run("backups", "serve", "db-1", "latest", "--disk", "vdz", "--socket", filepath.Join(socketDir(t), "s"))
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "has no disk vdz (it has vda, vdb)")
}

// Without --socket, a serve listens at
// $XDG_RUNTIME_DIR/dropback/<host>-<backup>.sock, in a directory only its
// user may enter; a second serve on that socket is refused while the first
// listens; the socket a killed serve left behind is taken over by the next.
func TestServeDefaultSocket(t *testing.T) {
	needTools(t, "qemu-img")
	e := newLocal(t)
	src := filepath.Join(e.dir, "vda")
	makeDisk(t, src, 6*mib+7, 8, part{mib, 2 * mib, "random"}, part{5 * mib, mib + 7, "text"})
	e.ok("hosts", "add", "web-1", "--disk", src)
	e.create("web-1")
	runtime := socketDir(t)
	env := []string{"XDG_RUNTIME_DIR=" + runtime}
	sock := filepath.Join(runtime, "dropback", "web-1-latest.sock")

	d := e.startWith(env, false, "backups", "serve", "web-1", "latest")
	uri := d.served().Disks[0].URI
	assert.Equal(t, "nbd+unix:///vda?socket="+sock, uri)
	fi, err := os.Stat(filepath.Dir(sock))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm(), "the socket's directory")
	runTool(t, "qemu-img", "compare", "-f", "raw", "-F", "raw", src, uri)

	second := e.command("backups", "serve", "web-1", "latest")
	second.Env = append(second.Env, env...)
	var stderr bytes.Buffer
	second.Stderr = &stderr
	code, err := exitCode(second.Run())
	require.NoError(t, err)
	oneCleanLine(t, result{code: code, stderr: stderr.String()}, "is in use by another server")
	runTool(t, "qemu-img", "compare", "-f", "raw", "-F", "raw", src, uri) // the first still serves

	require.NoError(t, d.cmd.Process.Kill())
	assert.Equal(t, -1, d.wait(), "killed")
	require.FileExists(t, sock, "a killed serve leaves its socket")
	d = e.startWith(env, false, "backups", "serve", "web-1", "latest")
	assert.Equal(t, uri, d.served().Disks[0].URI)
	runTool(t, "qemu-img", "compare", "-f", "raw", "-F", "raw", src, uri)
	assert.Equal(t, 0, d.stop(syscall.SIGTERM), d.stderr.String())
	assert.NoFileExists(t, sock)
}

// gcJSON is what repo gc -o json says it reclaimed.
type gcJSON struct {
	DeletedPacks int `json:"deleted_packs"`
}

// A serve announces itself to gc: a backup deleted while it is served
// keeps its packs through any number of gc runs, and reads in full; once
// the serve stops, the next gc reclaims them.
func TestServeHoldsOffGC(t *testing.T) {
	needTools(t, "qemu-img")
	e := newLocal(t)
	src := filepath.Join(e.dir, "vda")
	makeDisk(t, src, 8*mib, 21, part{0, 8 * mib, "random"})
	old := filepath.Join(e.dir, "vda.old")
	runTool(t, "cp", "--sparse=always", src, old)
	e.ok("hosts", "add", "web-1", "--disk", src)
	id := e.create("web-1").ID
	makeDisk(t, src, 8*mib, 22, part{0, 8 * mib, "random"})
	e.create("web-1")

	d := e.start(false, "backups", "serve", "web-1", fmt.Sprint(id), "--socket", filepath.Join(socketDir(t), "s"))
	uri := d.served().Disks[0].URI // nothing read yet: no chunk is in its cache
	e.ok("backups", "prune", "web-1", "--keep-daily", "1", "--force")
	require.Len(t, e.listed(), 1, "the served backup is deleted")
	for range 3 {
		var gc gcJSON
		e.json(&gc, "repo", "gc", "--min-age", "0")
		assert.Zero(t, gc.DeletedPacks, "gc deleted packs of the backup being served")
	}
	runTool(t, "qemu-img", "compare", "-f", "raw", "-F", "raw", old, uri)
	assert.Equal(t, 0, d.stop(syscall.SIGTERM), d.stderr.String())

	var gc gcJSON
	e.json(&gc, "repo", "gc", "--min-age", "0")
	if gc.DeletedPacks == 0 { // the first run after the serve may only mark
		e.json(&gc, "repo", "gc", "--min-age", "0")
	}
	assert.NotZero(t, gc.DeletedPacks, "gc after the serve stopped: the deleted backup's packs are still there")
	e.verifyClean("after gc")
}

// serve stays under 150 MB of memory however large the disk and however
// much is read: the whole disk by several connections at once, and random
// reads, with a cold and a warm cache.
func TestServeMemoryStaysBounded(t *testing.T) {
	needTools(t, "nbdcopy", "qemu-io")
	e := newLocal(t)
	dense := filepath.Join(e.dir, "dense")
	makeDisk(t, dense, 512*mib, 3, part{0, 512 * mib, "random"})
	huge := filepath.Join(e.dir, "huge")
	var parts []part
	for off := int64(0); off < 1<<40; off += 4 << 30 {
		parts = append(parts, part{off, mib, "random"})
	}
	makeDisk(t, huge, 1<<40, 4, parts...)
	e.ok("hosts", "add", "dense", "--disk", dense)
	e.ok("hosts", "add", "huge", "--disk", huge)
	e.create("dense")
	e.create("huge")
	for _, host := range []string{"dense", "huge"} {
		d := e.start(true, "backups", "serve", host, "latest", "--socket", filepath.Join(socketDir(t), "s"))
		uri := d.served().Disks[0].URI
		runTool(t, "nbdcopy", "--connections=4", uri, "null:")
		args := []string{"-r", "-f", "raw"}
		rng := rand.New(rand.NewPCG(1, 1))
		for range 300 {
			args = append(args, "-c", fmt.Sprintf("read %d 4k", rng.Int64N(512*mib/4096)*4096))
		}
		runTool(t, "qemu-io", append(args, uri)...)
		assert.Equal(t, 0, d.stop(syscall.SIGTERM), d.stderr.String())
		rss := d.peak()
		t.Logf("serve of %s: peak memory %d MiB", host, rss>>20)
		assert.Less(t, rss, int64(150<<20), "serve of %s peaked at %d MiB", host, rss>>20)
	}
}

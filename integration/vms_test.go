package integration

// Backups of running QEMU guests, as a user takes them: a real QEMU (TCG, no
// guest OS) whose disks the test writes to through the guest's own block
// backend (qemu-io on the monitor), the binary registering it with --qemu,
// and the restored images compared with what the guest held. The guest
// agent is the one stand-in (pkg/vm/qga/qgatest): it needs a guest OS.

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dropback/dropback/internal/qemutest"
	"github.com/dropback/dropback/pkg/vm/qga/qgatest"
)

// vmBackup is what backups create -o json says of a running guest's backup.
type vmBackup struct {
	Backup struct {
		ID          int    `json:"id"`
		Consistency string `json:"consistency"`
		Disks       []struct {
			Name      string `json:"name"`
			ReadBytes int64  `json:"read_bytes"`
			DataBytes int64  `json:"data_bytes"`
			Bitmap    string `json:"bitmap"`
			Since     *struct {
				BackupID int    `json:"backup_id"`
				Bitmap   string `json:"bitmap"`
			} `json:"since"`
		} `json:"disks"`
	} `json:"backup"`
	Notices []string `json:"notices"`
}

// startGuest starts a QEMU whose disk vda holds base (random bytes when
// nil) as an image of the given format.
func startGuest(t *testing.T, dir, format string, size int64, base []byte, agentChannel bool) (*qemutest.VM, []byte) {
	t.Helper()
	qemutest.Available(t)
	if base == nil {
		base = make([]byte, size)
		_, _ = rand.Read(base[:size/2]) // data, then zeros the guest never wrote
	}
	raw := filepath.Join(dir, "vda-base.raw")
	require.NoError(t, os.WriteFile(raw, base, 0o644))
	img := filepath.Join(dir, "vda."+format)
	out, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", format, raw, img).CombinedOutput()
	require.NoError(t, err, "%s", out)
	v := qemutest.Start(t, qemutest.Options{AgentChannel: agentChannel, Disks: []qemutest.Disk{{Path: img, Format: format, ID: "vda"}}})
	return v, base
}

// backupVM takes a backup of host and decodes it.
func (e *localEnv) backupVM(host string, args ...string) vmBackup {
	e.t.Helper()
	var b vmBackup
	e.json(&b, append([]string{"backups", "create", host}, args...)...)
	return b
}

// restored restores backup id of host to a new file and returns its bytes.
func (e *localEnv) restored(host string, id int) []byte {
	e.t.Helper()
	out := filepath.Join(e.dir, fmt.Sprintf("restored-%d.img", id))
	e.ok("backups", "restore", host, fmt.Sprint(id), "--to", out)
	data, err := os.ReadFile(out)
	require.NoError(e.t, err)
	return data
}

// The hammer writes generation g of 16 blocks, in order, over and over: at
// any instant the disk holds blocks 0..k of generation g and the rest of
// generation g-1. A backup that read them at different moments would show
// a later block newer than an earlier one, or a block half of one
// generation and half of another.
const (
	hammerBlocks = 16
	hammerBlock  = 64 << 10
	hammerStride = 2 * mib
)

type hammer struct {
	v       *qemutest.VM
	stop    chan struct{}
	done    sync.WaitGroup
	mu      sync.Mutex
	written int // whole generations written
	err     error
}

func startHammer(v *qemutest.VM) *hammer {
	h := &hammer{v: v, stop: make(chan struct{})}
	h.done.Add(1)
	go func() {
		defer h.done.Done()
		for gen := 1; gen < 250; gen++ {
			for i := range hammerBlocks {
				select {
				case <-h.stop:
					return
				default:
				}
				if err := v.TryIO("vda", fmt.Sprintf("write -P %d %d %d", gen, i*hammerStride, hammerBlock)); err != nil {
					h.mu.Lock()
					h.err = err
					h.mu.Unlock()
					return
				}
			}
			h.mu.Lock()
			h.written = gen
			h.mu.Unlock()
		}
	}()
	return h
}

func (h *hammer) finish(t *testing.T) int {
	close(h.stop)
	h.done.Wait()
	require.NoError(t, h.err)
	return h.written
}

// checkInstant checks that img is base with the hammered blocks of one
// instant, and returns the generation of its first block.
func checkInstant(t *testing.T, img, base []byte) int {
	t.Helper()
	gens := make([]int, hammerBlocks)
	want := slices.Clone(base)
	for i := range hammerBlocks {
		block := img[i*hammerStride : i*hammerStride+hammerBlock]
		switch {
		case bytes.Equal(block, base[i*hammerStride:i*hammerStride+hammerBlock]):
			gens[i] = 0
		case bytes.Count(block, block[:1]) == len(block):
			gens[i] = int(block[0])
		default:
			t.Fatalf("block %d is torn: neither the base nor one generation", i)
		}
		copy(want[i*hammerStride:], block)
	}
	for i := 1; i < hammerBlocks; i++ {
		if gens[i] > gens[i-1] || gens[0]-gens[i] > 1 {
			t.Fatalf("the blocks are of generations %v: not one instant", gens)
		}
	}
	if !bytes.Equal(img, want) {
		t.Fatal("bytes outside the hammered blocks differ from the disk's")
	}
	return gens[0]
}

func TestVMBackupWhileTheGuestWrites(t *testing.T) {
	e := newLocal(t)
	v, base := startGuest(t, e.dir, "qcow2", 64*mib, nil, false)
	e.ok("hosts", "add", "web-1", "--qemu", v.QMP)
	h := startHammer(v)
	full := e.backupVM("web-1")
	incr := e.backupVM("web-1")
	written := h.finish(t)
	t.Logf("the guest wrote %d generations of %d blocks while two backups ran", written, hammerBlocks)
	assert.Equal(t, "crash", full.Backup.Consistency, "no guest agent: crash-consistent")
	require.NotNil(t, incr.Backup.Disks[0].Since, "the second backup is incremental")
	g1 := checkInstant(t, e.restored("web-1", full.Backup.ID), base)
	g2 := checkInstant(t, e.restored("web-1", incr.Backup.ID), base)
	assert.LessOrEqual(t, g1, g2)
	e.ok("backups", "verify")
}

// An incremental backup reads only the chunks the guest wrote since the
// last one, counted from what the backup says it read, and restores to the
// guest's bytes.
func TestVMIncrementalReadsOnlyWhatChanged(t *testing.T) {
	e := newLocal(t)
	v, _ := startGuest(t, e.dir, "qcow2", 64*mib, nil, false)
	e.ok("hosts", "add", "web-1", "--qemu", v.QMP)
	first := e.backupVM("web-1")
	require.Nil(t, first.Backup.Disks[0].Since)
	// Three chunks (of 1 MiB) dirtied: one written whole, one in two
	// places, one across its end into the next.
	v.Write(t, "vda", 0x5a, 4*mib, mib)
	v.Write(t, "vda", 0x5b, 9*mib+4096, 4096)
	v.Write(t, "vda", 0x5c, 9*mib+512<<10, 4096)
	v.Write(t, "vda", 0x5d, 40*mib-64<<10, 128<<10)
	second := e.backupVM("web-1")
	d := second.Backup.Disks[0]
	require.NotNil(t, d.Since)
	assert.Equal(t, first.Backup.ID, d.Since.BackupID)
	assert.Equal(t, int64(4*mib), d.ReadBytes, "read: 4, 9, 39 and 40 MiB")
	assert.Equal(t, v.Image(t, "vda"), e.restored("web-1", second.Backup.ID))
	// Nothing written since: nothing read.
	third := e.backupVM("web-1")
	assert.Equal(t, int64(0), third.Backup.Disks[0].ReadBytes)
	assert.Equal(t, v.Image(t, "vda"), e.restored("web-1", third.Backup.ID))
	e.ok("backups", "verify")
}

// A raw disk's bitmap does not survive a restart of QEMU: the next backup
// reads the disk whole and says why; a qcow2 disk's does, and the next
// backup stays incremental.
func TestVMBitmapLostOnRestart(t *testing.T) {
	for _, format := range []string{"raw", "qcow2"} {
		t.Run(format, func(t *testing.T) {
			e := newLocal(t)
			v, _ := startGuest(t, e.dir, format, 32*mib, nil, false)
			e.ok("hosts", "add", "web-1", "--qemu", v.QMP)
			first := e.backupVM("web-1")
			v.Restart(t)
			v.Write(t, "vda", 0x77, 0, mib)
			r := e.run("backups", "create", "web-1", "-o", "json")
			require.Equal(t, 0, r.code, r.stderr)
			var second vmBackup
			require.NoError(t, json.Unmarshal([]byte(r.stdout), &second))
			d := second.Backup.Disks[0]
			if format == "raw" {
				assert.Contains(t, r.stderr, "disk vda is read whole")
				assert.Nil(t, d.Since)
				assert.Equal(t, first.Backup.Disks[0].DataBytes, d.ReadBytes, "a full read")
			} else {
				assert.NotContains(t, r.stderr, "read whole")
				require.NotNil(t, d.Since)
				assert.Equal(t, int64(mib), d.ReadBytes)
			}
			assert.Equal(t, v.Image(t, "vda"), e.restored("web-1", second.Backup.ID))
		})
	}
}

func TestVMGuestAgentFreezesForTheInstant(t *testing.T) {
	e := newLocal(t)
	v, _ := startGuest(t, e.dir, "qcow2", 16*mib, nil, false)
	agent, err := qgatest.Start(filepath.Join(e.dir, "qga.sock"))
	require.NoError(t, err)
	defer agent.Close()
	e.ok("hosts", "add", "web-1", "--qemu", v.QMP, "--qemu-agent", agent.Path)
	b := e.backupVM("web-1")
	assert.Equal(t, "application", b.Backup.Consistency)
	assert.Equal(t, []string{"freeze", "thaw"}, agent.History())
	nf := e.backupVM("web-1", "--no-freeze")
	assert.Equal(t, "crash", nf.Backup.Consistency)
	assert.Equal(t, []string{"freeze", "thaw"}, agent.History(), "--no-freeze asks nothing")
	get := e.ok("backups", "get", fmt.Sprint(b.Backup.ID))
	assert.Contains(t, get, "application")
}

// Ctrl-C while the guest's filesystems are frozen (the freeze still
// unanswered) thaws them, releases the point in time, and exits 130.
func TestVMCtrlCThawsTheGuest(t *testing.T) {
	e := newLocal(t)
	v, _ := startGuest(t, e.dir, "qcow2", 16*mib, nil, false)
	agent, err := qgatest.Start(filepath.Join(e.dir, "qga.sock"))
	require.NoError(t, err)
	defer agent.Close()
	e.ok("hosts", "add", "web-1", "--qemu", v.QMP, "--qemu-agent", agent.Path)
	agent.HoldFreeze(true)
	frozen := make(chan struct{})
	var once sync.Once
	agent.OnFreeze(func() { once.Do(func() { close(frozen) }) })
	cmd := e.command("backups", "create", "web-1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	<-frozen
	require.True(t, agent.Frozen())
	agent.HoldFreeze(false)
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	code, err := exitCode(cmd.Wait())
	require.NoError(t, err)
	assert.Equal(t, 130, code, stderr.String())
	assert.False(t, agent.Frozen(), "the guest is left frozen")
	assert.Equal(t, []string{"freeze", "thaw"}, agent.History())
	assert.Equal(t, "running", v.Status(t))
	assert.Empty(t, v.Leftovers(t), "the interrupted backup left its point in time in the guest")
}

// The QMP socket vanishes at three moments of a backup: while the guest is
// frozen (the transaction never reaches QEMU), once the point in time is
// taken (its export is being added), and after every disk was read (its
// check before the manifest). Each fails with one line and stores nothing;
// the guest runs on, thawed; the next backup clears what was left and is
// right.
func TestVMQMPSocketVanishesMidBackup(t *testing.T) {
	tests := []struct {
		name      string
		after, on string // vanish at the first command on after after
		forward   bool   // QEMU gets the command first
	}{
		{name: "while frozen", on: "transaction"},
		{name: "once taken", on: "block-export-add", forward: true},
		{name: "after reading", after: "block-export-add", on: "query-block-jobs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newLocal(t)
			v, _ := startGuest(t, e.dir, "qcow2", 16*mib, nil, false)
			agent, err := qgatest.Start(filepath.Join(e.dir, "qga.sock"))
			require.NoError(t, err)
			defer agent.Close()
			sock := filepath.Join(v.Dir, "proxy.qmp")
			p := startQMPProxy(t, sock, v.QMP, tt.after, tt.on, tt.forward)
			e.ok("hosts", "add", "web-1", "--qemu", sock, "--qemu-agent", agent.Path)
			first := e.backupVM("web-1")
			v.Write(t, "vda", 0x42, 0, mib)
			p.arm()
			r := e.run("backups", "create", "web-1")
			require.NotEqual(t, 0, r.code)
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			assert.Len(t, lines, 1, "one line: %s", r.stderr)
			assert.True(t, strings.HasPrefix(lines[len(lines)-1], "Error: "), r.stderr)
			assert.Equal(t, "running", v.Status(t))
			assert.False(t, agent.Frozen(), "the guest is left frozen")
			assert.Equal(t, "thaw", agent.History()[len(agent.History())-1])
			var list []struct{ ID int }
			e.json(&list, "backups", "list", "web-1")
			assert.Len(t, list, 1, "the failed backup is not visible")

			startQMPProxy(t, sock, v.QMP, "", "", false) // the socket is back
			rr := e.run("backups", "create", "web-1", "-o", "json")
			require.Equal(t, 0, rr.code, rr.stderr)
			assert.Contains(t, rr.stderr, "earlier backup left")
			var next vmBackup
			require.NoError(t, json.Unmarshal([]byte(rr.stdout), &next))
			require.NotNil(t, next.Backup.Disks[0].Since, "the failed backup left the bitmap: still incremental")
			assert.Equal(t, first.Backup.ID, next.Backup.Disks[0].Since.BackupID)
			assert.Equal(t, int64(mib), next.Backup.Disks[0].ReadBytes)
			assert.Equal(t, v.Image(t, "vda"), e.restored("web-1", next.Backup.ID))
			assert.Empty(t, v.Leftovers(t, next.Backup.Disks[0].Bitmap))
		})
	}
}

// A --disk image that a running QEMU writes to is refused, in one line
// that says how to back it up, unless --allow-live.
func TestVMLiveDiskImageIsRefused(t *testing.T) {
	e := newLocal(t)
	v, _ := startGuest(t, e.dir, "raw", 16*mib, nil, false)
	img := filepath.Join(e.dir, "vda.raw")
	e.ok("hosts", "add", "plain", "--disk", img)
	r := e.run("backups", "create", "plain")
	assert.Equal(t, 14, r.code, r.stderr)
	assert.Equal(t, 1, strings.Count(strings.TrimSpace(r.stderr), "\n")+1, "one line: %s", r.stderr)
	assert.Contains(t, r.stderr, "--qemu")
	assert.Contains(t, r.stderr, "--allow-live")
	e.ok("backups", "create", "plain", "--allow-live")
	v.Quit(t)
	e.ok("backups", "create", "plain") // the guest is off: an image like any other
}

// Restoring over a running guest's disks is refused, in place or onto its
// image; to a new file it goes; once the guest is off, in place too.
func TestVMRestoreToARunningGuestIsRefused(t *testing.T) {
	e := newLocal(t)
	v, _ := startGuest(t, e.dir, "raw", 16*mib, nil, false)
	img := filepath.Join(e.dir, "vda.raw")
	e.ok("hosts", "add", "web-1", "--qemu", v.QMP)
	b := e.backupVM("web-1")
	want := v.Image(t, "vda")
	v.Write(t, "vda", 0x99, 0, mib)

	r := e.run("backups", "restore", "web-1", fmt.Sprint(b.Backup.ID), "--force")
	assert.Equal(t, 14, r.code, r.stderr)
	assert.Contains(t, r.stderr, "running guest")
	r = e.run("backups", "restore", "web-1", fmt.Sprint(b.Backup.ID), "--to", img, "--force")
	assert.NotEqual(t, 0, r.code, r.stderr)
	assert.Equal(t, want, e.restored("web-1", b.Backup.ID))

	v.Quit(t)
	e.ok("backups", "restore", "web-1", fmt.Sprint(b.Backup.ID), "--force")
	got, err := os.ReadFile(img)
	require.NoError(t, err)
	assert.Equal(t, want, got)
}

package integration

// Concurrency: processes share one repository with no lock. Four backups of
// different hosts run while gc runs again and again, and every backup
// restores byte-identical; two agents on one machine never take the same
// host's scheduled backup twice.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dropback/dropback/pkg/provider"
	"github.com/dropback/dropback/pkg/provider/local"
)

func TestConcurrentBackupsBesideGC(t *testing.T) {
	e := newShmLocal(t)
	const hosts = 4
	disk := func(i int) string { return filepath.Join(e.dir, fmt.Sprintf("h%d.img", i)) }
	// Each disk shares 8 MiB with the others and has 16 MiB of its own.
	write := func(i, round int) {
		makeDisk(t, disk(i), 24*mib, 1000, part{0, 8 * mib, "random"})
		makeDisk(t, disk(i), 24*mib, uint64(10*i+round), part{8 * mib, 16 * mib, "random"})
		if round > 0 { // and the first backup's data comes back in part
			makeDisk(t, disk(i), 24*mib, uint64(10*i), part{8 * mib, 4 * mib, "random"})
		}
	}
	for i := range hosts {
		write(i, 0)
		e.ok("hosts", "add", fmt.Sprintf("h%d", i), "--disk", disk(i))
	}
	// Backups that are deleted at once: their packs are garbage holding
	// chunks the next backups need, the case where gc and a backup meet.
	// Each round deletes the last round's backups in the same way.
	for i := range hosts {
		b := e.create(fmt.Sprintf("h%d", i))
		e.ok("backups", "convert", fmt.Sprint(b.ID))
		e.ok("snapshots", "delete", fmt.Sprint(b.ID), "--force")
	}
	sums := map[int]string{}
	var mu sync.Mutex
	gcRuns := 0
	for round := 1; round <= 3; round++ {
		for i := range hosts {
			write(i, round)
		}
		if round > 1 { // the last round's backups become garbage too
			for id := range e.listed() {
				e.ok("backups", "convert", fmt.Sprint(id))
				e.ok("snapshots", "delete", fmt.Sprint(id), "--force")
			}
		}
		want := map[string]string{}
		for i := range hosts {
			want[fmt.Sprintf("h%d", i)] = sha(t, disk(i))
		}
		// gc, again and again, while the backups run. In the second round
		// its marks stand for an hour: the backups that met them must
		// restore all the same.
		gcArgs := []string{"repo", "gc", "--min-age", "0"}
		if round == 2 {
			gcArgs = append(gcArgs, "--grace", "1h")
		}
		done := make(chan struct{})
		var gcWG sync.WaitGroup
		gcWG.Add(1)
		go func() {
			defer gcWG.Done()
			for {
				r := e.run(gcArgs...)
				assert.Equal(t, 0, r.code, "repo gc beside backups: %s", r.stderr)
				mu.Lock()
				gcRuns++
				mu.Unlock()
				select {
				case <-done:
					return
				default:
				}
			}
		}()
		var wg sync.WaitGroup
		taken := map[int]string{} // this round's backups: ID -> host
		for i := range hosts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				host := fmt.Sprintf("h%d", i)
				r := e.run("backups", "create", host, "-o", "json")
				if !assert.Equal(t, 0, r.code, "backups create %s beside gc: %s", host, r.stderr) {
					return
				}
				var out struct {
					Backup backupJSON `json:"backup"`
				}
				if assert.NoError(t, json.Unmarshal([]byte(r.stdout), &out)) {
					mu.Lock()
					sums[out.Backup.ID] = want[host]
					taken[out.Backup.ID] = host
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		close(done)
		gcWG.Wait()
		require.False(t, t.Failed())
		// Every backup of the round is listed (gc took none away), and,
		// whatever gc marks still stand, restores; after one more gc, which
		// sweeps them, verify is clean.
		listed := e.listed()
		require.Len(t, taken, hosts, "round %d: backup IDs", round)
		require.Len(t, listed, hosts, "round %d: listed backups", round)
		for id, host := range taken {
			b, ok := listed[id]
			require.True(t, ok, "round %d: backup %d of %s is not listed", round, id, host)
			e.restores(b, sums[id], fmt.Sprintf("round %d", round))
		}
		e.ok("repo", "gc", "--min-age", "0")
		e.verifyClean(fmt.Sprintf("round %d", round))
	}
	require.Len(t, sums, 3*hosts)
	t.Logf("%d gc runs beside %d backups", gcRuns, 3*hosts)
}

// TestTwoAgentsOneBackupPerWindow runs two agents on one repository. Each
// host is owed one backup; between them they take exactly one per host.
func TestTwoAgentsOneBackupPerWindow(t *testing.T) {
	e := newShmLocal(t)
	// Backups were enabled two days ago, so a backup is owed now whatever
	// the time of day: the window of today, or the one missed before it.
	past := time.Now().Add(-48 * time.Hour)
	ctx := context.Background()
	p, err := local.New(ctx, local.Options{Repo: e.repo, Now: func() time.Time { return past }, Password: testPasswordFunc})
	require.NoError(t, err)
	const hosts = 4
	for i := range hosts {
		d := filepath.Join(e.dir, fmt.Sprintf("a%d.img", i))
		makeDisk(t, d, 8*mib, uint64(i), part{0, 4 * mib, "random"})
		name := fmt.Sprintf("a%d", i)
		_, err := p.AddHost(ctx, provider.HostSpec{Name: name, Disks: []string{d}})
		require.NoError(t, err)
		plan := "daily"
		_, err = p.EnableBackups(ctx, name, provider.PolicyRequest{Plan: &plan})
		require.NoError(t, err)
	}
	var agents []*agentProc
	for range 2 {
		agents = append(agents, startAgent(t, e))
	}
	// Both agents make passes until every host has its backup, and a few
	// more after that.
	deadline := time.Now().Add(30 * time.Second)
	for len(e.listed()) < hosts && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	for _, a := range agents {
		a.stop(t)
	}
	perHost := map[string]int{}
	for _, b := range e.listed() {
		perHost[b.HostName]++
	}
	var actions []struct {
		Type       string `json:"type"`
		ResourceID int    `json:"resource_id"`
	}
	e.json(&actions, "actions", "list")
	started := map[int]int{}
	for _, a := range actions {
		if a.Type == "backup" {
			started[a.ResourceID]++
		}
	}
	for i := range hosts {
		assert.Equal(t, 1, perHost[fmt.Sprintf("a%d", i)], "backups of host a%d", i)
	}
	assert.Len(t, started, hosts, "backup actions by host: %v", started)
	for host, n := range started {
		assert.Equal(t, 1, n, "backup actions of host %d", host)
	}
	for _, a := range agents {
		assert.Greater(t, a.passes(), 1, "an agent made only %d passes", a.passes())
	}
}

type agentProc struct {
	cmd    *os.Process
	done   chan error
	stderr *syncBuffer
}

// syncBuffer is a bytes buffer that a process writes while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

func startAgent(t *testing.T, e *localEnv) *agentProc {
	t.Helper()
	cmd := e.command("agent", "--interval", "100ms")
	a := &agentProc{done: make(chan error, 1), stderr: &syncBuffer{}}
	cmd.Stderr = a.stderr
	require.NoError(t, cmd.Start())
	a.cmd = cmd.Process
	go func() { a.done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return a
}

func (a *agentProc) passes() int {
	return strings.Count(a.stderr.String(), " pass: ")
}

func (a *agentProc) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, a.cmd.Signal(syscall.SIGTERM))
	select {
	case err := <-a.done:
		require.NoError(t, err, "agent on SIGTERM: %s", a.stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatalf("the agent did not stop on SIGTERM: %s", a.stderr.String())
	}
	assert.NotContains(t, a.stderr.String(), "error", "the agent logged errors")
}

package integration

// The storm: on one repository, two hosts are backed up and pruned in
// loops, two gcs run in loops, and a restore loop restores whatever is
// listed, all at once, for a minute (-storm longer). Every restore that
// succeeds must give the bytes of the disk at its backup, no command may
// fail but a restore of a backup pruned before it began, verify must be
// clean at the end, and every listed backup must restore identically. The
// same storm runs on MinIO.

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dropback/dropback/internal/miniotest"
)

var stormFor = flag.Duration("storm", time.Minute, "how long each storm test runs")

// runner runs the binary on one repository: localEnv or s3Env.
type runner interface {
	run(args ...string) result
}

// storm is what the loops share.
type storm struct {
	t    *testing.T
	r    runner
	dir  string
	stop atomic.Bool

	mu      sync.Mutex
	want    map[int]string // backup ID -> sha of its disk
	hostOf  map[int]string // backup ID -> its host
	counts  map[string]int
	failure []string
}

func (s *storm) count(what string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts[what]++
}

func (s *storm) fail(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failure = append(s.failure, fmt.Sprintf(format, args...))
	s.stop.Store(true)
}

func (s *storm) wanted(id int) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sum, ok := s.want[id]
	return sum, ok
}

func (s *storm) host(id int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hostOf[id]
}

// listed returns the IDs of the backups listed now.
func (s *storm) listed() (map[int]bool, bool) {
	res := s.r.run("backups", "list", "-o", "json")
	if res.code != 0 {
		s.fail("backups list: exit %d: %s", res.code, res.stderr)
		return nil, false
	}
	var bs []backupJSON
	if err := json.Unmarshal([]byte(res.stdout), &bs); err != nil {
		s.fail("backups list: %v", err)
		return nil, false
	}
	out := map[int]bool{}
	for _, b := range bs {
		out[b.ID] = true
	}
	return out, true
}

// hostLoop backs up a host's disk, changed a little each time and dated a
// day after the last, and prunes the host to its three newest days.
func (s *storm) hostLoop(host string, seed uint64) {
	disk := filepath.Join(s.dir, host+".img")
	rng := rand.New(rand.NewPCG(seed, 1))
	day := time.Now().UTC().Add(-2000 * 24 * time.Hour).Truncate(24 * time.Hour)
	for n := 0; !s.stop.Load(); n++ {
		makeDisk(s.t, disk, 16*mib, seed*1000+uint64(n), part{int64(rng.IntN(16)) * mib, mib, "random"})
		sum := sha(s.t, disk)
		at := day.Add(time.Duration(n) * 24 * time.Hour)
		res := s.r.run("backups", "create", host, "--time", at.Format(time.RFC3339), "-o", "json")
		if res.code != 0 {
			s.fail("backups create %s: exit %d: %s", host, res.code, res.stderr)
			return
		}
		var out struct {
			Backup backupJSON `json:"backup"`
		}
		if err := json.Unmarshal([]byte(res.stdout), &out); err != nil {
			s.fail("backups create %s: %v", host, err)
			return
		}
		s.mu.Lock()
		s.want[out.Backup.ID], s.hostOf[out.Backup.ID] = sum, host
		s.mu.Unlock()
		s.count("backups")
		if res := s.r.run("backups", "prune", host, "--keep-daily", "3", "--force"); res.code != 0 {
			s.fail("backups prune %s: exit %d: %s", host, res.code, res.stderr)
			return
		}
		s.count("prunes")
	}
}

// gcLoop collects garbage again and again; finding the other gc's lease is
// no failure.
func (s *storm) gcLoop() {
	for !s.stop.Load() {
		res := s.r.run("repo", "gc", "--min-age", "0")
		switch res.code {
		case 0:
			s.count("gc runs")
		case 11:
			s.count("gc runs that found the lease held")
		default:
			s.fail("repo gc: exit %d: %s", res.code, res.stderr)
			return
		}
	}
}

// restoreLoop restores a listed backup to a new file and checks its bytes.
func (s *storm) restoreLoop(seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 2))
	for n := 0; !s.stop.Load(); n++ {
		ids, ok := s.listed()
		if !ok || len(ids) == 0 {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		var pick []int
		for id := range ids {
			if _, known := s.wanted(id); known {
				pick = append(pick, id)
			}
		}
		if len(pick) == 0 {
			continue
		}
		id := pick[rng.IntN(len(pick))]
		out := filepath.Join(s.dir, fmt.Sprintf("restore-%d.img", n))
		res := s.r.run("backups", "restore", s.host(id), strconv.Itoa(id), "--to", out)
		if res.code != 0 {
			if strings.Contains(res.stderr, fmt.Sprintf("no backup with ID %d", id)) {
				s.count("restores of a backup pruned before they began")
				continue
			}
			s.fail("backups restore %d: exit %d: %s", id, res.code, res.stderr)
			return
		}
		want, _ := s.wanted(id)
		if got := sha(s.t, out); got != want {
			s.fail("backup %d restored other bytes than its disk held", id)
			return
		}
		os.Remove(out)
		s.count("restores")
	}
}

func runStorm(t *testing.T, r runner, dir string) {
	s := &storm{t: t, r: r, dir: dir, want: map[int]string{}, hostOf: map[int]string{}, counts: map[string]int{}}
	for _, h := range []string{"h1", "h2"} {
		disk := filepath.Join(dir, h+".img")
		makeDisk(t, disk, 16*mib, 1, part{0, 4 * mib, "random"})
		if res := r.run("hosts", "add", h, "--disk", disk); res.code != 0 {
			t.Fatalf("hosts add %s: %s", h, res.stderr)
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() { s.hostLoop("h1", 1) })
	wg.Go(func() { s.hostLoop("h2", 2) })
	wg.Go(s.gcLoop)
	wg.Go(s.gcLoop)
	wg.Go(func() { s.restoreLoop(3) })
	time.AfterFunc(*stormFor, func() { s.stop.Store(true) })
	wg.Wait()
	if len(s.failure) > 0 {
		t.Fatalf("the storm failed:\n%s", strings.Join(s.failure, "\n"))
	}
	t.Logf("the storm of %s: %v", *stormFor, s.counts)
	if s.counts["backups"] < 4 || s.counts["restores"] == 0 || s.counts["gc runs"] == 0 {
		t.Fatalf("the storm did too little to show anything: %v", s.counts)
	}
	// Afterwards: verify is clean and every listed backup restores.
	if res := r.run("backups", "verify"); res.code != 0 {
		t.Fatalf("verify after the storm: exit %d: %s%s", res.code, res.stdout, res.stderr)
	}
	ids, ok := s.listed()
	if !ok {
		t.Fatal(s.failure)
	}
	for id := range ids {
		want, known := s.wanted(id)
		if !known {
			t.Fatalf("backup %d is listed but no backup of the storm made it", id)
		}
		out := filepath.Join(dir, "final.img")
		if res := r.run("backups", "restore", s.host(id), strconv.Itoa(id), "--to", out); res.code != 0 {
			t.Fatalf("restore of listed backup %d after the storm: %s", id, res.stderr)
		}
		if sha(t, out) != want {
			t.Fatalf("backup %d restores other bytes than its disk held", id)
		}
		os.Remove(out)
	}
}

func TestStorm(t *testing.T) {
	e := newShmLocal(t)
	runStorm(t, e, e.dir)
}

func TestStormOnMinIO(t *testing.T) {
	srv := miniotest.Start(t)
	e := newS3(t, srv)
	runStorm(t, e, e.dir)
}

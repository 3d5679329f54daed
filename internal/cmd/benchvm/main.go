// Command benchvm is `make bench-vm`: backups of a running QEMU guest (TCG,
// no guest OS) whose disk is the synthetic image of internal/cmd/mkimage. It
// takes a full backup, has the guest write 1% and then 5% of its disk (the
// churn of mkimage, written through the guest's block backend so that the
// dirty bitmap sees it), and takes an incremental backup after each, then
// the same backup again with --full-read (the whole disk read, as without a
// bitmap), so the two are measured on the same bytes in one run. While each
// backup runs, a writer in the guest writes 4 KiB every few milliseconds
// and times every write: the longest is the guest's stall while the point
// in time is set up and released. It prints a Markdown table.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/digitalocean/go-qemu/qmp"
)

const mib = 1 << 20

func main() {
	dropback := flag.String("dropback", "bin/dropback", "the dropback binary")
	mkimage := flag.String("mkimage", "bin/mkimage", "the image generator")
	size := flag.String("size", "4G", "size of the guest's disk")
	dir := flag.String("dir", "/tmp/dropback-bench/vm", "work directory (emptied)")
	plain := flag.Bool("plain", false, "a repository made with --insecure-no-encryption (else encrypted, with DROPBACK_PASSWORD)")
	flag.Parse()
	if err := run(*dropback, *mkimage, *size, *dir, *plain); err != nil {
		fmt.Fprintln(os.Stderr, "bench-vm:", err)
		os.Exit(1)
	}
}

type bench struct {
	dir, dropback string
	mon           *qmp.SocketMonitor
	size          int64
	chunk         int64
	rng           *rand.Rand
	evMu          sync.Mutex
	events        []qmp.Event
}

func say(format string, args ...any) { fmt.Fprintf(os.Stderr, "bench-vm: "+format+"\n", args...) }

func run(dropback, mkimage, size, dir string, plain bool) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	img := filepath.Join(dir, "vda.raw")
	say("making a %s image with mkimage", size)
	if out, err := exec.Command(mkimage, "create", img, "--size", size).CombinedOutput(); err != nil {
		return fmt.Errorf("mkimage: %v: %s", err, out)
	}
	fi, err := os.Stat(img)
	if err != nil {
		return err
	}
	b := &bench{dir: dir, dropback: dropback, size: fi.Size(), chunk: mib, rng: rand.New(rand.NewPCG(1, 2))}
	stop, err := b.startQEMU(img)
	if err != nil {
		return err
	}
	defer stop()
	init := []string{"repo", "init"}
	if plain {
		init = append(init, "--insecure-no-encryption")
	}
	if _, err := b.cli(init...); err != nil {
		return err
	}
	// Every command of an encrypted repository first derives its key; the
	// time that takes is part of each backup's time below.
	open := time.Now()
	if _, err := b.cli("hosts", "list"); err != nil {
		return err
	}
	opened := time.Since(open)
	if _, err := b.cli("hosts", "add", "vm", "--qemu", filepath.Join(dir, "qmp.sock")); err != nil {
		return err
	}
	var base []time.Duration
	for _, w := range b.stalls(500, nil, false) {
		base = append(base, w.took)
	}
	var rows []row
	r, err := b.backup("full backup", nil, 0)
	if err != nil {
		return err
	}
	rows = append(rows, r)
	for _, pct := range []float64{1, 5} {
		say("the guest writes %.0f%% of its disk", pct)
		dirty, err := b.churn(pct)
		if err != nil {
			return err
		}
		inc, err := b.backup(fmt.Sprintf("incremental after %.0f%%", pct), nil, dirty)
		if err != nil {
			return err
		}
		full, err := b.backup(fmt.Sprintf("the same, --full-read"), []string{"--full-read"}, dirty)
		if err != nil {
			return err
		}
		inc.vsFull = inc.seconds / full.seconds
		rows = append(rows, inc, full)
	}
	repo := "encrypted (the default)"
	if plain {
		repo = "not encrypted (--insecure-no-encryption)"
	}
	printTable(rows, base, b.size, repo, opened)
	return nil
}

// startQEMU starts the guest, with one QMP socket for dropback and one for
// the benchmark, and returns how to stop it.
func (b *bench) startQEMU(img string) (func(), error) {
	pidfile := filepath.Join(b.dir, "qemu.pid")
	args := []string{"-accel", "tcg", "-machine", "pc", "-nodefaults", "-no-user-config", "-display", "none", "-m", "64",
		"-boot", "strict=on", "-daemonize", "-pidfile", pidfile,
		"-qmp", "unix:" + filepath.Join(b.dir, "qmp.sock") + ",server=on,wait=off",
		"-qmp", "unix:" + filepath.Join(b.dir, "bench.sock") + ",server=on,wait=off",
		"-blockdev", "driver=file,filename=" + img + ",node-name=file0,cache.direct=on",
		"-blockdev", "driver=raw,file=file0,node-name=disk0",
		"-device", "virtio-blk-pci,drive=disk0,id=vda"}
	if out, err := exec.Command("qemu-system-x86_64", args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("start qemu: %v: %s", err, out)
	}
	data, err := os.ReadFile(pidfile)
	if err != nil {
		return nil, err
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	stop := func() { _ = syscall.Kill(pid, syscall.SIGTERM) }
	mon, err := qmp.NewSocketMonitor("unix", filepath.Join(b.dir, "bench.sock"), 10*time.Second)
	if err == nil {
		err = mon.Connect()
	}
	if err != nil {
		stop()
		return nil, err
	}
	b.mon = mon
	events, err := mon.Events(context.Background())
	if err != nil {
		stop()
		return nil, err
	}
	go func() {
		for e := range events {
			b.evMu.Lock()
			b.events = append(b.events, e)
			b.evMu.Unlock()
		}
	}()
	return stop, nil
}

// io runs a qemu-io command on the guest's disk, through its block backend.
func (b *bench) io(cmd string) error {
	req, _ := json.Marshal(qmp.Command{Execute: "human-monitor-command",
		Args: map[string]string{"command-line": fmt.Sprintf("qemu-io -d vda/virtio-backend %q", cmd)}})
	raw, err := b.mon.Run(req)
	if err != nil {
		return err
	}
	var r struct {
		Return string `json:"return"`
	}
	_ = json.Unmarshal(raw, &r)
	if strings.Contains(strings.ToLower(r.Return), "error") {
		return fmt.Errorf("qemu-io %q: %s", cmd, r.Return)
	}
	return nil
}

func (b *bench) cli(args ...string) ([]byte, error) {
	cmd := exec.Command(b.dropback, args...)
	cmd.Env = append(os.Environ(), "DROPBACK_REPO="+filepath.Join(b.dir, "repo"))
	cmd.Stderr = os.Stderr // its notices, and its error
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("dropback %s: %w", strings.Join(args, " "), err)
	}
	return out, nil
}

// writerAt is where the stall writer writes: the last MiB of the disk, one
// chunk that every incremental after it reads again.
func (b *bench) writerAt() int64 { return b.size - mib }

// windowOpen reports whether the backup is setting up its point in time
// (until QEMU reports its fleecing job running, and 50 ms more) or
// releasing it (from its first export's deletion on).
func (b *bench) windowOpen() bool {
	b.evMu.Lock()
	defer b.evMu.Unlock()
	var running time.Time
	for _, e := range b.events {
		id, _ := e.Data["id"].(string)
		switch {
		case e.Event == "BLOCK_EXPORT_DELETED" && strings.HasPrefix(id, "dbk-"):
			return true
		case e.Event == "JOB_STATUS_CHANGE" && strings.HasPrefix(id, "dbk-j-") && e.Data["status"] == "running" && running.IsZero():
			running = time.Unix(e.Timestamp.Seconds, e.Timestamp.Microseconds*1000)
		}
	}
	return running.IsZero() || time.Since(running) < 50*time.Millisecond
}

// write is one write of the stall writer: when it was sent, how long it took.
type write struct {
	start time.Time
	took  time.Duration
}

// stalls writes 4 KiB, one write after the other, n times, or until stop
// is closed when n is 0, and returns the writes. With gate, it writes only
// while the point in time is being taken or released: the writes would
// otherwise keep QEMU's main loop, which serves NBD too, busy while the
// backup reads, and slow it.
func (b *bench) stalls(n int, stop <-chan struct{}, gate bool) []write {
	var out []write
	for i := 0; n == 0 || i < n; i++ {
		if stop != nil {
			select {
			case <-stop:
				return out
			default:
			}
		}
		if gate && !b.windowOpen() {
			time.Sleep(time.Millisecond)
			continue
		}
		start := time.Now()
		if err := b.io(fmt.Sprintf("write -P %d %d 4096", i%250+1, b.writerAt()+int64(i%256)*4096)); err != nil {
			say("writer: %v", err)
			return out
		}
		out = append(out, write{start, time.Since(start)})
	}
	return out
}

// churn has the guest write pct of its disk as mkimage churn does: runs of
// 4 KiB to 1 MiB, four fifths of them in a hot tenth of the disk, of
// text-like or random bytes written from a file through qemu-io. It
// returns the bytes written, rounded to whole chunks, with the writer's.
func (b *bench) churn(pct float64) (int64, error) {
	src := filepath.Join(b.dir, "churn.src")
	sizes := []int64{4 << 10, 16 << 10, 64 << 10, 256 << 10, mib}
	hot := b.rng.Int64N(b.size-b.size/10) / 4096 * 4096
	dirty := map[int64]bool{b.writerAt() / b.chunk: true}
	buf := make([]byte, mib)
	for budget := int64(float64(b.size) * pct / 100); budget > 0; {
		n := sizes[b.rng.IntN(len(sizes))]
		var off int64
		if b.rng.Float64() < 0.8 {
			off = hot + b.rng.Int64N(b.size/10-n)
		} else {
			off = b.rng.Int64N(b.size - mib - n)
		}
		off = off / 4096 * 4096
		for i := range buf[:n] {
			buf[i] = byte(b.rng.Uint32())
		}
		if b.rng.IntN(10) > 0 { // text-like
			for i := range buf[:n] {
				buf[i] = "etaoin shrdlu cmfwyp\n"[buf[i]%21]
			}
		}
		if err := os.WriteFile(src, buf[:n], 0o644); err != nil {
			return 0, err
		}
		if err := b.io(fmt.Sprintf("write -s %s %d %d", src, off, n)); err != nil {
			return 0, err
		}
		for c := off / b.chunk; c <= (off+n-1)/b.chunk; c++ {
			dirty[c] = true
		}
		budget -= n
	}
	return int64(len(dirty)) * b.chunk, nil
}

// row is one backup of the table.
type row struct {
	name             string
	seconds          float64
	read, dirtied    int64
	vsFull           float64
	setup, release   time.Duration // the longest write across each
	nSetup, nRelease int           // how many writes were in flight across each
	writes           int
}

// backup takes a backup while the writer writes, and times both.
func (b *bench) backup(name string, extra []string, dirtied int64) (row, error) {
	say("%s", name)
	stop := make(chan struct{})
	var lat []write
	var wg sync.WaitGroup
	b.evMu.Lock()
	b.events = b.events[:0]
	b.evMu.Unlock()
	wg.Add(1)
	go func() { defer wg.Done(); lat = b.stalls(0, stop, true) }()
	start := time.Now()
	out, err := b.cli(append([]string{"backups", "create", "vm", "-o", "json"}, extra...)...)
	secs := time.Since(start).Seconds()
	close(stop)
	wg.Wait()
	if err != nil {
		return row{}, err
	}
	var res struct {
		Backup struct {
			Disks []struct {
				ReadBytes int64 `json:"read_bytes"`
			} `json:"disks"`
		} `json:"backup"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return row{}, err
	}
	r := row{name: name, seconds: secs, dirtied: dirtied, writes: len(lat)}
	for _, d := range res.Backup.Disks {
		r.read += d.ReadBytes
	}
	r.setup, r.release, r.nSetup, r.nRelease, err = b.acrossPointInTime(lat)
	return r, err
}

// acrossPointInTime finds, from QEMU's events, the instant the point in
// time was taken (its fleecing jobs created, in the transaction) and the
// span of its release (from the first job aborting to the last gone), and
// returns the longest of the guest's writes in flight across each.
func (b *bench) acrossPointInTime(writes []write) (setup, release time.Duration, nSetup, nRelease int, err error) {
	b.evMu.Lock()
	defer b.evMu.Unlock()
	var taken, relFrom, relTo time.Time
	for _, e := range b.events {
		id, _ := e.Data["id"].(string)
		if e.Event != "JOB_STATUS_CHANGE" || !strings.HasPrefix(id, "dbk-j-") {
			continue
		}
		at := time.Unix(e.Timestamp.Seconds, e.Timestamp.Microseconds*1000)
		switch e.Data["status"] {
		case "created":
			if taken.IsZero() {
				taken = at
			}
		case "aborting":
			if relFrom.IsZero() {
				relFrom = at
			}
		case "null":
			relTo = at
		}
	}
	if taken.IsZero() || relFrom.IsZero() || relTo.IsZero() {
		return 0, 0, 0, 0, fmt.Errorf("QEMU sent no events of the fleecing jobs")
	}
	for _, w := range writes {
		end := w.start.Add(w.took)
		if !w.start.After(taken) && !end.Before(taken) {
			setup, nSetup = max(setup, w.took), nSetup+1
		}
		if !w.start.After(relTo) && !end.Before(relFrom) {
			release, nRelease = max(release, w.took), nRelease+1
		}
	}
	return setup, release, nSetup, nRelease, nil
}

func printTable(rows []row, base []time.Duration, size int64, repo string, opened time.Duration) {
	slices.Sort(base)
	fmt.Printf("Guest disk: %.1f GiB (mkimage), raw, QEMU TCG; chunks of 1 MiB. Repository: %s; a command that reads only the host list took %.2f s.\n\n",
		float64(size)/(1<<30), repo, opened.Seconds())
	fmt.Printf("Guest writes of 4 KiB one after the other, no backup running: median %.1f ms, 99th percentile %.1f ms, longest %.1f ms (%d writes).\n\n",
		ms(base[len(base)/2]), ms(base[len(base)*99/100]), ms(base[len(base)-1]), len(base))
	fmt.Println("| backup | time | read | dirtied (whole chunks) | read / dirtied | time / --full-read | guest write across the instant | across the release |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rows {
		ratio, vs := "", ""
		if r.dirtied > 0 && r.vsFull > 0 {
			ratio = fmt.Sprintf("%.2f", float64(r.read)/float64(r.dirtied))
			vs = fmt.Sprintf("%.3f", r.vsFull)
		}
		dirtied := ""
		if r.dirtied > 0 {
			dirtied = fmt.Sprintf("%.1f MiB", float64(r.dirtied)/mib)
		}
		fmt.Printf("| %s | %.2f s | %.1f MiB | %s | %s | %s | %s | %s |\n",
			r.name, r.seconds, float64(r.read)/mib, dirtied, ratio, vs, stall(r.setup, r.nSetup), stall(r.release, r.nRelease))
	}
}

// stall is the longest of n writes, or says that none was in flight.
func stall(d time.Duration, n int) string {
	if n == 0 {
		return "no write in flight"
	}
	return fmt.Sprintf("%.1f ms", ms(d))
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

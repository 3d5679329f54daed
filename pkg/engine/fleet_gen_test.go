//go:build benchscale

package engine

// The fleet generator of `make bench-scale` (scripts/bench-scale.sh): it
// fills a repository with HOSTS hosts of BACKUPS daily backups each of a
// small disk, writing the very objects a backup writes (packs, an index
// segment, an image, a manifest naming its segments, two action states),
// through this package's own encoders, many at a time. Taking 10,000
// backups through the command line would cost hours for want of what the
// benchmark measures. It is a test only so that it can use the encoders;
// it runs only with -tags benchscale and -fleet.repo.

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dropback/dropback/pkg/crypt"
	"github.com/dropback/dropback/pkg/store"
	localstore "github.com/dropback/dropback/pkg/store/local"
	s3store "github.com/dropback/dropback/pkg/store/s3"
)

var (
	fleetRepo    = flag.String("fleet.repo", "", "repository to fill: a path or s3://bucket/prefix (empty: skip)")
	fleetHosts   = flag.Int("fleet.hosts", 500, "hosts")
	fleetBackups = flag.Int("fleet.backups", 20, "backups per host, one a day, the newest five minutes old")
	fleetWorkers = flag.Int("fleet.workers", 32, "objects written at once")
	fleetCount   = flag.String("fleet.count", "", "TestCountObjects: the prefix whose objects to count")
	fleetLists   = flag.Int("fleet.lists", 0, "TestListFleet: how many times to list")
	fleetCache   = flag.String("fleet.cache", "", "TestListFleet: the local cache directory (empty: none)")
)

func openFleetStore(t *testing.T) store.Store {
	var st store.Store
	var err error
	if strings.HasPrefix(*fleetRepo, "s3://") {
		st, err = s3store.Open(context.Background(), *fleetRepo, s3store.Options{})
	} else {
		st, err = localstore.Open(*fleetRepo)
	}
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestCountObjects prints how many objects the repository holds under
// -fleet.count.
func TestCountObjects(t *testing.T) {
	if *fleetRepo == "" || *fleetCount == "" {
		t.Skip("no -fleet.repo or -fleet.count")
	}
	n := 0
	err := openFleetStore(t).List(context.Background(), *fleetCount, func(store.Info) error { n++; return nil })
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("objects: %d\n", n)
}

const fleetChunk = 64 << 10

func TestMakeFleet(t *testing.T) {
	if *fleetRepo == "" {
		t.Skip("no -fleet.repo")
	}
	ctx := context.Background()
	st := openFleetStore(t)
	// `repo init --chunk-size 64KiB` made it (on S3, with its bucket).
	// An encrypted repository, as a fleet's would be: the password from
	// DROPBACK_PASSWORD, as the commands take it.
	r, err := Open(ctx, st, Options{Password: func(context.Context) ([]byte, error) {
		return []byte(os.Getenv("DROPBACK_PASSWORD")), nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if r.ChunkSize() != fleetChunk {
		t.Fatalf("the repository's chunks are of %d bytes, not %d", r.ChunkSize(), fleetChunk)
	}
	now := time.Now().UTC().Truncate(time.Second)
	newest := now.Add(-5 * time.Minute)
	// A daily window that started 8 to 12 hours ago: the newest backups
	// lie after it, so nothing is due for hours, and 30 days of retention
	// keep all of them: a scheduling pass is idle.
	hour := ((now.Hour() + 24 - 8) / 4 * 4) % 24
	nh, nb := *fleetHosts, *fleetBackups
	h := newChunkHasher(r.key)

	jobs := make(chan func() error)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range *fleetWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if err := j(); err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
				}
			}
		}()
	}
	put := func(name string, data []byte) func() error {
		return func() error { return r.st.Put(ctx, name, data) }
	}
	chunk := func(seed uint64) (ID, []byte, int, uint8) {
		// Text-like: compresses to a few hundred bytes.
		rng := rand.New(rand.NewPCG(seed, 17))
		pat := make([]byte, 512)
		for i := range pat {
			pat[i] = byte('a' + rng.IntN(26))
		}
		data := make([]byte, fleetChunk)
		for i := 0; i < len(data); i += len(pat) {
			copy(data[i:], pat)
		}
		binary.LittleEndian.PutUint64(data, seed)
		id := h.sum(data)
		blob, flags := r.storeChunk(id, data, make([]byte, len(data)+len(data)/8+crypt.BlobOverhead+crypt.NonceSize))
		return id, append([]byte(nil), blob...), len(data), flags
	}
	pack := func(chunks ...uint64) (PackIndex, []byte) {
		b := &packBuilder{buf: []byte(packMagic)}
		for _, s := range chunks {
			id, blob, raw, flags := chunk(s)
			b.add(id, blob, raw, flags)
		}
		data, id := b.finish(r)
		return PackIndex{Pack: id, Entries: b.entries}, data
	}
	for host := 1; host <= nh; host++ {
		name := fmt.Sprintf("host-%04d", host)
		first := newest.Add(-time.Duration(nb-1) * 24 * time.Hour)
		rec := HostRecord{ID: host, Rev: 1, Name: name, CreatedAt: first.Add(-time.Hour),
			Disks:         []DiskSource{{Name: "disk0", Path: "/var/lib/fleet/" + name + ".img"}},
			BackupEnabled: true, EnabledAt: first.Add(-time.Hour),
			Policy: &PolicyRecord{Plan: "daily", Hour: hour, RetentionDays: 30}}
		data, err := seal(rec)
		if err != nil {
			t.Fatal(err)
		}
		jobs <- put(hostObject(host, 1), data)
		var baseSeg ID
		var base ID
		for j := 0; j < nb; j++ {
			id := j*nh + host
			seed := uint64(id) << 1
			var p PackIndex
			var pdata []byte
			if j == 0 {
				p, pdata = pack(uint64(host)<<40|1, seed)
				base = p.Entries[0].Chunk
			} else {
				p, pdata = pack(seed)
			}
			seg := encodeIndexSegment([]PackIndex{p})
			segID := r.contentID(seg)
			if j == 0 {
				baseSeg = segID
			}
			im := &Image{Size: 2 * fleetChunk, ChunkSize: fleetChunk, Chunks: []ID{base, p.Entries[len(p.Entries)-1].Chunk}}
			imData := encodeImage(im)
			imID := r.contentID(imData)
			at := first.Add(time.Duration(j) * 24 * time.Hour)
			done := at.Add(3 * time.Second)
			segs := []string{segID.String()}
			if j > 0 {
				segs = append(segs, baseSeg.String())
			}
			m := Manifest{Version: 1, ID: id, HostID: host, HostName: name, CreatedAt: at, CompletedAt: done,
				Disks: []ManifestDisk{{Name: "disk0", Path: rec.Disks[0].Path, SizeBytes: 2 * fleetChunk,
					DataBytes: 2 * fleetChunk, Image: imID.String()}},
				IndexSegments: segs, NewBytes: int64(len(pdata)), NewChunks: int64(len(p.Entries))}
			mData, err := seal(m)
			if err != nil {
				t.Fatal(err)
			}
			a1, _ := json.Marshal(ActionRecord{ID: id, N: 1, Type: "backup", Status: ActionInProgress, StartedAt: at,
				ResourceType: "host", ResourceID: host})
			a2, _ := json.Marshal(ActionRecord{ID: id, N: 2, Type: "backup", Status: ActionCompleted, StartedAt: at,
				CompletedAt: &done, ResourceType: "host", ResourceID: id})
			// The manifest last, as a backup writes it.
			jobs <- func() error {
				for _, o := range []struct {
					name string
					data []byte
				}{
					{packName(p.Pack), pdata}, {"index/" + segID.String(), seg}, {imageName(imID), imData},
					{objectName("backups", id), mData}, {actionObject(id, 1), a1}, {actionObject(id, 2), a2},
				} {
					if err := r.st.Put(ctx, o.name, o.data); err != nil {
						return err
					}
				}
				return nil
			}
		}
		if host%50 == 0 {
			fmt.Fprintf(os.Stderr, "fleet: %d of %d hosts\n", host, nh)
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	fmt.Fprintf(os.Stderr, "fleet: %d hosts, %d backups in %s (daily window at %02d:00 UTC)\n", nh, nh*nb, *fleetRepo, hour)
}

// TestListFleet lists the backups and hosts of -fleet.repo -fleet.lists
// times, as `backups list` and `hosts list` do, with the local cache in
// -fleet.cache (empty: none): a harness for `go test -cpuprofile`.
func TestListFleet(t *testing.T) {
	if *fleetRepo == "" || *fleetLists == 0 {
		t.Skip("no -fleet.repo or -fleet.lists")
	}
	ctx := context.Background()
	start := time.Now()
	r, err := Open(ctx, openFleetStore(t), Options{CacheDir: *fleetCache, Password: func(context.Context) ([]byte, error) {
		return []byte(os.Getenv("DROPBACK_PASSWORD")), nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("open (with the key derivation): %v\n", time.Since(start))
	for i := range *fleetLists {
		start := time.Now()
		ms, err := r.Manifests(ctx)
		if err != nil {
			t.Fatal(err)
		}
		listed := time.Since(start)
		hs, err := r.Hosts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("list %d: %d backups in %v, %d hosts in %v\n", i, len(ms), listed, len(hs), time.Since(start)-listed)
	}
}

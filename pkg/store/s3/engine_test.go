package s3_test

// The engine's round trips, incremental backups, verify, retention and gc,
// run on both stores: a local directory and a bucket of a real,
// erasure-coded MinIO.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/dropback/dropback/internal/miniotest"
	"github.com/dropback/dropback/pkg/engine"
	"github.com/dropback/dropback/pkg/key"
	"github.com/dropback/dropback/pkg/store"
	"github.com/dropback/dropback/pkg/store/local"
)

const chunk = engine.MinChunkSize

// backend is a store the matrix runs on.
type backend struct {
	name string
	open func(t *testing.T) store.Store
	// damage flips one byte of the object name at offset off.
	damage func(t *testing.T, st store.Store, name string, off int64)
}

func backends() []backend {
	return []backend{
		{
			name: "local",
			open: func(t *testing.T) store.Store {
				st, err := local.Open(filepath.Join(t.TempDir(), "repo"))
				if err != nil {
					t.Fatal(err)
				}
				return st
			},
			damage: func(t *testing.T, st store.Store, name string, off int64) {
				p := filepath.Join(st.Location(), name)
				data, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				data[off] ^= 0x40
				if err := os.Chmod(p, 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, data, 0o600); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "minio",
			open: func(t *testing.T) store.Store {
				srv := miniotest.Start(t)
				return open(t, "s3://"+srv.Bucket(t)+"/repo", options(srv, srv.Endpoint))
			},
			// Objects are create-once: the damaged copy replaces the
			// original through minio-go, behind the store's back.
			damage: func(t *testing.T, st store.Store, name string, off int64) {
				srv := miniotest.Start(t)
				c := srv.Client(t)
				bucket, prefix, _ := strings.Cut(strings.TrimPrefix(st.Location(), "s3://"), "/")
				key := prefix + "/" + name
				ctx := context.Background()
				data, err := st.Get(ctx, name, 0, -1)
				if err != nil {
					t.Fatal(err)
				}
				data[off] ^= 0x40
				if err := c.RemoveObject(ctx, bucket, key, minio.RemoveObjectOptions{}); err != nil {
					t.Fatal(err)
				}
				if _, err := c.PutObject(ctx, bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
					t.Fatal(err)
				}
			},
		},
	}
}

// matrix runs fn on every backend.
func matrix(t *testing.T, fn func(t *testing.T, b backend)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) { fn(t, b) })
	}
}

// The engine's repositories on S3 are encrypted, as users get them, with a
// cheap KDF.
func password(context.Context) ([]byte, error) { return []byte("s3 test password"), nil }

func encrypted(o engine.InitOptions) engine.InitOptions {
	o.Password, o.KDF = []byte("s3 test password"), key.Params{Time: 1, MemoryKiB: 64, Threads: 1}
	o.Options.Password = password
	return o
}

func initRepo(t *testing.T, st store.Store) *engine.Repo {
	t.Helper()
	r, err := engine.Init(context.Background(), st, encrypted(engine.InitOptions{ChunkSize: chunk}))
	if err != nil {
		t.Fatalf("init repository in %s: %v", st.Location(), err)
	}
	return r
}

// region is part of a test disk: "random", "text" or "zero" (written
// zeros); the rest is holes.
type region struct {
	off, n int64
	kind   string
}

func makeDisk(t *testing.T, path string, size int64, seed uint64, regions ...region) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 5))
	for _, r := range regions {
		buf := make([]byte, r.n)
		switch r.kind {
		case "random":
			for i := range buf {
				buf[i] = byte(rng.Uint32())
			}
		case "text":
			for i := range buf {
				buf[i] = "the disk backup chunk\n"[rng.IntN(22)]
			}
		}
		if _, err := f.WriteAt(buf, r.off); err != nil {
			t.Fatal(err)
		}
	}
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(data)
}

func backup(t *testing.T, r *engine.Repo, hostID int, disk string) *engine.Manifest {
	t.Helper()
	m, err := r.Backup(context.Background(), engine.BackupRequest{
		HostID: hostID, HostName: "host-" + string(rune('0'+hostID)),
		Disks: []engine.DiskSource{{Name: "disk0", Path: disk}},
	})
	if err != nil {
		t.Fatalf("backup of %s: %v", disk, err)
	}
	return m
}

func restore(t *testing.T, r *engine.Repo, m *engine.Manifest, to string) error {
	t.Helper()
	_, err := r.Restore(context.Background(), m, []engine.RestoreTarget{{Path: to, Overwrite: true}}, nil)
	return err
}

func TestEngineRoundTrip(t *testing.T) {
	matrix(t, func(t *testing.T, b backend) {
		r := initRepo(t, b.open(t))
		dir := t.TempDir()
		src, dst := filepath.Join(dir, "src.img"), filepath.Join(dir, "dst.img")
		const size = 200*chunk + 12345
		makeDisk(t, src, size, 1,
			region{chunk, 20 * chunk, "random"}, region{30 * chunk, 10 * chunk, "zero"},
			region{50*chunk + 100, 5000, "text"}, region{100 * chunk, 40 * chunk, "text"},
			region{199 * chunk, chunk + 12345, "random"})
		m := backup(t, r, 1, src)
		if err := restore(t, r, m, dst); err != nil {
			t.Fatal(err)
		}
		if fileSum(t, src) != fileSum(t, dst) {
			t.Fatal("restored image differs from the source")
		}
		if fi, _ := os.Stat(dst); fi.Size() != size {
			t.Fatalf("restored size %d, want %d", fi.Size(), size)
		}
	})
}

func TestEngineIncrementalStoresOnlyChangedChunks(t *testing.T) {
	matrix(t, func(t *testing.T, b backend) {
		r := initRepo(t, b.open(t))
		src := filepath.Join(t.TempDir(), "src.img")
		makeDisk(t, src, 100*chunk, 2, region{0, 100 * chunk, "random"})
		first := backup(t, r, 1, src)
		if first.NewChunks != 100 {
			t.Fatalf("first backup stored %d chunks, want 100", first.NewChunks)
		}
		f, err := os.OpenFile(src, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteAt([]byte{1}, 5*chunk+17)
		f.WriteAt([]byte{2}, 70*chunk)
		f.Close()
		second := backup(t, r, 1, src)
		if second.NewChunks != 2 || second.NewBytes > 2*chunk+1024 {
			t.Fatalf("second backup stored %d chunks, %d bytes; want 2 chunks", second.NewChunks, second.NewBytes)
		}
		out := filepath.Join(t.TempDir(), "out.img")
		if err := restore(t, r, second, out); err != nil {
			t.Fatal(err)
		}
		if fileSum(t, out) != fileSum(t, src) {
			t.Fatal("the incremental backup does not restore byte-identical")
		}
	})
}

func packNames(t *testing.T, st store.Store) []string {
	t.Helper()
	var names []string
	if err := st.List(context.Background(), "packs/", func(i store.Info) error {
		names = append(names, i.Name)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return names
}

func TestEngineVerifyFindsAFlippedByte(t *testing.T) {
	matrix(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		st := b.open(t)
		r := initRepo(t, st)
		dir := t.TempDir()
		src := filepath.Join(dir, "src.img")
		makeDisk(t, src, 40*chunk, 3, region{0, 40 * chunk, "random"})
		m := backup(t, r, 1, src)
		if res, err := r.Verify(ctx, nil, nil); err != nil || res.Damaged() {
			t.Fatalf("verify of a clean repository: %v %+v", err, res)
		}
		packs := packNames(t, st)
		if len(packs) != 1 {
			t.Fatalf("packs %q, want one", packs)
		}
		fi, err := st.Stat(ctx, packs[0])
		if err != nil {
			t.Fatal(err)
		}
		b.damage(t, st, packs[0], fi.Size/3) // inside the blobs

		res, err := r.Verify(ctx, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Backups) != 1 || res.Backups[0].OK {
			t.Fatalf("verify after a flipped byte: %+v, want backup %d damaged", res.Backups, m.ID)
		}
		out := filepath.Join(dir, "out.img")
		err = restore(t, r, m, out)
		if err == nil || !strings.Contains(err.Error(), "does not decrypt") {
			t.Fatalf("restore of the damaged backup: %v, want a blob that does not decrypt", err)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Fatal("a failed restore left its target")
		}
	})
}

func storedBytes(t *testing.T, st store.Store) int64 {
	t.Helper()
	var n int64
	if err := st.List(context.Background(), "packs/", func(i store.Info) error { n += i.Size; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestEngineRetentionAndGC(t *testing.T) {
	matrix(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		st := b.open(t)
		r := initRepo(t, st)
		dir := t.TempDir()
		src := filepath.Join(dir, "src.img")
		makeDisk(t, src, 40*chunk, 4, region{0, 40 * chunk, "random"})
		old := backup(t, r, 1, src)
		// 30 of 40 chunks change: the old backup's pack becomes mostly
		// dead once the old backup is deleted.
		makeDisk(t, src, 40*chunk, 5, region{10 * chunk, 30 * chunk, "text"})
		keep := backup(t, r, 1, src)
		want := fileSum(t, src)
		other := filepath.Join(dir, "other.img")
		makeDisk(t, other, 20*chunk, 6, region{0, 20 * chunk, "random"})
		kept2 := backup(t, r, 2, other)

		before := storedBytes(t, st)
		if err := r.DeleteBackup(ctx, old.ID); err != nil {
			t.Fatal(err)
		}
		res, err := r.GC(ctx, engine.GCOptions{MinAge: -1})
		if err != nil {
			t.Fatal(err)
		}
		after := storedBytes(t, st)
		if res.ReclaimedBytes == 0 || after >= before {
			t.Fatalf("gc reclaimed %d bytes; packs went from %d to %d bytes", res.ReclaimedBytes, before, after)
		}
		t.Logf("gc: %+v; packs %d -> %d bytes", *res, before, after)
		for _, k := range []struct {
			m    *engine.Manifest
			want [32]byte
		}{{keep, want}, {kept2, fileSum(t, other)}} {
			out := filepath.Join(dir, "out.img")
			if err := restore(t, r, k.m, out); err != nil {
				t.Fatal(err)
			}
			if fileSum(t, out) != k.want {
				t.Fatalf("backup %d no longer restores byte-identical after gc", k.m.ID)
			}
		}
		if v, err := r.Verify(ctx, nil, nil); err != nil || v.Damaged() {
			t.Fatalf("verify after gc: %v %+v", err, v)
		}
		if _, err := r.Manifest(ctx, old.ID); err == nil {
			t.Fatal("the deleted backup is still there")
		}
		res, err = r.GC(ctx, engine.GCOptions{MinAge: -1})
		if err != nil || res.DeletedPacks != 0 || res.RewrittenPacks != 0 {
			t.Fatalf("second gc: %+v, %v; want nothing to do", res, err)
		}
	})
}

// TestEngineRestoreReadsInParallel counts the ranged GETs in flight at once
// during a restore from MinIO, through a counting proxy.
func TestEngineRestoreReadsInParallel(t *testing.T) {
	srv := miniotest.Start(t)
	p := newProxy(t, srv.Endpoint)
	st := open(t, "s3://"+srv.Bucket(t)+"/repo", options(srv, p.URL))
	r, err := engine.Init(context.Background(), st, encrypted(engine.InitOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src.img"), filepath.Join(dir, "dst.img")
	makeDisk(t, src, 48<<20, 7, region{0, 48 << 20, "random"})
	m := backup(t, r, 1, src)
	p.reset()
	if err := restore(t, r, m, dst); err != nil {
		t.Fatal(err)
	}
	if fileSum(t, src) != fileSum(t, dst) {
		t.Fatal("restored image differs")
	}
	gets, most := p.count("GET range"), p.maxInflight.Load()
	t.Logf("restore of 48 MiB: %d ranged GETs, at most %d in flight at once; all requests: %v", gets, most, p.snapshot())
	if gets < 12 { // runs of neighbouring chunks, up to 4 MiB a GET
		t.Fatalf("%d ranged GETs for 48 MiB of chunks, want at least 12", gets)
	}
	if most < 4 {
		t.Fatalf("at most %d ranged GETs in flight at once, want several (the engine restores with 6 workers)", most)
	}
}

// TestEngineConcurrentHostsShareChunks backs up four hosts into one
// repository at once, each through its own open repository as separate
// machines would, while gc runs; each disk shares half its content with
// the others, which is stored once after gc.
func TestEngineConcurrentHostsShareChunks(t *testing.T) {
	matrix(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		st := b.open(t)
		initRepo(t, st)
		dir := t.TempDir()
		const size, half, hosts = 64 * chunk, 32 * chunk, 4
		disks := make([]string, hosts)
		for i := range disks {
			disks[i] = filepath.Join(dir, "disk"+string(rune('1'+i))+".img")
			makeDisk(t, disks[i], size, 100, region{0, half, "random"})                     // shared
			makeDisk(t, disks[i], size, uint64(200+i), region{half, size - half, "random"}) // its own
		}
		openRepo := func() *engine.Repo {
			r, err := engine.Open(ctx, st, engine.Options{Password: password})
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		manifests := make([]*engine.Manifest, hosts)
		errs := make(chan error, hosts+1)
		done := make(chan struct{})
		go func() { // gc, over and over, until the backups are done
			r := openRepo()
			for {
				select {
				case <-done:
					errs <- nil
					return
				default:
				}
				if _, err := r.GC(ctx, engine.GCOptions{MinAge: -1}); err != nil {
					errs <- err
					return
				}
			}
		}()
		var wg sync.WaitGroup
		for i := range hosts {
			wg.Go(func() {
				m, err := openRepo().Backup(ctx, engine.BackupRequest{
					HostID: i + 1, HostName: "host", Disks: []engine.DiskSource{{Name: "disk0", Path: disks[i]}}})
				manifests[i] = m
				if err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(done)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
			break
		}
		r := openRepo()
		for i, m := range manifests {
			out := filepath.Join(dir, "out.img")
			if err := restore(t, r, m, out); err != nil {
				t.Fatal(err)
			}
			if fileSum(t, out) != fileSum(t, disks[i]) {
				t.Fatalf("host %d does not restore byte-identical", i+1)
			}
		}
		s, err := r.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Backups running at once each store the chunks none of them had
		// yet; gc keeps one copy. Each host's packs are half shared chunks,
		// so the default gc, which rewrites packs less than half live, may
		// keep a duplicate: this one rewrites every pack with a dead byte.
		if _, err := r.GC(ctx, engine.GCOptions{RewriteBelow: 1, MinAge: -1}); err != nil {
			t.Fatal(err)
		}
		if packs := storedBytes(t, st); packs > s.BlobBytes+64<<10 {
			t.Fatalf("packs hold %d bytes after gc, %d bytes of chunks: shared chunks stored more than once", packs, s.BlobBytes)
		}
		if s.DataBytes != hosts*size || s.UniqueBytes != half+hosts*(size-half) {
			t.Fatalf("data %d bytes, unique %d bytes; want %d and %d: shared chunks stored once",
				s.DataBytes, s.UniqueBytes, hosts*size, half+hosts*(size-half))
		}
	})
}

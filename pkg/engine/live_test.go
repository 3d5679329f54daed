package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// fileReader is a LiveReader over a file: a frozen point in time, as far
// as the engine can tell, which counts the bytes read from it.
type fileReader struct {
	f       *os.File
	size    int64
	regions [][2]int64
	read    atomic.Int64
}

func openFileReader(t *testing.T, path string) *fileReader {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return &fileReader{f: f, size: fi.Size(), regions: dataRegions(f, fi.Size())}
}

func (r *fileReader) Size() int64 { return r.size }
func (r *fileReader) ReadAt(_ context.Context, p []byte, off int64) (int, error) {
	n, err := r.f.ReadAt(p, off)
	r.read.Add(int64(n))
	return n, err
}
func (r *fileReader) DataRegions(context.Context) ([][2]int64, error) { return r.regions, nil }

// liveBackup backs up one disk through a fileReader, starting bitmap, and
// relative to changes when they are not nil.
func liveBackup(t *testing.T, r *Repo, path, bitmap string, changes *Changes) (*Manifest, *fileReader, []string) {
	t.Helper()
	rd := openFileReader(t, path)
	var notices []string
	m, err := r.Backup(context.Background(), BackupRequest{
		HostID: 1, HostName: "vm", Disks: []DiskSource{{Name: "vda", Path: path}},
		Live:        []LiveDisk{{Reader: rd, Bitmap: bitmap, Changed: changes}},
		Consistency: ConsistencyCrash,
		Notify:      func(msg string) { notices = append(notices, msg) },
	})
	if err != nil {
		t.Fatal(err)
	}
	return m, rd, notices
}

func TestLiveIncrementalReadsOnlyChanges(t *testing.T) {
	const size = 64 * testChunk
	changedAt := [][2]int64{{3*testChunk + 100, 3*testChunk + 200}, {40 * testChunk, 42 * testChunk}}
	tests := []struct {
		name       string
		bitmap     string // what the second backup's changes are relative to
		resize     bool
		wantRead   int64
		wantSince  bool
		wantNotice string
	}{
		{name: "bitmap of the previous backup", bitmap: "b1", wantRead: 3 * testChunk, wantSince: true},
		{name: "unknown bitmap", bitmap: "other", wantRead: -1, wantNotice: "no backup of the host in the repository started bitmap other"},
		{name: "disk resized", bitmap: "b1", resize: true, wantRead: -1, wantNotice: "bytes in backup"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := newRepo(t)
			dir := t.TempDir()
			disk := filepath.Join(dir, "vda.img")
			makeDisk(t, disk, size, region{0, 8 * testChunk, "random"}, region{20 * testChunk, 30 * testChunk, "text"})
			first, _, _ := liveBackup(t, r, disk, "b1", nil)
			if first.Consistency != ConsistencyCrash || first.Disks[0].Bitmap != "b1" || first.Disks[0].Since != nil {
				t.Fatalf("first backup records %q, bitmap %q, since %v", first.Consistency, first.Disks[0].Bitmap, first.Disks[0].Since)
			}
			for _, c := range changedAt {
				writeAt(t, disk, c[0], []byte(strings.Repeat("x", int(c[1]-c[0]))))
			}
			if tt.resize {
				if err := os.Truncate(disk, size+testChunk); err != nil {
					t.Fatal(err)
				}
			}
			second, rd, notices := liveBackup(t, r, disk, "b2", &Changes{Bitmap: tt.bitmap, Regions: changedAt})
			want := tt.wantRead
			if want < 0 { // a full read: every chunk that holds data
				want = 0
				for _, reg := range rd.regions {
					want += reg[1] - reg[0]
				}
			}
			if got := rd.read.Load(); got != want || second.Disks[0].ReadBytes != want {
				t.Errorf("read %d bytes (manifest: %d), want %d", got, second.Disks[0].ReadBytes, want)
			}
			if got := second.Disks[0].Since; (got != nil) != tt.wantSince || got != nil && (got.Backup != first.ID || got.Bitmap != "b1") {
				t.Errorf("since = %+v, want backup %d and bitmap b1: %v", got, first.ID, tt.wantSince)
			}
			if tt.wantNotice == "" && len(notices) > 0 || tt.wantNotice != "" && (len(notices) != 1 || !strings.Contains(notices[0], tt.wantNotice)) {
				t.Errorf("notices %q, want one with %q", notices, tt.wantNotice)
			}
			out := filepath.Join(dir, "out.img")
			restoreTo(t, r, second, false, out)
			if fileHash(t, out) != fileHash(t, disk) {
				t.Fatal("the incremental backup does not restore to the disk's bytes")
			}
		})
	}
}

func TestLiveCheckFailsTheBackup(t *testing.T) {
	r, _ := newRepo(t)
	disk := filepath.Join(t.TempDir(), "vda.img")
	makeDisk(t, disk, 8*testChunk, region{0, 2 * testChunk, "random"})
	lost := errors.New("the point in time did not hold")
	_, err := r.Backup(context.Background(), BackupRequest{
		HostID: 1, HostName: "vm", Disks: []DiskSource{{Name: "vda", Path: disk}},
		Live:  []LiveDisk{{Reader: openFileReader(t, disk), Bitmap: "b1"}},
		Check: func(context.Context) error { return lost },
	})
	if !errors.Is(err, lost) {
		t.Fatalf("backup: %v, want the check's error", err)
	}
	ms, err := r.Manifests(context.Background())
	if err != nil || len(ms) != 0 {
		t.Fatalf("%d backups visible after a failed check (%v)", len(ms), err)
	}
	prev, err := r.PreviousDisks(context.Background(), 1, []string{"vda"})
	if err != nil || len(prev) != 0 {
		t.Fatalf("previous disks %v (%v), want none", prev, err)
	}
}

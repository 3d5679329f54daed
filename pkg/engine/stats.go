package engine

import (
	"context"
	"fmt"
	"strings"

	"github.com/dropback/dropback/pkg/store"
)

// Stats describes what a repository holds.
type Stats struct {
	Backups, Snapshots int
	// LogicalBytes is the sum of the disk sizes of every backup; DataBytes
	// the sum of their non-zero chunks.
	LogicalBytes, DataBytes int64
	// UniqueBytes is the plain size of the distinct chunks stored, BlobBytes
	// their compressed size, StoredBytes the size of every object.
	UniqueBytes, BlobBytes, StoredBytes int64
	Chunks, Packs                       int64
	ReclaimedBytes                      int64
}

// Stats sums up the repository.
func (r *Repo) Stats(ctx context.Context) (*Stats, error) {
	s := &Stats{}
	ms, err := r.Manifests(ctx)
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		if m.Snapshot {
			s.Snapshots++
		} else {
			s.Backups++
		}
		for _, d := range m.Disks {
			s.LogicalBytes += d.SizeBytes
			s.DataBytes += d.DataBytes
		}
	}
	idx, _, err := r.LoadIndex(ctx)
	if err != nil {
		return nil, err
	}
	for _, l := range idx.chunks {
		s.UniqueBytes += int64(l.raw)
		s.BlobBytes += int64(l.length)
	}
	s.Chunks = int64(idx.Len())
	idx.release()
	err = r.raw.List(ctx, "", func(info store.Info) error {
		s.StoredBytes += info.Size
		if strings.HasPrefix(info.Name, "packs/") {
			s.Packs++
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list repository: %w", err)
	}
	s.ReclaimedBytes, err = r.reclaimed(ctx)
	return s, err
}

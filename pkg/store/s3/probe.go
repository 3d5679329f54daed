package s3

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/minio/minio-go/v7"

	"github.com/dropback/dropback/pkg/store"
)

// probeContent is the body of a probe object.
var probeContent = []byte("dropback conditional-write probe\n")

// ConditionalWrites reports whether the server was found to honour
// conditional writes (If-None-Match: * on PUT). It is false until the probe
// has run: the first Put runs it, or CreateBucket, or Probe.
func (s *Store) ConditionalWrites() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.probed && s.conditional
}

// Probe runs the conditional-write probe now, if it has not run: it puts
// an object under .dropback-probe/ and deletes it again. A command that
// only reads never needs it.
func (s *Store) Probe(ctx context.Context) error {
	if err := s.probe(ctx); err != nil {
		return s.redact(fmt.Errorf("open %s: %w", s.location, err))
	}
	return nil
}

// probe runs the conditional-write probe once it can answer: it puts the
// same new key twice with If-None-Match: * and requires the second put to
// fail with 412 Precondition Failed. It returns an error wrapping
// ErrNoBucket when the bucket is missing (the probe then runs again later),
// and one wrapping ErrUnconditional when the server ignores the condition
// and the store requires it.
func (s *Store) probe(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.probeLocked(ctx)
}

func (s *Store) probeLocked(ctx context.Context) error {
	if !s.probed {
		ok, err := s.runProbe(ctx)
		if err != nil {
			return err
		}
		s.probed, s.conditional = true, ok
	}
	if s.require && !s.conditional {
		return fmt.Errorf("%w: %s ignores If-None-Match: * on PUT, so concurrent writers could overwrite each other's backups; "+
			"this server is unsafe for concurrent writers and dropback refuses to use it", ErrUnconditional, s.endpoint)
	}
	return nil
}

func (s *Store) runProbe(ctx context.Context) (bool, error) {
	key := s.prefix + probeDir + "/" + newToken()
	put := func(trailer bool) error {
		return s.putWith(ctx, trailer, key, probeContent, newToken())
	}
	err := put(true)
	if refused(err) {
		// Some servers do not take trailing checksums; carry on without.
		if put(false) == nil {
			s.noTrailer.Store(true)
			err = nil
		}
	}
	if err != nil {
		err = s.writeErr(ctx, err)
		if errors.Is(err, ErrNoBucket) {
			return false, err
		}
		return false, fmt.Errorf("check conditional writes: put probe object: %w", err)
	}
	second := s.mapErr(put(!s.noTrailer.Load()))
	// The probe is garbage either way; a failed delete leaves a small
	// object that List never shows.
	_ = s.bounded(context.WithoutCancel(ctx), "DELETE", key, func(ctx context.Context) error {
		return s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{})
	})
	switch {
	case second == nil:
		return false, nil
	case errors.Is(second, store.ErrExists):
		return true, nil
	default:
		return false, fmt.Errorf("check conditional writes: put probe object again: %w", second)
	}
}

// checkWritable runs the probe first if Open could not (the bucket was
// missing), and refuses a write the probe forbids.
func (s *Store) checkWritable(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.probed && (s.conditional || !s.require) {
		return nil
	}
	return s.probeLocked(ctx)
}

// CreateBucket creates the store's bucket in its region, unless it exists
// and belongs to these credentials already, and then probes the server for
// conditional writes.
func (s *Store) CreateBucket(ctx context.Context) error {
	err := s.bounded(ctx, "PUT", "", func(ctx context.Context) error {
		return s.client.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: s.region})
	})
	if err != nil {
		resp := minio.ToErrorResponse(err)
		if resp.Code != "BucketAlreadyOwnedByYou" {
			if resp.Code == "BucketAlreadyExists" {
				return fmt.Errorf("create bucket %q at %s: the name is taken by another account", s.bucket, s.endpoint)
			}
			return s.redact(fmt.Errorf("create bucket %q: %w", s.bucket, s.mapErr(err)))
		}
	}
	if err := s.probe(ctx); err != nil {
		return s.redact(fmt.Errorf("open %s: %w", s.location, err))
	}
	return nil
}

// refused reports whether err is a server refusing a request's form (400,
// 411, 501), as one that does not take trailing checksums answers.
func refused(err error) bool {
	var resp minio.ErrorResponse
	if !errors.As(err, &resp) {
		return false
	}
	switch resp.StatusCode {
	case http.StatusBadRequest, http.StatusLengthRequired, http.StatusNotImplemented:
		return true
	}
	return false
}

// Package s3 implements store.Store on S3-compatible object storage (AWS S3,
// MinIO, Ceph RGW, DigitalOcean Spaces) with minio-go.
//
// A store is a bucket and a key prefix, named s3://bucket/prefix: the object
// "packs/ab/abcdef" is the key "prefix/packs/ab/abcdef". The endpoint and
// credentials come from the standard variables AWS_ENDPOINT_URL_S3 (else
// AWS_ENDPOINT_URL), AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_SESSION_TOKEN and AWS_REGION (else AWS_DEFAULT_REGION); Options
// override them.
//
// Put is create-once through a conditional write: the request carries
// If-None-Match: *, and the server answers 412 Precondition Failed when the
// key exists, which Put returns as store.ErrExists. Objects under twice
// PartSize (64 MiB by default) go in one PUT; larger ones in a multipart
// upload of even parts sent in parallel, whose start and completion carry
// the same condition (a server may check it at completion without excluding
// a racing completion, as MinIO does; see DefaultPartSize). Either way the
// object appears whole or not at all. Bodies carry a CRC32C trailer that the
// server checks, unless the server refuses trailers. Every Put tags its
// object with a random token in its metadata, so that a Put whose first
// attempt succeeded but whose answer was lost, and which minio-go then
// retried into a 412, still reports success rather than ErrExists.
//
// Not every S3-compatible server honours If-None-Match on PUT; one that
// ignores it silently overwrites. Open therefore probes the server: it puts
// a probe object twice with the condition and expects the second put to
// fail with 412. ConditionalWrites reports the result; with
// Options.RequireConditional, Open fails when the server does not honour
// the condition, because concurrent writers could then overwrite each
// other's manifests.
//
// minio-go retries failed requests with exponential backoff (ten attempts,
// at most a second apart) and stops as soon as the context is done; a
// response body cut off midway is fetched once more. Each attempt is bounded
// in time by the rule of internal/httplimit (DROPBACK_HTTP_TIMEOUT), and
// each operation with all its retries by four times that; a listing, by four
// times that between two keys. Answers other than object data are read up
// to 16 MiB, object data up to the length asked for. Errors name the
// operation, the object and what the server said, with its control
// characters escaped; they never contain the secret key.
package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/dropback/dropback/internal/httplimit"
	"github.com/dropback/dropback/pkg/store"
)

const (
	// DefaultPartSize is the part size of multipart uploads: an object of
	// less than twice this size (64 MiB) goes in a single PUT, a larger one
	// in parts of one to two part sizes, sent in parallel. The engine's
	// largest objects, packs of 16 MiB plus at most one chunk (itself at
	// most 16 MiB), thus always go in one PUT, for two reasons measured on
	// MinIO: a single PUT is create-once even when several writers race,
	// while two multipart uploads completing at once both succeeded in every
	// trial; and over loopback a 16 MiB pack went 20-50% faster in one PUT
	// than in two parts of 8 MiB (two more requests, and the server's
	// assembly of the parts).
	DefaultPartSize = 32 << 20
	// minPartSize is S3's smallest part but the last.
	minPartSize = 5 << 20
	// maxParallelParts bounds the parts of one object sent at once.
	maxParallelParts = 4

	// probeDir is the reserved first element of the probe objects' names.
	// Names under it are rejected and never listed.
	probeDir = ".dropback-probe"
	// putTokenKey is the metadata that tags an object with the Put that
	// created it.
	putTokenKey = "Dropback-Put"
)

// Store is a store.Store on a bucket of an S3-compatible server. It is safe
// for concurrent use, also by many processes and machines.
type Store struct {
	listLag time.Duration
	client  *minio.Client // sends trailing checksums
	core    minio.Core
	plain   *minio.Client // sends none, for servers that refuse them
	// noTrailer is set when the probe found that the server refuses
	// trailing checksums; Put then uses plain.
	noTrailer atomic.Bool
	bucket    string
	prefix    string // "" or ends in "/"
	location  string
	endpoint  string
	region    string
	secret    string // only to redact it from errors
	source    string // where the credentials came from, for messages
	partSize  int64
	require   bool
	timeout   time.Duration // of each attempt

	mu          sync.Mutex
	probed      bool // the probe ran to an answer
	conditional bool
}

var _ store.Store = (*Store)(nil)

// Location returns s3://bucket/prefix.
func (s *Store) Location() string { return s.location }

// ListLag implements store.Lagger.
func (s *Store) ListLag() time.Duration { return s.listLag }

// Endpoint returns the server's URL, as http://host:port.
func (s *Store) Endpoint() string { return s.endpoint }

// key checks name and returns its key in the bucket.
func (s *Store) key(name string) (string, error) {
	if err := store.CheckName(name); err != nil {
		return "", err
	}
	if reserved(name) {
		return "", fmt.Errorf("invalid object name %q: %q is reserved", name, probeDir)
	}
	return s.prefix + name, nil
}

func reserved(name string) bool {
	return name == probeDir || strings.HasPrefix(name, probeDir+"/")
}

// bounded runs op, one operation on key that minio-go may retry, within
// httplimit's bound on a request with its retries, and explains an error
// that came of running out of time.
func (s *Store) bounded(ctx context.Context, method, key string, op func(ctx context.Context) error) error {
	dl := httplimit.NewDeadline(ctx, s.timeout, method, s.endpoint+"/"+s.bucket+"/"+key)
	defer dl.Stop()
	return dl.Explain(op(dl.Context()))
}

// newToken returns a random tag for one Put.
func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Put implements store.Store.
func (s *Store) Put(ctx context.Context, name string, data []byte) error {
	key, err := s.key(name)
	if err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	if err := s.checkWritable(ctx); err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	token := newToken()
	err = s.putObject(ctx, key, data, token)
	if err == nil {
		return nil
	}
	err = s.writeErr(ctx, err)
	if errors.Is(err, store.ErrExists) && s.createdBy(ctx, key, token) {
		return nil // an earlier attempt of this Put created it
	}
	return s.redact(fmt.Errorf("put %s: %w", name, err))
}

// putObject uploads data to key, create-once, tagged with token.
func (s *Store) putObject(ctx context.Context, key string, data []byte, token string) error {
	return s.putWith(ctx, !s.noTrailer.Load(), key, data, token)
}

// putWith uploads data to key, create-once, tagged with token; with
// trailer, the body carries a CRC32C that the server checks, and no
// SHA-256 of the payload; without, it carries the SHA-256 in its signature
// on plain HTTP, and TLS alone guards it on HTTPS.
func (s *Store) putWith(ctx context.Context, trailer bool, key string, data []byte, token string) error {
	// Cancelling when done also ends the part uploaders of a failed
	// multipart upload.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	client := s.client
	if !trailer {
		client = s.plain
	}
	opts := minio.PutObjectOptions{
		ContentType:          "application/octet-stream",
		UserMetadata:         map[string]string{putTokenKey: token},
		DisableContentSha256: trailer,
	}
	if trailer {
		// minio-go adds no trailing checksum to a single PUT on its own.
		opts.Checksum = minio.ChecksumCRC32C
	}
	opts.SetMatchETagExcept("*") // If-None-Match: *
	size := int64(len(data))
	if parts := size / s.partSize; parts < 2 {
		opts.DisableMultipart = true
	} else {
		opts.PartSize = uint64((size + parts - 1) / parts)
		opts.NumThreads = uint(min(parts, maxParallelParts))
	}
	return s.bounded(ctx, "PUT", key, func(ctx context.Context) error {
		_, err := client.PutObject(ctx, s.bucket, key, bytes.NewReader(data), size, opts)
		return err
	})
}

// createdBy reports whether key holds the object tagged with token.
func (s *Store) createdBy(ctx context.Context, key, token string) bool {
	var info minio.ObjectInfo
	err := s.bounded(ctx, "HEAD", key, func(ctx context.Context) (err error) {
		info, err = s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
		return err
	})
	if err != nil {
		return false
	}
	for k, v := range info.UserMetadata {
		if strings.EqualFold(k, putTokenKey) || strings.EqualFold(k, "X-Amz-Meta-"+putTokenKey) {
			return v == token
		}
	}
	return false
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, name string, off, length int64) ([]byte, error) {
	return s.get(ctx, name, off, length, nil)
}

var _ store.ReaderAt = (*Store)(nil)

// ReadAt implements store.ReaderAt: one ranged GET read into p.
func (s *Store) ReadAt(ctx context.Context, name string, p []byte, off int64) (int, error) {
	data, err := s.get(ctx, name, off, int64(len(p)), p)
	if len(data) > 0 && &data[0] != &p[0] {
		// An answer of unknown length was read into a buffer of its own.
		return copy(p, data), err
	}
	return len(data), err
}

// get reads length bytes at off (-1: to the end), into buf when it is big
// enough.
func (s *Store) get(ctx context.Context, name string, off, length int64, buf []byte) ([]byte, error) {
	key, err := s.key(name)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", name, err)
	}
	if off < 0 || length < -1 {
		return nil, fmt.Errorf("get %s: invalid range offset %d length %d", name, off, length)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("get %s: %w", name, err)
	}
	if length == 0 {
		// No request can ask for no bytes; the object must still exist.
		if _, err := s.Stat(ctx, name); err != nil {
			return nil, err
		}
		return []byte{}, nil
	}
	var data []byte
	// minio-go retries a request that fails before its answer; a body cut
	// off midway is fetched once more here.
	for attempt := 0; ; attempt++ {
		err = s.bounded(ctx, "GET", key, func(ctx context.Context) (err error) {
			data, err = s.getObject(ctx, key, off, length, buf)
			return err
		})
		if err == nil || attempt == 1 || ctx.Err() != nil || !bodyCut(err) {
			break
		}
	}
	if err != nil {
		err = s.mapErr(err)
		if errors.Is(err, errPastEnd) {
			return []byte{}, nil
		}
		return nil, s.redact(fmt.Errorf("get %s: %w", name, err))
	}
	return data, nil
}

// errPastEnd is a range that starts at or past the object's end (416).
var errPastEnd = errors.New("range starts past the end")

// errBodyCut marks a response whose body ended early.
type errBodyCut struct{ err error }

func (e errBodyCut) Error() string { return "read response: " + e.err.Error() }
func (e errBodyCut) Unwrap() error { return e.err }

func bodyCut(err error) bool {
	var cut errBodyCut
	return errors.As(err, &cut)
}

func (s *Store) getObject(ctx context.Context, key string, off, length int64, buf []byte) ([]byte, error) {
	// The answer is object data: as long as asked for, and as long as it
	// says when asked for it all.
	ctx = httplimit.WithMaxBody(ctx, max(length, -1))
	var opts minio.GetObjectOptions
	switch {
	case length > 0:
		if err := opts.SetRange(off, off+length-1); err != nil {
			return nil, err
		}
	case off > 0:
		if err := opts.SetRange(off, 0); err != nil { // bytes=off-
			return nil, err
		}
	}
	body, info, _, err := s.core.GetObject(ctx, s.bucket, key, opts)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	if info.Size < 0 { // no length given
		data, err := io.ReadAll(body)
		if err != nil {
			return nil, s.cut(ctx, err)
		}
		return data, nil
	}
	if length > 0 && info.Size > length {
		return nil, fmt.Errorf("%s answered %d bytes for a range of %d", s.endpoint, info.Size, length)
	}
	data := buf
	if int64(cap(data)) < info.Size {
		data = make([]byte, info.Size)
	}
	data = data[:info.Size]
	if _, err := io.ReadFull(body, data); err != nil {
		return nil, s.cut(ctx, err)
	}
	return data, nil
}

// cut explains a failure to read a response's body.
func (s *Store) cut(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return errBodyCut{err}
}

// Stat implements store.Store.
func (s *Store) Stat(ctx context.Context, name string) (store.Info, error) {
	key, err := s.key(name)
	if err != nil {
		return store.Info{}, fmt.Errorf("stat %s: %w", name, err)
	}
	if err := ctx.Err(); err != nil {
		return store.Info{}, fmt.Errorf("stat %s: %w", name, err)
	}
	var info minio.ObjectInfo
	err = s.bounded(ctx, "HEAD", key, func(ctx context.Context) (err error) {
		info, err = s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
		return err
	})
	if err != nil {
		return store.Info{}, s.redact(fmt.Errorf("stat %s: %w", name, s.mapErr(err)))
	}
	return store.Info{Name: name, Size: info.Size, ModTime: info.LastModified}, nil
}

// List implements store.Store. It is one recursive listing of the keys
// under the prefix, a thousand to a request.
func (s *Store) List(ctx context.Context, prefix string, fn func(store.Info) error) error {
	if err := store.CheckPrefix(prefix); err != nil {
		return fmt.Errorf("list %q: %w", prefix, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("list %q: %w", prefix, err)
	}
	// The deadline runs while the listing waits for the server, from one
	// key to the next, and stops while fn works.
	dl := httplimit.NewDeadline(ctx, s.timeout, "LIST", s.endpoint+"/"+s.bucket+"/"+s.prefix+prefix)
	defer dl.Stop()
	objects := s.client.ListObjects(dl.Context(), s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true})
	for obj := range objects {
		if obj.Err != nil {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("list %q: %w", prefix, err)
			}
			return s.redact(fmt.Errorf("list %q: %w", prefix, s.mapErr(dl.Explain(obj.Err))))
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("list %q: %w", prefix, err)
		}
		name := strings.TrimPrefix(obj.Key, s.prefix)
		if reserved(name) || store.CheckName(name) != nil {
			continue // a probe, or a key no Put can make
		}
		dl.Pause()
		if err := fn(store.Info{Name: name, Size: obj.Size, ModTime: obj.LastModified}); err != nil {
			return err
		}
		dl.Restart()
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("list %q: %w", prefix, err)
	}
	return nil
}

// Delete implements store.Store. S3 answers success for a missing key.
func (s *Store) Delete(ctx context.Context, name string) error {
	key, err := s.key(name)
	if err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	err = s.bounded(ctx, "DELETE", key, func(ctx context.Context) error {
		return s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{})
	})
	if err != nil {
		err = s.writeErr(ctx, err)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return s.redact(fmt.Errorf("delete %s: %w", name, err))
	}
	return nil
}

// ReadParallelism implements store.Paralleler: requests to an object store
// wait on the network far more than on the server, so many go at once.
func (s *Store) ReadParallelism() int { return 32 }

package s3_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/dropback/dropback/internal/miniotest"
	"github.com/dropback/dropback/pkg/store"
	"github.com/dropback/dropback/pkg/store/s3"
	"github.com/dropback/dropback/pkg/store/storetest"
)

// options reach srv through endpoint (srv's, or a proxy's). MinIO lists
// what was written at once.
func options(srv *miniotest.Server, endpoint string) s3.Options {
	return s3.Options{
		Endpoint: endpoint, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Region: srv.Region,
		Getenv: func(string) string { return "" }, ListLag: -1,
	}
}

// open opens a store and runs its probe, as its first Put would.
func open(tb testing.TB, rawURL string, opts s3.Options) *s3.Store {
	tb.Helper()
	s, err := s3.Open(context.Background(), rawURL, opts)
	if err != nil {
		tb.Fatalf("Open(%s): %v", rawURL, err)
	}
	if err := s.Probe(context.Background()); err != nil && !errors.Is(err, s3.ErrNoBucket) {
		tb.Fatalf("probe %s: %v", rawURL, err)
	}
	return s
}

// openProbed opens a store and runs its probe, and returns the first
// error: what a first Put meets.
func openProbed(ctx context.Context, rawURL string, opts s3.Options) (*s3.Store, error) {
	s, err := s3.Open(ctx, rawURL, opts)
	if err == nil {
		err = s.Probe(ctx)
	}
	return s, err
}

func content(seed uint64, n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 's', '3'}).Read(b)
	return b
}

func TestConformance(t *testing.T) {
	srv := miniotest.Start(t)
	for _, prefix := range []string{"/repo/one", ""} {
		t.Run("prefix="+prefix, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) store.Store {
				s := open(t, "s3://"+srv.Bucket(t)+prefix, options(srv, srv.Endpoint))
				if !s.ConditionalWrites() {
					t.Fatal("MinIO does not honour conditional writes, says the probe")
				}
				return s
			})
		})
	}
}

func TestParseURL(t *testing.T) {
	tests := []struct {
		in, bucket, prefix string
		bad                bool
	}{
		{in: "s3://backups", bucket: "backups"},
		{in: "s3://backups/", bucket: "backups"},
		{in: "s3://backups/fleet/web", bucket: "backups", prefix: "fleet/web"},
		{in: "s3://backups/fleet/web/", bucket: "backups", prefix: "fleet/web"},
		{in: "s3://my.bucket-1/p", bucket: "my.bucket-1", prefix: "p"},
		{in: "s3://", bad: true},
		{in: "s3:///prefix", bad: true},
		{in: "s3://Bad_Bucket/p", bad: true},
		{in: "s3://ab/p", bad: true},
		{in: "s3://bucket/a//b", bad: true},
		{in: "s3://bucket/a/../b", bad: true},
		{in: "s3://bucket:9000/p", bad: true},
		{in: "s3://user@bucket/p", bad: true},
		{in: "s3://bucket/p?x=1", bad: true},
		{in: "http://bucket/p", bad: true},
		{in: "s3:bucket", bad: true},
	}
	for _, tt := range tests {
		bucket, prefix, err := s3.ParseURL(tt.in)
		switch {
		case tt.bad && err == nil:
			t.Errorf("ParseURL(%q) = %q, %q; want an error", tt.in, bucket, prefix)
		case !tt.bad && err != nil:
			t.Errorf("ParseURL(%q): %v", tt.in, err)
		case !tt.bad && (bucket != tt.bucket || prefix != tt.prefix):
			t.Errorf("ParseURL(%q) = %q, %q; want %q, %q", tt.in, bucket, prefix, tt.bucket, tt.prefix)
		}
	}
}

func TestOpenReadsTheEnvironment(t *testing.T) {
	srv := miniotest.Start(t)
	bucket := srv.Bucket(t)
	env := map[string]string{}
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	getenv := func(k string) string { return env[k] }
	s := open(t, "s3://"+bucket+"/env", s3.Options{Getenv: getenv})
	ctx := context.Background()
	if err := s.Put(ctx, "x", []byte("y")); err != nil {
		t.Fatal(err)
	}
	if s.Location() != "s3://"+bucket+"/env" || s.Endpoint() != srv.Endpoint {
		t.Errorf("Location %q, Endpoint %q", s.Location(), s.Endpoint())
	}

	// AWS_ENDPOINT_URL_S3 wins over AWS_ENDPOINT_URL.
	env["AWS_ENDPOINT_URL_S3"], env["AWS_ENDPOINT_URL"] = srv.Endpoint, "http://127.0.0.1:1"
	open(t, "s3://"+bucket+"/env", s3.Options{Getenv: getenv})

	for _, tc := range []struct{ key, val, want string }{
		{"AWS_SECRET_ACCESS_KEY", "", "AWS_SECRET_ACCESS_KEY"},
		{"AWS_ENDPOINT_URL_S3", "ftp://127.0.0.1", "invalid URL: endpoint"},
		{"AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9000/path", "invalid URL: endpoint"},
	} {
		saved := env[tc.key]
		env[tc.key] = tc.val
		_, err := s3.Open(ctx, "s3://"+bucket+"/env", s3.Options{Getenv: getenv})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open with %s=%q: got %v, want an error saying %q", tc.key, tc.val, err, tc.want)
		}
		env[tc.key] = saved
	}
}

// ignoringProxy puts a proxy in front of srv that makes it overwrite
// objects despite If-None-Match: *, as servers without conditional writes
// do: before forwarding a conditional PUT, it deletes the key. (Removing
// the header instead would break the request's signature.)
func ignoringProxy(t *testing.T, srv *miniotest.Server) *proxy {
	p := newProxy(t, srv.Endpoint)
	c := srv.Client(t)
	p.before = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPut && r.Header.Get("If-None-Match") == "*" && !r.URL.Query().Has("partNumber") {
			bucket, key := objectKey(r)
			if err := c.RemoveObject(r.Context(), bucket, key, minio.RemoveObjectOptions{}); err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return false
			}
		}
		return true
	}
	return p
}

func TestProbeDetectsAServerThatIgnoresConditionalWrites(t *testing.T) {
	srv := miniotest.Start(t)
	bucket := srv.Bucket(t)
	ctx := context.Background()
	url := "s3://" + bucket + "/repo"

	if s := open(t, url, options(srv, srv.Endpoint)); !s.ConditionalWrites() {
		t.Fatal("probe of MinIO itself: conditional writes not honoured")
	}

	p := ignoringProxy(t, srv)
	s := open(t, url, options(srv, p.URL))
	if s.ConditionalWrites() {
		t.Fatal("probe through a server that overwrites: conditional writes honoured")
	}
	// Without RequireConditional the store still works, create-once aside.
	if err := s.Put(ctx, "a", []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "a", []byte("two")); err != nil {
		t.Fatalf("second Put through the overwriting server: %v", err)
	}
	if got, _ := s.Get(ctx, "a", 0, -1); string(got) != "two" {
		t.Fatalf("the overwriting server kept %q", got)
	}

	opts := options(srv, p.URL)
	opts.RequireConditional = true
	_, err := openProbed(ctx, url, opts)
	if !errors.Is(err, s3.ErrUnconditional) || !strings.Contains(err.Error(), "concurrent writers") {
		t.Fatalf("Open with RequireConditional: got %v, want ErrUnconditional saying concurrent writers are unsafe", err)
	}
	t.Logf("refusal: %v", err)

	// The probe leaves nothing that List shows.
	var names []string
	s.List(ctx, "", func(i store.Info) error { names = append(names, i.Name); return nil })
	if len(names) != 1 || names[0] != "a" {
		t.Fatalf("List after probes = %q, want [a]", names)
	}
}

func TestMissingBucketAndCreateBucket(t *testing.T) {
	srv := miniotest.Start(t)
	bucket := miniotest.BucketName(t)
	srv.RemoveAtEnd(t, bucket)
	ctx := context.Background()
	opts := options(srv, srv.Endpoint)
	opts.RequireConditional = true
	s := open(t, "s3://"+bucket+"/repo", opts)
	if s.ConditionalWrites() {
		t.Fatal("ConditionalWrites before the bucket exists")
	}
	err := s.Put(ctx, "config", []byte("x"))
	if !errors.Is(err, s3.ErrNoBucket) || !strings.Contains(err.Error(), "--create-bucket") {
		t.Fatalf("Put into a missing bucket: got %v, want ErrNoBucket with a hint", err)
	}
	if _, err := s.Get(ctx, "config", 0, -1); !errors.Is(err, s3.ErrNoBucket) {
		t.Fatalf("Get from a missing bucket: got %v, want ErrNoBucket", err)
	}
	if err := s.List(ctx, "", func(store.Info) error { return nil }); !errors.Is(err, s3.ErrNoBucket) {
		t.Fatalf("List of a missing bucket: got %v, want ErrNoBucket", err)
	}
	for range 2 { // idempotent
		if err := s.CreateBucket(ctx); err != nil {
			t.Fatalf("CreateBucket: %v", err)
		}
	}
	if !s.ConditionalWrites() {
		t.Fatal("ConditionalWrites false after CreateBucket probed MinIO")
	}
	if err := s.Put(ctx, "config", []byte("x")); err != nil {
		t.Fatalf("Put after CreateBucket: %v", err)
	}
}

func TestErrorsSayWhatFailedAndHideTheSecret(t *testing.T) {
	srv := miniotest.Start(t)
	bucket := srv.Bucket(t)
	ctx := context.Background()
	good := open(t, "s3://"+bucket+"/r", options(srv, srv.Endpoint))
	if err := good.Put(ctx, "packs/ab/x", []byte("x")); err != nil {
		t.Fatal(err)
	}

	const wrong = "wrong-secret-0123456789"
	opts := options(srv, srv.Endpoint)
	opts.SecretKey = wrong
	// Open sends nothing; the first request is refused.
	wrongStore, err := s3.Open(ctx, "s3://"+bucket+"/r", opts)
	if err != nil {
		t.Fatalf("Open with a wrong secret: %v; it should send no request", err)
	}
	_, err = wrongStore.Get(ctx, "packs/ab/x", 0, -1)
	if !errors.Is(err, s3.ErrAccessDenied) {
		t.Fatalf("Get with a wrong secret: got %v, want ErrAccessDenied", err)
	}
	if err = wrongStore.Probe(ctx); !errors.Is(err, s3.ErrAccessDenied) {
		t.Fatalf("Probe with a wrong secret: got %v, want ErrAccessDenied", err)
	}
	for _, secret := range []string{wrong, srv.SecretKey} {
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("error shows the secret key: %v", err)
		}
	}
	if !strings.Contains(err.Error(), "s3://"+bucket+"/r") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("error does not name the repository on one line: %q", err)
	}

	// An unreachable server: Open fails fast with few retries, and says so.
	opts = options(srv, "http://"+closedPort(t))
	opts.MaxRetries = 2
	start := time.Now()
	unreachable, err := s3.Open(ctx, "s3://"+bucket+"/r", opts)
	if err == nil {
		err = unreachable.Probe(ctx)
	}
	if err == nil || !strings.Contains(err.Error(), "cannot reach") || time.Since(start) > 10*time.Second {
		t.Fatalf("Open of an unreachable server: %v after %v", err, time.Since(start))
	}
	t.Logf("unreachable: %v", err)
}

// closedPort returns an address where nothing listens.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestContextCancelsAHangingRequest(t *testing.T) {
	srv := miniotest.Start(t)
	bucket := srv.Bucket(t)
	p := newProxy(t, srv.Endpoint)
	hang := make(chan struct{})
	defer close(hang)
	s := open(t, "s3://"+bucket+"/r", options(srv, p.URL))
	p.before = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodGet {
			select {
			case <-hang:
			case <-r.Context().Done():
			}
			return false
		}
		return true
	}
	ctx := context.Background()
	if err := s.Put(ctx, "obj", []byte("data")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := s.Get(ctx, "obj", 0, -1)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("Get against a hanging server: %v after %v, want DeadlineExceeded soon", err, time.Since(start))
	}
}

func TestLargeObjectsGoInParts(t *testing.T) {
	srv := miniotest.Start(t)
	bucket := srv.Bucket(t)
	p := newProxy(t, srv.Endpoint)
	s := open(t, "s3://"+bucket+"/r", options(srv, p.URL))
	ctx := context.Background()

	// A pack of 16 MiB and a chunk of 16 MiB goes in one checksummed PUT.
	pack := content(1, 32<<20+300<<10)
	p.reset()
	if err := s.Put(ctx, "packs/aa/pack", pack); err != nil {
		t.Fatal(err)
	}
	if got := p.snapshot(); got["PUT"] != 1 || got["POST initiate"] != 0 || got["checksummed"] != 1 {
		t.Fatalf("requests for a 32.3 MiB pack: %v, want one checksummed PUT", got)
	}

	// With 5 MiB parts, 11 MiB go in two checksummed parts.
	opts := options(srv, p.URL)
	opts.PartSize = 5 << 20
	s = open(t, "s3://"+bucket+"/r", opts)
	large := content(2, 11<<20)
	p.reset()
	if err := s.Put(ctx, "packs/aa/large", large); err != nil {
		t.Fatal(err)
	}
	got := p.snapshot()
	if got["POST initiate"] != 1 || got["PUT part"] != 2 || got["POST complete"] != 1 || got["PUT"] != 0 || got["checksummed"] != 2 {
		t.Fatalf("requests for 11 MiB in 5 MiB parts: %v, want one initiate, two checksummed parts, one complete", got)
	}
	if b, err := s.Get(ctx, "packs/aa/large", 0, -1); err != nil || !bytes.Equal(b, large) {
		t.Fatalf("Get of the object sent in parts: %v", err)
	}
	// Create-once holds for a multipart upload after the object exists.
	if err := s.Put(ctx, "packs/aa/large", content(3, len(large))); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second multipart Put: got %v, want ErrExists", err)
	}
	if b, err := s.Get(ctx, "packs/aa/large", 0, -1); err != nil || !bytes.Equal(b, large) {
		t.Fatalf("the object changed after a refused multipart Put (err %v)", err)
	}
}

func TestPutWhoseAnswerWasLostIsNoConflict(t *testing.T) {
	srv := miniotest.Start(t)
	bucket := srv.Bucket(t)
	p := newProxy(t, srv.Endpoint)
	s := open(t, "s3://"+bucket+"/r", options(srv, p.URL))
	ctx := context.Background()
	var lost sync.Once
	p.before = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPut || !strings.HasSuffix(r.URL.Path, "/backups/0000000001") {
			return true
		}
		done := false
		lost.Do(func() {
			// The server stores the object, but its answer never arrives:
			// the client sees a 503 and tries again.
			rec := httptest.NewRecorder()
			p.forward(rec, r)
			if rec.Code != http.StatusOK {
				t.Errorf("forwarded PUT answered %d", rec.Code)
			}
			w.WriteHeader(http.StatusServiceUnavailable)
			done = true
		})
		return !done
	}
	if err := s.Put(ctx, "backups/0000000001", []byte(`{"id":1}`)); err != nil {
		t.Fatalf("Put retried after its answer was lost: %v, want success", err)
	}
	if got := p.count("PUT"); got < 2 {
		t.Fatalf("%d PUTs, want a retry", got)
	}
	// Another Put of the same bytes is a conflict all the same.
	if err := s.Put(ctx, "backups/0000000001", []byte(`{"id":1}`)); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second Put: got %v, want ErrExists", err)
	}
}

func TestNamesUnderTheProbeFolderAreReserved(t *testing.T) {
	srv := miniotest.Start(t)
	s := open(t, "s3://"+srv.Bucket(t), options(srv, srv.Endpoint))
	err := s.Put(context.Background(), ".dropback-probe/x", []byte("x"))
	if err == nil || errors.Is(err, store.ErrExists) {
		t.Fatalf("Put of a reserved name: %v", err)
	}
}

func TestServerRefusingTrailingChecksums(t *testing.T) {
	srv := miniotest.Start(t)
	bucket := srv.Bucket(t)
	p := newProxy(t, srv.Endpoint)
	p.before = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("X-Amz-Trailer") != "" {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusNotImplemented)
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NotImplemented</Code><Message>trailing checksums are not supported</Message></Error>`)
			return false
		}
		return true
	}
	opts := options(srv, p.URL)
	opts.RequireConditional = true
	opts.PartSize = 5 << 20
	s := open(t, "s3://"+bucket+"/r", opts)
	if !s.ConditionalWrites() {
		t.Fatal("conditional writes not found")
	}
	ctx := context.Background()
	for _, n := range []int{100, 11 << 20} { // one PUT, two parts
		data := content(uint64(n), n)
		name := fmt.Sprintf("obj-%d", n)
		if err := s.Put(ctx, name, data); err != nil {
			t.Fatalf("Put of %d bytes without trailing checksums: %v", n, err)
		}
		if got, err := s.Get(ctx, name, 0, -1); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("Get of %d bytes: %v", n, err)
		}
	}
}

// A server (or proxy) may answer a GET in chunks, without Content-Length:
// ReadAt must still fill the caller's buffer.
func TestReadAtOfAnAnswerWithoutLength(t *testing.T) {
	srv := miniotest.Start(t)
	p := newProxy(t, srv.Endpoint)
	s := open(t, "s3://"+srv.Bucket(t)+"/r", options(srv, p.URL))
	ctx := context.Background()
	data := content(4, 10000)
	if err := s.Put(ctx, "obj", data); err != nil {
		t.Fatal(err)
	}
	p.before = func(w http.ResponseWriter, r *http.Request) bool {
		if requestKind(r) != "GET range" {
			return true
		}
		rec := httptest.NewRecorder()
		p.forward(rec, r)
		for k, v := range rec.Header() {
			if k != "Content-Length" {
				w.Header()[k] = v
			}
		}
		w.WriteHeader(rec.Code)
		w.(http.Flusher).Flush() // the length is unknown: chunked
		w.Write(rec.Body.Bytes())
		return false
	}
	buf := make([]byte, 1000)
	n, err := store.ReadAt(ctx, s, "obj", buf, 300)
	if err != nil || n != len(buf) || !bytes.Equal(buf, data[300:1300]) {
		t.Fatalf("ReadAt of an answer without length: n %d, err %v, same bytes %v", n, err, bytes.Equal(buf, data[300:1300]))
	}
	if got := p.count("GET range"); got == 0 {
		t.Fatal("the read did not go through the proxy")
	}
}

// How long listings are taken to lag: store.DefaultListLag unless
// DROPBACK_S3_LIST_LAG says otherwise; a value that is no duration is one
// clear error.
func TestListLagSetting(t *testing.T) {
	srv := miniotest.Start(t)
	bucket := srv.Bucket(t)
	for _, tc := range []struct {
		env  string
		want time.Duration
		err  bool
	}{{"", store.DefaultListLag, false}, {"0s", 0, false}, {"5m", 5 * time.Minute, false}, {"soon", 0, true}, {"-1m", 0, true}} {
		opts := options(srv, srv.Endpoint)
		opts.ListLag = 0
		opts.Getenv = func(k string) string {
			if k == "DROPBACK_S3_LIST_LAG" {
				return tc.env
			}
			return ""
		}
		s, err := s3.Open(context.Background(), "s3://"+bucket+"/lag", opts)
		if tc.err {
			if !errors.Is(err, s3.ErrInvalidSetting) {
				t.Errorf("DROPBACK_S3_LIST_LAG=%q: %v, want ErrInvalidSetting", tc.env, err)
			}
			continue
		}
		if err != nil || s.ListLag() != tc.want {
			t.Errorf("DROPBACK_S3_LIST_LAG=%q: lag %v, %v; want %v", tc.env, s.ListLag(), err, tc.want)
		}
	}
}

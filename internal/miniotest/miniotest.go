// Package miniotest gives tests a real, erasure-coded MinIO on 127.0.0.1,
// run by scripts/minio.sh.
//
// Start returns the server shared by every test package of a `go test` run
// (and by later runs): the first caller builds MinIO if it is missing and
// starts it; the others find it running through its state dir
// (MINIO_STATE_DIR, default /tmp/dropback-minio) and reuse it. A server
// started this way stops itself after half an hour without a test. Each test
// takes its own bucket with Bucket, removed with its content at the end.
//
// StartPrivate starts a server of the test's own, stopped at its end, for
// tests that stop MinIO or remove one of its drives.
//
// When MinIO cannot be built or started, the tests skip with one message
// saying why; with DROPBACK_REQUIRE_MINIO=1 they fail instead.
package miniotest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// sharedIdleStop is how long the shared server outlives the last test
// that asked for it.
const sharedIdleStop = 30 * time.Minute

// Server is a running MinIO.
type Server struct {
	// Endpoint is http://127.0.0.1:port.
	Endpoint  string
	AccessKey string
	SecretKey string
	Region    string
	// StateDir holds the server's pid, port, credentials, log and data.
	StateDir string

	script string
}

var (
	sharedOnce sync.Once
	shared     *Server
	sharedErr  error
)

// Shared returns the shared server, starting it if needed. It is for
// TestMain; tests call Start.
func Shared() (*Server, error) {
	sharedOnce.Do(func() {
		dir := os.Getenv("MINIO_STATE_DIR")
		if dir == "" {
			dir = "/tmp/dropback-minio"
		}
		shared, sharedErr = start(dir, sharedIdleStop)
	})
	return shared, sharedErr
}

// Start returns the shared server, or skips tb when MinIO is unavailable.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s, err := Shared()
	if err != nil {
		unavailable(tb, err)
	}
	return s
}

// StartPrivate starts a server for t alone, with its state under t's temp
// dir, and stops it when t ends.
func StartPrivate(t *testing.T) *Server {
	t.Helper()
	s, err := start(t.TempDir(), 10*time.Minute)
	if err != nil {
		unavailable(t, err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop private MinIO: %v", err)
		}
	})
	return s
}

func unavailable(tb testing.TB, err error) {
	tb.Helper()
	if os.Getenv("DROPBACK_REQUIRE_MINIO") == "1" {
		tb.Fatalf("MinIO unavailable (and DROPBACK_REQUIRE_MINIO=1): %v", err)
	}
	tb.Skipf("MinIO unavailable: %v", err)
}

// start runs `scripts/minio.sh start` for the state dir and reads the
// server's address and credentials from `scripts/minio.sh env`.
func start(stateDir string, idle time.Duration) (*Server, error) {
	script, err := findScript()
	if err != nil {
		return nil, err
	}
	s := &Server{StateDir: stateDir, script: script}
	if _, err := s.run("start", idle); err != nil {
		return nil, err
	}
	if err := s.readEnv(); err != nil {
		return nil, err
	}
	return s, nil
}

// run runs the script with a command and returns its standard output.
func (s *Server) run(command string, idle time.Duration) (string, error) {
	cmd := exec.Command("bash", s.script, command)
	cmd.Env = append(os.Environ(),
		"MINIO_STATE_DIR="+s.StateDir,
		fmt.Sprintf("MINIO_IDLE_STOP=%d", int(idle.Seconds())))
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.Join(strings.Fields(stderr.String()), " ")
		if len(msg) > 600 {
			msg = "…" + msg[len(msg)-600:]
		}
		return "", fmt.Errorf("scripts/minio.sh %s: %v: %s", command, err, msg)
	}
	return stdout.String(), nil
}

func (s *Server) readEnv() error {
	out, err := s.run("env", 0)
	if err != nil {
		return err
	}
	vars := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "=")
		if ok {
			vars[k] = v
		}
	}
	s.Endpoint, s.AccessKey, s.SecretKey, s.Region =
		vars["AWS_ENDPOINT_URL"], vars["AWS_ACCESS_KEY_ID"], vars["AWS_SECRET_ACCESS_KEY"], vars["AWS_REGION"]
	if s.Endpoint == "" || s.AccessKey == "" || s.SecretKey == "" {
		return fmt.Errorf("scripts/minio.sh env printed no endpoint or credentials: %q", out)
	}
	return nil
}

// findScript finds scripts/minio.sh in the module root, above the working
// directory (a test's is its package's directory).
func findScript() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "scripts", "minio.sh")
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("no %s", p)
			}
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("scripts/minio.sh not found above the working directory")
		}
		dir = parent
	}
}

// MC runs MinIO's client, mc, on the server as root, with the alias
// "local" (scripts/minio.sh builds it the first time), and returns its
// output.
func (s *Server) MC(args ...string) (string, error) {
	cmd := exec.Command("bash", append([]string{s.script, "mc"}, args...)...)
	cmd.Env = append(os.Environ(), "MINIO_STATE_DIR="+s.StateDir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("mc %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// Stop stops the server; its data stays, so Restart brings it back as it
// was, on the same port.
func (s *Server) Stop() error {
	_, err := s.run("stop", 0)
	return err
}

// Restart starts a stopped server again.
func (s *Server) Restart() error {
	_, err := s.run("start", 10*time.Minute)
	return err
}

// Drive returns the folder of drive i, 1 to 4.
func (s *Server) Drive(i int) string {
	return filepath.Join(s.StateDir, "data", fmt.Sprintf("d%d", i))
}

// Env returns the AWS_* variables that reach the server, as for os/exec,
// and says that its listings do not lag (MinIO lists what was written at
// once), so that a gc sweeps in the same run as it marks.
func (s *Server) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL=" + s.Endpoint,
		"AWS_ACCESS_KEY_ID=" + s.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
		"AWS_REGION=" + s.Region,
		"DROPBACK_S3_LIST_LAG=0s",
	}
}

// Client returns a minio-go client of the server.
func (s *Server) Client(tb testing.TB) *minio.Client {
	tb.Helper()
	u, err := url.Parse(s.Endpoint)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := minio.New(u.Host, &minio.Options{
		Creds:  credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Region: s.Region,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

var unsafeChars = regexp.MustCompile(`[^a-z0-9]+`)

// BucketName returns a new bucket name for tb, not yet created.
func BucketName(tb testing.TB) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := strings.Trim(unsafeChars.ReplaceAllString(strings.ToLower(tb.Name()), "-"), "-")
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	return strings.Trim("t-"+name, "-") + "-" + hex.EncodeToString(b[:])
}

// Bucket creates a new, empty bucket for tb and removes it, with whatever
// it then holds, when tb ends.
func (s *Server) Bucket(tb testing.TB) string {
	tb.Helper()
	name := BucketName(tb)
	c := s.Client(tb)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.MakeBucket(ctx, name, minio.MakeBucketOptions{Region: s.Region}); err != nil {
		tb.Fatalf("create bucket %s: %v", name, err)
	}
	s.RemoveAtEnd(tb, name)
	return name
}

// RemoveAtEnd removes the bucket, with its content, when tb ends.
func (s *Server) RemoveAtEnd(tb testing.TB, bucket string) {
	c := s.Client(tb)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		err := c.RemoveBucketWithOptions(ctx, bucket, minio.RemoveBucketOptions{ForceDelete: true})
		if err != nil && minio.ToErrorResponse(err).Code != minio.NoSuchBucket {
			tb.Logf("remove bucket %s: %v", bucket, err)
		}
	})
}

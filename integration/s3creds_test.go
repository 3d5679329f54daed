package integration

// S3 access as deployments have it, against the real MinIO: a user whose
// MinIO policy only lets it read, credentials from a profile of a
// credentials file, and TLS with a CA of the test's own.

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/require"

	"github.com/dropback/dropback/internal/miniotest"
)

// runEnv runs dropback on e's repository with the S3 variables env instead
// of the root user's.
func (e *s3Env) runEnv(env []string, args ...string) result {
	e.t.Helper()
	cmd := dropbackCmd(e.home, append([]string{"DROPBACK_REPO=" + e.repo}, env...), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	code, err := exitCode(cmd.Run())
	require.NoError(e.t, err)
	return result{args: args, code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// readOnlyUser makes a MinIO user whose policy lets it list the bucket and
// get its objects, nothing else, and returns its S3 variables.
func readOnlyUser(t *testing.T, srv *miniotest.Server, bucket string) []string {
	t.Helper()
	user := "ro-" + bucket[len(bucket)-8:]
	secret := "ro-secret-" + bucket[len(bucket)-8:]
	policy := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[
{"Effect":"Allow","Action":["s3:GetBucketLocation","s3:ListBucket"],"Resource":["arn:aws:s3:::%s"]},
{"Effect":"Allow","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::%s/*"]}]}`, bucket, bucket)
	file := filepath.Join(t.TempDir(), "policy.json")
	require.NoError(t, os.WriteFile(file, []byte(policy), 0o600))
	for _, args := range [][]string{
		{"admin", "user", "add", "local", user, secret},
		{"admin", "policy", "create", "local", user, file},
		{"admin", "policy", "attach", "local", user, "--user", user},
	} {
		if out, err := srv.MC(args...); err != nil {
			if strings.Contains(err.Error(), "go install") {
				t.Skipf("mc cannot be built: %v", err)
			}
			t.Fatalf("%v: %s", err, out)
		}
	}
	t.Cleanup(func() { _, _ = srv.MC("admin", "user", "remove", "local", user) })
	return []string{"AWS_ENDPOINT_URL=" + srv.Endpoint, "AWS_ACCESS_KEY_ID=" + user,
		"AWS_SECRET_ACCESS_KEY=" + secret, "AWS_REGION=" + srv.Region}
}

// A user that may only read lists, gets, restores and verifies; a backup
// is refused with one line, exit 4; nothing is written by any of them.
func TestS3ReadOnlyCredentials(t *testing.T) {
	srv := miniotest.Start(t)
	e := newS3(t, srv)
	disk := filepath.Join(e.dir, "web-1.img")
	makeDisk(t, disk, 8*mib, 1, part{0, 4 * mib, "random"}, part{5 * mib, mib, "text"})
	e.ok("hosts", "add", "web-1", "--disk", disk)
	e.ok("backups", "create", "web-1")
	ro := readOnlyUser(t, srv, e.bucket)
	before := e.objects()
	for _, name := range before {
		require.False(t, strings.HasPrefix(name, ".dropback-probe/"), "the concurrent-writer probe of the backup left %s", name)
	}

	for _, args := range [][]string{{"backups", "list"}, {"hosts", "list"}, {"repo", "stats"}, {"actions", "list"}} {
		r := e.runEnv(ro, args...)
		require.Equal(t, 0, r.code, "read-only %v: %s", args, r.stderr)
	}
	out := filepath.Join(e.dir, "out.img")
	r := e.runEnv(ro, "backups", "restore", "web-1", "latest", "--to", out)
	require.Equal(t, 0, r.code, "read-only restore: %s", r.stderr)
	require.Contains(t, r.stderr, "unannounced", "the restore says it goes on unannounced")
	require.Equal(t, sha(t, disk), sha(t, out))
	r = e.runEnv(ro, "backups", "verify")
	require.Equal(t, 0, r.code, "read-only verify: %s", r.stderr)

	r = e.runEnv(ro, "backups", "create", "web-1")
	require.Equal(t, 4, r.code, "read-only backup: %s", r.stderr)
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	require.Len(t, lines, 1, "one line: %s", r.stderr)
	require.Contains(t, lines[0], "access denied")
	// The keys are right: the line says they may only read, not to check them.
	require.Contains(t, lines[0], "refused the write, and these credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) may only read")
	require.Contains(t, lines[0], "s3:PutObject and s3:DeleteObject")
	require.NotContains(t, lines[0], "check AWS_ACCESS_KEY_ID")
	// A scheduling pass that can only fail to write exits 4 as well.
	r = e.runEnv(ro, "run", "--due")
	require.Equal(t, 4, r.code, "read-only run --due: %s", r.stderr)
	require.Contains(t, r.stderr, "may only read")

	// The same keys from a profile: the line names the profile.
	var user, secret string
	for _, kv := range ro {
		if v, ok := strings.CutPrefix(kv, "AWS_ACCESS_KEY_ID="); ok {
			user = v
		}
		if v, ok := strings.CutPrefix(kv, "AWS_SECRET_ACCESS_KEY="); ok {
			secret = v
		}
	}
	file := filepath.Join(e.dir, "ro-credentials")
	require.NoError(t, os.WriteFile(file, fmt.Appendf(nil, "[ro]\naws_access_key_id = %s\naws_secret_access_key = %s\n", user, secret), 0o600))
	r = e.runEnv([]string{"AWS_ENDPOINT_URL=" + srv.Endpoint, "AWS_REGION=" + srv.Region, "AWS_PROFILE=ro",
		"AWS_SHARED_CREDENTIALS_FILE=" + file, "AWS_CONFIG_FILE=" + filepath.Join(e.dir, "none")}, "backups", "create", "web-1")
	require.Equal(t, 4, r.code, "read-only backup with a profile: %s", r.stderr)
	require.Contains(t, r.stderr, `these credentials (the keys of profile "ro") may only read`)
	require.NotContains(t, r.stderr, "AWS_ACCESS_KEY_ID")
	require.Equal(t, before, e.objects(), "the read-only commands wrote or deleted objects")
}

// objects lists the names in the bucket, with the root user.
func (e *s3Env) objects() []string {
	e.t.Helper()
	var names []string
	for obj := range e.srv.Client(e.t).ListObjects(e.t.Context(), e.bucket, minioListAll()) {
		require.NoError(e.t, obj.Err)
		names = append(names, obj.Key)
	}
	return names
}

// Credentials from a profile of a credentials file, with no AWS_* keys in
// the environment.
func TestS3CredentialsFileProfile(t *testing.T) {
	srv := miniotest.Start(t)
	e := newS3(t, srv)
	file := filepath.Join(e.dir, "aws-credentials")
	creds := fmt.Sprintf("[default]\naws_access_key_id = wrong\naws_secret_access_key = wrong-secret\n\n[backup]\naws_access_key_id = %s\naws_secret_access_key = %s\n",
		srv.AccessKey, srv.SecretKey)
	require.NoError(t, os.WriteFile(file, []byte(creds), 0o600))
	env := []string{"AWS_ENDPOINT_URL=" + srv.Endpoint, "AWS_REGION=" + srv.Region,
		"AWS_SHARED_CREDENTIALS_FILE=" + file, "AWS_CONFIG_FILE=" + filepath.Join(e.dir, "none")}
	disk := filepath.Join(e.dir, "web-1.img")
	makeDisk(t, disk, 4*mib, 1, part{0, 2 * mib, "random"})
	r := e.runEnv(append(env, "AWS_PROFILE=backup"), "hosts", "add", "web-1", "--disk", disk)
	require.Equal(t, 0, r.code, "with the profile: %s", r.stderr)
	r = e.runEnv(append(env, "AWS_PROFILE=backup"), "backups", "create", "web-1")
	require.Equal(t, 0, r.code, "with the profile: %s", r.stderr)
	r = e.runEnv(env, "backups", "list")
	require.Equal(t, 4, r.code, "with the default profile's wrong keys: %s", r.stderr)
	require.Contains(t, r.stderr, `(check the keys of profile "default")`)
	require.NotContains(t, r.stderr, "AWS_ACCESS_KEY_ID")
	r = e.runEnv(append(env, "AWS_PROFILE=nope"), "backups", "list")
	require.Equal(t, 4, r.code, "with a profile that does not exist: %s", r.stderr)
	require.Contains(t, r.stderr, `there is no profile "nope"`)

	// A credential_process without arguments, as the AWS CLI runs it.
	proc := filepath.Join(e.dir, "creds.sh")
	require.NoError(t, os.WriteFile(proc, fmt.Appendf(nil, "#!/bin/sh\necho '{\"Version\":1,\"AccessKeyId\":\"%s\",\"SecretAccessKey\":\"%s\"}'\n",
		srv.AccessKey, srv.SecretKey), 0o700))
	config := filepath.Join(e.dir, "aws-config")
	require.NoError(t, os.WriteFile(config, fmt.Appendf(nil, "[profile proc]\ncredential_process = %s\n", proc), 0o600))
	r = e.runEnv([]string{"AWS_ENDPOINT_URL=" + srv.Endpoint, "AWS_REGION=" + srv.Region, "AWS_PROFILE=proc",
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(e.dir, "none"), "AWS_CONFIG_FILE=" + config}, "backups", "list")
	require.Equal(t, 0, r.code, "with a credential_process: %s", r.stderr)
	r = e.runEnv([]string{"AWS_ENDPOINT_URL=" + srv.Endpoint, "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(e.dir, "none"),
		"AWS_CONFIG_FILE=" + filepath.Join(e.dir, "none")}, "backups", "list")
	require.Equal(t, 4, r.code, "with no credentials at all: %s", r.stderr)
	require.Contains(t, r.stderr, "no credentials")
}

// TLS to the real MinIO through a TLS front whose certificate a CA of the
// test's own signed: trusted with AWS_CA_BUNDLE, refused without it.
func TestS3PrivateCA(t *testing.T) {
	srv := miniotest.Start(t)
	e := newS3(t, srv)
	caPEM, cert := selfMadeCA(t)
	ca := filepath.Join(e.dir, "ca.pem")
	require.NoError(t, os.WriteFile(ca, caPEM, 0o600))
	target, err := url.Parse(srv.Endpoint)
	require.NoError(t, err)
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	require.NoError(t, err)
	front := &http.Server{Handler: httputil.NewSingleHostReverseProxy(target), ReadHeaderTimeout: time.Minute,
		ErrorLog: log.New(io.Discard, "", 0)}
	go front.Serve(l)
	t.Cleanup(func() { front.Close() })
	endpoint := "https://" + l.Addr().String()
	env := []string{"AWS_ENDPOINT_URL=" + endpoint, "AWS_ACCESS_KEY_ID=" + srv.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + srv.SecretKey, "AWS_REGION=" + srv.Region, "DROPBACK_S3_ADDRESSING_STYLE=path"}
	r := e.runEnv(append(env, "AWS_CA_BUNDLE="+ca), "repo", "stats")
	require.Equal(t, 0, r.code, "with the CA bundle: %s", r.stderr)
	r = e.runEnv(env, "repo", "stats")
	require.NotEqual(t, 0, r.code, "without the CA bundle: %s", r.stdout)
	require.Contains(t, r.stderr, "certificate")
}

// selfMadeCA returns a CA's certificate in PEM and a server certificate
// for 127.0.0.1 that it signed.
func selfMadeCA(t *testing.T) ([]byte, tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "dropback test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	caCert, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func minioListAll() minio.ListObjectsOptions { return minio.ListObjectsOptions{Recursive: true} }

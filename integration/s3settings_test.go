package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dropback/dropback/internal/miniotest"
)

// A malformed S3 setting exits 2, as other bad values do, with one line
// naming the variable it came from; a bucket that does not exist is no
// repository there (10).
func TestS3BadSettingsAndMissingBucket(t *testing.T) {
	srv := miniotest.Start(t)
	e := newS3(t, srv)
	notPEM := filepath.Join(e.dir, "not-pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("web-1\n"), 0o600))
	for _, tc := range []struct{ env, says string }{
		{"DROPBACK_HTTP_TIMEOUT=abc", "DROPBACK_HTTP_TIMEOUT"},
		{"DROPBACK_S3_ADDRESSING_STYLE=foo", "DROPBACK_S3_ADDRESSING_STYLE"},
		{"DROPBACK_S3_LIST_LAG=xyz", "DROPBACK_S3_LIST_LAG"},
		{"AWS_CA_BUNDLE=" + filepath.Join(e.dir, "nonexistent"), "AWS_CA_BUNDLE"},
		{"AWS_CA_BUNDLE=" + notPEM, "AWS_CA_BUNDLE"},
		{"AWS_ENDPOINT_URL_S3=minio:9000", "in AWS_ENDPOINT_URL_S3"},
	} {
		r := e.runEnv(append(srv.Env(), tc.env), "backups", "list")
		assert.Equal(t, 2, r.code, "%s: %s", tc.env, r.stderr)
		assert.Contains(t, r.stderr, tc.says, tc.env)
		assert.Equal(t, 1, strings.Count(strings.TrimSpace(r.stderr), "\n")+1, "%s: one line: %q", tc.env, r.stderr)
	}

	missing := "s3://" + miniotest.BucketName(t) + "/x"
	r := e.runEnv(srv.Env(), "--repo", missing, "backups", "list")
	assert.Equal(t, 10, r.code, "a bucket that does not exist: %s", r.stderr)
	assert.Contains(t, r.stderr, "no such bucket")
}

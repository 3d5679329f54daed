package s3

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// EnvAddressing chooses path-style or virtual-host-style requests.
const EnvAddressing = "DROPBACK_S3_ADDRESSING_STYLE"

// envKeys names where credentials from the environment came from.
const envKeys = "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"

// credentialChain returns the credentials of opts, else of the standard AWS
// chain, the secret key they hold now (only to redact it from errors), and
// where they came from, for messages ("AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY", `the keys of profile "backup"`). The chain is
// asked once here, so that a machine with no credentials at all is told so
// at once rather than sending anonymous requests, and a source that is set
// but fails (a profile that does not exist, a credential_process that
// fails) says why.
func credentialChain(ctx context.Context, opts Options, getenv func(string) string) (*credentials.Credentials, string, string, error) {
	if opts.AccessKey != "" {
		return credentials.NewStaticV4(opts.AccessKey, opts.SecretKey, opts.SessionToken), opts.SecretKey, "the access key given", nil
	}
	if id := getenv("AWS_ACCESS_KEY_ID"); id != "" {
		secret := getenv("AWS_SECRET_ACCESS_KEY")
		if secret == "" {
			return nil, "", "", fmt.Errorf("%w (AWS_ACCESS_KEY_ID is set, AWS_SECRET_ACCESS_KEY is not)", ErrNoCredentials)
		}
		return credentials.NewStaticV4(id, secret, getenv("AWS_SESSION_TOKEN")), secret, envKeys, nil
	}
	prof := &profileCreds{name: getenv("AWS_PROFILE"), getenv: getenv}
	v, err := prof.RetrieveWithCredContext(&credentials.CredContext{Context: ctx, Client: &http.Client{Timeout: 5 * time.Second}})
	switch {
	case err == nil:
		return credentials.New(prof), v.SecretAccessKey, prof.source, nil
	case !errors.Is(err, errNoProfile):
		return nil, "", "", &credsError{reason: err.Error()}
	}
	// No profile holds credentials: as with the AWS CLI, the machine's
	// role is next.
	iam := &credentials.IAM{}
	ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, ierr := iam.RetrieveWithCredContext(&credentials.CredContext{Client: &http.Client{Timeout: 5 * time.Second}, Context: ictx})
	if ierr != nil || v.AccessKeyID == "" || v.SecretAccessKey == "" {
		if prof.name != "" {
			return nil, "", "", fmt.Errorf("%w (%v)", ErrNoCredentials, err)
		}
		return nil, "", "", ErrNoCredentials
	}
	return credentials.New(iam), v.SecretAccessKey, "the IAM role of this machine", nil
}

// credsError is a source of credentials that is set but fails: it says
// why, and matches ErrNoCredentials.
type credsError struct{ reason string }

func (e *credsError) Error() string        { return "no credentials: " + e.reason }
func (e *credsError) Is(target error) bool { return target == ErrNoCredentials }

// addressing reads an addressing style.
func addressing(style string) (minio.BucketLookupType, error) {
	switch style {
	case "", "auto":
		return minio.BucketLookupAuto, nil
	case "path":
		return minio.BucketLookupPath, nil
	case "virtual":
		return minio.BucketLookupDNS, nil
	}
	return 0, fmt.Errorf("%w: %s=%q: want path, virtual or auto", ErrInvalidSetting, EnvAddressing, style)
}

// caBundle returns the system's roots and the certificates of the PEM file
// path, or nil for none.
func caBundle(path string) (*x509.CertPool, error) {
	if path == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: AWS_CA_BUNDLE: %v", ErrInvalidSetting, err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%w: AWS_CA_BUNDLE %s holds no PEM certificate", ErrInvalidSetting, path)
	}
	return pool, nil
}

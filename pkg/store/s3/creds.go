package s3

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// EnvAddressing chooses path-style or virtual-host-style requests.
const EnvAddressing = "DROPBACK_S3_ADDRESSING_STYLE"

// credentialChain returns the credentials of opts, else of the standard AWS
// chain, and the secret key they hold now (only to redact it from errors).
// The chain is asked once here, so that a machine with no credentials at
// all is told so at once rather than sending anonymous requests.
func credentialChain(ctx context.Context, opts Options, getenv func(string) string) (*credentials.Credentials, string, error) {
	if opts.AccessKey != "" {
		return credentials.NewStaticV4(opts.AccessKey, opts.SecretKey, opts.SessionToken), opts.SecretKey, nil
	}
	if id := getenv("AWS_ACCESS_KEY_ID"); id != "" {
		secret := getenv("AWS_SECRET_ACCESS_KEY")
		if secret == "" {
			return nil, "", fmt.Errorf("%w (AWS_ACCESS_KEY_ID is set, AWS_SECRET_ACCESS_KEY is not)", ErrNoCredentials)
		}
		return credentials.NewStaticV4(id, secret, getenv("AWS_SESSION_TOKEN")), secret, nil
	}
	creds := credentials.NewChainCredentials([]credentials.Provider{
		&credentials.FileAWSCredentials{Profile: getenv("AWS_PROFILE")},
		&credentials.IAM{},
	})
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := creds.GetWithContext(&credentials.CredContext{Client: &http.Client{Timeout: 5 * time.Second}, Context: ctx})
	if err != nil || v.AccessKeyID == "" || v.SecretAccessKey == "" {
		return nil, "", ErrNoCredentials
	}
	return creds, v.SecretAccessKey, nil
}

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

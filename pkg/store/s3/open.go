package s3

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/s3utils"

	"github.com/dropback/dropback/internal/httplimit"
	"github.com/dropback/dropback/internal/safetext"
	"github.com/dropback/dropback/pkg/store"
)

// Options configure a store. Empty fields fall back to the environment.
type Options struct {
	// Endpoint is the server's URL, http:// or https://. Empty means
	// AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL, else AWS S3.
	Endpoint string
	// AccessKey, SecretKey and SessionToken are the credentials. Empty
	// AccessKey means the standard AWS chain (see credentialChain):
	// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN; else
	// the profile AWS_PROFILE (else default) of ~/.aws/config and
	// ~/.aws/credentials (AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE);
	// else a web identity token (AWS_WEB_IDENTITY_TOKEN_FILE,
	// AWS_ROLE_ARN), ECS or EC2 instance metadata.
	AccessKey, SecretKey, SessionToken string
	// Region is the bucket's region. Empty means AWS_REGION, else
	// AWS_DEFAULT_REGION, else us-east-1 for a server other than AWS (AWS
	// itself is asked).
	Region string

	// RequireConditional makes the first Put fail, and every one after
	// it, when the server does not honour conditional writes
	// (If-None-Match: *). Writers that may run concurrently with others
	// set it.
	RequireConditional bool

	// CABundle is a file of PEM certificates that an https endpoint's may
	// chain to, beside the system's. Empty means AWS_CA_BUNDLE.
	CABundle string

	// Addressing is "path" (https://host/bucket/key), "virtual"
	// (https://bucket.host/key) or "auto" (virtual on AWS and the
	// providers known to want it, path elsewhere). Empty means
	// DROPBACK_S3_ADDRESSING_STYLE, else auto.
	Addressing string

	// PartSize is the least size of a part of a multipart upload: objects
	// of at least twice this size are uploaded in parts. 0 means
	// DefaultPartSize; at least 5 MiB.
	PartSize int64

	// MaxRetries is the number of attempts of each request; 0 means
	// minio-go's default (10).
	MaxRetries int

	// ListLag is how long after its creation an object may still be
	// missing from a listing of the bucket; 0 means DROPBACK_S3_LIST_LAG,
	// else store.DefaultListLag, and a negative value none. AWS S3 and
	// MinIO list what was written at once; the default is for servers that
	// do not promise it.
	ListLag time.Duration

	// Timeout bounds each attempt of a request, and four times it each
	// operation with its retries, by the rule of internal/httplimit. 0
	// means DROPBACK_HTTP_TIMEOUT, else 30 s.
	Timeout time.Duration

	// Getenv reads the environment; nil means os.Getenv. Tests replace it.
	Getenv func(string) string
}

// ParseURL splits s3://bucket/prefix into the bucket and the prefix, which
// has no leading or trailing slash and may be empty.
func ParseURL(rawURL string) (bucket, prefix string, err error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "s3" || u.Opaque != "" {
		return "", "", fmt.Errorf("%w: repository %q: want s3://bucket/prefix", ErrInvalidURL, rawURL)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Port() != "" {
		return "", "", fmt.Errorf("%w: repository %q: want s3://bucket/prefix, with no user, port, query or fragment", ErrInvalidURL, rawURL)
	}
	bucket = u.Host
	if err := s3utils.CheckValidBucketNameStrict(bucket); err != nil {
		return "", "", fmt.Errorf("%w: repository %q: bucket name %q: %v", ErrInvalidURL, rawURL, bucket, err)
	}
	prefix = strings.Trim(u.Path, "/")
	if prefix != "" {
		if err := store.CheckName(prefix); err != nil {
			return "", "", fmt.Errorf("%w: repository %q: prefix: %v", ErrInvalidURL, rawURL, err)
		}
	}
	return bucket, prefix, nil
}

// listLagEnv overrides how long listings of the bucket are taken to lag.
const listLagEnv = "DROPBACK_S3_LIST_LAG"

// Open returns the store named by rawURL, s3://bucket/prefix. It sends no
// request but those the credentials may need: whether the server honours
// conditional writes is probed by the first Put (or CreateBucket), so that
// credentials that may only read can list and get, and nothing is written
// for a command that only reads.
func Open(ctx context.Context, rawURL string, opts Options) (*Store, error) {
	bucket, prefix, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	s, err := newStore(ctx, bucket, prefix, opts)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", s3Location(bucket, prefix), err)
	}
	return s, nil
}

// endpointSetting returns the endpoint of opts or the environment, and
// the setting it came from, for messages.
func endpointSetting(given string, getenv func(string) string) (endpoint, from string) {
	switch {
	case given != "":
		return given, "the endpoint given"
	case getenv("AWS_ENDPOINT_URL_S3") != "":
		return getenv("AWS_ENDPOINT_URL_S3"), "AWS_ENDPOINT_URL_S3"
	case getenv("AWS_ENDPOINT_URL") != "":
		return getenv("AWS_ENDPOINT_URL"), "AWS_ENDPOINT_URL"
	}
	return "https://s3.amazonaws.com", "the default endpoint"
}

func s3Location(bucket, prefix string) string {
	if prefix == "" {
		return "s3://" + bucket
	}
	return "s3://" + bucket + "/" + prefix
}

// newStore builds the client from opts and the environment.
func newStore(ctx context.Context, bucket, prefix string, opts Options) (*Store, error) {
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	first := func(vals ...string) string {
		for _, v := range vals {
			if v != "" {
				return v
			}
		}
		return ""
	}
	endpoint, from := endpointSetting(opts.Endpoint, getenv)
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("%w: endpoint %s: want http://host[:port] or https://host[:port] in %s",
			ErrInvalidURL, safetext.Escape(safetext.Clip(safetext.URL(endpoint), 100)), from)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		if timeout, err = httplimit.Timeout(getenv); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidSetting, err)
		}
	}
	lag := opts.ListLag
	switch {
	case lag < 0:
		lag = 0
	case lag == 0:
		lag = store.DefaultListLag
		if v := getenv(listLagEnv); v != "" {
			if lag, err = time.ParseDuration(v); err != nil || lag < 0 {
				return nil, fmt.Errorf("%w: %s=%q: want a duration such as 1m or 0s", ErrInvalidSetting, listLagEnv, safetext.Clip(v, 40))
			}
		}
	}
	creds, secret, source, err := credentialChain(ctx, opts, getenv)
	if err != nil {
		return nil, err
	}
	lookup, err := addressing(first(opts.Addressing, getenv(EnvAddressing)))
	if err != nil {
		return nil, err
	}
	roots, err := caBundle(first(opts.CABundle, getenv("AWS_CA_BUNDLE")))
	if err != nil {
		return nil, err
	}
	region := first(opts.Region, getenv("AWS_REGION"), getenv("AWS_DEFAULT_REGION"))
	if region == "" && !s3utils.IsAmazonEndpoint(*u) {
		region = "us-east-1" // spares a bucket-location request
	}
	partSize := opts.PartSize
	if partSize == 0 {
		partSize = DefaultPartSize
	}
	if partSize < minPartSize {
		return nil, fmt.Errorf("part size %d is below the minimum of 5 MiB", partSize)
	}
	newClient := func(trailer bool) (*minio.Client, error) {
		base, err := minio.DefaultTransport(u.Scheme == "https")
		if err != nil {
			return nil, fmt.Errorf("s3 client for %s: %v", u.Host, err)
		}
		if roots != nil && base.TLSClientConfig != nil {
			base.TLSClientConfig.RootCAs = roots
		}
		c, err := minio.New(u.Host, &minio.Options{
			Creds:           creds,
			BucketLookup:    lookup,
			Secure:          u.Scheme == "https",
			Transport:       &httplimit.Transport{Next: base, Timeout: timeout},
			Region:          region,
			MaxRetries:      opts.MaxRetries,
			TrailingHeaders: trailer,
		})
		if err != nil {
			return nil, fmt.Errorf("s3 client for %s: %v", u.Host, err)
		}
		return c, nil
	}
	client, err := newClient(true)
	if err != nil {
		return nil, err
	}
	plain, err := newClient(false)
	if err != nil {
		return nil, err
	}
	s := &Store{
		listLag: lag,
		client:  client, core: minio.Core{Client: client}, plain: plain,
		bucket: bucket, location: s3Location(bucket, prefix),
		endpoint: u.Scheme + "://" + u.Host, region: region, secret: secret, source: source,
		partSize: partSize, require: opts.RequireConditional, timeout: timeout,
	}
	if prefix != "" {
		s.prefix = prefix + "/"
	}
	return s, nil
}

package s3

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/minio/minio-go/v7"

	"github.com/dropback/dropback/internal/httplimit"
	"github.com/dropback/dropback/internal/safetext"
	"github.com/dropback/dropback/pkg/store"
)

// Sentinel errors, wrapped with the details.
var (
	// ErrNoBucket means the bucket does not exist.
	ErrNoBucket = errors.New("no such bucket")
	// ErrAccessDenied means the server refused the credentials or their
	// rights.
	ErrAccessDenied = errors.New("access denied")
	// ErrNoCredentials means no access key or secret key was given.
	ErrNoCredentials = errors.New("no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE and its profile in ~/.aws/credentials (see docs/s3.md)")
	// ErrInvalidURL means the repository URL or the endpoint is malformed.
	ErrInvalidURL = errors.New("invalid URL")
	// ErrUnconditional means the server does not honour conditional writes
	// and Options.RequireConditional was set.
	ErrUnconditional = errors.New("server does not honour conditional writes")
	// ErrInvalidSetting means a setting from the environment (such as
	// DROPBACK_HTTP_TIMEOUT) is malformed.
	ErrInvalidSetting = errors.New("invalid setting")
)

// mapErr turns a minio-go error into a store sentinel, or into a one-line
// error saying what the server answered; a request that ran out of time or
// whose answer was too large gives the *httplimit.TimeoutError or
// *httplimit.TooLargeError.
func (s *Store) mapErr(err error) error {
	if err == nil {
		return nil
	}
	var timeout *httplimit.TimeoutError
	if errors.As(err, &timeout) {
		return timeout
	}
	var large *httplimit.TooLargeError
	if errors.As(err, &large) {
		return large
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		var ue *url.Error
		if errors.As(err, &ue) {
			return ue.Err
		}
		return err
	}
	var resp minio.ErrorResponse
	if errors.As(err, &resp) {
		return s.mapResponse(resp)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("cannot reach %s: %w", s.endpoint, ue.Err)
	}
	return err
}

// writeErr is mapErr for a refused write (a put or a delete): when the
// server denies it to credentials that may list the repository, the
// credentials are right and only lack the rights to write, and the error
// says so rather than to check them.
func (s *Store) writeErr(ctx context.Context, err error) error {
	mapped := s.mapErr(err)
	var resp minio.ErrorResponse
	if !errors.Is(mapped, ErrAccessDenied) || !errors.As(err, &resp) || !s.canList(ctx) {
		return mapped
	}
	return fmt.Errorf("%w: %s refused the write, and these credentials (%s) may only read: "+
		"they need s3:PutObject and s3:DeleteObject on bucket %s (%s)", ErrAccessDenied, s.endpoint, s.source, s.bucket, describe(resp))
}

// canList reports whether the credentials may list the store's prefix.
func (s *Store) canList(ctx context.Context) bool {
	err := s.bounded(context.WithoutCancel(ctx), "GET", "", func(ctx context.Context) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		for obj := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix, MaxKeys: 1}) {
			return obj.Err
		}
		return nil
	})
	return err == nil
}

func (s *Store) mapResponse(resp minio.ErrorResponse) error {
	switch {
	case resp.Code == minio.NoSuchKey || resp.Code == "NoSuchObject":
		return store.ErrNotFound
	case resp.Code == minio.NoSuchBucket:
		return fmt.Errorf("%w: %q at %s (create it, or run `dropback repo init --create-bucket`)", ErrNoBucket, s.bucket, s.endpoint)
	case resp.Code == minio.PreconditionFailed || resp.StatusCode == http.StatusPreconditionFailed:
		return store.ErrExists
	case resp.Code == "InvalidRange" || resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		return errPastEnd
	case resp.Code == minio.AccessDenied || resp.Code == "InvalidAccessKeyId" ||
		resp.Code == "SignatureDoesNotMatch" || resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("%w by %s: %s (check %s)", ErrAccessDenied, s.endpoint, describe(resp), s.source)
	case resp.StatusCode == http.StatusNotFound && resp.Code == "":
		return store.ErrNotFound
	}
	return fmt.Errorf("%s answered: %s", s.endpoint, describe(resp))
}

// describe renders a server's error answer on one line, clipped, with
// control characters escaped.
func describe(resp minio.ErrorResponse) string {
	msg := strings.Join(strings.Fields(resp.Error()), " ")
	msg = safetext.Escape(safetext.Clip(strings.TrimSuffix(msg, "."), 300))
	if resp.Code != "" && !strings.Contains(msg, resp.Code) {
		msg += " (" + safetext.Escape(safetext.Clip(resp.Code, 60)) + ")"
	}
	if resp.StatusCode != 0 {
		msg += fmt.Sprintf(", HTTP %d", resp.StatusCode)
	}
	return msg
}

// redact replaces the secret key in err's message, should it ever appear
// there, keeping err's chain for errors.Is.
func (s *Store) redact(err error) error {
	if err == nil || len(s.secret) < 4 || !strings.Contains(err.Error(), s.secret) {
		return err
	}
	return &redactedError{msg: strings.ReplaceAll(err.Error(), s.secret, "[redacted]"), err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

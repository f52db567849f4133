package s3fs

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"syscall"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// info describes an object or a directory.
type info struct {
	name string
	size int64
	mod  time.Time
	dir  bool
	etag string            // without quotes
	meta map[string]string // user metadata (HeadObject only)
}

func (i *info) Name() string { return i.name }
func (i *info) Size() int64  { return i.size }
func (i *info) Mode() fs.FileMode {
	if i.dir {
		return fs.ModeDir | 0o755
	}
	return 0o644
}
func (i *info) ModTime() time.Time { return i.mod }
func (i *info) IsDir() bool        { return i.dir }
func (i *info) Sys() any           { return nil }

var _ os.FileInfo = (*info)(nil)

func pathErr(op, name string, err error) error {
	return &fs.PathError{Op: op, Path: name, Err: err}
}

// storeError is a failed S3 request. Its text says what kind of failure it was; the SDK's
// error (which names the endpoint) stays reachable with errors.As/Unwrap for logs, and the
// core sends clients only the kind.
type storeError struct {
	kind error // fs.ErrNotExist, fs.ErrPermission, … or nil for a plain failure
	msg  string
	err  error
}

func (e *storeError) Error() string { return e.msg }
func (e *storeError) Unwrap() []error {
	if e.kind == nil {
		return []error{e.err}
	}
	return []error{e.kind, e.err}
}

// err maps an SDK error onto the error kinds the core knows, named by the clean name c.
func (f *FS) err(op, c string, err error) error {
	if err == nil {
		return nil
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return err // already ours
	}
	return pathErr(op, c, classify(err))
}

func classify(err error) error {
	var se *storeError
	if errors.As(err, &se) {
		return se
	}
	var oe *smithy.OperationError
	if !errors.As(err, &oe) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		return err // ours (a refusal that says why), not the SDK's
	}
	code, status := "", 0
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	switch {
	case code == "NoSuchBucket":
		return &storeError{msg: "object storage: bucket not found", err: err}
	case code == "NoSuchKey" || code == "NotFound" || status == http.StatusNotFound:
		return &storeError{kind: fs.ErrNotExist, msg: "object storage: not found", err: err}
	case code == "AccessDenied" || code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch" ||
		status == http.StatusForbidden:
		return &storeError{kind: fs.ErrPermission, msg: "object storage: access denied", err: err}
	case code == "PreconditionFailed" || status == http.StatusPreconditionFailed:
		return &storeError{kind: fs.ErrExist, msg: "object storage: already exists", err: err}
	case code == "SlowDown" || code == "Throttling" || status == http.StatusServiceUnavailable ||
		status == http.StatusTooManyRequests:
		return &storeError{msg: "object storage: too busy, retries exhausted", err: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &storeError{msg: "object storage: timed out", err: err}
	case errors.Is(err, context.Canceled):
		return &storeError{kind: fs.ErrClosed, msg: "object storage: request cancelled", err: err}
	case code == "EntityTooLarge":
		return &storeError{kind: syscall.EFBIG, msg: "object storage: object too large", err: err}
	case code != "":
		return &storeError{msg: "object storage: request failed (" + code + ")", err: err}
	}
	return &storeError{msg: "object storage: request failed", err: err}
}

func isNotFound(err error) bool {
	return errors.Is(classify(err), fs.ErrNotExist)
}

// isChanged reports a failed If-Match: the object is no longer the one that was looked up.
func isChanged(err error) bool {
	var se *storeError
	return errors.As(classify(err), &se) && se.kind == fs.ErrExist
}

package core

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"syscall"

	"github.com/wharf-project/wharf/vfs"
)

// Error kinds. Adapters map them to protocol reply codes with errors.Is; their texts are safe to
// send to a client (they never contain host paths).
var (
	ErrDenied      = errors.New("permission denied")
	ErrNotFound    = errors.New("no such file or directory")
	ErrExists      = errors.New("file exists")
	ErrNotEmpty    = errors.New("directory not empty")
	ErrIsDir       = errors.New("is a directory")
	ErrNotDir      = errors.New("not a directory")
	ErrQuota       = errors.New("quota exceeded")
	ErrInvalid     = errors.New("invalid argument")
	ErrUnsupported = errors.New("operation not supported")
	ErrCrossMount  = errors.New("operation crosses mount points")
	ErrAuth        = errors.New("authentication failed")
	ErrLimit       = errors.New("too many connections")
	ErrRefused     = errors.New("connection refused")
	ErrClosed      = errors.New("session closed")
	ErrFailure     = errors.New("operation failed")
	ErrBadName     = errors.New("file name not allowed: it contains control characters")
)

// OpError is the error every session operation returns: the operation, the virtual path and
// the kind. Its text is what the client may see ("open /a.txt: permission denied").
type OpError struct {
	Op   string
	Path string // virtual path
	Kind error  // one of the Err* kinds
	Err  error  // the underlying cause, for logs only (may be nil); a *Refusal names who refused
}

func (e *OpError) Error() string {
	if e.Path == "" {
		return e.Op + ": " + e.Kind.Error()
	}
	return e.Op + " " + printablePath(e.Path) + ": " + e.Kind.Error()
}

// printablePath escapes the control characters of a name that exists on disk: the text goes
// into FTP replies, SCP error lines and logs, where a CR or LF would start a forged line.
func printablePath(p string) string {
	if !hasControlChar(p) {
		return p
	}
	q := strconv.Quote(p)
	return q[1 : len(q)-1]
}

// Unwrap exposes the kind, so errors.Is(err, core.ErrDenied) works; the cause stays private
// because it may name host resources.
func (e *OpError) Unwrap() error { return e.Kind }

// Cause returns the underlying error for logging.
func (e *OpError) Cause() error { return e.Err }

func opErr(op, vpath string, kind, cause error) *OpError {
	return &OpError{Op: op, Path: vpath, Kind: kind, Err: cause}
}

// Kind returns the error kind of err: one of the Err* values, ErrFailure when unknown.
func Kind(err error) error {
	var oe *OpError
	if errors.As(err, &oe) {
		return oe.Kind
	}
	for _, k := range []error{ErrDenied, ErrNotFound, ErrExists, ErrNotEmpty, ErrIsDir, ErrNotDir,
		ErrQuota, ErrInvalid, ErrUnsupported, ErrCrossMount, ErrAuth, ErrLimit, ErrRefused, ErrClosed, ErrBadName} {
		if errors.Is(err, k) {
			return k
		}
	}
	return kindOf(err)
}

// kindOf classifies a backend error.
func kindOf(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return ErrNotFound
	case errors.Is(err, fs.ErrExist):
		return ErrExists
	case errors.Is(err, fs.ErrPermission):
		return ErrDenied
	case errors.Is(err, vfs.ErrInvalidPath), errors.Is(err, fs.ErrInvalid):
		return ErrInvalid
	case errors.Is(err, syscall.ENOTEMPTY):
		return ErrNotEmpty
	case errors.Is(err, syscall.EISDIR):
		return ErrIsDir
	case errors.Is(err, syscall.ENOTDIR):
		return ErrNotDir
	case errors.Is(err, syscall.EXDEV):
		return ErrCrossMount
	case errors.Is(err, syscall.EDQUOT), errors.Is(err, syscall.ENOSPC):
		return ErrQuota
	case errors.Is(err, syscall.ENOSYS), errors.Is(err, syscall.EOPNOTSUPP), errors.Is(err, errors.ErrUnsupported):
		return ErrUnsupported
	}
	var oe *OpError
	if errors.As(err, &oe) {
		return oe.Kind
	}
	return ErrFailure
}

// backendErr wraps a backend error as an OpError with a kind.
func backendErr(op, vpath string, err error) error {
	if err == nil {
		return nil
	}
	var oe *OpError
	if errors.As(err, &oe) {
		return err
	}
	return opErr(op, vpath, kindOf(err), err)
}

// What refused an operation, a login or a connection, as RefusedBy and the audit log's
// refused_by name it. A script is "script:<file>" (several files joined by ",": the handlers
// of the event that refused).
const (
	ByPermission = "permission"   // the mount's permissions
	ByQuota      = "quota"        // the user's quota (or the disk's)
	ByLimit      = "limit"        // a connection or session limit
	ByProtector  = "protector"    // a ban, the block list or the allow list
	ByName       = "name"         // a file name with control characters (names.allow_control_chars)
	ByMount      = "mount"        // a mount point, or an operation across mounts
	BySymlinks   = "symlinks"     // vfs allow_symlinks is off
	ByAuth       = "auth"         // not logged in yet
	BySubsystems = "subsystems"   // the protocol is not in the user's subsystems
	ByAllowFrom  = "allow_from"   // the user's allow_from
	ByMethods    = "auth_methods" // the method does not continue one of the user's auth_methods
	ByCredential = "credentials"  // unknown user or wrong credentials
	ByShutdown   = "shutdown"     // the server is shutting down
	ByScript     = "script"       // a script (prefix of "script:<file>")
)

// Refusal is the cause of a refusal that names what refused: a script, a mount rule, the
// user's allow_from... Its text is the reason for logs.
type Refusal struct {
	By  string
	Why string
}

func (r *Refusal) Error() string { return r.Why }

func refusal(by, why string) error { return &Refusal{By: by, Why: why} }

// RefusedBy names what refused the operation, login or connection that failed with err
// (one of the By* names, or "script:<file>"), or "" when err is no refusal (a missing file, a
// failed disk).
func RefusedBy(err error) string {
	if err == nil {
		return ""
	}
	var r *Refusal
	if errors.As(err, &r) {
		return r.By
	}
	var oe *OpError
	if errors.As(err, &oe) && errors.As(oe.Err, &r) {
		return r.By
	}
	switch Kind(err) {
	case ErrDenied:
		return ByPermission
	case ErrQuota:
		return ByQuota
	case ErrLimit:
		return ByLimit
	case ErrBadName:
		return ByName
	case ErrAuth:
		return ByCredential
	}
	return ""
}

// AuthError is returned by the authentication calls when more steps are needed
// (a user whose auth_methods chain several methods, e.g. "publickey+password").
type PartialAuthError struct {
	Next []string // methods that may continue the chain
}

func (e *PartialAuthError) Error() string {
	return fmt.Sprintf("partial authentication, continue with %v", e.Next)
}

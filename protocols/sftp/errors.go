package sftp

import (
	"errors"
	"io"

	pkgsftp "github.com/pkg/sftp"

	"github.com/wharf-project/wharf/core"
)

// statusError carries an SSH_FX status code for pkg/sftp (which finds it with errors.As)
// while its text stays the core's message: pkg/sftp sends err.Error() as the status message,
// and a bare pkgsftp.ErrSSHFx* value would replace "open /a: permission denied" by "permission
// denied".
type statusError struct {
	code error // one of the pkgsftp.ErrSSHFx* values
	err  error // the core error, whose text the client sees
}

func (e *statusError) Error() string { return e.err.Error() }

// Unwrap exposes only the code: the core error must not be matched by pkg/sftp's own checks
// (os.IsNotExist, io.EOF) which would pick a different code.
func (e *statusError) Unwrap() error { return e.code }

// toStatus maps a core error to what pkg/sftp turns into an SSH_FXP_STATUS reply.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, io.EOF) {
		return io.EOF
	}
	code := pkgsftp.ErrSSHFxFailure
	switch core.Kind(err) {
	case core.ErrDenied:
		code = pkgsftp.ErrSSHFxPermissionDenied
	case core.ErrNotFound:
		code = pkgsftp.ErrSSHFxNoSuchFile
	case core.ErrUnsupported:
		code = pkgsftp.ErrSSHFxOpUnsupported
	}
	return &statusError{code: code, err: err}
}

package vfs

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

// escapeError reports a name that would leave a backend's root, for example
// through a symbolic link planted by someone with host access. It matches
// fs.ErrPermission so callers treat it as a denial.
type escapeError struct{}

func (escapeError) Error() string        { return "path escapes from the backend root" }
func (escapeError) Is(target error) bool { return target == fs.ErrPermission }

var errEscapes error = escapeError{}

// osEscapeText is the text of the unexported error os.Root returns when a name
// would leave the root; there is no exported value to compare against.
const osEscapeText = "path escapes from parent"

// pathErr builds the error a backend returns: the operation, the clean name
// inside the backend, and only the underlying cause. The os package puts host
// paths into its errors, so they are stripped here, once, for every backend.
func pathErr(op, name string, err error) *fs.PathError {
	return &fs.PathError{Op: op, Path: name, Err: cause(err)}
}

// cause strips the path-carrying wrappers off err and returns what is left:
// usually a syscall.Errno or one of the fs sentinels, so errors.Is keeps
// working on the result.
func cause(err error) error {
	for {
		switch e := err.(type) {
		case *fs.PathError:
			err = e.Err
		case *os.LinkError:
			err = e.Err
		case *os.SyscallError:
			err = e.Err
		case syscall.Errno:
			return e
		default:
			if err.Error() == osEscapeText {
				return errEscapes
			}
			return err
		}
	}
}

// kindOnly reduces err to the fs sentinel it matches, for the rare error whose
// text cannot be trusted to be free of host paths.
func kindOnly(err error) error {
	for _, k := range []error{fs.ErrNotExist, fs.ErrExist, fs.ErrPermission, fs.ErrInvalid, fs.ErrClosed} {
		if errors.Is(err, k) {
			return k
		}
	}
	return errors.New("i/o error")
}

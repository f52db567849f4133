package core

import "errors"

// symlinkAllowed is the policy for creating the symbolic link l to t: both in one mount (so
// a link cannot lead into another folder), a real entry of that mount (not "/" of a user
// without a home, nor a directory that exists only because of a folder below it), the vfs
// allows links, and the user may create files there. The backend keeps the link inside its
// root (vfs/disk_link.go).
func symlinkAllowed(l, t target) error {
	const op = "symlink"
	switch {
	case l.mount == nil || l.fixed():
		return opErr(op, l.virtual, ErrDenied, errors.New("not a file in a folder"))
	case t.mount != l.mount:
		return opErr(op, l.virtual, ErrDenied, refusal(ByMount, "symlink target outside the link's mount"))
	case !l.symlinks:
		return opErr(op, l.virtual, ErrDenied, refusal(BySymlinks, "symbolic links are disabled for this folder (vfs allow_symlinks)"))
	case !l.allows(PermUpload):
		return opErr(op, l.virtual, ErrDenied, nil)
	}
	return nil
}

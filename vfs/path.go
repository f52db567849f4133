package vfs

import (
	"errors"
	"path"
	"strings"
)

// ErrInvalidPath reports a client path that cannot name anything (it contains
// a NUL byte, which every POSIX API would silently truncate at).
var ErrInvalidPath = errors.New("invalid path")

// Clean turns a client-supplied path into a clean absolute slash path: rooted
// at "/", without "." or ".." elements, and without a trailing slash except for
// "/" itself. ".." at the root stays at the root, which gives chroot semantics
// without any further check. Backslashes are ordinary characters. An empty
// path is the root.
func Clean(p string) (string, error) {
	if strings.IndexByte(p, 0) >= 0 {
		return "", ErrInvalidPath
	}
	if len(p) > 0 && p[0] == '/' {
		// path.Clean does not allocate when p is already clean, which is the
		// common case on the resolve hot path.
		return path.Clean(p), nil
	}
	return path.Clean("/" + p), nil
}

// relName turns a clean absolute name into the form os.Root and fs.FS want:
// relative, with "." for the root.
func relName(clean string) string {
	if clean == "/" {
		return "."
	}
	return clean[1:]
}

// within reports whether the clean absolute path p is dir or lies below it.
// The separator check keeps "/shared" from covering "/sharedx".
func within(p, dir string) bool {
	if dir == "/" {
		return true
	}
	return p == dir || (strings.HasPrefix(p, dir) && p[len(dir)] == '/')
}

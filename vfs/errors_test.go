package vfs

import "syscall"

// Errno values the backends are expected to report, named for the tests.
var (
	errBadFD    error = syscall.EBADF
	errNotDir   error = syscall.ENOTDIR
	errIsDir    error = syscall.EISDIR
	errNotEmpty error = syscall.ENOTEMPTY
)

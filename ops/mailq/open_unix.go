//go:build unix

package mailq

import (
	"os"
	"syscall"
)

// openFile opens a spool file. os.OpenFile would also try to add the file to the network
// poller (a fcntl and an epoll_ctl that fails for a regular file): two system calls of the
// six a message costs to write, and of the four to read.
func openFile(path string, flag int, perm os.FileMode) (*os.File, error) {
	for {
		fd, err := syscall.Open(path, flag|syscall.O_CLOEXEC, uint32(perm.Perm()))
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return os.NewFile(uintptr(fd), path), nil
	}
}

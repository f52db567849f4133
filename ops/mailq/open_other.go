//go:build !unix

package mailq

import "os"

// openFile opens a spool file.
func openFile(path string, flag int, perm os.FileMode) (*os.File, error) {
	return os.OpenFile(path, flag, perm)
}

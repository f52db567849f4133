//go:build !linux

package vfs

import "errors"

// openUploadDir is Linux-only (openat2); elsewhere atomic uploads go through os.Root.
func (d *Disk) openUploadDir(string) (entryDir, error) {
	return nil, errors.ErrUnsupported
}

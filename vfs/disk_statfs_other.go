//go:build !linux

package vfs

import (
	"errors"
	"io/fs"
)

// StatFS implements SpaceStater. wharf targets Linux; elsewhere the question
// has no portable answer.
func (d *Disk) StatFS(name string) (*StatFS, error) {
	c, _, err := d.names("statfs", name)
	if err != nil {
		return nil, err
	}
	return nil, &fs.PathError{Op: "statfs", Path: c, Err: errors.ErrUnsupported}
}

package vfs

import (
	"errors"
	"io/fs"

	"golang.org/x/sys/unix"
)

// StatFS implements SpaceStater for the file system holding name. It uses
// fstatfs on a descriptor opened through the root, so a symbolic link cannot
// redirect the question to a file system outside the jail.
func (d *Disk) StatFS(name string) (*StatFS, error) {
	const op = "statfs"
	c, rel, err := d.names(op, name)
	if err != nil {
		return nil, err
	}
	f, err := d.root.Open(rel)
	if errors.Is(err, fs.ErrPermission) {
		// An unreadable entry still lives on the root's file system (bar
		// host mounts, which this only approximates).
		f, err = d.root.Open(".")
	}
	if err != nil {
		return nil, d.err(op, c, err)
	}
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, d.err(op, c, err)
	}
	var st unix.Statfs_t
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.Fstatfs(int(fd), &st) }); err != nil {
		return nil, d.err(op, c, err)
	}
	if serr != nil {
		return nil, d.err(op, c, serr)
	}
	bsize := uint64(st.Frsize)
	if bsize == 0 {
		bsize = uint64(st.Bsize)
	}
	return &StatFS{
		BlockSize:   bsize,
		Blocks:      uint64(st.Blocks),
		BlocksFree:  uint64(st.Bfree),
		BlocksAvail: uint64(st.Bavail),
		Files:       uint64(st.Files),
		FilesFree:   uint64(st.Ffree),
		NameMax:     uint64(st.Namelen),
	}, nil
}

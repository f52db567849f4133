package vfs

import (
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// LstatIfPossible implements afero.Lstater.
func (d *Disk) LstatIfPossible(name string) (os.FileInfo, bool, error) {
	c, rel, err := d.names("lstat", name)
	if err != nil {
		return nil, true, err
	}
	fi, err := d.root.Lstat(rel)
	if err != nil {
		return nil, true, d.err("lstat", c, err)
	}
	return rootInfo(c, fi), true, nil
}

// SymlinkIfPossible implements afero.Linker. The target oldname is a path
// inside this backend, absolute (from the backend root) or relative to the
// link's directory; a target that would leave the root is refused. The link
// is stored relative so that it also resolves inside the root on the host.
func (d *Disk) SymlinkIfPossible(oldname, newname string) error {
	const op = "symlink"
	link, rel, err := d.names(op, newname)
	if err != nil {
		return err
	}
	if link == "/" {
		return &fs.PathError{Op: op, Path: link, Err: fs.ErrExist}
	}
	dir := path.Dir(link)
	target, err := linkTarget(dir, oldname)
	if err != nil {
		return &fs.PathError{Op: op, Path: link, Err: err}
	}
	stored, err := filepath.Rel(relName(dir), relName(target))
	if err != nil {
		// Unreachable for two clean names inside the root; kept so a
		// future change cannot silently store a bad link.
		return &fs.PathError{Op: op, Path: link, Err: fs.ErrInvalid}
	}
	return d.err(op, link, d.root.Symlink(stored, rel))
}

// ReadlinkIfPossible implements afero.LinkReader. The target comes back as an
// absolute path inside the backend. A link on disk that points out of the
// root (someone with host access put it there) is reported as a permission
// error rather than disclosing where it points.
func (d *Disk) ReadlinkIfPossible(name string) (string, error) {
	const op = "readlink"
	c, rel, err := d.names(op, name)
	if err != nil {
		return "", err
	}
	t, err := d.root.Readlink(rel)
	if err != nil {
		return "", d.err(op, c, err)
	}
	if filepath.IsAbs(t) {
		return "", &fs.PathError{Op: op, Path: c, Err: errEscapes}
	}
	v, err := linkTarget(path.Dir(c), t)
	if err != nil {
		return "", &fs.PathError{Op: op, Path: c, Err: err}
	}
	return v, nil
}

// Link implements HardLinker; both names are inside the root.
func (d *Disk) Link(oldname, newname string) error {
	const op = "link"
	o, orel, err := d.names(op, oldname)
	if err != nil {
		return err
	}
	n, nrel, err := d.names(op, newname)
	if err != nil {
		return err
	}
	if o == "/" || n == "/" {
		return &fs.PathError{Op: op, Path: o, Err: fs.ErrPermission}
	}
	return d.err(op, o, d.root.Link(orel, nrel))
}

// linkTarget resolves a symbolic link target t, found in (or meant for) the
// clean directory dir, to a clean absolute path inside the backend. Unlike
// Clean it does not clamp ".." at the root: a target that climbs out is an
// escape attempt and is refused.
func linkTarget(dir, t string) (string, error) {
	if t == "" || strings.IndexByte(t, 0) >= 0 {
		return "", ErrInvalidPath
	}
	var j string
	if t[0] == '/' {
		j = path.Clean(strings.TrimLeft(t, "/"))
	} else {
		j = path.Clean(relName(dir) + "/" + t)
	}
	if j == ".." || strings.HasPrefix(j, "../") {
		return "", errEscapes
	}
	if j == "." {
		return "/", nil
	}
	return "/" + j, nil
}

package vfs

import (
	"io/fs"
	"os"
	"time"

	"github.com/spf13/afero"
)

// NewReadOnly wraps fsys so that every mutation fails with an error matching
// fs.ErrPermission (afero's own ReadOnlyFs answers EPERM, which reads as
// "operation not permitted" and says nothing about policy). Reads pass
// through, and so do the optional Locator, SpaceStater, afero.Lstater and
// afero.LinkReader capabilities; the result implements Locator and
// SpaceStater only when fsys does, so type assertions stay truthful.
func NewReadOnly(fsys afero.Fs) afero.Fs {
	ro := &readOnly{inner: fsys}
	_, loc := fsys.(Locator)
	_, space := fsys.(SpaceStater)
	switch {
	case loc && space:
		return roLocSpace{ro}
	case loc:
		return roLoc{ro}
	case space:
		return roSpace{ro}
	}
	return ro
}

type readOnly struct {
	inner afero.Fs
}

var (
	_ afero.Symlinker = (*readOnly)(nil)
	_ HardLinker      = (*readOnly)(nil)
)

func deny(op, name string) error {
	c, err := Clean(name)
	if err != nil {
		return &fs.PathError{Op: op, Path: printable(name), Err: err}
	}
	return &fs.PathError{Op: op, Path: c, Err: fs.ErrPermission}
}

func (r *readOnly) Name() string { return "ReadOnly(" + r.inner.Name() + ")" }

func (r *readOnly) Create(name string) (afero.File, error) { return nil, deny("open", name) }

func (r *readOnly) Open(name string) (afero.File, error) {
	f, err := r.inner.Open(name)
	if err != nil {
		return nil, err
	}
	return roFile{f}, nil
}

func (r *readOnly) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	if writable(flag) || flag&os.O_CREATE != 0 {
		return nil, deny("open", name)
	}
	f, err := r.inner.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return roFile{f}, nil
}

func (r *readOnly) Mkdir(name string, _ os.FileMode) error    { return deny("mkdir", name) }
func (r *readOnly) MkdirAll(name string, _ os.FileMode) error { return deny("mkdir", name) }
func (r *readOnly) Remove(name string) error                  { return deny("remove", name) }
func (r *readOnly) RemoveAll(name string) error               { return deny("removeall", name) }
func (r *readOnly) Rename(oldname, _ string) error            { return deny("rename", oldname) }
func (r *readOnly) Chmod(name string, _ os.FileMode) error    { return deny("chmod", name) }
func (r *readOnly) Chown(name string, _, _ int) error         { return deny("chown", name) }
func (r *readOnly) Chtimes(name string, _, _ time.Time) error { return deny("chtimes", name) }
func (r *readOnly) SymlinkIfPossible(_, newname string) error { return deny("symlink", newname) }
func (r *readOnly) Link(_, newname string) error              { return deny("link", newname) }

func (r *readOnly) Stat(name string) (os.FileInfo, error) { return r.inner.Stat(name) }

// LstatIfPossible falls back to Stat, as afero does, when the inner backend
// has no notion of links.
func (r *readOnly) LstatIfPossible(name string) (os.FileInfo, bool, error) {
	if l, ok := r.inner.(afero.Lstater); ok {
		return l.LstatIfPossible(name)
	}
	fi, err := r.inner.Stat(name)
	return fi, false, err
}

func (r *readOnly) ReadlinkIfPossible(name string) (string, error) {
	if l, ok := r.inner.(afero.LinkReader); ok {
		return l.ReadlinkIfPossible(name)
	}
	return "", &fs.PathError{Op: "readlink", Path: name, Err: afero.ErrNoReadlink}
}

type roLoc struct{ *readOnly }

func (r roLoc) Locate(name string) string { return r.inner.(Locator).Locate(name) }

type roSpace struct{ *readOnly }

func (r roSpace) StatFS(name string) (*StatFS, error) { return r.inner.(SpaceStater).StatFS(name) }

type roLocSpace struct{ *readOnly }

func (r roLocSpace) Locate(name string) string { return r.inner.(Locator).Locate(name) }

func (r roLocSpace) StatFS(name string) (*StatFS, error) {
	return r.inner.(SpaceStater).StatFS(name)
}

// roFile guards handles as well: a backend may hand out a writable handle for
// a read-only open (MemMapFs does for some flag combinations).
type roFile struct{ afero.File }

func (f roFile) Write([]byte) (int, error)          { return 0, deny("write", f.Name()) }
func (f roFile) WriteAt([]byte, int64) (int, error) { return 0, deny("write", f.Name()) }
func (f roFile) WriteString(string) (int, error)    { return 0, deny("write", f.Name()) }
func (f roFile) Truncate(int64) error               { return deny("truncate", f.Name()) }

// ReadDir keeps the file an fs.ReadDirFile when the inner file is one.
func (f roFile) ReadDir(n int) ([]fs.DirEntry, error) {
	if d, ok := f.File.(fs.ReadDirFile); ok {
		return d.ReadDir(n)
	}
	fis, err := f.Readdir(n)
	des := make([]fs.DirEntry, len(fis))
	for i, fi := range fis {
		des[i] = fs.FileInfoToDirEntry(fi)
	}
	return des, err
}

package vfs

import (
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/afero"
)

// Memory is an in-memory backend for tests, demos and scratch mounts. It wraps
// afero's MemMapFs and adds what that lacks to behave like a POSIX file
// system: one spelling per name ("a" and "/a" are different keys in
// MemMapFs), parents must exist, non-empty directories cannot be removed or
// replaced, handles respect their access mode, and concurrent ReadAt/WriteAt
// on one handle use their own offsets.
type Memory struct {
	fs afero.Fs
	// ns serialises namespace changes so that the existence checks MemMapFs
	// does not make happen atomically with the change they guard.
	ns sync.Mutex
}

var (
	_ afero.Fs = (*Memory)(nil)
	_ Locator  = (*Memory)(nil)
)

// NewMemory returns an empty in-memory backend.
func NewMemory() *Memory {
	return &Memory{fs: afero.NewMemMapFs()}
}

// Name implements afero.Fs.
func (m *Memory) Name() string { return "Memory" }

// Locate implements Locator: "mem:" and the clean name, or "" for a name that
// cannot exist.
func (m *Memory) Locate(name string) string {
	c, err := Clean(name)
	if err != nil {
		return ""
	}
	return "mem:" + c
}

func (m *Memory) name(op, name string) (string, error) {
	c, err := Clean(name)
	if err != nil {
		return "", &fs.PathError{Op: op, Path: printable(name), Err: err}
	}
	return c, nil
}

func memErr(op, name string, err error) error {
	if err == nil {
		return nil
	}
	return pathErr(op, name, err)
}

// Create implements afero.Fs.
func (m *Memory) Create(name string) (afero.File, error) {
	return m.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
}

// Open implements afero.Fs.
func (m *Memory) Open(name string) (afero.File, error) {
	return m.OpenFile(name, os.O_RDONLY, 0)
}

// OpenFile implements afero.Fs.
func (m *Memory) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	const op = "open"
	c, err := m.name(op, name)
	if err != nil {
		return nil, err
	}
	if flag&os.O_CREATE != 0 {
		m.ns.Lock()
		defer m.ns.Unlock()
	}
	fi, err := m.fs.Stat(c)
	switch {
	case err == nil:
		if flag&(os.O_CREATE|os.O_EXCL) == os.O_CREATE|os.O_EXCL {
			return nil, &fs.PathError{Op: op, Path: c, Err: syscall.EEXIST}
		}
		if fi.IsDir() && writable(flag) {
			return nil, &fs.PathError{Op: op, Path: c, Err: syscall.EISDIR}
		}
	case flag&os.O_CREATE == 0:
		return nil, memErr(op, c, err)
	default:
		if err := m.parentDir(op, c); err != nil {
			return nil, err
		}
	}
	f, err := m.fs.OpenFile(c, flag, perm)
	if err != nil {
		return nil, memErr(op, c, err)
	}
	return &memFile{f: f, name: c, flag: flag}, nil
}

// parentDir checks that the parent of c exists and is a directory; MemMapFs
// would silently create it.
func (m *Memory) parentDir(op, c string) error {
	fi, err := m.fs.Stat(path.Dir(c))
	if err != nil {
		return &fs.PathError{Op: op, Path: c, Err: syscall.ENOENT}
	}
	if !fi.IsDir() {
		return &fs.PathError{Op: op, Path: c, Err: syscall.ENOTDIR}
	}
	return nil
}

// Mkdir implements afero.Fs.
func (m *Memory) Mkdir(name string, perm os.FileMode) error {
	const op = "mkdir"
	c, err := m.name(op, name)
	if err != nil {
		return err
	}
	m.ns.Lock()
	defer m.ns.Unlock()
	return m.mkdir(op, c, perm)
}

func (m *Memory) mkdir(op, c string, perm os.FileMode) error {
	if _, err := m.fs.Stat(c); err == nil {
		return &fs.PathError{Op: op, Path: c, Err: syscall.EEXIST}
	}
	if err := m.parentDir(op, c); err != nil {
		return err
	}
	return memErr(op, c, m.fs.Mkdir(c, perm))
}

// MkdirAll implements afero.Fs. Unlike MemMapFs it fails when a component is
// a file.
func (m *Memory) MkdirAll(name string, perm os.FileMode) error {
	const op = "mkdir"
	c, err := m.name(op, name)
	if err != nil {
		return err
	}
	m.ns.Lock()
	defer m.ns.Unlock()
	for i := 1; i <= len(c); i++ {
		if i < len(c) && c[i] != '/' {
			continue
		}
		p := c[:i]
		fi, err := m.fs.Stat(p)
		if err == nil {
			if !fi.IsDir() {
				return &fs.PathError{Op: op, Path: p, Err: syscall.ENOTDIR}
			}
			continue
		}
		if err := m.mkdir(op, p, perm); err != nil {
			return err
		}
	}
	return nil
}

// Remove implements afero.Fs.
func (m *Memory) Remove(name string) error {
	const op = "remove"
	c, err := m.name(op, name)
	if err != nil {
		return err
	}
	if c == "/" {
		return &fs.PathError{Op: op, Path: c, Err: fs.ErrPermission}
	}
	m.ns.Lock()
	defer m.ns.Unlock()
	fi, err := m.fs.Stat(c)
	if err != nil {
		return memErr(op, c, err)
	}
	if fi.IsDir() {
		if empty, err := m.emptyDir(c); err != nil {
			return memErr(op, c, err)
		} else if !empty {
			return &fs.PathError{Op: op, Path: c, Err: syscall.ENOTEMPTY}
		}
	}
	return memErr(op, c, m.fs.Remove(c))
}

func (m *Memory) emptyDir(c string) (bool, error) {
	f, err := m.fs.Open(c)
	if err != nil {
		return false, err
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if err != nil && err != io.EOF {
		return false, err
	}
	return len(names) == 0, nil
}

// RemoveAll implements afero.Fs. The root itself cannot be removed.
func (m *Memory) RemoveAll(name string) error {
	const op = "removeall"
	c, err := m.name(op, name)
	if err != nil {
		return err
	}
	if c == "/" {
		return &fs.PathError{Op: op, Path: c, Err: fs.ErrPermission}
	}
	m.ns.Lock()
	defer m.ns.Unlock()
	return memErr(op, c, m.fs.RemoveAll(c))
}

// Rename implements afero.Fs with os.Rename semantics: an existing file at
// newname is replaced, an existing directory is not.
func (m *Memory) Rename(oldname, newname string) error {
	const op = "rename"
	o, err := m.name(op, oldname)
	if err != nil {
		return err
	}
	n, err := m.name(op, newname)
	if err != nil {
		return err
	}
	if o == "/" || n == "/" {
		return &fs.PathError{Op: op, Path: o, Err: fs.ErrPermission}
	}
	m.ns.Lock()
	defer m.ns.Unlock()
	if err := m.checkRename(op, o, n); err != nil || o == n {
		return err
	}
	return memErr(op, o, m.fs.Rename(o, n))
}

func (m *Memory) checkRename(op, o, n string) error {
	src, err := m.fs.Stat(o)
	if err != nil {
		return memErr(op, o, err)
	}
	if o == n {
		return nil
	}
	if src.IsDir() && strings.HasPrefix(n, o+"/") {
		return &fs.PathError{Op: op, Path: o, Err: syscall.EINVAL}
	}
	if err := m.parentDir(op, n); err != nil {
		return err
	}
	dst, err := m.fs.Stat(n)
	switch {
	case err != nil:
		return nil
	case dst.IsDir():
		// os.Rename refuses to replace a directory, even an empty one.
		return &fs.PathError{Op: op, Path: n, Err: syscall.EEXIST}
	case src.IsDir():
		return &fs.PathError{Op: op, Path: n, Err: syscall.ENOTDIR}
	}
	return nil
}

// Stat implements afero.Fs.
func (m *Memory) Stat(name string) (os.FileInfo, error) {
	c, err := m.name("stat", name)
	if err != nil {
		return nil, err
	}
	fi, err := m.fs.Stat(c)
	if err != nil {
		return nil, memErr("stat", c, err)
	}
	return rootInfo(c, fi), nil
}

// Chmod implements afero.Fs.
func (m *Memory) Chmod(name string, mode os.FileMode) error {
	c, err := m.name("chmod", name)
	if err != nil {
		return err
	}
	return memErr("chmod", c, m.fs.Chmod(c, mode))
}

// Chown implements afero.Fs.
func (m *Memory) Chown(name string, uid, gid int) error {
	c, err := m.name("chown", name)
	if err != nil {
		return err
	}
	return memErr("chown", c, m.fs.Chown(c, uid, gid))
}

// Chtimes implements afero.Fs.
func (m *Memory) Chtimes(name string, atime, mtime time.Time) error {
	c, err := m.name("chtimes", name)
	if err != nil {
		return err
	}
	return memErr("chtimes", c, m.fs.Chtimes(c, atime, mtime))
}

// writable reports whether open flags ask for any kind of write access.
func writable(flag int) bool {
	return flag&(os.O_WRONLY|os.O_RDWR|os.O_APPEND|os.O_TRUNC) != 0
}

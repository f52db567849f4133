package vfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/afero"
)

// Disk is a jail over a host directory. Every access goes through an os.Root,
// so no name can leave the directory: not with "..", not as an absolute host
// path (names are always taken relative to the root) and not through a
// symbolic link, which os.Root refuses to follow out of the root. Errors name
// only paths inside the backend.
type Disk struct {
	root *os.Root
	host string // absolute host path of the root; only for Locate and for scrubbing errors
	// links serialises the operations that place symbolic links (creating, renaming, hard
	// linking), so that each checks the link rules against a tree nobody changes meanwhile
	// (see disk_link.go). The Disks that OpenDir returns share it.
	links    *sync.Mutex
	maxCheck int // MaxLinkCheckEntries; lower in tests

	// The root directory as a descriptor, for the upload directories of openUploadDir:
	// opened through root on first use, closed by Close.
	dirMu   sync.Mutex
	dirFile *os.File
	dirConn syscall.RawConn
	dirErr  error
}

var (
	_ afero.Fs         = (*Disk)(nil)
	_ afero.Symlinker  = (*Disk)(nil)
	_ Locator          = (*Disk)(nil)
	_ SpaceStater      = (*Disk)(nil)
	_ HardLinker       = (*Disk)(nil)
	_ afero.LinkReader = (*Disk)(nil)
	_ DirOpener        = (*Disk)(nil)
)

// NewDisk opens the host directory root as a backend, creating it (mode 0750)
// if it is missing. The Disk holds a descriptor of the directory, so it keeps
// working on the same directory even if root is later renamed.
func NewDisk(root string) (*Disk, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("vfs: disk root %q: %w", root, err)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("vfs: creating disk root: %w", err)
	}
	r, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("vfs: opening disk root: %w", err)
	}
	return &Disk{root: r, host: abs, links: new(sync.Mutex), maxCheck: MaxLinkCheckEntries}, nil
}

// Close releases the root descriptor. Files already open stay usable.
func (d *Disk) Close() error {
	_ = d.closeRootFd()
	if err := d.root.Close(); err != nil {
		return fmt.Errorf("vfs: closing disk root: %w", err)
	}
	return nil
}

// OpenDir implements DirOpener: the directory name as a Disk of its own, jailed in it. The
// caller closes it.
func (d *Disk) OpenDir(name string) (DirFs, error) {
	c, rel, err := d.names("open", name)
	if err != nil {
		return nil, err
	}
	r, err := d.root.OpenRoot(rel)
	if err != nil {
		return nil, d.err("open", c, err)
	}
	return &Disk{root: r, host: filepath.Join(d.host, filepath.FromSlash(c)), links: d.links, maxCheck: d.maxCheck}, nil
}

// rootConn returns the Disk's root directory as a raw descriptor, opened through the root on
// first use and kept until Close. Use the descriptor only inside its Control: that holds it
// open, so a concurrent Close cannot let its number go to another file meanwhile.
func (d *Disk) rootConn() (syscall.RawConn, error) {
	d.dirMu.Lock()
	defer d.dirMu.Unlock()
	if d.dirConn == nil && d.dirErr == nil {
		f, err := d.root.Open(".")
		if err == nil {
			var rc syscall.RawConn
			if rc, err = f.SyscallConn(); err == nil {
				d.dirFile, d.dirConn = f, rc
			} else {
				_ = f.Close()
			}
		}
		d.dirErr = err
	}
	if d.dirErr != nil {
		return nil, d.dirErr
	}
	return d.dirConn, nil
}

// closeRootFd releases the descriptor rootConn opened.
func (d *Disk) closeRootFd() error {
	d.dirMu.Lock()
	defer d.dirMu.Unlock()
	if d.dirFile == nil {
		return nil
	}
	err := d.dirFile.Close()
	d.dirFile, d.dirConn, d.dirErr = nil, nil, errors.New("vfs: disk closed")
	return err
}

// Name implements afero.Fs.
func (d *Disk) Name() string { return "Disk" }

// Locate implements Locator: the host path of name, or "" for a name that
// cannot exist (it contains a NUL byte).
func (d *Disk) Locate(name string) string {
	c, err := Clean(name)
	if err != nil {
		return ""
	}
	return filepath.Join(d.host, filepath.FromSlash(c))
}

// names cleans a backend name and returns it with its os.Root form.
func (d *Disk) names(op, name string) (clean, rel string, err error) {
	c, err := Clean(name)
	if err != nil {
		return "", "", &fs.PathError{Op: op, Path: printable(name), Err: err}
	}
	return c, relName(c), nil
}

// err turns an os error into one that names the backend path only. Beyond
// stripping the wrappers that carry host paths, it refuses any remaining text
// that still mentions the host root.
func (d *Disk) err(op, name string, err error) error {
	if err == nil {
		return nil
	}
	pe := pathErr(op, name, err)
	if len(d.host) > 1 && strings.Contains(pe.Err.Error(), d.host) {
		pe.Err = kindOnly(pe.Err)
	}
	return pe
}

// Create implements afero.Fs.
func (d *Disk) Create(name string) (afero.File, error) {
	return d.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
}

// Open implements afero.Fs.
func (d *Disk) Open(name string) (afero.File, error) {
	return d.OpenFile(name, os.O_RDONLY, 0)
}

// OpenFile implements afero.Fs.
func (d *Disk) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	c, rel, err := d.names("open", name)
	if err != nil {
		return nil, err
	}
	f, err := d.root.OpenFile(rel, flag, perm)
	if err != nil {
		return nil, d.err("open", c, err)
	}
	return &diskFile{f: f, name: c, d: d}, nil
}

// Mkdir implements afero.Fs.
func (d *Disk) Mkdir(name string, perm os.FileMode) error {
	c, rel, err := d.names("mkdir", name)
	if err != nil {
		return err
	}
	return d.err("mkdir", c, d.root.Mkdir(rel, perm))
}

// MkdirAll implements afero.Fs.
func (d *Disk) MkdirAll(name string, perm os.FileMode) error {
	c, rel, err := d.names("mkdir", name)
	if err != nil {
		return err
	}
	return d.err("mkdir", c, d.root.MkdirAll(rel, perm))
}

// Remove implements afero.Fs. The root itself cannot be removed.
func (d *Disk) Remove(name string) error {
	c, rel, err := d.names("remove", name)
	if err != nil {
		return err
	}
	if c == "/" {
		return &fs.PathError{Op: "remove", Path: c, Err: fs.ErrPermission}
	}
	return d.err("remove", c, d.root.Remove(rel))
}

// RemoveAll implements afero.Fs. The root itself cannot be removed.
func (d *Disk) RemoveAll(name string) error {
	c, rel, err := d.names("removeall", name)
	if err != nil {
		return err
	}
	if c == "/" {
		return &fs.PathError{Op: "removeall", Path: c, Err: fs.ErrPermission}
	}
	return d.err("removeall", c, d.root.RemoveAll(rel))
}

// Rename implements afero.Fs. Both names are inside the backend; the root
// itself can be neither source nor destination. A rename that would leave a
// symbolic link pointing outside the root (the link itself, or one below a
// directory moved closer to the root) is refused: see disk_link.go.
func (d *Disk) Rename(oldname, newname string) error {
	o, _, err := d.names("rename", oldname)
	if err != nil {
		return err
	}
	n, _, err := d.names("rename", newname)
	if err != nil {
		return err
	}
	if o == "/" || n == "/" {
		return &fs.PathError{Op: "rename", Path: o, Err: fs.ErrPermission}
	}
	d.links.Lock()
	defer d.links.Unlock()
	// The rename goes by the real paths it checked: the same entries os.Root would resolve
	// orel and nrel to, and no other even if a directory above is replaced meanwhile.
	from, err := d.realEntry(o)
	if err != nil {
		return d.err("rename", o, err)
	}
	to, err := d.realEntry(n)
	if err != nil {
		return d.err("rename", o, err)
	}
	if err := d.checkMove(from, to); err != nil {
		return d.err("rename", o, err)
	}
	return d.err("rename", o, d.root.Rename(relName(from), relName(to)))
}

// Stat implements afero.Fs. Symbolic links are followed, within the root only.
func (d *Disk) Stat(name string) (os.FileInfo, error) {
	c, rel, err := d.names("stat", name)
	if err != nil {
		return nil, err
	}
	fi, err := d.root.Stat(rel)
	if err != nil {
		return nil, d.err("stat", c, err)
	}
	return rootInfo(c, fi), nil
}

// Chmod implements afero.Fs.
func (d *Disk) Chmod(name string, mode os.FileMode) error {
	c, rel, err := d.names("chmod", name)
	if err != nil {
		return err
	}
	return d.err("chmod", c, d.root.Chmod(rel, mode))
}

// Chown implements afero.Fs. Ownership belongs to the gateway's host account,
// never to a client, so it always fails.
func (d *Disk) Chown(name string, _, _ int) error {
	c, _, err := d.names("chown", name)
	if err != nil {
		return err
	}
	return &fs.PathError{Op: "chown", Path: c, Err: fs.ErrPermission}
}

// Chtimes implements afero.Fs.
func (d *Disk) Chtimes(name string, atime, mtime time.Time) error {
	c, rel, err := d.names("chtimes", name)
	if err != nil {
		return err
	}
	return d.err("chtimes", c, d.root.Chtimes(rel, atime, mtime))
}

// rootInfo names the backend root "/" instead of ".", the name os.Root and
// afero give it.
func rootInfo(name string, fi os.FileInfo) os.FileInfo {
	if name != "/" {
		return fi
	}
	return namedInfo{FileInfo: fi, name: "/"}
}

type namedInfo struct {
	os.FileInfo
	name string
}

func (n namedInfo) Name() string { return n.name }

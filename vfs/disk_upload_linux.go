//go:build linux

package vfs

import (
	"io/fs"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/afero"
	"golang.org/x/sys/unix"
)

// uploadDir is a directory of a Disk opened for the atomic uploads into it (issue #24): one
// openat2(2) with RESOLVE_BENEATH from the Disk's root, then the upload's lookup, temporary
// file, rename and removal each take one system call by base name in that directory. Through
// os.Root the same upload cost about twice as many: os.Root walks the path with a descriptor
// per directory for every call, probes every opened file for the network poller (four fcntl
// and a failed epoll_ctl), and stats both names of a rename first.
//
// The jail is the kernel's: RESOLVE_BENEATH fails any resolution that would leave the root
// (through "..", an absolute symbolic link, or a relative one that climbs out), where os.Root
// would refuse too; names are then base names only, which cannot leave the directory. A
// directory whose resolution openat2 refuses, or a kernel without openat2, takes the os.Root
// path, which gives the error to report.
type uploadDir struct {
	d    *Disk
	fd   int    // the directory, this upload's own descriptor (also for the root: the root's is shared)
	name string // clean backend name of the directory, for errors
}

var _ entryDir = (*uploadDir)(nil)

// openUploadDir opens the clean directory name for atomic uploads; an error means "use
// os.Root" (the error to report comes from there).
func (d *Disk) openUploadDir(name string) (entryDir, error) {
	rc, err := d.rootConn()
	if err != nil {
		return nil, err
	}
	fd := -1
	how := &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
	}
	if cerr := rc.Control(func(rfd uintptr) {
		fd, err = ignoringEINTR(func() (int, error) { return unix.Openat2(int(rfd), relName(name), how) })
	}); cerr != nil {
		return nil, cerr
	}
	if err != nil {
		return nil, err
	}
	return &uploadDir{d: d, fd: fd, name: name}, nil
}

// base checks that name is "/" and one base name (the form AtomicFile uses in its directory).
func (u *uploadDir) base(op, name string) (string, error) {
	b, ok := strings.CutPrefix(name, "/")
	if !ok || b == "" || b == "." || b == ".." || strings.Contains(b, "/") {
		return "", &fs.PathError{Op: op, Path: printable(name), Err: fs.ErrInvalid}
	}
	return b, nil
}

// full is the backend name of a base name in the directory, for errors.
func (u *uploadDir) full(b string) string {
	if u.name == "/" {
		return "/" + b
	}
	return u.name + "/" + b
}

// OpenFile creates or opens a file of the directory. The file is an ordinary blocking
// *os.File (os.NewFile), never offered to the network poller, which cannot take regular
// files anyway.
func (u *uploadDir) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	b, err := u.base("open", name)
	if err != nil {
		return nil, err
	}
	fd, err := ignoringEINTR(func() (int, error) {
		return unix.Openat(u.fd, b, flag|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(perm.Perm()))
	})
	if err != nil {
		return nil, u.d.err("open", u.full(b), err)
	}
	return &diskFile{f: os.NewFile(uintptr(fd), u.full(b)), name: u.full(b), d: u.d}, nil
}

// Rename renames a regular file of the directory, which the upload created, to another
// name of it. The link rules (disk_link.go) have nothing to check: no symbolic link or
// directory moves. Over a directory it fails (EISDIR), as os.Root's rename does.
func (u *uploadDir) Rename(oldname, newname string) error {
	o, err := u.base("rename", oldname)
	if err != nil {
		return err
	}
	n, err := u.base("rename", newname)
	if err != nil {
		return err
	}
	if err := unix.Renameat(u.fd, o, u.fd, n); err != nil {
		return u.d.err("rename", u.full(o), err)
	}
	return nil
}

// Remove removes a file of the directory.
func (u *uploadDir) Remove(name string) error {
	b, err := u.base("remove", name)
	if err != nil {
		return err
	}
	if err := unix.Unlinkat(u.fd, b, 0); err != nil {
		return u.d.err("remove", u.full(b), err)
	}
	return nil
}

// lstat describes the entry b of the directory without following it.
func (u *uploadDir) lstat(b string) (fs.FileInfo, error) {
	var st unix.Stat_t
	if err := ignoringEINTR0(func() error { return unix.Fstatat(u.fd, b, &st, unix.AT_SYMLINK_NOFOLLOW) }); err != nil {
		return nil, u.d.err("stat", u.full(b), err)
	}
	return newStatInfo(b, &st), nil
}

// Close releases the directory.
func (u *uploadDir) Close() error {
	if u.fd < 0 {
		return nil
	}
	fd := u.fd
	u.fd = -1
	return unix.Close(fd)
}

func ignoringEINTR(f func() (int, error)) (int, error) {
	for {
		n, err := f()
		if err != unix.EINTR {
			return n, err
		}
	}
}

func ignoringEINTR0(f func() error) error {
	for {
		if err := f(); err != unix.EINTR {
			return err
		}
	}
}

// statInfo is a FileInfo from fstatat(2), as os.Lstat makes one: Sys is a *syscall.Stat_t,
// so FileKey and LinkCount work on it.
type statInfo struct {
	name string
	sys  syscall.Stat_t
	mode fs.FileMode
}

func newStatInfo(name string, st *unix.Stat_t) *statInfo {
	fi := &statInfo{name: name}
	s := &fi.sys
	set(&s.Dev, st.Dev)
	set(&s.Ino, st.Ino)
	set(&s.Nlink, st.Nlink)
	set(&s.Mode, st.Mode)
	set(&s.Uid, st.Uid)
	set(&s.Gid, st.Gid)
	set(&s.Rdev, st.Rdev)
	set(&s.Size, st.Size)
	set(&s.Blksize, st.Blksize)
	set(&s.Blocks, st.Blocks)
	set(&s.Atim.Sec, st.Atim.Sec)
	set(&s.Atim.Nsec, st.Atim.Nsec)
	set(&s.Mtim.Sec, st.Mtim.Sec)
	set(&s.Mtim.Nsec, st.Mtim.Nsec)
	set(&s.Ctim.Sec, st.Ctim.Sec)
	set(&s.Ctim.Nsec, st.Ctim.Nsec)
	m := fs.FileMode(st.Mode & 0o777)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFBLK:
		m |= fs.ModeDevice
	case unix.S_IFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFDIR:
		m |= fs.ModeDir
	case unix.S_IFIFO:
		m |= fs.ModeNamedPipe
	case unix.S_IFLNK:
		m |= fs.ModeSymlink
	case unix.S_IFSOCK:
		m |= fs.ModeSocket
	}
	if st.Mode&unix.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if st.Mode&unix.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if st.Mode&unix.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	fi.mode = m
	return fi
}

// set converts between the integer types x/sys/unix and syscall give one stat field (they
// differ between architectures).
func set[T, U ~int32 | ~int64 | ~uint32 | ~uint64](dst *T, v U) { *dst = T(v) }

func (fi *statInfo) Name() string      { return fi.name }
func (fi *statInfo) Size() int64       { return int64(fi.sys.Size) }
func (fi *statInfo) Mode() fs.FileMode { return fi.mode }
func (fi *statInfo) ModTime() time.Time {
	return time.Unix(int64(fi.sys.Mtim.Sec), int64(fi.sys.Mtim.Nsec))
}
func (fi *statInfo) IsDir() bool { return fi.mode.IsDir() }
func (fi *statInfo) Sys() any    { return &fi.sys }

package vfs

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"slices"
	"sync"
	"syscall"

	"github.com/spf13/afero"
)

// errAppendWriteAt mirrors os.File, which refuses WriteAt on a file opened
// with O_APPEND because the kernel would ignore the offset.
var errAppendWriteAt = errors.New("WriteAt on a file opened with O_APPEND")

// memFile is a handle on a Memory file. mem.File keeps one offset per handle
// and implements ReadAt and WriteAt by moving it, so concurrent positional I/O
// on one handle (pkg/sftp runs eight workers per session) would read and
// write at each other's offsets; mu serialises every use of the handle.
type memFile struct {
	mu     sync.Mutex
	f      afero.File
	name   string
	flag   int
	closed bool
	dir    *[]os.FileInfo // the entries Readdir has still to return, once it was called
}

func (f *memFile) err(op string, err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	return pathErr(op, f.name, err)
}

// check validates the handle for an operation; access is 'r', 'w' or 0.
func (f *memFile) check(op string, access byte) error {
	if f.closed {
		return &fs.PathError{Op: op, Path: f.name, Err: fs.ErrClosed}
	}
	acc := f.flag & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR)
	if (access == 'r' && acc == os.O_WRONLY) || (access == 'w' && acc == os.O_RDONLY) {
		return &fs.PathError{Op: op, Path: f.name, Err: syscall.EBADF}
	}
	return nil
}

func (f *memFile) Name() string { return f.name }

func (f *memFile) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("close", 0); err != nil {
		return err
	}
	f.closed = true
	return f.err("close", f.f.Close())
}

func (f *memFile) Read(b []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("read", 'r'); err != nil {
		return 0, err
	}
	n, err := f.f.Read(b)
	if err == io.ErrUnexpectedEOF {
		// mem.File's answer for an offset past the end, where read(2) says EOF.
		err = io.EOF
	}
	return n, f.err("read", err)
}

func (f *memFile) ReadAt(b []byte, off int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("read", 'r'); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, &fs.PathError{Op: "read", Path: f.name, Err: syscall.EINVAL}
	}
	n, err := f.atOffset(off, func() (int, error) { return io.ReadFull(f.f, b) })
	if err == io.ErrUnexpectedEOF {
		err = io.EOF
	}
	return n, f.err("read", err)
}

func (f *memFile) Write(b []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.write(b)
}

func (f *memFile) write(b []byte) (int, error) {
	if err := f.check("write", 'w'); err != nil {
		return 0, err
	}
	if f.flag&os.O_APPEND != 0 {
		// mem.File seeks to the end only once, at open; O_APPEND means
		// every write goes to the current end.
		if _, err := f.f.Seek(0, io.SeekEnd); err != nil {
			return 0, f.err("write", err)
		}
	}
	n, err := f.f.Write(b)
	return n, f.err("write", err)
}

func (f *memFile) WriteAt(b []byte, off int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("write", 'w'); err != nil {
		return 0, err
	}
	if f.flag&os.O_APPEND != 0 {
		return 0, &fs.PathError{Op: "write", Path: f.name, Err: errAppendWriteAt}
	}
	if off < 0 {
		return 0, &fs.PathError{Op: "write", Path: f.name, Err: syscall.EINVAL}
	}
	n, err := f.atOffset(off, func() (int, error) { return f.f.Write(b) })
	return n, f.err("write", err)
}

// atOffset runs do at off and restores the handle's offset afterwards, as
// pread and pwrite leave it untouched. The caller holds mu.
func (f *memFile) atOffset(off int64, do func() (int, error)) (int, error) {
	prev, err := f.f.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, err
	}
	if _, err := f.f.Seek(off, io.SeekStart); err != nil {
		return 0, err
	}
	n, err := do()
	if _, serr := f.f.Seek(prev, io.SeekStart); err == nil {
		err = serr
	}
	return n, err
}

func (f *memFile) WriteString(s string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.write([]byte(s))
}

func (f *memFile) Seek(offset int64, whence int) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("seek", 0); err != nil {
		return 0, err
	}
	prev, err := f.f.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, f.err("seek", err)
	}
	n, err := f.f.Seek(offset, whence)
	if err == nil && n < 0 {
		_, _ = f.f.Seek(prev, io.SeekStart)
		return prev, &fs.PathError{Op: "seek", Path: f.name, Err: syscall.EINVAL}
	}
	return n, f.err("seek", err)
}

// Readdir reads the directory in batches like os.File's. MemMapFs sorts the whole directory
// again on every call and skips by count, so paging through n entries in batches cost
// O(n² log n): instead the handle takes the sorted entry list once, at its first Readdir, and
// hands it out from there, dropping each entry as it goes. A listing in progress thus holds
// one reference per remaining entry (16 bytes each), on top of the directory itself, which
// a memory backend holds anyway. Entries added or removed after the first call are not seen
// by this handle.
func (f *memFile) Readdir(count int) ([]os.FileInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.readdir(count)
}

// readdir is Readdir with mu held.
func (f *memFile) readdir(count int) ([]os.FileInfo, error) {
	if err := f.checkDir(); err != nil {
		return nil, err
	}
	if f.dir == nil {
		all, err := f.f.Readdir(-1)
		if err != nil {
			return nil, f.err("readdir", err)
		}
		f.dir = &all
	}
	rest := *f.dir
	if count > 0 && len(rest) == 0 {
		return nil, io.EOF
	}
	n := len(rest)
	if count > 0 {
		n = min(count, n)
	}
	out := slices.Clone(rest[:n])
	clear(rest[:n])
	*f.dir = rest[n:]
	if out == nil {
		out = []os.FileInfo{}
	}
	return out, nil
}

func (f *memFile) Readdirnames(n int) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fis, err := f.readdir(n)
	names := make([]string, len(fis))
	for i, fi := range fis {
		names[i] = fi.Name()
	}
	return names, err
}

// ReadDir makes the file an fs.ReadDirFile, which afero.IOFS and fs.WalkDir use.
func (f *memFile) ReadDir(n int) ([]fs.DirEntry, error) {
	fis, err := f.Readdir(n)
	des := make([]fs.DirEntry, len(fis))
	for i, fi := range fis {
		des[i] = fs.FileInfoToDirEntry(fi)
	}
	return des, err
}

// checkDir gives the ENOTDIR that mem.File reports only as text. The caller
// holds mu.
func (f *memFile) checkDir() error {
	if err := f.check("readdir", 0); err != nil {
		return err
	}
	fi, err := f.f.Stat()
	if err != nil {
		return f.err("readdir", err)
	}
	if !fi.IsDir() {
		return &fs.PathError{Op: "readdir", Path: f.name, Err: syscall.ENOTDIR}
	}
	return nil
}

func (f *memFile) Stat() (os.FileInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("stat", 0); err != nil {
		return nil, err
	}
	fi, err := f.f.Stat()
	if err != nil {
		return nil, f.err("stat", err)
	}
	return rootInfo(f.name, fi), nil
}

func (f *memFile) Sync() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.check("sync", 0)
}

func (f *memFile) Truncate(size int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("truncate", 'w'); err != nil {
		return err
	}
	if size < 0 {
		return &fs.PathError{Op: "truncate", Path: f.name, Err: syscall.EINVAL}
	}
	return f.err("truncate", f.f.Truncate(size))
}

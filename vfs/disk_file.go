package vfs

import (
	"io"
	"io/fs"
	"os"
)

// diskFile is an os.File opened through the root. os.File puts the host path
// into its name and its errors, so every method that can fail or reports the
// name is wrapped.
type diskFile struct {
	f    *os.File
	name string // clean name inside the backend
	d    *Disk
}

// err keeps io.EOF bare: io.Reader, io.ReaderAt and Readdir callers compare
// against it with ==.
func (f *diskFile) err(op string, err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	return f.d.err(op, f.name, err)
}

func (f *diskFile) Name() string { return f.name }

func (f *diskFile) Close() error { return f.err("close", f.f.Close()) }

func (f *diskFile) Read(b []byte) (int, error) {
	n, err := f.f.Read(b)
	return n, f.err("read", err)
}

// ReadAt is safe for concurrent use (pread).
func (f *diskFile) ReadAt(b []byte, off int64) (int, error) {
	n, err := f.f.ReadAt(b, off)
	return n, f.err("read", err)
}

func (f *diskFile) Seek(offset int64, whence int) (int64, error) {
	n, err := f.f.Seek(offset, whence)
	return n, f.err("seek", err)
}

func (f *diskFile) Write(b []byte) (int, error) {
	n, err := f.f.Write(b)
	return n, f.err("write", err)
}

// WriteAt is safe for concurrent use (pwrite).
func (f *diskFile) WriteAt(b []byte, off int64) (int, error) {
	n, err := f.f.WriteAt(b, off)
	return n, f.err("write", err)
}

func (f *diskFile) WriteString(s string) (int, error) {
	n, err := f.f.WriteString(s)
	return n, f.err("write", err)
}

// ReadFrom and WriteTo keep os.File's zero-copy paths (splice, sendfile,
// copy_file_range) available to io.Copy.
func (f *diskFile) ReadFrom(r io.Reader) (int64, error) {
	n, err := f.f.ReadFrom(r)
	return n, f.err("write", err)
}

func (f *diskFile) WriteTo(w io.Writer) (int64, error) {
	n, err := f.f.WriteTo(w)
	return n, f.err("read", err)
}

func (f *diskFile) Readdir(count int) ([]os.FileInfo, error) {
	fis, err := f.f.Readdir(count)
	return fis, f.err("readdir", err)
}

func (f *diskFile) Readdirnames(n int) ([]string, error) {
	names, err := f.f.Readdirnames(n)
	return names, f.err("readdir", err)
}

// ReadDir makes the file an fs.ReadDirFile, which afero.IOFS and fs.WalkDir use.
func (f *diskFile) ReadDir(n int) ([]fs.DirEntry, error) {
	des, err := f.f.ReadDir(n)
	return des, f.err("readdir", err)
}

func (f *diskFile) Stat() (os.FileInfo, error) {
	fi, err := f.f.Stat()
	if err != nil {
		return nil, f.err("stat", err)
	}
	return rootInfo(f.name, fi), nil
}

func (f *diskFile) Sync() error { return f.err("sync", f.f.Sync()) }

func (f *diskFile) Truncate(size int64) error { return f.err("truncate", f.f.Truncate(size)) }

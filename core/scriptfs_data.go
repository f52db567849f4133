package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/spf13/afero"

	"github.com/wharf-project/wharf/vfs"
)

// The data operations of ScriptFS: reads, writes and copies, charged to the quota as the
// client's uploads are.

// position turns an offset and whence into a position in a file of the given size.
func (f *ScriptFS) position(t target, size, off int64, whence int) (int64, error) {
	var pos int64
	switch whence {
	case FromStart:
		pos = off
	case FromCurrent:
		if f.cursorPath == t.virtual {
			pos = f.cursorPos
		}
		pos += off
	case FromEnd:
		pos = size + off
	default:
		return 0, fmt.Errorf("whence %d is not FromStart, FromCurrent or FromEnd: %w", whence, ErrInvalid)
	}
	if pos < 0 {
		return 0, fmt.Errorf("position %d is before the start of the file: %w", pos, ErrInvalid)
	}
	return pos, nil
}

// ReadAt reads up to n bytes (n <= 0: to the end) of a file at off from whence; from the
// end, it reads the n bytes that end off bytes before the end (all of them for n <= 0).
// charge is told how many bytes are about to be read and may refuse (a script's memory
// budget).
func (f *ScriptFS) ReadAt(ctx context.Context, p string, n, off int64, whence int, charge func(int64) error) (data []byte, err error) {
	defer func(start time.Time) { f.audit("read", p, "", start, int64(len(data)), err) }(f.site.now())
	const op = "read"
	if err := ctx.Err(); err != nil {
		return nil, opErr(op, p, ErrFailure, err)
	}
	t, err := f.resolve(op, p, false)
	if err != nil {
		return nil, err
	}
	file, err := f.open(t)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil {
		return nil, backendErr(op, t.virtual, err)
	}
	if fi.IsDir() {
		return nil, opErr(op, t.virtual, ErrIsDir, nil)
	}
	var pos int64
	if whence == FromEnd {
		// Syncplify reads "from the end" as the window of n bytes that ends off bytes before
		// the end: ReadFileAsBytes(p, 512, 0, FromEnd) is the last 512 bytes.
		if off < 0 {
			return nil, opErr(op, t.virtual, ErrInvalid, fmt.Errorf("offset %d from the end is negative", off))
		}
		end := max(0, fi.Size()-off)
		pos = 0
		if n > 0 {
			pos = max(0, end-n)
		}
		n = end - pos
	} else if pos, err = f.position(t, fi.Size(), off, whence); err != nil {
		return nil, opErr(op, t.virtual, ErrInvalid, err)
	}
	count := max(0, fi.Size()-pos)
	if n > 0 || whence == FromEnd {
		count = min(count, n)
	}
	if err := charge(count); err != nil {
		return nil, err
	}
	data = make([]byte, count)
	got, err := file.ReadAt(data, pos)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, backendErr(op, t.virtual, err)
	}
	data = data[:got]
	f.cursorPath, f.cursorPos = t.virtual, pos+int64(got)
	return data, nil
}

// open opens a file for reading: the event's upload reads from its temporary file.
func (f *ScriptFS) open(t target) (afero.File, error) {
	if t.mount == nil {
		return nil, opErr("open", t.virtual, ErrIsDir, nil)
	}
	name := t.path
	if f.isUpload(t) {
		name = f.upload.atomic.TempName()
	}
	file, err := t.mount.FS.Open(name)
	if err != nil {
		return nil, backendErr("open", t.virtual, err)
	}
	return file, nil
}

// Open opens a file for reading; CopyTo and ExportFile read through it.
func (f *ScriptFS) Open(ctx context.Context, p string) (afero.File, error) {
	if err := ctx.Err(); err != nil {
		return nil, opErr("open", p, ErrFailure, err)
	}
	t, err := f.resolve("open", p, false)
	if err != nil {
		return nil, err
	}
	file, err := f.open(t)
	if err != nil {
		return nil, err
	}
	if fi, err := file.Stat(); err == nil && fi.IsDir() {
		_ = file.Close()
		return nil, opErr("open", t.virtual, ErrIsDir, nil)
	}
	return file, nil
}

// WriteAt writes data into a file at off from whence, creating the file if it is missing;
// the rest of the file is kept. Growth is counted against the quota as a client's write in
// place is.
func (f *ScriptFS) WriteAt(ctx context.Context, p string, data []byte, off int64, whence int) (err error) {
	defer func(start time.Time) { f.audit("write", p, "", start, int64(len(data)), err) }(f.site.now())
	const op = "write"
	t, err := f.resolveCtx(ctx, op, p, true)
	if err != nil {
		return err
	}
	if t.mount == nil || t.fixed() {
		return opErr(op, t.virtual, ErrIsDir, nil)
	}
	if err := f.publishUpload(t); err != nil {
		return backendErr(op, t.virtual, err)
	}
	q := f.quotaFor(t)
	defer q.lockNS()()
	old, err := t.mount.FS.Stat(t.path)
	existed := err == nil
	switch {
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return backendErr(op, t.virtual, err)
	case existed && old.IsDir():
		return opErr(op, t.virtual, ErrIsDir, nil)
	case !existed && !q.reserve(0, 1):
		return opErr(op, t.virtual, ErrQuota, errors.New("file count quota reached"))
	}
	file, err := t.mount.FS.OpenFile(t.path, os.O_WRONLY|os.O_CREATE, filePerm)
	if err != nil {
		if !existed {
			q.release(0, 1)
		}
		return backendErr(op, t.virtual, err)
	}
	undo := func() {
		_ = file.Close()
		if !existed {
			if fi, err := lstat(t.mount.FS, t.path); err == nil && t.mount.FS.Remove(t.path) == nil {
				q.forget(fi, nil)
			}
		}
	}
	fi, err := file.Stat()
	if err != nil {
		undo()
		return backendErr(op, t.virtual, err)
	}
	cur := fi.Size()
	pos, err := f.position(t, cur, off, whence)
	if err != nil {
		undo()
		return opErr(op, t.virtual, ErrInvalid, err)
	}
	grow := max(0, pos+int64(len(data))-cur)
	if grow > 0 && !q.reserve(grow, 0) {
		undo()
		return opErr(op, t.virtual, ErrQuota, nil)
	}
	n, werr := file.WriteAt(data, pos)
	if got := max(0, pos+int64(n)-cur); got < grow {
		q.release(grow-got, 0)
	}
	cerr := file.Close()
	f.cursorPath, f.cursorPos = t.virtual, pos+int64(n)
	if werr != nil {
		return backendErr(op, t.virtual, werr)
	}
	return backendErr(op, t.virtual, cerr)
}

// Put writes a whole file from r: under a temporary name first, published over the name when
// complete, as an atomic upload is, and charged to the quota as one. It cancels the uploads
// in flight to the name (what the script wrote is the newest version). It returns the bytes
// written.
func (f *ScriptFS) Put(ctx context.Context, p string, r io.Reader) (n int64, err error) {
	defer func(start time.Time) { f.audit("write", p, "", start, n, err) }(f.site.now())
	const op = "write"
	if err := ctx.Err(); err != nil {
		return 0, opErr(op, p, ErrFailure, err)
	}
	t, err := f.resolve(op, p, true)
	if err != nil {
		return 0, err
	}
	if t.mount == nil || t.fixed() {
		return 0, opErr(op, t.virtual, ErrIsDir, nil)
	}
	if err := f.publishUpload(t); err != nil {
		return 0, backendErr(op, t.virtual, err)
	}
	n, err = putCounted(ctx, f.quotaFor(t), t, r)
	if err != nil {
		return n, err
	}
	f.site.uploads.cancel(uploadKey{fs: t.mount.FS, path: t.path}, false)
	return n, nil
}

// putCounted writes r to t through a temporary file, with the accounting of an atomic upload
// (see WriteHandle): the temporary file is charged as it grows, less the size of the file it
// replaces, and the publication settles the difference under the namespace lock.
func putCounted(ctx context.Context, q *usage, t target, r io.Reader) (int64, error) {
	const op = "write"
	fsys := t.mount.FS
	var credit, files int64
	if fi, err := fsys.Stat(t.path); err == nil {
		if fi.IsDir() {
			return 0, opErr(op, t.virtual, ErrIsDir, nil)
		}
		if fi.Mode().IsRegular() && vfs.LinkCount(fi) <= 1 {
			credit = fi.Size()
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return 0, backendErr(op, t.virtual, err)
	} else {
		if !q.reserve(0, 1) {
			return 0, opErr(op, t.virtual, ErrQuota, errors.New("file count quota reached"))
		}
		files = 1
	}
	af, err := vfs.CreateAtomic(fsys, t.path, filePerm)
	if err != nil {
		q.release(0, files)
		return 0, backendErr(op, t.virtual, err)
	}
	var size, charged int64
	fail := func(err error) (int64, error) {
		_ = af.Discard()
		q.release(charged, files)
		return size, err
	}
	buf := make([]byte, 32<<10)
	for {
		if err := ctx.Err(); err != nil {
			return fail(opErr(op, t.virtual, ErrFailure, err))
		}
		m, rerr := r.Read(buf)
		if m > 0 {
			if more := max(0, size+int64(m)-credit) - charged; more > 0 {
				if !q.reserve(more, 0) {
					return fail(opErr(op, t.virtual, ErrQuota, nil))
				}
				charged += more
			}
			if _, err := af.Write(buf[:m]); err != nil {
				return fail(backendErr(op, t.virtual, err))
			}
			size += int64(m)
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return fail(opErr(op, t.virtual, ErrFailure, rerr))
		}
	}
	defer q.lockNS()()
	// A script's write is in no registry of uploads in flight that a rename of its folder
	// would cancel: it checks here that it still publishes where it measures (tempInPlace).
	if !tempInPlace(fsys, af) {
		return fail(opErr(op, t.virtual, ErrFailure, errFolderMoved))
	}
	var freedBytes, freedFiles int64
	old, err := lstat(fsys, t.path)
	if err == nil && old.Mode().IsRegular() && vfs.LinkCount(old) <= 1 {
		freedBytes, freedFiles = old.Size(), 1
	}
	needBytes, needFiles := size-freedBytes-charged, 1-freedFiles-files
	if !q.reserve(max(0, needBytes), max(0, needFiles)) {
		return fail(opErr(op, t.virtual, ErrQuota, nil))
	}
	if err := af.Publish(); err != nil {
		q.release(max(0, needBytes)+charged, max(0, needFiles)+files)
		return size, backendErr(op, t.virtual, err)
	}
	q.release(max(0, -needBytes), max(0, -needFiles))
	if freedFiles == 1 {
		q.unlinked(old)
	}
	return size, nil
}

// CopyTo copies the file p to dp of dst (which may be f itself) as Put writes it, and returns
// the bytes copied. ExportFile and ImportFile are copies between a vfs and an allowed root.
func (f *ScriptFS) CopyTo(ctx context.Context, p string, dst *ScriptFS, dp string) (n int64, err error) {
	defer func(start time.Time) { f.audit("read", p, "", start, n, err) }(f.site.now())
	src, err := f.Open(ctx, p)
	if err != nil {
		return 0, err
	}
	defer src.Close()
	return dst.Put(ctx, dp, src)
}

package core

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/spf13/afero"

	"github.com/wharf-project/wharf/vfs"
)

// The namespace operations of ScriptFS: listing, folders, removals, renames, attributes.

// Stat describes a file or folder.
func (f *ScriptFS) Stat(ctx context.Context, p string) (fi fs.FileInfo, err error) {
	return f.statOp(ctx, p, false)
}

// Lstat describes a name without following a final symbolic link.
func (f *ScriptFS) Lstat(ctx context.Context, p string) (fi fs.FileInfo, err error) {
	return f.statOp(ctx, p, true)
}

func (f *ScriptFS) statOp(ctx context.Context, p string, lstatOnly bool) (fi fs.FileInfo, err error) {
	defer func(start time.Time) { f.audit(OpStat, p, "", start, 0, err) }(f.site.now())
	if err := ctx.Err(); err != nil {
		return nil, opErr("stat", p, ErrFailure, err)
	}
	t, err := f.resolve("stat", p, false)
	if err != nil {
		return nil, err
	}
	return f.stat(t, lstatOnly)
}

// ReadDir calls each for every entry of a folder (mount points below it included, temporary
// upload names not), unsorted, until each returns an error, which ReadDir returns.
func (f *ScriptFS) ReadDir(ctx context.Context, dir string, each func(fs.FileInfo) error) (err error) {
	start := f.site.now()
	defer func() { f.audit(OpList, dir, "", start, 0, err) }()
	const op = "list"
	t, err := f.resolve(op, dir, false)
	if err != nil {
		return err
	}
	children := f.table.Children(t.virtual)
	for _, name := range children {
		child, err := f.resolve(op, path.Join(t.virtual, name), false)
		if err != nil {
			continue
		}
		fi, err := f.stat(child, false)
		if err != nil {
			fi = dirInfo{name: name, mod: start}
		}
		if err := each(fi); err != nil {
			return err
		}
	}
	var upload fs.FileInfo // the event's upload, if it is in this folder
	if h := f.pending(); h != nil && t.mount != nil && t.mount.FS == h.t.mount.FS && path.Dir(h.t.path) == t.path {
		if upload, err = f.uploadInfo(); err != nil {
			upload = nil
		}
	}
	if t.mount != nil {
		d, err := openDir(t.mount.FS, t.path)
		if err != nil && !(t.synthetic && errors.Is(err, fs.ErrNotExist)) {
			return backendErr(op, t.virtual, err)
		}
		if d != nil {
			defer d.Close()
			for {
				if err := ctx.Err(); err != nil {
					return opErr(op, t.virtual, ErrFailure, err)
				}
				fis, rerr := d.Readdir(ListBatch)
				for _, fi := range fis {
					name := fi.Name()
					if vfs.IsTempName(name) || (upload != nil && name == upload.Name()) {
						continue
					}
					if _, shadowed := slices.BinarySearch(children, name); shadowed {
						continue
					}
					if err := each(fi); err != nil {
						return err
					}
				}
				if rerr != nil || len(fis) == 0 {
					if rerr != nil && !errors.Is(rerr, io.EOF) {
						return backendErr(op, t.virtual, rerr)
					}
					break
				}
			}
		}
	}
	if upload != nil {
		return each(upload)
	}
	return nil
}

// Mkdir creates a folder; with all, the folders above it too (an existing folder is then no
// error).
func (f *ScriptFS) Mkdir(ctx context.Context, p string, all bool) (err error) {
	defer func(start time.Time) { f.audit(OpMkdir, p, "", start, 0, err) }(f.site.now())
	const op = "mkdir"
	t, err := f.resolveCtx(ctx, op, p, true)
	if err != nil {
		return err
	}
	if t.fixed() {
		if all {
			return nil
		}
		return opErr(op, t.virtual, ErrExists, nil)
	}
	if all {
		return backendErr(op, t.virtual, t.mount.FS.MkdirAll(t.path, 0o755))
	}
	return backendErr(op, t.virtual, t.mount.FS.Mkdir(t.path, 0o755))
}

// Rmdir removes an empty folder.
func (f *ScriptFS) Rmdir(ctx context.Context, p string) (err error) {
	defer func(start time.Time) { f.audit(OpRmdir, p, "", start, 0, err) }(f.site.now())
	const op = "rmdir"
	t, err := f.resolveCtx(ctx, op, p, false)
	if err != nil {
		return err
	}
	if t.fixed() || t.path == "/" {
		return opErr(op, t.virtual, ErrDenied, errors.New("mount points cannot be removed"))
	}
	fi, err := lstat(t.mount.FS, t.path)
	if err != nil {
		return backendErr(op, t.virtual, err)
	}
	if !fi.IsDir() {
		return opErr(op, t.virtual, ErrNotDir, nil)
	}
	// Uploads in flight leave temporary files in a folder that looks empty.
	if names, err := readNames(t.mount.FS, t.path, 1); err != nil {
		return backendErr(op, t.virtual, err)
	} else if len(names) > 0 {
		return opErr(op, t.virtual, ErrNotEmpty, nil)
	}
	return backendErr(op, t.virtual, t.mount.FS.Remove(t.path))
}

// Remove removes a file (or a symbolic link), and cancels the uploads in flight to its name.
// A name that only an upload in flight holds is removed by cancelling that upload, as for a
// client.
func (f *ScriptFS) Remove(ctx context.Context, p string) (err error) {
	defer func(start time.Time) { f.audit(OpRemove, p, "", start, 0, err) }(f.site.now())
	const op = "remove"
	t, err := f.resolveCtx(ctx, op, p, false)
	if err != nil {
		return err
	}
	if t.fixed() || t.path == "/" {
		return opErr(op, t.virtual, ErrDenied, errors.New("mount points cannot be removed"))
	}
	if err := f.publishUpload(t); err != nil {
		return backendErr(op, t.virtual, err)
	}
	key := uploadKey{fs: t.mount.FS, path: t.path}
	fi, err := lstat(t.mount.FS, t.path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && f.site.uploads.newest(key) != nil:
		if f.site.uploads.cancel(key, false) == 0 {
			return opErr(op, t.virtual, ErrNotFound, nil)
		}
		return nil
	case err != nil:
		return backendErr(op, t.virtual, err)
	case fi.IsDir():
		return opErr(op, t.virtual, ErrIsDir, nil)
	}
	if err := removeCounted(f.quotaFor(t), t); err != nil {
		return err
	}
	f.site.uploads.cancel(key, false)
	return nil
}

// RemoveAll removes a file or a folder with everything in it, and cancels the uploads in
// flight below it. Each name is removed and counted as Remove does, under the user's
// namespace lock, so that the quota counts what really went.
func (f *ScriptFS) RemoveAll(ctx context.Context, p string) (err error) {
	defer func(start time.Time) { f.audit(OpRemove, p, "", start, 0, err) }(f.site.now())
	const op = "removeall"
	t, err := f.resolve(op, p, false)
	if err != nil {
		return err
	}
	if t.fixed() || t.path == "/" {
		return opErr(op, t.virtual, ErrDenied, errors.New("mount points cannot be removed"))
	}
	if err := f.publishUpload(t); err != nil {
		return backendErr(op, t.virtual, err)
	}
	f.site.uploads.cancel(uploadKey{fs: t.mount.FS, path: t.path}, true)
	q := f.quotaFor(t)
	defer q.lockNS()()
	err = removeTree(ctx, q, t.mount.FS, t.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // nothing there: RemoveAll succeeds, as os.RemoveAll does
	}
	return backendErr(op, t.virtual, err)
}

// removeTree removes p and everything below it, releasing from q (locked by the caller)
// each file whose last name goes. Temporary upload files go without a release: they count
// by their upload, which was cancelled.
func removeTree(ctx context.Context, q *usage, fsys afero.Fs, p string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fi, err := lstat(fsys, p)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		// Read and remove in batches until the folder is empty: removing entries while
		// reading a directory may make the reader skip some.
		for {
			names, err := readNames(fsys, p, ListBatch)
			if err != nil {
				return err
			}
			if len(names) == 0 {
				break
			}
			for _, n := range names {
				if err := removeTree(ctx, q, fsys, path.Join(p, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return err
				}
			}
		}
	}
	if err := fsys.Remove(p); err != nil {
		return err
	}
	if !vfs.IsTempName(path.Base(p)) {
		q.forget(fi, nil)
	}
	return nil
}

// Rename renames or moves a file or folder inside one mount. An existing file at the target
// is replaced; a folder is not. Uploads in flight to either name (or below a moved folder)
// are cancelled.
func (f *ScriptFS) Rename(ctx context.Context, from, to string) (err error) {
	defer func(start time.Time) { f.audit(OpRename, from, to, start, 0, err) }(f.site.now())
	const op = "rename"
	src, err := f.resolveCtx(ctx, op, from, false)
	if err != nil {
		return err
	}
	dst, err := f.resolve(op, to, true)
	if err != nil {
		return err
	}
	switch {
	case src.fixed() || dst.fixed() || src.path == "/" || dst.path == "/":
		return opErr(op, src.virtual, ErrDenied, errors.New("mount points cannot be renamed"))
	case src.mount != dst.mount:
		return opErr(op, src.virtual, ErrCrossMount, nil)
	case dst.virtual == src.virtual:
		return nil
	case strings.HasPrefix(dst.virtual, src.virtual+"/"):
		return opErr(op, src.virtual, ErrInvalid, errors.New("cannot move a folder into itself"))
	}
	if err := f.publishUpload(src, dst); err != nil {
		return backendErr(op, src.virtual, err)
	}
	if _, err := lstat(src.mount.FS, src.path); err != nil {
		return backendErr(op, src.virtual, err)
	}
	if old, err := lstat(dst.mount.FS, dst.path); err == nil && old.IsDir() {
		return opErr(op, dst.virtual, ErrExists, errors.New("target is a folder"))
	}
	if err := renameCounted(f.quotaFor(src), src, dst); err != nil {
		return err
	}
	f.site.uploads.cancel(uploadKey{fs: src.mount.FS, path: src.path}, true)
	f.site.uploads.cancel(uploadKey{fs: dst.mount.FS, path: dst.path}, false)
	return nil
}

// TreeSize returns the bytes of the files under p (p itself when it is a file), each file
// once however many names it has there.
func (f *ScriptFS) TreeSize(ctx context.Context, p string) (size int64, err error) {
	defer func(start time.Time) { f.audit("treesize", p, "", start, 0, err) }(f.site.now())
	const op = "treesize"
	t, err := f.resolve(op, p, false)
	if err != nil {
		return 0, err
	}
	if f.isUpload(t) {
		fi, err := f.uploadInfo()
		if err != nil {
			return 0, err
		}
		return fi.Size(), nil
	}
	if t.mount == nil {
		return 0, nil
	}
	seen := map[any]bool{}
	var replaced int64 // what the event's upload replaces, when it is below p
	err = afero.Walk(t.mount.FS, t.path, func(q string, fi fs.FileInfo, err error) error {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if err != nil {
			if q == t.path {
				return err
			}
			return nil // unreadable entries do not count
		}
		if !fi.Mode().IsRegular() || vfs.IsTempName(fi.Name()) {
			return nil
		}
		if k, ok := vfs.FileKey(fi); ok && vfs.LinkCount(fi) > 1 {
			if seen[k] {
				return nil
			}
			seen[k] = true
		}
		if h := f.pending(); h != nil && t.mount.FS == h.t.mount.FS && q == h.t.path {
			replaced = fi.Size()
		}
		size += fi.Size()
		return nil
	})
	if err != nil {
		return 0, backendErr(op, t.virtual, err)
	}
	if h := f.pending(); h != nil && t.mount.FS == h.t.mount.FS && strings.HasPrefix(h.t.path, dirPrefix(t.path)) {
		if fi, err := f.uploadInfo(); err == nil {
			size += fi.Size() - replaced
		}
	}
	return size, nil
}

// Chtimes changes a file's access and modification times.
func (f *ScriptFS) Chtimes(ctx context.Context, p string, atime, mtime time.Time) (err error) {
	defer func(start time.Time) { f.audit(OpSetStat, p, "", start, 0, err) }(f.site.now())
	const op = "chtimes"
	t, err := f.resolveCtx(ctx, op, p, false)
	if err != nil {
		return err
	}
	if t.mount == nil {
		return opErr(op, t.virtual, ErrDenied, nil)
	}
	if err := f.publishUpload(t); err != nil {
		return backendErr(op, t.virtual, err)
	}
	return backendErr(op, t.virtual, t.mount.FS.Chtimes(t.path, atime, mtime))
}

// Truncate changes a file's size, counted against the quota as the client's truncation is.
func (f *ScriptFS) Truncate(ctx context.Context, p string, size int64) (err error) {
	defer func(start time.Time) { f.audit(OpSetStat, p, "", start, 0, err) }(f.site.now())
	const op = "truncate"
	t, err := f.resolveCtx(ctx, op, p, false)
	if err != nil {
		return err
	}
	if t.mount == nil {
		return opErr(op, t.virtual, ErrIsDir, nil)
	}
	if err := f.publishUpload(t); err != nil {
		return backendErr(op, t.virtual, err)
	}
	fi, err := t.mount.FS.Stat(t.path)
	if err != nil {
		return backendErr(op, t.virtual, err)
	}
	return truncateCounted(f.quotaFor(t), t, fi, size)
}

// Chmod changes a file's permission bits (no setuid, setgid or sticky bit).
func (f *ScriptFS) Chmod(ctx context.Context, p string, mode fs.FileMode) (err error) {
	defer func(start time.Time) { f.audit(OpSetStat, p, "", start, 0, err) }(f.site.now())
	const op = "chmod"
	t, err := f.resolveCtx(ctx, op, p, false)
	if err != nil {
		return err
	}
	if t.mount == nil || t.fixed() {
		return opErr(op, t.virtual, ErrDenied, nil)
	}
	if err := f.publishUpload(t); err != nil {
		return backendErr(op, t.virtual, err)
	}
	return backendErr(op, t.virtual, t.mount.FS.Chmod(t.path, mode&fs.ModePerm))
}

// Symlink creates a symbolic link at link to target, both in one mount; the backend's rules
// keep a link from leading out of it (see vfs.Disk).
func (f *ScriptFS) Symlink(ctx context.Context, targetPath, link string) (err error) {
	defer func(start time.Time) { f.audit(OpSymlink, link, targetPath, start, 0, err) }(f.site.now())
	const op = "symlink"
	l, err := f.resolveCtx(ctx, op, link, true)
	if err != nil {
		return err
	}
	tp := targetPath
	if !path.IsAbs(tp) {
		tp = path.Join(path.Dir(l.virtual), tp)
	}
	t, err := f.resolve(op, tp, false)
	if err != nil {
		return err
	}
	switch {
	case l.mount == nil || l.fixed():
		return opErr(op, l.virtual, ErrExists, nil)
	case t.mount != l.mount:
		return opErr(op, l.virtual, ErrCrossMount, nil)
	}
	linker, ok := l.mount.FS.(afero.Linker)
	if !ok {
		return opErr(op, l.virtual, ErrUnsupported, nil)
	}
	if err := f.publishUpload(l); err != nil {
		return backendErr(op, l.virtual, err)
	}
	defer f.quotaFor(l).lockNS()()
	return backendErr(op, l.virtual, linker.SymlinkIfPossible(t.path, l.path))
}

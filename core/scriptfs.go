package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/afero"

	"github.com/wharf-project/wharf/vfs"
)

// ScriptFS is a file system that event scripts act on: the session's mounts as the client
// sees them (GetCurrentVFS), a vfs of the site's config by name, or a host folder under
// scripting.allowed_roots (new VirtualFS). Scripts are the administrator's: the user's
// permissions do not apply, and their operations fire no events. Everything else is as for
// the client: every path is confined to its mount by the backend's jail, mount points cannot
// be removed or renamed, temporary upload names cannot be reached, and a change to the user's
// home mount is counted against the user's quota under the same namespace lock as the
// client's own changes. Removing or renaming a name cancels the uploads in flight to it, as
// when a client does it. Every operation is recorded for the audit log with actor "script".
//
// A ScriptFS is used by one script run at a time; it is not safe for concurrent use.
type ScriptFS struct {
	site  *Site
	sess  *Session // the session whose user is charged; nil in events without one
	table *vfs.Table
	home  afero.Fs // the backend the user's quota counts (the user's home mount)
	quota *usage   // nil without a quota
	label string   // "" for a session's mounts; the vfs name or host folder otherwise
	kind  string   // vfs type: disk or memory
	close func() error

	// upload is the event's atomic upload (AfterFileUpload) while it is unpublished: its data
	// is under a temporary name, which reads of its path use. The first change to its path
	// publishes it (see publishUpload).
	upload *WriteHandle

	// cursor is where the last read or write of a path ended, for FromCurrent.
	cursorPath string
	cursorPos  int64
}

// Whence values of ReadAt and WriteAt, as Syncplify's FromStart, FromCurrent and FromEnd.
const (
	FromStart   = 0
	FromCurrent = 1
	FromEnd     = 2
)

// ScriptActor is the Fact.Actor of operations by scripts.
const ScriptActor = "script"

// ScriptFS returns the event's session's mounts for scripts, or an error when the event has
// no logged-in session.
func (e *Event) ScriptFS() (*ScriptFS, error) {
	s := e.Session
	if s == nil {
		return nil, fmt.Errorf("no session: %w", ErrUnsupported)
	}
	s.mu.Lock()
	table, q, u := s.table, s.quota, s.user
	s.mu.Unlock()
	if u == nil || table == nil {
		return nil, fmt.Errorf("not logged in: %w", ErrUnsupported)
	}
	f := &ScriptFS{site: s.site, sess: s, table: table, quota: q}
	if r, err := table.Resolve("/"); err == nil && r.Mount.Path == "/" {
		f.home = r.Mount.FS
	}
	f.upload = e.upload
	f.pending()
	return f, nil
}

// ScriptVFS opens a vfs of the site's config by name. A root with {user} needs the session's
// user; a vfs that is the user's home backend counts against the user's quota.
func (s *Site) ScriptVFS(name string, sess *Session) (*ScriptFS, error) {
	def, ok := s.cfg.Load().vfs[name]
	if !ok {
		return nil, fmt.Errorf("no vfs named %q in the site's config: %w", name, ErrNotFound)
	}
	var uid string
	if sess != nil {
		uid = sess.UserID()
	}
	if uid == "" && strings.Contains(def.Root, "{user}") {
		return nil, fmt.Errorf("vfs %q is per user ({user}) and the event has no logged-in user: %w", name, ErrUnsupported)
	}
	b, err := s.backend(def, uid)
	if err != nil {
		return nil, err
	}
	f, err := s.scriptFS(b, name, def.Type, sess)
	if err != nil {
		return nil, err
	}
	if sess != nil {
		sess.mu.Lock()
		table, q := sess.table, sess.quota
		sess.mu.Unlock()
		if table != nil {
			if r, err := table.Resolve("/"); err == nil && r.Mount.Path == "/" && r.Mount.FS == b {
				f.home, f.quota = b, q
			}
		}
	}
	return f, nil
}

// ScriptDisk opens a host folder as a disk vfs for a script. The folder must be one of
// scripting.allowed_roots or lie below one, and is reached through that root's jail, so
// that no name or symbolic link leads out of the allowed root. Close it when done.
func (s *Site) ScriptDisk(root string, sess *Session) (*ScriptFS, error) {
	base, rel, err := s.allowedRoot(root)
	if err != nil {
		return nil, err
	}
	var b afero.Fs = base
	var closeFn func() error
	if rel != "/" {
		sub, err := base.OpenDir(rel)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", root, kindOf(err))
		}
		b, closeFn = sub, sub.Close
	}
	f, err := s.scriptFS(b, filepath.Clean(root), "disk", sess)
	if err != nil {
		if closeFn != nil {
			_ = closeFn()
		}
		return nil, err
	}
	f.close = closeFn
	return f, nil
}

// LocalFS returns the allowed root that holds a host path, as a jailed backend, and the
// path's name in it: ImportFile, ExportFile, FileReadAsHex and DelFile reach local files
// through it. The backend is the site's and must not be closed.
func (s *Site) LocalFS(hostPath string) (*ScriptFS, string, error) {
	base, rel, err := s.allowedRoot(hostPath)
	if err != nil {
		return nil, "", err
	}
	f, err := s.scriptFS(base, filepath.Clean(hostPath), "disk", nil)
	if err != nil {
		return nil, "", err
	}
	return f, rel, nil
}

func (s *Site) scriptFS(b afero.Fs, label, kind string, sess *Session) (*ScriptFS, error) {
	t, err := vfs.NewTable(&vfs.Mount{Path: "/", Name: label, FS: b})
	if err != nil {
		return nil, err
	}
	return &ScriptFS{site: s, sess: sess, table: t, label: label, kind: kind}, nil
}

// errNotAllowed is a host path outside scripting.allowed_roots.
var errNotAllowed = errors.New("outside scripting.allowed_roots")

// allowedRoot finds the allowed root that holds a host path: its backend (opened once per
// site) and the path's name inside it.
func (s *Site) allowedRoot(hostPath string) (*vfs.Disk, string, error) {
	if !filepath.IsAbs(hostPath) {
		return nil, "", fmt.Errorf("%q is not an absolute path: %w", hostPath, ErrInvalid)
	}
	p := filepath.Clean(hostPath)
	for _, root := range s.Config().Scripting.AllowedRoots {
		rel, err := filepath.Rel(root, p)
		if err != nil || !filepath.IsLocal(rel) {
			continue
		}
		base, err := s.rootBackend(root)
		if err != nil {
			return nil, "", err
		}
		if rel == "." {
			return base, "/", nil
		}
		return base, "/" + filepath.ToSlash(rel), nil
	}
	return nil, "", fmt.Errorf("%s: %w: %w", p, errNotAllowed, ErrDenied)
}

// rootBackend returns the site's backend of an allowed root.
func (s *Site) rootBackend(root string) (*vfs.Disk, error) {
	key := "\x00allowed_root\x00" + root
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.backends[key]; ok {
		return b.(*vfs.Disk), nil
	}
	if _, err := os.Stat(root); err != nil {
		return nil, fmt.Errorf("allowed root %s: %w", root, kindOf(err))
	}
	d, err := vfs.NewDisk(root)
	if err != nil {
		return nil, fmt.Errorf("allowed root %s: %w", root, ErrFailure)
	}
	s.backends[key] = d
	return d, nil
}

// Close releases what the ScriptFS opened (a folder of ScriptDisk).
func (f *ScriptFS) Close() error {
	if f.close == nil {
		return nil
	}
	err := f.close()
	f.close = nil
	return err
}

// Kind returns the vfs type ("disk" or "memory") of the mount that holds p.
func (f *ScriptFS) Kind(p string) string {
	if f.kind != "" {
		return f.kind
	}
	v, err := vfs.Clean(p)
	if err != nil {
		return ""
	}
	r, err := f.table.Resolve(v)
	if err != nil {
		return ""
	}
	if def, ok := f.site.cfg.Load().vfs[r.Mount.Name]; ok {
		if def.Type == "" {
			return "disk"
		}
		return def.Type
	}
	return ""
}

// Name returns the name of the vfs that holds p (the config's vfs name, or the host folder
// of a ScriptDisk).
func (f *ScriptFS) Name(p string) string {
	if f.label != "" {
		return f.label
	}
	v, err := vfs.Clean(p)
	if err != nil {
		return ""
	}
	if r, err := f.table.Resolve(v); err == nil {
		return r.Mount.Name
	}
	return ""
}

// Locate returns the virtual path whose backend location (Session.GetAbsPath) is abs, among
// the paths of the event: FileReadAsHex and DelFile take such a location.
func (f *ScriptFS) Locate(abs string, paths ...string) (string, bool) {
	for _, p := range paths {
		if p == "" {
			continue
		}
		v, err := vfs.Clean(p)
		if err != nil {
			continue
		}
		if r, err := f.table.Resolve(v); err == nil && location(target{mount: r.Mount, path: r.Path}) == abs {
			return v, true
		}
	}
	return "", false
}

// audit records an operation for the audit log.
func (f *ScriptFS) audit(op, p, target string, start time.Time, bytes int64, err error) {
	if f.label != "" {
		p = f.label + ":" + p
		if target != "" {
			target = f.label + ":" + target
		}
	}
	fact := &Fact{Kind: FactOperation, Session: f.sess, Op: op, Path: p, Target: target, Bytes: bytes,
		Duration: f.site.now().Sub(start), Err: err, Actor: ScriptActor}
	f.site.observe(fact)
}

// resolve maps a path to its mount. Temporary upload names cannot be reached; names the
// client could not create (control characters) cannot be created either.
func (f *ScriptFS) resolve(op, p string, create bool) (target, error) {
	v, err := vfs.Clean(p)
	if err != nil {
		return target{}, opErr(op, "", ErrInvalid, err)
	}
	if create && hasControlChar(v) && !f.site.Config().Names.AllowControlChars {
		return target{}, opErr(op, "", ErrBadName, nil)
	}
	t := target{virtual: v, synthetic: f.table.IsSynthetic(v), mountRoot: f.table.IsMountPoint(v)}
	if r, err := f.table.Resolve(v); err == nil {
		t.mount, t.path = r.Mount, r.Path
	} else if !t.synthetic {
		return t, opErr(op, v, ErrNotFound, err)
	}
	for _, name := range strings.Split(v, "/") {
		if vfs.IsTempName(name) {
			return t, opErr(op, v, ErrNotFound, nil)
		}
	}
	return t, nil
}

// quotaFor returns the usage a change to t counts against.
func (f *ScriptFS) quotaFor(t target) *usage {
	if t.mount == nil || f.home == nil || t.mount.FS != f.home {
		return nil
	}
	return f.quota
}

// pending returns the event's upload while it is still unpublished (a handler run after
// the upload was closed finds it published, or cancelled, and reads the visible file).
func (f *ScriptFS) pending() *WriteHandle {
	if h := f.upload; h != nil && (h.published.Load() || h.superseded()) {
		f.upload = nil
	}
	return f.upload
}

// isUpload reports whether t is the event's unpublished upload.
func (f *ScriptFS) isUpload(t target) bool {
	h := f.pending()
	return h != nil && t.mount != nil && t.mount.FS == h.t.mount.FS && t.path == h.t.path
}

// touchesUpload reports whether a change to t changes the event's unpublished upload: t is
// its path or a folder above it.
func (f *ScriptFS) touchesUpload(t target) bool {
	h := f.pending()
	return h != nil && t.mount != nil && t.mount.FS == h.t.mount.FS &&
		(t.path == h.t.path || strings.HasPrefix(h.t.path, dirPrefix(t.path)))
}

// publishUpload publishes the event's upload before a script changes it: the script acts on
// the uploaded file, which must then be where the client put it. Once published,
// BlockOperation can no longer discard it.
func (f *ScriptFS) publishUpload(ts ...target) error {
	if f.pending() == nil || !slices.ContainsFunc(ts, f.touchesUpload) {
		return nil
	}
	h := f.upload
	f.upload = nil
	if err := h.publish(); err != nil {
		return err
	}
	h.early.Store(true)
	if err := h.applyParked(); err != nil {
		h.sess.Logger().Warn("could not apply the uploaded file's attributes", "path", h.t.virtual, "err", err)
	}
	return nil
}

// uploadInfo describes the event's unpublished upload, named as its final name.
func (f *ScriptFS) uploadInfo() (fs.FileInfo, error) {
	h := f.upload
	fi, err := h.t.mount.FS.Stat(h.atomic.TempName())
	if err != nil {
		return nil, backendErr("stat", h.t.virtual, err)
	}
	return renamed(fi, path.Base(h.t.virtual)), nil
}

// stat describes t; lstat does not follow a final symbolic link.
func (f *ScriptFS) stat(t target, lstatOnly bool) (fs.FileInfo, error) {
	if f.isUpload(t) {
		return f.uploadInfo()
	}
	if t.mount != nil {
		var fi fs.FileInfo
		var err error
		if lstatOnly {
			fi, err = lstat(t.mount.FS, t.path)
		} else {
			fi, err = t.mount.FS.Stat(t.path)
		}
		if err == nil {
			return renamed(fi, path.Base(t.virtual)), nil
		}
		if !t.synthetic {
			return nil, backendErr("stat", t.virtual, err)
		}
	}
	return dirInfo{name: path.Base(t.virtual), mod: f.site.now()}, nil
}

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
	if err := ctx.Err(); err != nil {
		return opErr(op, p, ErrFailure, err)
	}
	t, err := f.resolve(op, p, true)
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
	if err := ctx.Err(); err != nil {
		return opErr(op, p, ErrFailure, err)
	}
	t, err := f.resolve(op, p, false)
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
	if err := ctx.Err(); err != nil {
		return opErr(op, p, ErrFailure, err)
	}
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
	if err := ctx.Err(); err != nil {
		return opErr(op, from, ErrFailure, err)
	}
	src, err := f.resolve(op, from, false)
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
	if err := ctx.Err(); err != nil {
		return opErr(op, p, ErrFailure, err)
	}
	t, err := f.resolve(op, p, false)
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
	if err := ctx.Err(); err != nil {
		return opErr(op, p, ErrFailure, err)
	}
	t, err := f.resolve(op, p, false)
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
	if err := ctx.Err(); err != nil {
		return opErr(op, p, ErrFailure, err)
	}
	t, err := f.resolve(op, p, true)
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

// Chmod changes a file's permission bits (no setuid, setgid or sticky bit).
func (f *ScriptFS) Chmod(ctx context.Context, p string, mode fs.FileMode) (err error) {
	defer func(start time.Time) { f.audit(OpSetStat, p, "", start, 0, err) }(f.site.now())
	const op = "chmod"
	if err := ctx.Err(); err != nil {
		return opErr(op, p, ErrFailure, err)
	}
	t, err := f.resolve(op, p, false)
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
	if err := ctx.Err(); err != nil {
		return opErr(op, link, ErrFailure, err)
	}
	l, err := f.resolve(op, link, true)
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

package core

import (
	"context"
	"errors"
	"fmt"
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
// resolveCtx is resolve for an operation that gives up once ctx is done.
func (f *ScriptFS) resolveCtx(ctx context.Context, op, p string, create bool) (target, error) {
	if err := ctx.Err(); err != nil {
		return target{}, opErr(op, p, ErrFailure, err)
	}
	return f.resolve(op, p, create)
}

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

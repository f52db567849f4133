package core

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/spf13/afero"

	"github.com/wharf-project/wharf/vfs"
)

type ctxKey int

const commandKey ctxKey = 0

// WithCommand attaches the protocol command text ("STOR report.csv") that the next operation
// records as Session.GetLastCommand(); without it the operation records its own
// ("OPEN /report.csv").
func WithCommand(ctx context.Context, cmd string) context.Context {
	return context.WithValue(ctx, commandKey, cmd)
}

// target is a resolved virtual path with the policy of its mount.
type target struct {
	virtual   string
	mount     *vfs.Mount // nil for a directory that exists only because of mounts below it
	path      string     // inside the mount
	perms     Perm
	atomic    bool
	symlinks  bool // the mount's vfs allows creating symbolic links
	synthetic bool // an ancestor of a mount point (it is a directory whatever the backend says)
	mountRoot bool // exactly a mount point
}

func (t target) allows(p Perm) bool {
	if t.mount == nil {
		return p == PermList // synthetic directories can only be listed
	}
	return t.perms.Has(p)
}

// fixed reports whether the path is a mount point or exists only because of mounts: it cannot
// be removed or renamed.
func (t target) fixed() bool { return t.mountRoot || t.synthetic }

// begin is the first step of every operation: record the command and activity, and refuse
// when the session is closed, not authenticated, or a script blocked the next operation.
func (s *Session) begin(ctx context.Context, op, vpath, cmd string) error {
	if c, ok := ctx.Value(commandKey).(string); ok {
		cmd = c
	}
	s.RecordCommand(cmd)
	switch {
	case s.Closed():
		return opErr(op, vpath, ErrClosed, nil)
	case s.User() == nil:
		return s.fail(opErr(op, vpath, ErrDenied, refusal(ByAuth, "not authenticated")))
	case s.takeBlock():
		return s.fail(opErr(op, vpath, ErrDenied, refusal(ByScript, "blocked by a script in an earlier event")))
	}
	return nil
}

// fail records err as the session's last error and returns it.
func (s *Session) fail(err error) error {
	if err == nil {
		return nil
	}
	s.RecordError(err)
	var oe *OpError
	if errors.As(err, &oe) && oe.Err != nil {
		s.Logger().Debug("operation failed", "op", oe.Op, "path", oe.Path, "err", oe.Err)
	}
	return err
}

// resolve maps a client path to its mount and records it as the current operation's path.
// readish operations cannot see entries hidden by scripts; no operation sees temp uploads.
func (s *Session) resolve(op, p string, readish bool) (target, error) {
	v, err := vfs.Clean(p)
	if err != nil {
		return target{}, opErr(op, "", ErrInvalid, err)
	}
	if !readish && hasControlChar(v) && !s.site.Config().Names.AllowControlChars {
		// FTP replies and listings and SCP headers are lines: a name with CR or LF in it
		// could forge them. Existing such names stay readable, renamable and removable.
		return target{}, opErr(op, "", ErrBadName, nil)
	}
	s.mu.Lock()
	table, pol := s.table, s.policy
	s.mu.Unlock()
	t := target{virtual: v, synthetic: table.IsSynthetic(v), mountRoot: table.IsMountPoint(v)}
	if r, err := table.Resolve(v); err == nil {
		t.mount, t.path = r.Mount, r.Path
		t.perms, t.atomic, t.symlinks = pol[r.Mount].perms, pol[r.Mount].atomic, pol[r.Mount].symlinks
	} else if !t.synthetic {
		return t, opErr(op, v, ErrNotFound, err)
	}
	if vfs.IsTempName(path.Base(v)) || (readish && s.hides(t)) {
		return t, opErr(op, v, ErrNotFound, nil)
	}
	s.setPaths(t, nil)
	return t, nil
}

// hasControlChar reports whether p contains a C0 control character or DEL.
func hasControlChar(p string) bool {
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x20 || c == 0x7f {
			return true
		}
	}
	return false
}

func (s *Session) setPaths(t target, dst *target) {
	abs := location(t)
	var rel2, abs2 string
	if dst != nil {
		rel2, abs2 = dst.virtual, location(*dst)
	}
	s.mu.Lock()
	s.relPath, s.absPath, s.relTarget, s.absTarget = t.virtual, abs, rel2, abs2
	s.mu.Unlock()
}

// location is the backend location for Session.GetAbsPath().
func location(t target) string {
	if t.mount == nil {
		return ""
	}
	if l, ok := t.mount.FS.(vfs.Locator); ok {
		return l.Locate(t.path)
	}
	return t.mount.Name + ":" + t.path
}

// stat returns the FileInfo of a target, named as the client sees it.
func (s *Session) stat(t target, lstat bool) (fs.FileInfo, error) {
	if t.mount != nil {
		var fi fs.FileInfo
		var err error
		if ls, ok := t.mount.FS.(afero.Lstater); ok && lstat {
			fi, _, err = ls.LstatIfPossible(t.path)
		} else {
			fi, err = t.mount.FS.Stat(t.path)
		}
		if err == nil {
			return renamed(fi, path.Base(t.virtual)), nil
		}
		if !t.synthetic {
			return nil, err
		}
	}
	return dirInfo{name: path.Base(t.virtual), mod: s.start}, nil
}

// Stat returns information about a file or directory.
func (s *Session) Stat(ctx context.Context, p string) (fs.FileInfo, error) {
	return s.statOp(ctx, p, false)
}

// Lstat is Stat without following a final symbolic link.
func (s *Session) Lstat(ctx context.Context, p string) (fs.FileInfo, error) {
	return s.statOp(ctx, p, true)
}

func (s *Session) statOp(ctx context.Context, p string, lstat bool) (_ fs.FileInfo, err error) {
	defer s.observeOp(OpStat, p, "", s.site.now(), 0, &err)
	const op = "stat"
	if err := s.begin(ctx, op, p, "STAT "+p); err != nil {
		return nil, err
	}
	t, err := s.resolve(op, p, true)
	if err != nil {
		return nil, s.fail(err)
	}
	if t.mount != nil && t.perms == 0 && !t.synthetic {
		return nil, s.fail(opErr(op, t.virtual, ErrDenied, nil))
	}
	fi, err := s.stat(t, lstat)
	if err != nil {
		return nil, s.fail(backendErr(op, t.virtual, err))
	}
	return fi, nil
}

// List returns the entries of a directory, sorted by name, after OnDirList scripts had their
// say. Entries that exist because of mounts appear as directories. It holds the whole
// directory in memory: protocol listings use OpenList, which pages through it.
func (s *Session) List(ctx context.Context, dir string) ([]fs.FileInfo, error) {
	l, err := s.OpenList(ctx, dir)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	var out []fs.FileInfo
	for {
		fis, err := l.Next(ListBatch)
		out = append(out, fis...)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	slices.SortFunc(out, func(a, b fs.FileInfo) int { return strings.Compare(a.Name(), b.Name()) })
	return out, nil
}

// Mkdir creates a directory.
func (s *Session) Mkdir(ctx context.Context, p string) (err error) {
	defer s.observeOp(OpMkdir, p, "", s.site.now(), 0, &err)
	const op = "mkdir"
	if err := s.begin(ctx, op, p, "MKDIR "+p); err != nil {
		return err
	}
	t, err := s.resolve(op, p, false)
	if err != nil {
		return s.fail(err)
	}
	if t.fixed() {
		return s.fail(opErr(op, t.virtual, ErrExists, nil))
	}
	if !t.allows(PermMkdir) {
		return s.fail(opErr(op, t.virtual, ErrDenied, nil))
	}
	if s.gate(ctx, BeforeDirCreate, t.virtual, "") {
		return s.fail(opErr(op, t.virtual, ErrDenied, s.scriptRefusal(BeforeDirCreate)))
	}
	if err := t.mount.FS.Mkdir(t.path, 0o755); err != nil {
		return s.fail(backendErr(op, t.virtual, err))
	}
	s.fire(ctx, AfterDirCreate, t.virtual, "")
	return nil
}

// Rmdir removes an empty directory.
func (s *Session) Rmdir(ctx context.Context, p string) (err error) {
	defer s.observeOp(OpRmdir, p, "", s.site.now(), 0, &err)
	const op = "rmdir"
	if err := s.begin(ctx, op, p, "RMDIR "+p); err != nil {
		return err
	}
	t, err := s.resolve(op, p, true)
	if err != nil {
		return s.fail(err)
	}
	if t.fixed() || t.virtual == "/" {
		return s.fail(opErr(op, t.virtual, ErrDenied, refusal(ByMount, "mount points cannot be removed")))
	}
	if !t.allows(PermRmdir) {
		return s.fail(opErr(op, t.virtual, ErrDenied, nil))
	}
	fi, err := t.mount.FS.Stat(t.path)
	if err != nil {
		return s.fail(backendErr(op, t.virtual, err))
	}
	if !fi.IsDir() {
		return s.fail(opErr(op, t.virtual, ErrNotDir, nil))
	}
	if names, err := readNames(t.mount.FS, t.path, 1); err != nil {
		return s.fail(backendErr(op, t.virtual, err))
	} else if len(names) > 0 {
		return s.fail(opErr(op, t.virtual, ErrNotEmpty, nil))
	}
	if s.gate(ctx, BeforeDirDelete, t.virtual, "") {
		return s.fail(opErr(op, t.virtual, ErrDenied, s.scriptRefusal(BeforeDirDelete)))
	}
	if err := t.mount.FS.Remove(t.path); err != nil {
		return s.fail(backendErr(op, t.virtual, err))
	}
	s.fire(ctx, AfterDirDelete, t.virtual, "")
	return nil
}

func readNames(fsys afero.Fs, p string, n int) ([]string, error) {
	f, err := fsys.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(n)
	if errors.Is(err, errEOF) {
		err = nil
	}
	return names, err
}

// Remove deletes a file. It also cancels the uploads in flight to that name (see inflight),
// which is all it does when the name has no visible file yet: the client removes a file it
// was writing, as on POSIX.
func (s *Session) Remove(ctx context.Context, p string) (err error) {
	defer s.observeOp(OpRemove, p, "", s.site.now(), 0, &err)
	const op = "remove"
	if err := s.begin(ctx, op, p, "REMOVE "+p); err != nil {
		return err
	}
	t, err := s.resolve(op, p, true)
	if err != nil {
		return s.fail(err)
	}
	if t.fixed() {
		return s.fail(opErr(op, t.virtual, ErrDenied, refusal(ByMount, "mount points cannot be removed")))
	}
	if !t.allows(PermDelete) {
		return s.fail(opErr(op, t.virtual, ErrDenied, nil))
	}
	key := uploadKey{fs: t.mount.FS, path: t.path}
	fi, err := s.stat(t, true)
	inFlightOnly := errors.Is(err, fs.ErrNotExist) && s.site.uploads.newest(key) != nil
	switch {
	case err != nil && !inFlightOnly:
		return s.fail(backendErr(op, t.virtual, err))
	case err == nil && fi.IsDir():
		return s.fail(opErr(op, t.virtual, ErrIsDir, nil))
	}
	if s.gate(ctx, BeforeFileDelete, t.virtual, "") {
		return s.fail(opErr(op, t.virtual, ErrDenied, s.scriptRefusal(BeforeFileDelete)))
	}
	if inFlightOnly {
		if s.site.uploads.cancel(key, false) == 0 {
			return s.fail(opErr(op, t.virtual, ErrNotFound, nil))
		}
	} else if err := s.removeFile(t); err != nil {
		return s.fail(err)
	} else {
		s.site.uploads.cancel(key, false)
	}
	s.fire(ctx, AfterFileDelete, t.virtual, "")
	return nil
}

// removeFile removes a name; a file whose last name it was stops counting for the quota.
func (s *Session) removeFile(t target) error { return removeCounted(s.homeQuota(t), t) }

// removeCounted removes a name, settling q (nil: no quota) as removeFile says.
func removeCounted(q *usage, t target) error {
	defer q.lockNS()()
	var victim fs.FileInfo
	if q != nil {
		victim, _ = lstat(t.mount.FS, t.path)
	}
	if err := t.mount.FS.Remove(t.path); err != nil {
		return backendErr("remove", t.virtual, err)
	}
	q.forget(victim, nil)
	return nil
}

// Rename moves a file or directory inside one mount. With replace false an existing target is
// an error (SFTP v3 rename); with replace true an existing file is replaced (posix-rename, FTP).
func (s *Session) Rename(ctx context.Context, from, to string, replace bool) (err error) {
	defer s.observeOp(OpRename, from, to, s.site.now(), 0, &err)
	const op = "rename"
	if err := s.begin(ctx, op, from, "RENAME "+from+" "+to); err != nil {
		return err
	}
	src, err := s.resolve(op, from, true)
	if err != nil {
		return s.fail(err)
	}
	dst, err := s.resolve(op, to, false)
	if err != nil {
		return s.fail(err)
	}
	s.setPaths(src, &dst)
	switch {
	case src.fixed() || dst.fixed():
		return s.fail(opErr(op, src.virtual, ErrDenied, refusal(ByMount, "mount points cannot be renamed")))
	case src.mount != dst.mount:
		return s.fail(opErr(op, src.virtual, ErrCrossMount, nil))
	case !src.allows(PermRename) || !dst.allows(PermRename):
		return s.fail(opErr(op, src.virtual, ErrDenied, nil))
	case dst.virtual == src.virtual:
		return nil
	case strings.HasPrefix(dst.virtual, src.virtual+"/"):
		return s.fail(opErr(op, src.virtual, ErrInvalid, errors.New("cannot move a directory into itself")))
	}
	if _, err := s.stat(src, true); err != nil {
		return s.fail(backendErr(op, src.virtual, err))
	}
	old, err := s.stat(dst, true)
	exists := err == nil
	if exists {
		switch {
		case !replace:
			return s.fail(opErr(op, dst.virtual, ErrExists, nil))
		case old.IsDir():
			return s.fail(opErr(op, dst.virtual, ErrExists, errors.New("target is a directory")))
		case !dst.allows(PermOverwrite):
			return s.fail(opErr(op, dst.virtual, ErrDenied, nil))
		}
	}
	if s.gate(ctx, BeforeFileRename, src.virtual, dst.virtual) {
		return s.fail(opErr(op, src.virtual, ErrDenied, s.scriptRefusal(BeforeFileRename)))
	}
	if err := s.renameFile(src, dst); err != nil {
		return s.fail(err)
	}
	// Uploads in flight to either name (or below a moved directory) would publish where the
	// client no longer expects them, or over what the rename put there.
	s.site.uploads.cancel(uploadKey{fs: src.mount.FS, path: src.path}, true)
	s.site.uploads.cancel(uploadKey{fs: dst.mount.FS, path: dst.path}, false)
	s.fire(ctx, AfterFileRename, src.virtual, dst.virtual)
	return nil
}

// renameFile renames inside one mount; a file it replaces stops counting for the quota if
// that was its last name. Renaming a name onto another name of the same file changes
// nothing (rename(2) does nothing then), so nothing is released.
func (s *Session) renameFile(src, dst target) error { return renameCounted(s.homeQuota(src), src, dst) }

// renameCounted renames inside one mount, settling q (nil: no quota) as renameFile says.
func renameCounted(q *usage, src, dst target) error {
	defer q.lockNS()()
	var moved, victim fs.FileInfo
	if q != nil {
		moved, _ = lstat(src.mount.FS, src.path)
		victim, _ = lstat(dst.mount.FS, dst.path)
	}
	if err := src.mount.FS.Rename(src.path, dst.path); err != nil {
		return backendErr("rename", src.virtual, err)
	}
	q.forget(victim, moved)
	return nil
}

// Attrs are the attributes SetStat changes; nil fields are left alone.
type Attrs struct {
	Mode  *fs.FileMode
	Atime *time.Time
	Mtime *time.Time
	Size  *int64
}

// SetStat changes mode, times or size, each with its permission (chmod, chtimes, overwrite).
// It applies to the visible file; when the name has none, to the newest upload in flight to
// it (an atomic upload is still under its temporary name).
func (s *Session) SetStat(ctx context.Context, p string, a Attrs) (err error) {
	defer s.observeOp(OpSetStat, p, "", s.site.now(), 0, &err)
	const op = "setstat"
	if err := s.begin(ctx, op, p, "SETSTAT "+p); err != nil {
		return err
	}
	t, err := s.resolve(op, p, true)
	if err != nil {
		return s.fail(err)
	}
	if t.mount == nil || !t.allowsAttrs(a) {
		return s.fail(opErr(op, t.virtual, ErrDenied, nil))
	}
	if t.mountRoot && a.Mode != nil {
		// The folder the operator set up: a client's chmod 777 would open it to every account
		// on the host, a chmod 000 would lock the server (and every user sharing the mount)
		// out of it, with no way back through the mount itself.
		return s.fail(opErr(op, t.virtual, ErrDenied, refusal(ByMount, "the permissions of a mount point cannot be changed")))
	}
	err = s.setVisible(t, a)
	if errors.Is(err, ErrNotFound) {
		if h := s.site.uploads.newest(uploadKey{fs: t.mount.FS, path: t.path}); h != nil {
			err = h.setAttrs(a)
		}
	}
	return s.fail(err)
}

// allowsAttrs reports whether the mount's permissions allow changing the attributes.
func (t target) allowsAttrs(a Attrs) bool {
	return (a.Mode == nil || t.allows(PermChmod)) && (a.Atime == nil && a.Mtime == nil || t.allows(PermChtimes)) &&
		(a.Size == nil || t.allows(PermOverwrite))
}

// setVisible changes the attributes of the file under a name.
func (s *Session) setVisible(t target, a Attrs) error {
	const op = "setstat"
	// The file is looked up only when a change needs what it is (truncate, or a time the
	// client left out) or when nothing changes, to report a missing file: a mode change
	// alone, which FTP clients send after every upload (SITE CHMOD), finds it by itself.
	var fi fs.FileInfo
	var err error
	noChange := a.Mode == nil && a.Atime == nil && a.Mtime == nil && a.Size == nil
	if noChange || a.Size != nil || (a.Atime == nil) != (a.Mtime == nil) {
		if fi, err = t.mount.FS.Stat(t.path); err != nil {
			return backendErr(op, t.virtual, err)
		}
	}
	if a.Size != nil {
		if err := s.truncate(t, fi, *a.Size); err != nil {
			return err
		}
	}
	if a.Mode != nil {
		// Only permission bits: no setuid/setgid/sticky from clients.
		if err := t.mount.FS.Chmod(t.path, *a.Mode&fs.ModePerm); err != nil {
			return backendErr(op, t.virtual, err)
		}
	}
	if a.Atime != nil || a.Mtime != nil {
		at, mt := a.Atime, a.Mtime
		if at == nil {
			at = new(fi.ModTime())
		}
		if mt == nil {
			mt = new(fi.ModTime())
		}
		if err := t.mount.FS.Chtimes(t.path, *at, *mt); err != nil {
			return backendErr(op, t.virtual, err)
		}
	}
	return nil
}

// truncate changes a file's size; the quota is charged or credited by the change measured
// under the namespace lock (another session may have changed the file since fi).
func (s *Session) truncate(t target, fi fs.FileInfo, size int64) error {
	return truncateCounted(s.homeQuota(t), t, fi, size)
}

// truncateCounted changes a file's size, settling q (nil: no quota) as truncate says.
func truncateCounted(q *usage, t target, fi fs.FileInfo, size int64) error {
	const op = "truncate"
	if fi.IsDir() {
		return opErr(op, t.virtual, ErrIsDir, nil)
	}
	if size < 0 {
		return opErr(op, t.virtual, ErrInvalid, nil)
	}
	defer q.lockNS()()
	if q != nil {
		var err error
		if fi, err = t.mount.FS.Stat(t.path); err != nil {
			return backendErr(op, t.virtual, err)
		}
	}
	grow := size - fi.Size()
	if grow > 0 && !q.reserve(grow, 0) {
		return opErr(op, t.virtual, ErrQuota, nil)
	}
	f, err := t.mount.FS.OpenFile(t.path, os.O_WRONLY, 0)
	if err == nil {
		err = f.Truncate(size)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		if grow > 0 {
			q.release(grow, 0)
		}
		return backendErr(op, t.virtual, err)
	}
	if grow < 0 {
		q.release(-grow, 0)
	}
	return nil
}

// RealPath returns the canonical virtual path (SFTP realpath; the start directory is "/").
func (s *Session) RealPath(p string) (string, error) {
	v, err := vfs.Clean(p)
	if err != nil {
		return "", opErr("realpath", "", ErrInvalid, err)
	}
	return v, nil
}

// StatFS reports space for a path: from the user's quota when one is set, else from the
// backend.
func (s *Session) StatFS(ctx context.Context, p string) (_ *vfs.StatFS, err error) {
	defer s.observeOp(OpStatFS, p, "", s.site.now(), 0, &err)
	const op = "statfs"
	if err := s.begin(ctx, op, p, "STATVFS "+p); err != nil {
		return nil, err
	}
	t, err := s.resolve(op, p, true)
	if err != nil {
		return nil, s.fail(err)
	}
	var st *vfs.StatFS
	if t.mount != nil {
		if ss, ok := t.mount.FS.(vfs.SpaceStater); ok {
			st, err = ss.StatFS(t.path)
			if err != nil {
				return nil, s.fail(backendErr(op, t.virtual, err))
			}
		}
	}
	if q := s.quotaRecord(); q != nil && t.mount != nil && t.mount.Path == "/" {
		q.refresh(ctx)
		st = quotaStatFS(q, st)
	}
	if st == nil {
		return nil, s.fail(opErr(op, t.virtual, ErrUnsupported, nil))
	}
	return st, nil
}

func quotaStatFS(q *usage, st *vfs.StatFS) *vfs.StatFS {
	bytes, files, maxB, maxF := q.snapshot()
	out := vfs.StatFS{BlockSize: 4096, NameMax: 255}
	if st != nil {
		out = *st
	}
	if maxB > 0 {
		out.Blocks = uint64(maxB) / out.BlockSize
		free := uint64(max(0, maxB-bytes)) / out.BlockSize
		out.BlocksFree, out.BlocksAvail = free, free
	}
	if maxF > 0 {
		out.Files, out.FilesFree = uint64(maxF), uint64(max(0, maxF-files))
	}
	return &out
}

func (s *Session) quotaRecord() *usage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.quota
}

// homeQuota returns the usage a change to t counts against: the user's, for the home mount
// (quotas count the home mount only), nil otherwise.
func (s *Session) homeQuota(t target) *usage {
	if t.mount == nil || t.mount.Path != "/" {
		return nil
	}
	return s.quotaRecord()
}

// Symlink creates a symbolic link at link pointing to target; both must be in the same
// mount, so a link can never lead outside it.
func (s *Session) Symlink(ctx context.Context, targetPath, link string) (err error) {
	defer s.observeOp(OpSymlink, link, targetPath, s.site.now(), 0, &err)
	const op = "symlink"
	if err := s.begin(ctx, op, link, "SYMLINK "+targetPath+" "+link); err != nil {
		return err
	}
	l, err := s.resolve(op, link, false)
	if err != nil {
		return s.fail(err)
	}
	tp := targetPath
	if !path.IsAbs(tp) {
		tp = path.Join(path.Dir(l.virtual), tp)
	}
	t, err := s.resolve(op, tp, true)
	if err != nil {
		return s.fail(err)
	}
	s.setPaths(l, &t)
	if err := symlinkAllowed(l, t); err != nil {
		return s.fail(err)
	}
	linker, ok := l.mount.FS.(afero.Linker)
	if !ok {
		return s.fail(opErr(op, l.virtual, ErrUnsupported, nil))
	}
	if s.gateNewName(ctx, l, t) {
		return s.fail(opErr(op, l.virtual, ErrDenied, s.scriptRefusal(BeforeFileUpload)))
	}
	// Under the namespace lock: a link that appears between another session's check of a
	// name and its create would make that create open an existing file.
	unlock := s.homeQuota(l).lockNS()
	err = linker.SymlinkIfPossible(t.path, l.path)
	unlock()
	if err != nil {
		return s.fail(backendErr(op, l.virtual, err))
	}
	return nil
}

// Link creates a hard link; both names must be in the same mount.
func (s *Session) Link(ctx context.Context, oldPath, newPath string) (err error) {
	defer s.observeOp(OpLink, newPath, oldPath, s.site.now(), 0, &err)
	const op = "link"
	if err := s.begin(ctx, op, newPath, "LINK "+oldPath+" "+newPath); err != nil {
		return err
	}
	o, err := s.resolve(op, oldPath, true)
	if err != nil {
		return s.fail(err)
	}
	n, err := s.resolve(op, newPath, false)
	if err != nil {
		return s.fail(err)
	}
	s.setPaths(o, &n)
	if n.fixed() || n.mount == nil || o.mount == nil {
		return s.fail(opErr(op, n.virtual, ErrDenied, errors.New("not a file in a folder")))
	}
	hl, ok := n.mount.FS.(vfs.HardLinker)
	switch {
	case o.mount != n.mount:
		return s.fail(opErr(op, n.virtual, ErrDenied, refusal(ByMount, "hard link across mounts")))
	case !n.allows(PermUpload) || !o.allows(PermDownload):
		return s.fail(opErr(op, n.virtual, ErrDenied, nil))
	case !ok:
		return s.fail(opErr(op, n.virtual, ErrUnsupported, nil))
	}
	fi, err := o.mount.FS.Stat(o.path)
	if err != nil {
		return s.fail(backendErr(op, o.virtual, err))
	}
	if fi.IsDir() {
		return s.fail(opErr(op, o.virtual, ErrIsDir, nil))
	}
	if s.gateNewName(ctx, n, o) {
		return s.fail(opErr(op, n.virtual, ErrDenied, s.scriptRefusal(BeforeFileUpload)))
	}
	// A new name for a file adds nothing to the quota: files count once, however many names
	// they have. It is made under the namespace lock all the same, since what other changes
	// count depends on how many names a file has.
	unlock := s.homeQuota(n).lockNS()
	err = hl.Link(o.path, n.path)
	unlock()
	if err != nil {
		return s.fail(backendErr(op, n.virtual, err))
	}
	return nil
}

// gateNewName fires BeforeFileUpload for a link about to be created: a link is a new file
// name, and scripts that refuse names (deny-executables) must see it as they see an upload.
// The link's path is the event's path, what it leads to the target path.
func (s *Session) gateNewName(ctx context.Context, link, to target) bool {
	s.setPaths(link, &to)
	return s.gate(ctx, BeforeFileUpload, link.virtual, to.virtual)
}

// Readlink returns a symbolic link's target as a virtual path.
func (s *Session) Readlink(ctx context.Context, p string) (_ string, err error) {
	defer s.observeOp(OpReadlink, p, "", s.site.now(), 0, &err)
	const op = "readlink"
	if err := s.begin(ctx, op, p, "READLINK "+p); err != nil {
		return "", err
	}
	t, err := s.resolve(op, p, true)
	if err != nil {
		return "", s.fail(err)
	}
	if t.mount == nil || !t.allows(PermList) {
		return "", s.fail(opErr(op, t.virtual, ErrDenied, nil))
	}
	lr, ok := t.mount.FS.(afero.LinkReader)
	if !ok {
		return "", s.fail(opErr(op, t.virtual, ErrUnsupported, nil))
	}
	dst, err := lr.ReadlinkIfPossible(t.path)
	if err != nil {
		return "", s.fail(backendErr(op, t.virtual, err))
	}
	return path.Join(t.mount.Path, dst), nil
}

package sftp

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"runtime/debug"
	"time"

	pkgsftp "github.com/pkg/sftp"

	"github.com/wharf-project/wharf/core"
)

// handlers implements every pkg/sftp handler interface for one SSH session. Each request is
// one call on the core session; nothing here touches a file system or decides policy.
//
// Contexts: pkg/sftp's Request.Context() is missing for FSTAT/FSETSTAT and ends with the
// request, so operations run under the session's context, which ends with the connection.
type handlers struct {
	sess *core.Session
	ctx  context.Context
}

var (
	_ pkgsftp.FileReader           = (*handlers)(nil)
	_ pkgsftp.OpenFileWriter       = (*handlers)(nil)
	_ pkgsftp.PosixRenameFileCmder = (*handlers)(nil)
	_ pkgsftp.StatVFSFileCmder     = (*handlers)(nil)
	_ pkgsftp.LstatFileLister      = (*handlers)(nil)
	_ pkgsftp.RealPathFileLister   = (*handlers)(nil)
	_ pkgsftp.ReadlinkFileLister   = (*handlers)(nil)
)

func newHandlers(ctx context.Context, sess *core.Session) pkgsftp.Handlers {
	h := &handlers{sess: sess, ctx: ctx}
	return pkgsftp.Handlers{FileGet: h, FilePut: h, FileCmd: h, FileList: h}
}

// Fileread opens a download.
func (h *handlers) Fileread(r *pkgsftp.Request) (_ io.ReaderAt, err error) {
	defer h.guard(&err)
	rh, err := h.sess.OpenRead(h.ctx, r.Filepath, 0)
	if err != nil {
		return nil, toStatus(err)
	}
	return &readFile{ReadHandle: rh, h: h}, nil
}

// Filewrite opens an upload (any open with a write flag and without read).
func (h *handlers) Filewrite(r *pkgsftp.Request) (_ io.WriterAt, err error) {
	defer h.guard(&err)
	f, err := h.openWrite(r)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return f, nil
}

// OpenFile opens for reading and writing (pkg/sftp's client Create uses O_RDWR).
func (h *handlers) OpenFile(r *pkgsftp.Request) (_ pkgsftp.WriterAtReaderAt, err error) {
	defer h.guard(&err)
	f, err := h.openWrite(r)
	if err != nil {
		return nil, err
	}
	return f, nil
}

func (h *handlers) openWrite(r *pkgsftp.Request) (*writeFile, error) {
	fl := r.Pflags()
	if !fl.Creat {
		// Without SSH_FXF_CREAT the file must already exist (SFTP's open(2) semantics);
		// the core's OpenWrite always creates.
		if _, err := h.sess.Stat(h.ctx, r.Filepath); err != nil {
			return nil, toStatus(err)
		}
	}
	mode := core.WriteMode{Truncate: fl.Trunc, Append: fl.Append, Exclusive: fl.Excl && fl.Creat, Read: fl.Read}
	wh, err := h.sess.OpenWrite(h.ctx, r.Filepath, mode, 0)
	if err != nil {
		return nil, toStatus(err)
	}
	return &writeFile{WriteHandle: wh, h: h}, nil
}

// Filecmd runs the commands that need no handle.
func (h *handlers) Filecmd(r *pkgsftp.Request) (err error) {
	defer h.guard(&err)
	s, ctx := h.sess, h.ctx
	switch r.Method {
	case "Setstat":
		return h.setstat(r)
	case "Rename":
		err = s.Rename(ctx, r.Filepath, r.Target, false)
	case "Rmdir":
		err = s.Rmdir(ctx, r.Filepath)
	case "Mkdir":
		err = s.Mkdir(ctx, r.Filepath)
	case "Remove":
		err = s.Remove(ctx, r.Filepath)
	case "Link":
		err = s.Link(ctx, r.Filepath, r.Target)
	case "Symlink":
		// pkg/sftp leaves the link target raw (possibly relative, with ".."); the core
		// resolves it against the link's directory and keeps it inside the link's mount.
		err = s.Symlink(ctx, r.Filepath, r.Target)
	default:
		return pkgsftp.ErrSSHFxOpUnsupported
	}
	return toStatus(err)
}

func (h *handlers) setstat(r *pkgsftp.Request) error {
	fl, st := r.AttrFlags(), r.Attributes()
	var a core.Attrs
	if fl.Size {
		size := int64(st.Size)
		a.Size = &size
	}
	if fl.Permissions {
		// Only the permission bits: SFTP modes are POSIX modes, whose type and
		// setuid bits do not line up with fs.FileMode's.
		m := fs.FileMode(st.Mode & 0o777)
		a.Mode = &m
	}
	if fl.Acmodtime {
		at, mt := time.Unix(int64(st.Atime), 0), time.Unix(int64(st.Mtime), 0)
		a.Atime, a.Mtime = &at, &mt
	}
	if a == (core.Attrs{}) {
		if fl.UidGid {
			// Ownership is the server's business; clients that send it together with
			// other attributes (scp -p, rclone) get the rest applied.
			return pkgsftp.ErrSSHFxOpUnsupported
		}
		return nil
	}
	if wf, ok := r.HandleFile().(*writeFile); ok {
		// FSETSTAT of an upload (OpenSSH "put -p" sets the times just before closing) goes
		// to that upload, not to whatever the path holds meanwhile.
		return toStatus(wf.SetStat(h.ctx, a))
	}
	return toStatus(h.sess.SetStat(h.ctx, r.Filepath, a))
}

// PosixRename renames replacing an existing target (posix-rename@openssh.com).
func (h *handlers) PosixRename(r *pkgsftp.Request) (err error) {
	defer h.guard(&err)
	return toStatus(h.sess.Rename(h.ctx, r.Filepath, r.Target, true))
}

// StatVFS answers statvfs@openssh.com from the core's StatFS (the quota when one is set).
func (h *handlers) StatVFS(r *pkgsftp.Request) (_ *pkgsftp.StatVFS, err error) {
	defer h.guard(&err)
	st, err := h.sess.StatFS(h.ctx, r.Filepath)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pkgsftp.StatVFS{
		Bsize: st.BlockSize, Frsize: st.BlockSize, Blocks: st.Blocks, Bfree: st.BlocksFree,
		Bavail: st.BlocksAvail, Files: st.Files, Ffree: st.FilesFree, Favail: st.FilesFree,
		Namemax: st.NameMax,
	}, nil
}

// Filelist serves directory listings and stat.
func (h *handlers) Filelist(r *pkgsftp.Request) (_ pkgsftp.ListerAt, err error) {
	defer h.guard(&err)
	switch r.Method {
	case "List":
		l, err := h.sess.OpenList(h.ctx, r.Filepath)
		if err != nil {
			return nil, toStatus(err)
		}
		return &dirLister{l: l, h: h}, nil
	case "Stat":
		if wf, ok := r.HandleFile().(*writeFile); ok {
			// FSTAT of an upload: the file being written, which an atomic upload keeps
			// under a temporary name until it is closed.
			fi, err := wf.Stat()
			if err != nil {
				return nil, toStatus(err)
			}
			return listerAt{fi}, nil
		}
		fi, err := h.sess.Stat(h.ctx, r.Filepath)
		if err != nil {
			return nil, toStatus(err)
		}
		return listerAt{fi}, nil
	}
	return nil, pkgsftp.ErrSSHFxOpUnsupported
}

// Lstat is stat without following a final symbolic link.
func (h *handlers) Lstat(r *pkgsftp.Request) (_ pkgsftp.ListerAt, err error) {
	defer h.guard(&err)
	fi, err := h.sess.Lstat(h.ctx, r.Filepath)
	if err != nil {
		return nil, toStatus(err)
	}
	return listerAt{fi}, nil
}

// RealPath canonicalises a client path; the start directory is "/".
func (h *handlers) RealPath(p string) (string, error) {
	v, err := h.sess.RealPath(p)
	return v, toStatus(err)
}

// Readlink returns a link's target as a virtual path.
func (h *handlers) Readlink(p string) (_ string, err error) {
	defer h.guard(&err)
	v, err := h.sess.Readlink(h.ctx, p)
	return v, toStatus(err)
}

// guard turns a panic in the core (or in a script it runs) into SSH_FX_FAILURE for this one
// request: otherwise it would end the session (pkg/sftp runs most requests on the session's
// goroutine) or, on a read or write goroutine, the whole process. ReadAt and WriteAt stay unguarded on purpose: they are the hot path, fire no
// events and call no scripts.
func (h *handlers) guard(err *error) {
	if r := recover(); r != nil {
		h.sess.Logger().Error("panic in sftp request", "panic", r, "stack", string(debug.Stack()))
		*err = pkgsftp.ErrSSHFxFailure
	}
}

// dirLister serves SSH_FXP_READDIR from the core's Lister, one batch per request, so the
// server holds the open directory and one batch whatever the directory's size. pkg/sftp asks
// with len(dst) = 100 and an offset it keeps itself, growing by what each answer held: the
// offsets are always the next entry's. As the Lister keeps no entry it has handed out, any
// other offset is refused (SSH_FX_FAILURE) rather than served wrong. pkg/sftp closes the
// lister (io.Closer) with the handle, or when the session ends.
type dirLister struct {
	l    *core.Lister
	h    *handlers
	next int64
}

// ListAt answers io.EOF at the end, never (0, nil): an empty NAME packet makes OpenSSH's
// client ask again forever.
func (d *dirLister) ListAt(dst []fs.FileInfo, off int64) (_ int, err error) {
	defer d.h.guard(&err)
	if off != d.next || len(dst) == 0 {
		return 0, pkgsftp.ErrSSHFxFailure
	}
	fis, err := d.l.Next(len(dst))
	n := copy(dst, fis)
	d.next += int64(n)
	if errors.Is(err, io.EOF) {
		return n, io.EOF
	}
	return n, toStatus(err)
}

func (d *dirLister) Close() (err error) {
	defer d.h.guard(&err)
	return toStatus(d.l.Close())
}

// listerAt answers Stat and Lstat, whose one entry pkg/sftp reads with ListAt.
type listerAt []fs.FileInfo

func (l listerAt) ListAt(dst []fs.FileInfo, off int64) (int, error) {
	if off >= int64(len(l)) {
		return 0, io.EOF
	}
	n := copy(dst, l[off:])
	if off+int64(n) >= int64(len(l)) {
		return n, io.EOF
	}
	return n, nil
}

// readFile is a download handle as pkg/sftp sees it: ReadAt goes straight to the core handle
// (it is safe for the eight concurrent workers); TransferError tells the core the transfer was
// cut off, so Close fires OnTransferError instead of AfterFileDownload.
type readFile struct {
	*core.ReadHandle
	h *handlers
}

func (f *readFile) TransferError(err error) { f.Abort(err) }

func (f *readFile) Close() (err error) {
	defer f.h.guard(&err)
	return toStatus(f.ReadHandle.Close())
}

// writeFile is an upload handle; see readFile. An aborted atomic upload is discarded by the
// core, so a cut connection never leaves a partial file under the final name.
type writeFile struct {
	*core.WriteHandle
	h *handlers
}

func (f *writeFile) TransferError(err error) { f.Abort(err) }

func (f *writeFile) Close() (err error) {
	defer f.h.guard(&err)
	return toStatus(f.WriteHandle.Close())
}

package core

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/afero"

	"github.com/wharf-project/wharf/vfs"
)

// WriteMode says how OpenWrite opens a file.
type WriteMode struct {
	Truncate  bool // replace the content
	Append    bool // every write goes to the end
	Exclusive bool // fail if the file exists
	Read      bool // also readable through ReadAt (SFTP read+write opens)
}

// WriteHandle is an open upload. Writes count bytes and quota; Close publishes an atomic
// upload and fires AfterFileUpload, or discards it and fires OnTransferError. WriteAt is safe
// for concurrent use.
//
// Quota: the user's usage counts each file of the home mount once (hard links share it) by
// its real size. An atomic upload's temporary file counts as it grows, less its credit; when
// it is published the file it replaces stops counting (see publish). A non-atomic upload is
// charged by how much each write or truncation really changes the file's size, measured under
// the user's namespace lock, so that a truncation by another session, through another name
// or through a link is seen (see usage).
type WriteHandle struct {
	sess   *Session
	t      target
	f      afero.File
	atomic *vfs.AtomicFile
	quota  *usage // nil without a quota or outside the home mount
	mode   WriteMode
	start  time.Time
	// appendFrom is the file's size when an append opened it: WriteAt offsets from there on
	// are the client's own (see WriteAt).
	appendFrom int64

	// Atomic uploads, registered in the site's inflight registry.
	key uploadKey
	seq uint64
	// credit is the size of the file the upload will replace: that file counts until the
	// upload is published, so the upload's first credit bytes are not charged twice and a
	// user can replace a file without room for two copies. Of the uploads in flight to one
	// name, only one holds a credit.
	credit    int64
	files     int64 // files charged: 1 when the name did not exist when the upload opened
	cancelled atomic.Bool
	early     atomic.Bool // published by an AfterFileUpload script that changed it
	published atomic.Bool // under its final name (ScriptFS reads it there from then on)

	// Non-atomic uploads with a quota. info identifies the open file; orphan (guarded by the
	// quota's ns lock) is set when its last name is removed: it no longer counts, so writes to
	// it are refused rather than left uncounted.
	info    fs.FileInfo
	orphan  bool
	created bool // this open created the file (it is removed again if it runs over the quota)

	mu       sync.Mutex
	hw       int64 // atomic: size of the temporary file
	charged  int64 // atomic: bytes charged to the quota, max(0, hw-credit)
	pos      int64 // for Write
	quotaHit bool
	parked   Attrs // mode and times to apply after an atomic upload is published

	bytes atomic.Int64
	fail  atomic.Pointer[error]
	once  sync.Once
	err   error
}

// OpenWrite opens a file for upload. offset is where Write starts (FTP REST); SFTP uses
// WriteAt. Creating needs the upload permission; changing an existing file's content needs
// overwrite (appending needs upload).
func (s *Session) OpenWrite(ctx context.Context, p string, mode WriteMode, offset int64) (_ *WriteHandle, err error) {
	defer s.observeOpen(OpUpload, p, s.site.now(), &err)
	const op = "open"
	if err := s.begin(ctx, op, p, "OPEN "+p); err != nil {
		return nil, err
	}
	t, err := s.resolve(op, p, false)
	if err != nil {
		return nil, s.fail(err)
	}
	if t.mount == nil || t.fixed() {
		return nil, s.fail(opErr(op, t.virtual, ErrIsDir, nil))
	}
	if offset < 0 {
		return nil, s.fail(opErr(op, t.virtual, ErrInvalid, nil))
	}
	// An upload that may be atomic (its content starts empty) looks its name up in the
	// directory it will be created in, opened once for both (vfs.AtomicTarget) — unless a
	// BeforeFileUpload script runs in between, which may move that directory: then the
	// directory is opened after the script, as the name would be resolved.
	atomic := t.atomic && !mode.Append && offset == 0
	var target *vfs.AtomicTarget
	var fi fs.FileInfo
	if atomic && !s.site.events.Handles(BeforeFileUpload, s.NamedUser()) {
		target = vfs.PrepareAtomic(t.mount.FS, t.path)
		defer func() {
			if target != nil {
				_ = target.Close()
			}
		}()
		fi, err = target.Stat()
	} else {
		fi, err = t.mount.FS.Stat(t.path)
	}
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, s.fail(backendErr(op, t.virtual, err))
	}
	if exists {
		switch {
		case fi.IsDir():
			return nil, s.fail(opErr(op, t.virtual, ErrIsDir, nil))
		case mode.Exclusive:
			return nil, s.fail(opErr(op, t.virtual, ErrExists, nil))
		}
	}
	need := PermUpload
	if exists && (mode.Truncate || (!mode.Append && offset < fi.Size())) {
		need = PermOverwrite
	}
	if !t.allows(need) {
		return nil, s.fail(opErr(op, t.virtual, ErrDenied, nil))
	}
	if s.gate(ctx, BeforeFileUpload, t.virtual, "") {
		return nil, s.fail(opErr(op, t.virtual, ErrDenied, s.scriptRefusal(BeforeFileUpload)))
	}
	h := &WriteHandle{sess: s, t: t, quota: s.homeQuota(t), mode: mode, pos: offset, start: s.site.now()}
	if exists && mode.Append {
		h.appendFrom = fi.Size()
	}
	// Atomic when the content starts empty; the temp file is opened read-write, so read+write
	// opens (pkg/sftp's Create) qualify too.
	if atomic && (!exists || mode.Truncate) {
		if target == nil {
			target = vfs.PrepareAtomic(t.mount.FS, t.path)
		}
		var credit int64
		if exists && fi.Mode().IsRegular() && vfs.LinkCount(fi) <= 1 {
			credit = fi.Size()
		}
		tg := target
		target = nil // Create owns it now
		err = h.openAtomic(tg, !exists, credit)
	} else {
		err = h.openInPlace()
	}
	if err != nil {
		return nil, s.fail(err)
	}
	h.quota.writerOpened()
	s.site.transfers.Add(1)
	return h, nil
}

// openAtomic starts an upload under a temporary name at target, which it takes over.
func (h *WriteHandle) openAtomic(target *vfs.AtomicTarget, newName bool, credit int64) error {
	t := h.t
	if newName {
		if !h.quota.reserve(0, 1) {
			_ = target.Close()
			return opErr("open", t.virtual, ErrQuota, errors.New("file count quota reached"))
		}
		h.files = 1
	}
	af, err := target.Create(filePerm)
	if err != nil {
		h.quota.release(0, h.files)
		return backendErr("open", t.virtual, err)
	}
	h.atomic, h.f = af, af
	h.key = uploadKey{fs: t.mount.FS, path: t.path}
	h.sess.site.uploads.add(h, credit)
	return nil
}

// openInPlace opens the file itself: appends, resumed uploads, backends without atomic
// uploads.
func (h *WriteHandle) openInPlace() error {
	t, q := h.t, h.quota
	flags := os.O_WRONLY | os.O_CREATE
	if h.mode.Read {
		flags = os.O_RDWR | os.O_CREATE
	}
	if h.mode.Truncate {
		flags |= os.O_TRUNC
	}
	defer q.lockNS()()
	existed, oldSize := false, int64(0)
	if q != nil {
		// Measured again under the lock: what the open truncates is what stops counting.
		// (The size is read now: a memory backend's FileInfo follows the file.)
		fi, err := t.mount.FS.Stat(t.path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return backendErr("open", t.virtual, err)
		}
		if existed = err == nil; existed {
			oldSize = fi.Size()
		} else if !q.reserve(0, 1) {
			return opErr("open", t.virtual, ErrQuota, errors.New("file count quota reached"))
		}
	}
	f, err := t.mount.FS.OpenFile(t.path, flags, filePerm)
	if err != nil {
		if q != nil && !existed {
			q.release(0, 1)
		}
		return backendErr("open", t.virtual, err)
	}
	h.f = f
	if q == nil {
		return nil
	}
	if h.mode.Truncate {
		q.release(oldSize, 0)
	}
	h.created = !existed
	if h.info, err = f.Stat(); err != nil {
		_ = f.Close()
		return backendErr("open", t.virtual, err)
	}
	q.track(h)
	return nil
}

// Path returns the virtual path.
func (h *WriteHandle) Path() string { return h.t.virtual }

// Bytes returns how many bytes were written.
func (h *WriteHandle) Bytes() int64 { return h.bytes.Load() }

// Stat describes the file being written (for an atomic upload, the data so far), named as
// the client sees it.
func (h *WriteHandle) Stat() (fs.FileInfo, error) {
	fi, err := h.f.Stat()
	if err != nil {
		return nil, backendErr("stat", h.t.virtual, err)
	}
	return renamed(fi, path.Base(h.t.virtual)), nil
}

// WriteAt writes at an offset (SFTP's out-of-order writes). In append mode a write goes to
// the end, unless its offset lies at or past the size the file had when it was opened:
// clients that append with offsets (OpenSSH's reput) keep many writes in flight, the server
// may handle them out of order, and only their offsets put them back in order.
func (h *WriteHandle) WriteAt(p []byte, off int64) (n int, err error) {
	return h.writeAt(p, off, true)
}

// writeAt writes p; positional says off is the client's own offset (WriteAt), not the
// position of a stream (Write).
func (h *WriteHandle) writeAt(p []byte, off int64, positional bool) (n int, err error) {
	if h.mode.Append && !(positional && off >= h.appendFrom) {
		off = -1 // at the end
	}
	s := h.sess
	if s.Closed() {
		return 0, opErr("write", h.t.virtual, ErrClosed, nil)
	}
	if h.superseded() {
		return 0, h.refuse(opErr("write", h.t.virtual, ErrFailure, errSuperseded))
	}
	switch {
	case h.atomic != nil:
		n, err = h.writeTemp(p, off)
	case h.quota != nil:
		n, err = h.writeCounted(p, off)
	default:
		n, err = h.writePlain(p, off)
	}
	h.bytes.Add(int64(n))
	s.Touch()
	return n, err
}

// refuse fails the transfer with err (a quota or state refusal, reported to the client).
func (h *WriteHandle) refuse(err error) error {
	h.Abort(err)
	return h.sess.fail(err)
}

// throttle waits for the user's upload bandwidth.
func (h *WriteHandle) throttle(n int) error {
	if bw := h.sess.bw; bw != nil {
		if err := throttle(h.sess.ctx, bw.up, n); err != nil {
			return opErr("write", h.t.virtual, ErrClosed, err)
		}
	}
	return nil
}

// writeTemp writes to an atomic upload's temporary file, which nothing else can change: its
// size is the highest end written.
func (h *WriteHandle) writeTemp(p []byte, off int64) (int, error) {
	h.mu.Lock()
	if end := off + int64(len(p)); end > h.hw {
		more := h.chargeFor(end) - h.charged
		if more > 0 && !h.quota.reserve(more, 0) {
			h.quotaHit = true
			h.mu.Unlock()
			return 0, h.refuse(opErr("write", h.t.virtual, ErrQuota, nil))
		}
		h.charged += max(0, more)
		h.hw = end
	}
	h.mu.Unlock()
	if err := h.throttle(len(p)); err != nil {
		return 0, err
	}
	return h.writeFile(p, off)
}

// chargeFor is what an atomic upload of size bytes is charged while in flight.
func (h *WriteHandle) chargeFor(size int64) int64 { return max(0, size-h.credit) }

// writeCounted writes to a file in place for a user with a quota: the growth of the file is
// measured and charged under the namespace lock, so that concurrent writes, and truncations
// by any session through any name, are each counted once.
func (h *WriteHandle) writeCounted(p []byte, off int64) (int, error) {
	if err := h.throttle(len(p)); err != nil {
		return 0, err
	}
	q := h.quota
	defer q.lockNS()()
	if h.orphan {
		return 0, h.refuse(opErr("write", h.t.virtual, ErrFailure, errors.New("the file was removed while open")))
	}
	fi, err := h.f.Stat()
	if err != nil {
		return 0, h.failWrite(err)
	}
	cur := fi.Size()
	if off < 0 {
		off = cur
	}
	grow := max(0, off+int64(len(p))-cur)
	if grow > 0 && !q.reserve(grow, 0) {
		h.mu.Lock()
		h.quotaHit = true
		h.mu.Unlock()
		return 0, h.refuse(opErr("write", h.t.virtual, ErrQuota, nil))
	}
	n, err := h.writeFile(p, off)
	if got := max(0, off+int64(n)-cur); got < grow {
		q.release(grow-got, 0)
	}
	return n, err
}

// writePlain writes in place for a user without a quota.
func (h *WriteHandle) writePlain(p []byte, off int64) (int, error) {
	if off < 0 {
		// The end is read for every write: other handles may change the file meanwhile.
		h.mu.Lock()
		defer h.mu.Unlock()
		fi, err := h.f.Stat()
		if err != nil {
			return 0, h.failWrite(err)
		}
		off = fi.Size()
	}
	if err := h.throttle(len(p)); err != nil {
		return 0, err
	}
	return h.writeFile(p, off)
}

// writeFile writes to the backend file; an error there fails the transfer.
func (h *WriteHandle) writeFile(p []byte, off int64) (int, error) {
	n, err := h.f.WriteAt(p, off)
	if err != nil {
		return n, h.failWrite(err)
	}
	return n, nil
}

// failWrite fails the transfer with a backend error met while writing.
func (h *WriteHandle) failWrite(err error) error {
	err = backendErr("write", h.t.virtual, err)
	h.Abort(err)
	return err
}

// Write writes sequentially from the open offset.
func (h *WriteHandle) Write(p []byte) (int, error) {
	n, err := h.writeAt(p, h.pos, false)
	h.pos += int64(n)
	return n, err
}

// ReadAt reads back (read+write opens only).
func (h *WriteHandle) ReadAt(p []byte, off int64) (int, error) {
	if !h.mode.Read {
		return 0, opErr("read", h.t.virtual, ErrDenied, errors.New("not opened for reading"))
	}
	n, err := h.f.ReadAt(p, off)
	h.sess.Touch()
	return n, err
}

// Abort marks the transfer as failed: Close then discards an atomic upload.
func (h *WriteHandle) Abort(err error) {
	if err == nil {
		err = errors.New("transfer aborted")
	}
	h.fail.CompareAndSwap(nil, &err)
}

// supersede cancels an atomic upload (see inflight); it reports whether it was still live.
// Its temporary file loses its name at once, as a file being written does when it is
// unlinked on POSIX: the folder it was in holds nothing of it any more (a client that
// removed the file can remove the folder while its upload handle is still open).
func (h *WriteHandle) supersede() bool {
	if h.cancelled.Swap(true) {
		return false
	}
	if h.atomic != nil {
		if err := h.atomic.Unlink(); err != nil {
			h.sess.Logger().Warn("cancelled upload: its temporary file stays until the upload is closed",
				"path", h.t.virtual, "err", err.Error())
		}
	}
	return true
}

func (h *WriteHandle) superseded() bool { return h.cancelled.Load() }

// SetStat changes the attributes of the file being uploaded through its handle (SFTP
// FSETSTAT): the size of the data so far, and for an atomic upload the mode and times it
// will have once published (OpenSSH "put -p" sends them just before closing).
func (h *WriteHandle) SetStat(ctx context.Context, a Attrs) (err error) {
	s, v := h.sess, h.t.virtual
	defer s.observeOp(OpSetStat, v, "", s.site.now(), 0, &err)
	const op = "setstat"
	if err := s.begin(ctx, op, v, "FSETSTAT "+v); err != nil {
		return err
	}
	if !h.t.allowsAttrs(a) {
		return s.fail(opErr(op, v, ErrDenied, nil))
	}
	if h.atomic == nil {
		return s.fail(s.setVisible(h.t, a))
	}
	return s.fail(h.setAttrs(a))
}

// setAttrs applies attributes to an atomic upload.
func (h *WriteHandle) setAttrs(a Attrs) error {
	if a.Size != nil {
		if err := h.truncate(*a.Size); err != nil {
			return err
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if a.Mode != nil {
		h.parked.Mode = a.Mode
	}
	if a.Atime != nil {
		h.parked.Atime = a.Atime
	}
	if a.Mtime != nil {
		h.parked.Mtime = a.Mtime
	}
	return nil
}

// truncate changes the size of an atomic upload's data.
func (h *WriteHandle) truncate(size int64) error {
	if size < 0 {
		return opErr("truncate", h.t.virtual, ErrInvalid, nil)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	delta := h.chargeFor(size) - h.charged
	if delta > 0 && !h.quota.reserve(delta, 0) {
		return opErr("truncate", h.t.virtual, ErrQuota, nil)
	}
	if err := h.f.Truncate(size); err != nil {
		if delta > 0 {
			h.quota.release(delta, 0)
		}
		return backendErr("truncate", h.t.virtual, err)
	}
	if delta < 0 {
		h.quota.release(-delta, 0)
	}
	h.charged += delta
	h.hw = size
	return nil
}

// Close finishes the upload. A failed, aborted or cancelled upload fires OnTransferError, and
// leaves nothing under the final name when it was atomic or hit the quota. A successful one
// fires AfterFileUpload; with atomic uploads that runs before the data is published, and a
// BlockOperation there discards it (content veto).
func (h *WriteHandle) Close() error {
	h.once.Do(func() {
		defer h.sess.site.transfers.Add(-1)
		h.err = h.finish()
		h.quota.writerClosed()
		h.sess.observeOp(OpUpload, h.t.virtual, "", h.start, h.bytes.Load(), &h.err)
	})
	return h.err
}

func (h *WriteHandle) finish() error {
	s := h.sess
	ctx := context.Background()
	v := h.t.virtual
	cerr := h.f.Close() // an atomic upload's temp file stays until Publish or Discard
	failed := h.fail.Load()
	if failed == nil && cerr != nil {
		e := backendErr("close", v, cerr)
		failed = &e
	}
	if failed == nil && h.superseded() {
		var e error = opErr("upload", v, ErrFailure, errSuperseded)
		failed = &e
	}
	if failed == nil && h.atomic != nil {
		s.setCurrent(v)
		// What waits for the published upload (asynchronous handlers) runs after publish.
		var after []func(bool)
		then := func(f func(bool)) { after = append(after, f) }
		if s.gateEvent(ctx, &Event{Name: AfterFileUpload, Session: s, Conn: s.conn, RelPath: v, upload: h, Then: then}) {
			h.discard()
			for _, f := range after {
				f(false)
			}
			return s.fail(opErr("upload", v, ErrDenied, refusal(s.refusingScripts(AfterFileUpload), "upload rejected by AfterFileUpload script")))
		}
		// A script that changed the upload published it first (see ScriptFS).
		if !h.early.Load() {
			if err := h.publish(); err != nil {
				e := backendErr("upload", v, err)
				failed = &e
			}
		}
		for _, f := range after {
			f(failed == nil)
		}
	}
	if failed != nil {
		h.discard()
		s.RecordError(*failed)
		s.setCurrent(v)
		s.fire(ctx, OnTransferError, v, "")
		if Kind(*failed) == ErrQuota {
			return *failed
		}
		return opErr("upload", v, ErrFailure, *failed)
	}
	if h.atomic != nil {
		if h.early.Load() {
			return nil // applied when a script published it
		}
		return h.applyParked()
	}
	h.untrack()
	s.setCurrent(v)
	s.fire(ctx, AfterFileUpload, v, "")
	return nil
}

// publish renames the temporary file over the final name, unless the upload was cancelled,
// and settles the quota: the upload's data counts in full and the file it replaced (if that
// was its last name) stops counting.
func (h *WriteHandle) publish() error {
	q := h.quota
	defer q.lockNS()()
	return h.sess.site.uploads.publish(h, func() error {
		if q == nil {
			if err := h.atomic.Publish(); err != nil {
				return err
			}
			h.published.Store(true)
			return nil
		}
		// A rename of the folder cancels the upload, but only once the rename is done: in
		// between, the upload must not publish into the moved folder (see tempInPlace).
		if !tempInPlace(h.t.mount.FS, h.atomic) {
			return errFolderMoved
		}
		var freedBytes, freedFiles int64
		old, err := lstat(h.t.mount.FS, h.t.path)
		if err == nil && old.Mode().IsRegular() && vfs.LinkCount(old) <= 1 {
			freedBytes, freedFiles = old.Size(), 1
		}
		h.mu.Lock()
		needBytes, needFiles := h.hw-freedBytes-h.charged, 1-freedFiles-h.files
		h.mu.Unlock()
		if !q.reserve(max(0, needBytes), max(0, needFiles)) {
			return opErr("upload", h.t.virtual, ErrQuota, nil)
		}
		if err := h.atomic.Publish(); err != nil {
			q.release(max(0, needBytes), max(0, needFiles))
			return err
		}
		q.release(max(0, -needBytes), max(0, -needFiles))
		if freedFiles == 1 {
			q.unlinked(old)
		}
		// The data now counts as a visible file, not as this upload.
		h.mu.Lock()
		h.charged, h.files = 0, 0
		h.mu.Unlock()
		h.published.Store(true)
		return nil
	})
}

func (h *WriteHandle) applyParked() error {
	h.mu.Lock()
	a := h.parked
	h.mu.Unlock()
	fsys, p, v := h.t.mount.FS, h.t.path, h.t.virtual
	if a.Mode != nil {
		if err := fsys.Chmod(p, *a.Mode&fs.ModePerm); err != nil {
			return h.sess.fail(backendErr("setstat", v, err))
		}
	}
	if a.Atime != nil || a.Mtime != nil {
		at, mt := a.Atime, a.Mtime
		if at == nil {
			at = mt
		}
		if mt == nil {
			mt = at
		}
		if err := fsys.Chtimes(p, *at, *mt); err != nil {
			return h.sess.fail(backendErr("setstat", v, err))
		}
	}
	return nil
}

// discard removes what a failed upload left, and what it was charged: the temp file of an
// atomic upload, or a file this upload created when it ran over the quota.
func (h *WriteHandle) discard() {
	if h.atomic != nil {
		_ = h.atomic.Discard()
		h.sess.site.uploads.forget(h)
		h.mu.Lock()
		c, f := h.charged, h.files
		h.charged, h.files = 0, 0
		h.mu.Unlock()
		h.quota.release(c, f)
		return
	}
	q := h.quota
	if q == nil {
		return
	}
	defer q.lockNS()()
	q.untrack(h)
	h.mu.Lock()
	hit := h.quotaHit
	h.mu.Unlock()
	if !hit || !h.created {
		return
	}
	// Only if the name still holds this upload's file (the client may have renamed it).
	fsys, p := h.t.mount.FS, h.t.path
	if fi, err := lstat(fsys, p); err == nil && vfs.SameFile(fi, h.info) && fsys.Remove(p) == nil {
		q.forget(fi, nil)
	}
}

// untrack ends the quota's watch of a non-atomic upload.
func (h *WriteHandle) untrack() {
	if q := h.quota; q != nil {
		defer q.lockNS()()
		q.untrack(h)
	}
}

// errFolderMoved is why an atomic write whose folder was renamed away was not published.
var errFolderMoved = errors.New("its folder was renamed or removed while the file was written")

// tempInPlace reports whether an atomic upload's temporary file is still at its own name,
// that is, whether its folder is still at the final name's folder. Publish renames the
// temporary file inside the folder it was created in, opened once (vfs.AtomicTarget), but the
// file it replaces is measured by path: had that folder been renamed (/d to /e) since the
// upload began, Publish would replace the file that moved with it (/e/x), which would stay
// charged, while the file measured (a new /d/x, or none) was released or not at all. Called
// under the namespace lock, which folder renames take, so the answer holds until Publish.
// Temporary names are random: a temporary file at the name is this upload's. An object
// store's uploads have no folder to move.
func tempInPlace(fsys afero.Fs, af *vfs.AtomicFile) bool {
	if _, ok := fsys.(vfs.UploadCreator); ok {
		return true
	}
	_, err := lstat(fsys, af.TempName())
	return err == nil
}

// lstat describes a name without following a final symbolic link, where the backend can.
func lstat(fsys afero.Fs, p string) (fs.FileInfo, error) {
	if ls, ok := fsys.(afero.Lstater); ok {
		fi, _, err := ls.LstatIfPossible(p)
		return fi, err
	}
	return fsys.Stat(p)
}

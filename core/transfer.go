package core

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"hash"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/afero"

	"github.com/wharf-project/wharf/vfs"
)

var errEOF = io.EOF

// filePerm is the mode of uploaded files: clients ask for 0777 (ftpserverlib) or anything.
const filePerm = 0o644

// ReadHandle is an open download. It counts bytes and fires AfterFileDownload, or
// OnTransferError after Abort, exactly once when closed. ReadAt is safe for concurrent use.
type ReadHandle struct {
	sess  *Session
	f     afero.File
	vpath string
	size  int64
	pos   int64 // for Read/Seek: one sequential reader only
	bytes atomic.Int64
	fail  atomic.Pointer[error]
	once  sync.Once
	err   error
	start time.Time
}

// OpenRead opens a file for download, reading from offset with Read.
func (s *Session) OpenRead(ctx context.Context, p string, offset int64) (_ *ReadHandle, err error) {
	defer s.observeOpen(OpDownload, p, s.site.now(), &err)
	const op = "open"
	if err := s.begin(ctx, op, p, "OPEN "+p); err != nil {
		return nil, err
	}
	t, err := s.resolve(op, p, true)
	if err != nil {
		return nil, s.fail(err)
	}
	if t.mount == nil {
		return nil, s.fail(opErr(op, t.virtual, ErrIsDir, nil))
	}
	if !t.allows(PermDownload) {
		return nil, s.fail(opErr(op, t.virtual, ErrDenied, nil))
	}
	if offset < 0 {
		return nil, s.fail(opErr(op, t.virtual, ErrInvalid, nil))
	}
	// Open, then stat what was opened: one walk of the path instead of two (the jail
	// resolves every component again for each call), and the size is the opened file's.
	f, err := t.mount.FS.OpenFile(t.path, os.O_RDONLY, 0)
	if err != nil {
		return nil, s.fail(backendErr(op, t.virtual, err))
	}
	fi, err := f.Stat()
	if err != nil || fi.IsDir() {
		_ = f.Close()
		if err != nil {
			return nil, s.fail(backendErr(op, t.virtual, err))
		}
		return nil, s.fail(opErr(op, t.virtual, ErrIsDir, nil))
	}
	if s.gate(ctx, BeforeFileDownload, t.virtual, "") {
		_ = f.Close()
		return nil, s.fail(opErr(op, t.virtual, ErrDenied, errors.New("blocked by BeforeFileDownload script")))
	}
	s.site.transfers.Add(1)
	return &ReadHandle{sess: s, f: f, vpath: t.virtual, size: fi.Size(), pos: offset, start: s.site.now()}, nil
}

// Size returns the file size when it was opened.
func (h *ReadHandle) Size() int64 { return h.size }

// Bytes returns how many bytes were read.
func (h *ReadHandle) Bytes() int64 { return h.bytes.Load() }

// Path returns the virtual path.
func (h *ReadHandle) Path() string { return h.vpath }

// ReadAt reads at an offset (SFTP's out-of-order reads).
func (h *ReadHandle) ReadAt(p []byte, off int64) (int, error) {
	s := h.sess
	if s.Closed() {
		return 0, opErr("read", h.vpath, ErrClosed, nil)
	}
	n, err := h.f.ReadAt(p, off)
	if bw := s.bw; bw != nil && n > 0 {
		// Charged for what was read, not for what was asked: SFTP clients keep many reads
		// in flight, past the end of the file too.
		if werr := throttle(s.ctx, bw.down, n); werr != nil {
			return 0, opErr("read", h.vpath, ErrClosed, werr)
		}
	}
	h.bytes.Add(int64(n))
	s.Touch()
	if err != nil && !errors.Is(err, io.EOF) {
		err = backendErr("read", h.vpath, err)
	}
	return n, err
}

// Read reads sequentially from the open offset.
func (h *ReadHandle) Read(p []byte) (int, error) {
	n, err := h.ReadAt(p, h.pos)
	h.pos += int64(n)
	if err == nil && n == 0 && len(p) > 0 {
		err = io.EOF
	}
	return n, err
}

// sendChunk is how much SendTo hands to the destination per call: between calls it checks
// that the session is still alive and counts the bytes; the destination can renew its
// stall deadline for each call, as for a buffered copy of the same size.
const sendChunk = 256 << 10

// SendTo sends the file from the sequential read position to its end through w.ReadFrom,
// giving w the backend's operating-system file: a TCP socket sends it with sendfile(2),
// without copying it through user space. It applies only to a file on a disk backend with no
// download bandwidth limit (the limiter must see the bytes); otherwise it sends nothing and
// reports false, and the caller copies with Read. Byte counts, activity and events are as
// for Read.
func (h *ReadHandle) SendTo(ctx context.Context, w io.ReaderFrom) (n int64, ok bool, err error) {
	s := h.sess
	of, isOS := h.f.(vfs.OSFiler)
	if !isOS || (s.bw != nil && s.bw.down != nil) {
		return 0, false, nil
	}
	f := of.OSFile()
	// sendfile reads from the file's offset; Read and ReadAt use pread and never move it.
	if _, err := f.Seek(h.pos, io.SeekStart); err != nil {
		return 0, false, nil
	}
	for {
		if s.Closed() || s.ctx.Err() != nil || ctx.Err() != nil {
			return n, true, opErr("read", h.vpath, ErrClosed, errors.Join(context.Cause(s.ctx), context.Cause(ctx)))
		}
		m, err := w.ReadFrom(&io.LimitedReader{R: f, N: sendChunk})
		h.pos += m
		n += m
		h.bytes.Add(m)
		s.Touch()
		if err != nil {
			return n, true, err
		}
		if m < sendChunk {
			return n, true, nil // end of file
		}
	}
}

// Seek moves the sequential read position.
func (h *ReadHandle) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += h.pos
	case io.SeekEnd:
		off += h.size
	default:
		return h.pos, opErr("seek", h.vpath, ErrInvalid, nil)
	}
	if off < 0 {
		return h.pos, opErr("seek", h.vpath, ErrInvalid, nil)
	}
	h.pos = off
	return off, nil
}

// Abort marks the transfer as failed (the client aborted or the connection dropped).
func (h *ReadHandle) Abort(err error) {
	if err == nil {
		err = errors.New("transfer aborted")
	}
	h.fail.CompareAndSwap(nil, &err)
}

// Close closes the file and fires AfterFileDownload, or OnTransferError after Abort.
func (h *ReadHandle) Close() error {
	h.once.Do(func() {
		s := h.sess
		defer s.site.transfers.Add(-1)
		result := h.finish()
		s.observeOp(OpDownload, h.vpath, "", h.start, h.bytes.Load(), &result)
	})
	return h.err
}

// finish closes the file, fires the closing event and returns the transfer's result (which
// differs from Close's error: an aborted download closes fine but did not succeed).
func (h *ReadHandle) finish() error {
	s := h.sess
	ctx := context.Background()
	cerr := h.f.Close()
	if fp := h.fail.Load(); fp != nil {
		err := opErr("download", h.vpath, ErrFailure, *fp)
		s.RecordError(err)
		s.fire(ctx, OnTransferError, h.vpath, "")
		return err
	}
	if cerr != nil {
		h.err = s.fail(backendErr("close", h.vpath, cerr))
		s.fire(ctx, OnTransferError, h.vpath, "")
		return h.err
	}
	s.setCurrent(h.vpath)
	s.fire(ctx, AfterFileDownload, h.vpath, "")
	return nil
}

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
type WriteHandle struct {
	sess    *Session
	t       target
	f       afero.File
	atomic  *vfs.AtomicFile
	quota   *usage
	mode    WriteMode
	existed bool
	oldSize int64

	mu       sync.Mutex
	hw       int64 // size of the data as written so far (high-water mark)
	pos      int64 // for Write
	quotaHit bool
	start    time.Time
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
	fi, err := t.mount.FS.Stat(t.path)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, s.fail(backendErr(op, t.virtual, err))
	}
	var oldSize int64
	if exists {
		oldSize = fi.Size()
		switch {
		case fi.IsDir():
			return nil, s.fail(opErr(op, t.virtual, ErrIsDir, nil))
		case mode.Exclusive:
			return nil, s.fail(opErr(op, t.virtual, ErrExists, nil))
		}
	}
	need := PermUpload
	if exists && (mode.Truncate || (!mode.Append && offset < oldSize)) {
		need = PermOverwrite
	}
	if !t.allows(need) {
		return nil, s.fail(opErr(op, t.virtual, ErrDenied, nil))
	}
	if s.gate(ctx, BeforeFileUpload, t.virtual, "") {
		return nil, s.fail(opErr(op, t.virtual, ErrDenied, errors.New("blocked by BeforeFileUpload script")))
	}
	q := s.quotaRecord()
	if t.mount.Path != "/" {
		q = nil // quotas count the home mount
	}
	if !exists && !q.reserve(0, 1) {
		return nil, s.fail(opErr(op, t.virtual, ErrQuota, errors.New("file count quota reached")))
	}
	h := &WriteHandle{sess: s, t: t, quota: q, mode: mode, existed: exists, oldSize: oldSize, pos: offset,
		start: s.site.now()}
	// Atomic when the content starts empty; the temp file is opened read-write, so read+write
	// opens (pkg/sftp's Create) qualify too.
	useAtomic := t.atomic && (!exists || mode.Truncate) && !mode.Append && offset == 0
	if useAtomic {
		af, err := vfs.CreateAtomic(t.mount.FS, t.path, filePerm)
		if err != nil {
			h.releaseReservation()
			return nil, s.fail(backendErr(op, t.virtual, err))
		}
		h.atomic, h.f = af, af
	} else {
		flags := os.O_WRONLY | os.O_CREATE
		if mode.Read {
			flags = os.O_RDWR | os.O_CREATE
		}
		if mode.Truncate {
			flags |= os.O_TRUNC
		}
		f, err := t.mount.FS.OpenFile(t.path, flags, filePerm)
		if err != nil {
			h.releaseReservation()
			return nil, s.fail(backendErr(op, t.virtual, err))
		}
		h.f = f
		if exists && !mode.Truncate {
			h.hw = oldSize
		}
	}
	if exists && mode.Truncate {
		// The old content is being replaced: it no longer counts (an atomic upload that is
		// discarded gives it back).
		q.release(oldSize, 0)
	}
	if mode.Append {
		h.pos = h.hw
	}
	s.site.transfers.Add(1)
	s.mu.Lock()
	if s.uploads == nil {
		s.uploads = map[string][]*WriteHandle{}
	}
	s.uploads[t.virtual] = append(s.uploads[t.virtual], h)
	s.mu.Unlock()
	return h, nil
}

func (h *WriteHandle) releaseReservation() {
	if !h.existed {
		h.quota.release(0, 1)
	}
}

// Path returns the virtual path.
func (h *WriteHandle) Path() string { return h.t.virtual }

// Bytes returns how many bytes were written.
func (h *WriteHandle) Bytes() int64 { return h.bytes.Load() }

// WriteAt writes at an offset (SFTP's out-of-order writes); in append mode at the end.
func (h *WriteHandle) WriteAt(p []byte, off int64) (int, error) {
	s := h.sess
	if s.Closed() {
		return 0, opErr("write", h.t.virtual, ErrClosed, nil)
	}
	h.mu.Lock()
	if h.mode.Append {
		off = h.hw
	}
	if end := off + int64(len(p)); end > h.hw {
		if !h.quota.reserve(end-h.hw, 0) {
			h.quotaHit = true
			h.mu.Unlock()
			err := opErr("write", h.t.virtual, ErrQuota, nil)
			h.Abort(err)
			return 0, s.fail(err)
		}
		h.hw = end
	}
	h.mu.Unlock()
	if bw := s.bw; bw != nil {
		if err := throttle(s.ctx, bw.up, len(p)); err != nil {
			return 0, opErr("write", h.t.virtual, ErrClosed, err)
		}
	}
	n, err := h.f.WriteAt(p, off)
	h.bytes.Add(int64(n))
	s.Touch()
	if err != nil {
		err = backendErr("write", h.t.virtual, err)
		h.Abort(err)
	}
	return n, err
}

// Write writes sequentially from the open offset.
func (h *WriteHandle) Write(p []byte) (int, error) {
	n, err := h.WriteAt(p, h.pos)
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

// Close finishes the upload. A failed or aborted upload fires OnTransferError, and leaves
// nothing under the final name when it was atomic or hit the quota. A successful one fires
// AfterFileUpload; with atomic uploads that runs before the data is published, and a
// BlockOperation there discards it (content veto).
func (h *WriteHandle) Close() error {
	h.once.Do(func() {
		defer h.sess.site.transfers.Add(-1)
		h.sess.forgetUpload(h)
		h.err = h.finish()
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
	s.setCurrent(v)
	if h.atomic == nil {
		s.fire(ctx, AfterFileUpload, v, "")
		return nil
	}
	if s.gate(ctx, AfterFileUpload, v, "") {
		h.discard()
		return s.fail(opErr("upload", v, ErrDenied, errors.New("upload rejected by AfterFileUpload script")))
	}
	if err := h.atomic.Publish(); err != nil {
		h.discard()
		return s.fail(backendErr("upload", v, err))
	}
	return h.applyParked()
}

// park keeps mode and times set while an atomic upload is open, to apply once it is
// published under its final name (OpenSSH "put -p" and "scp -p" send them just before
// closing). It reports false for a non-atomic upload, whose file already has its final name.
func (h *WriteHandle) park(a Attrs) bool {
	if h.atomic == nil {
		return false
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
	return true
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

// truncate changes the size of the data being uploaded.
func (h *WriteHandle) truncate(size int64) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if size > h.hw && !h.quota.reserve(size-h.hw, 0) {
		return opErr("truncate", h.t.virtual, ErrQuota, nil)
	}
	if err := h.f.Truncate(size); err != nil {
		if size > h.hw {
			h.quota.release(size-h.hw, 0)
		}
		return backendErr("truncate", h.t.virtual, err)
	}
	if size < h.hw {
		h.quota.release(h.hw-size, 0)
	}
	h.hw = size
	return nil
}

// openUpload returns this session's most recent open upload of a virtual path.
func (s *Session) openUpload(v string) *WriteHandle {
	s.mu.Lock()
	defer s.mu.Unlock()
	if open := s.uploads[v]; len(open) > 0 {
		return open[len(open)-1]
	}
	return nil
}

func (s *Session) forgetUpload(h *WriteHandle) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := h.t.virtual
	open := s.uploads[v]
	for i, g := range open {
		if g == h {
			open = append(open[:i], open[i+1:]...)
			break
		}
	}
	if len(open) == 0 {
		delete(s.uploads, v)
	} else {
		s.uploads[v] = open
	}
}

// discard removes what a failed upload left: the temp file of an atomic upload, or a file
// this upload created when it ran over the quota.
func (h *WriteHandle) discard() {
	h.mu.Lock()
	hw, hit := h.hw, h.quotaHit
	h.mu.Unlock()
	switch {
	case h.atomic != nil:
		_ = h.atomic.Discard()
		h.quota.release(hw, 0)
		h.releaseReservation()
		if h.existed {
			h.quota.restore(h.oldSize) // the old file stays
		}
	case hit && !h.existed:
		_ = h.t.mount.FS.Remove(h.t.path)
		h.quota.release(hw, 0)
		h.releaseReservation()
	}
}

func (s *Session) setCurrent(vpath string) {
	s.mu.Lock()
	table := s.table
	s.mu.Unlock()
	if r, err := table.Resolve(vpath); err == nil {
		s.setPaths(target{virtual: vpath, mount: r.Mount, path: r.Path}, nil)
	}
}

// Hash returns the hex digest of a file's bytes [start, end) (end <= 0 means to the end) with
// algo sha256, sha512, sha1, md5 or crc32. It needs the download permission.
func (s *Session) Hash(ctx context.Context, p, algo string, start, end int64) (_ string, err error) {
	defer s.observeOp(OpHash, p, "", s.site.now(), 0, &err)
	const op = "hash"
	if err := s.begin(ctx, op, p, "HASH "+p); err != nil {
		return "", err
	}
	t, err := s.resolve(op, p, true)
	if err != nil {
		return "", s.fail(err)
	}
	if t.mount == nil {
		return "", s.fail(opErr(op, t.virtual, ErrIsDir, nil))
	}
	if !t.allows(PermDownload) {
		return "", s.fail(opErr(op, t.virtual, ErrDenied, nil))
	}
	var hh hash.Hash
	switch strings.ToLower(algo) {
	case "sha256", "sha-256":
		hh = sha256.New()
	case "sha512", "sha-512":
		hh = sha512.New()
	case "sha1", "sha-1":
		hh = sha1.New()
	case "md5":
		hh = md5.New()
	case "crc32":
		hh = crc32.NewIEEE()
	default:
		return "", s.fail(opErr(op, t.virtual, ErrUnsupported, errors.New("unknown hash "+algo)))
	}
	f, err := t.mount.FS.Open(t.path)
	if err != nil {
		return "", s.fail(backendErr(op, t.virtual, err))
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || fi.IsDir() {
		return "", s.fail(opErr(op, t.virtual, ErrIsDir, err))
	}
	var r io.Reader = io.NewSectionReader(f, start, 1<<62)
	if end > 0 {
		r = io.NewSectionReader(f, start, max(0, end-start))
	}
	if _, err := io.Copy(hh, &ctxReader{ctx: ctx, r: r}); err != nil {
		return "", s.fail(backendErr(op, t.virtual, err))
	}
	return hex.EncodeToString(hh.Sum(nil)), nil
}

// ctxReader stops a long read when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// renamed gives a FileInfo the name the client sees.
func renamed(fi fs.FileInfo, name string) fs.FileInfo {
	if fi.Name() == name {
		return fi
	}
	return namedInfo{FileInfo: fi, name: name}
}

type namedInfo struct {
	fs.FileInfo
	name string
}

func (n namedInfo) Name() string { return n.name }

// dirInfo describes a directory that exists only because of mounts.
type dirInfo struct {
	name string
	mod  time.Time
}

func (d dirInfo) Name() string       { return d.name }
func (d dirInfo) Size() int64        { return 0 }
func (d dirInfo) Mode() fs.FileMode  { return fs.ModeDir | 0o555 }
func (d dirInfo) ModTime() time.Time { return d.mod }
func (d dirInfo) IsDir() bool        { return true }
func (d dirInfo) Sys() any           { return nil }

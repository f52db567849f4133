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
		return nil, s.fail(opErr(op, t.virtual, ErrDenied, s.scriptRefusal(BeforeFileDownload)))
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

// Seek moves the sequential read position.
func (h *ReadHandle) Seek(off int64, whence int) (int64, error) {
	pos, ok := vfs.SeekPosition(h.pos, h.size, off, whence)
	if !ok {
		return h.pos, opErr("seek", h.vpath, ErrInvalid, nil)
	}
	h.pos = pos
	return pos, nil
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
	if kh, ok := t.mount.FS.(vfs.KnownHasher); ok && start == 0 && end <= 0 {
		// An object store may know the digest of a whole object (an MD5 ETag).
		sum, known, err := kh.KnownHash(ctx, t.path, algo)
		if err != nil {
			return "", s.fail(backendErr(op, t.virtual, err))
		}
		if known {
			return sum, nil
		}
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

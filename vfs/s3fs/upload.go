package s3fs

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/wharf-project/wharf/vfs"
)

// Window is how far ahead of the data received in order a write may end, and how much such
// writes may hold: SFTP clients keep many writes in flight and they may arrive out of order.
// OpenSSH's sftp keeps 64 requests of 32 KiB (2 MiB) in flight; clients send the next one as
// soon as a reply leaves, before the server has taken the lowest write, so the window is
// twice that. A write further ahead is refused (see docs/storage.md: object storage cannot
// take data out of order, and wharf keeps no spill file on local disk).
const Window = 2 * 64 * 32 << 10

// Data received ahead past a part fits in the next part's buffer (takeAhead).
const _ = uint(MinPartSize - Window)

// maxAhead is how many separate pieces of data received ahead an upload holds at once:
// OpenSSH keeps 64 writes in flight, and writes that touch merge into one piece. It bounds
// the bookkeeping that a client writing single bytes with gaps between them could make
// grow to millions of pieces within the Window.
const maxAhead = 1024

// Errors an upload refuses with. They match errors.ErrUnsupported (the core's "operation not
// supported" kind) and say why.
var (
	ErrOutOfOrder = unsupported("write too far ahead of the data received so far: object storage takes an upload in order, within a window of 4 MiB")
	ErrScattered  = unsupported("too many separate writes ahead of the data received so far: object storage takes an upload in order")
	ErrRewrite    = unsupported("object storage cannot change data already sent: only appending at the end of an object is possible")
	ErrGap        = unsupported("upload has a gap (data never written): object storage cannot store a sparse file")
	ErrReadBack   = unsupported("an upload to object storage cannot be read back before it is complete")
	ErrAppendOnly = unsupported("object storage can only append to an existing object, at its end")
)

type unsupportedError string

func (e unsupportedError) Error() string      { return string(e) }
func (unsupportedError) Is(target error) bool { return target == errors.ErrUnsupported }
func unsupported(msg string) unsupportedError { return unsupportedError(msg) }

// upload is a file open for writing. Data received in order fills a part buffer; a full
// buffer goes out as a part of a multipart upload, at most UploadConcurrency parts at a time,
// so an upload holds at most PartSize × (UploadConcurrency + 1) bytes plus the Window. A file
// smaller than one part goes as one PUT. Nothing is visible before the upload completes: on
// Close for an OpenFile handle, on Publish for CreateUpload's.
type upload struct {
	notDir
	f        *FS
	name     string // clean
	key      string
	tmp      string // CreateUpload's hidden name ("" for OpenFile handles)
	deferred bool   // Close does not publish (CreateUpload)
	appendTo bool   // O_APPEND: Write goes to the end, WriteAt is refused
	readable bool   // O_RDWR
	ctx      context.Context
	cancel   context.CancelFunc

	mu    sync.Mutex
	base  *info // existing object the upload appends to, until prepared
	off   int64 // bytes received in order (including the base)
	start int64 // offset of cur[0]
	cur   []byte
	spans []span // writes received ahead of off within cur's part, already in cur past its length; sorted, disjoint
	// aheadBuf holds the writes received ahead of off past cur's part, at their distance
	// from the part's end (Window bytes from the buffer pool, taken when needed), and
	// aheadSpans says where they are; sorted, disjoint. Once cur goes out, they move to the
	// next part's buffer.
	aheadBuf   []byte
	aheadSpans []span
	aheadLen   int64 // bytes covered by spans and aheadSpans
	hw         int64 // size: the highest end written
	pos        int64 // for Read, Write and Seek
	meta       map[string]string
	wrote      bool
	closed     bool
	done       bool // published or discarded
	mp         *string
	nextPart   int32
	sem        chan struct{}
	wg         sync.WaitGroup

	pmu   sync.Mutex // guards parts and err, set by the part senders
	parts []types.CompletedPart
	err   error
}

var _ vfs.PendingUpload = (*upload)(nil)

// span is a range of absolute offsets, [off, end).
type span struct{ off, end int64 }

func (f *FS) newUpload(c string, base *info, appendTo, readable, deferred bool) *upload {
	ctx, cancel := context.WithCancel(f.ctx)
	u := &upload{notDir: notDir{c}, f: f, name: c, key: f.key(c), deferred: deferred, appendTo: appendTo, readable: readable,
		ctx: ctx, cancel: cancel, base: base, sem: make(chan struct{}, f.opt.UploadConcurrency)}
	if base != nil {
		u.off, u.start, u.hw = base.size, base.size, base.size
		u.meta = maps.Clone(base.meta)
		delete(u.meta, metaMtime) // the content changes: its time is now
	}
	if deferred {
		var rnd [8]byte
		_, _ = rand.Read(rnd[:])
		dir, b := path.Split(c)
		u.tmp = dir + vfs.TempPrefix + hex.EncodeToString(rnd[:]) + "-" + b
	}
	return u
}

// TempName implements vfs.PendingUpload.
func (u *upload) TempName() string { return u.tmp }

func (u *upload) Name() string { return u.name }

func (u *upload) fail(op string, err error) error {
	return u.f.err(op, u.name, err)
}

// failed returns the first error of a part sender.
func (u *upload) failed() error {
	u.pmu.Lock()
	defer u.pmu.Unlock()
	return u.err
}

// WriteAt accepts data at off: in order, ahead of the data received within Window, or over
// data not yet sent.
func (u *upload) WriteAt(p []byte, off int64) (int, error) {
	if u.appendTo {
		return 0, pathErr("write", u.name, errors.New("WriteAt on a file opened with O_APPEND"))
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.writeLocked(p, off)
}

func (u *upload) writeLocked(p []byte, off int64) (int, error) {
	if u.closed {
		return 0, pathErr("write", u.name, fs.ErrClosed)
	}
	if err := u.failed(); err != nil {
		return 0, u.fail("write", err)
	}
	if off < 0 {
		return 0, pathErr("write", u.name, fs.ErrInvalid)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if u.base != nil {
		if off < u.base.size {
			return 0, pathErr("write", u.name, ErrAppendOnly)
		}
		if err := u.prepareBase(); err != nil {
			return 0, u.fail("write", err)
		}
	}
	u.wrote = true
	end := off + int64(len(p))
	switch {
	case off == u.off:
		if err := u.push(p); err != nil {
			return 0, u.fail("write", err)
		}
	case off > u.off:
		if end-u.off > Window || u.aheadLen+int64(len(p)) > Window {
			return 0, pathErr("write", u.name, ErrOutOfOrder)
		}
		if len(u.spans)+len(u.aheadSpans) >= maxAhead {
			return 0, pathErr("write", u.name, ErrScattered)
		}
		// Straight into the buffer of the part it belongs to, where the data received in
		// order will join it; what lies past the part being filled goes to the ahead
		// buffer. Most of an SFTP upload's writes come out of order, and copies of them
		// held on the heap were its garbage (and, at a part's end, up to the Window of live
		// heap, which the collector let grow twice over).
		partEnd := u.start + u.f.opt.PartSize
		in, past := p, []byte(nil)
		if end > partEnd {
			in, past = p[:max(partEnd-off, 0)], p[max(partEnd-off, 0):]
		}
		if len(in) > 0 {
			if u.cur == nil {
				u.cur = u.f.getBuf()
			}
			copy(u.cur[:cap(u.cur)][off-u.start:], in)
			u.addSpan(&u.spans, off, off+int64(len(in)))
		}
		if len(past) > 0 {
			o := end - int64(len(past))
			if u.aheadBuf == nil {
				u.aheadBuf = u.f.bufs.get(Window)[:Window]
			}
			copy(u.aheadBuf[o-partEnd:], past)
			u.addSpan(&u.aheadSpans, o, end)
		}
	default: // over data received already: possible while it is still in the buffer
		if off < u.start {
			return 0, pathErr("write", u.name, ErrRewrite)
		}
		n := copy(u.cur[off-u.start:], p)
		if err := u.push(p[n:]); err != nil {
			return 0, u.fail("write", err)
		}
	}
	u.hw = max(u.hw, end)
	if err := u.advance(); err != nil {
		return 0, u.fail("write", err)
	}
	return len(p), nil
}

// addSpan records in spans (u.spans or u.aheadSpans) that [off, end), past the data
// received in order, is in its buffer; overlapping and adjacent spans merge.
func (u *upload) addSpan(spans *[]span, off, end int64) {
	ss := *spans
	i := 0
	for i < len(ss) && ss[i].end < off {
		i++
	}
	j := i
	for j < len(ss) && ss[j].off <= end {
		off, end = min(off, ss[j].off), max(end, ss[j].end)
		u.aheadLen -= ss[j].end - ss[j].off
		j++
	}
	*spans = slices.Replace(ss, i, j, span{off, end})
	u.aheadLen += end - off
}

// takeAhead moves what the ahead buffer holds into the buffer of the part it now belongs
// to, once the part before went out (so cur is nil and start is that part's end), and
// gives the ahead buffer back. Spans of the part that went out that the data in order
// covered since are dropped.
func (u *upload) takeAhead() {
	u.spans = slices.DeleteFunc(u.spans, func(sp span) bool {
		if sp.end > u.off {
			return false
		}
		u.aheadLen -= sp.end - sp.off
		return true
	})
	if len(u.aheadSpans) > 0 {
		u.cur = u.f.getBuf()
		full := u.cur[:cap(u.cur)]
		for _, sp := range u.aheadSpans {
			copy(full[sp.off-u.start:sp.end-u.start], u.aheadBuf[sp.off-u.start:])
		}
		u.spans = append(u.spans, u.aheadSpans...)
		u.aheadSpans = u.aheadSpans[:0]
	}
	u.dropAheadBuf()
}

// dropAheadBuf gives the ahead buffer back to the pool.
func (u *upload) dropAheadBuf() {
	if u.aheadBuf != nil {
		u.f.bufs.put(u.aheadBuf)
		u.aheadBuf = nil
	}
}

// advance moves the data received in order over the spans that now continue it, sending the
// part when that fills it; the spans of the data held ahead then move in (takeAhead), and it
// goes on over them.
func (u *upload) advance() error {
	for len(u.spans) > 0 && u.spans[0].off <= u.off {
		sp := u.spans[0]
		u.spans = slices.Delete(u.spans, 0, 1)
		u.aheadLen -= sp.end - sp.off
		if sp.end <= u.off {
			continue
		}
		u.cur = u.cur[:sp.end-u.start]
		u.off = sp.end
		if len(u.cur) == int(u.f.opt.PartSize) {
			if err := u.sendCur(); err != nil {
				return err
			}
		}
	}
	return nil
}

// push appends data received in order, sending each part as it fills: the buffer never
// holds more than a part, and a new buffer is taken only when data comes for it (after the
// slot of the part before was acquired), so an upload holds at most UploadConcurrency parts
// in flight and one filling.
func (u *upload) push(b []byte) error {
	ps := int(u.f.opt.PartSize)
	for len(b) > 0 {
		if u.cur == nil {
			u.cur = u.f.getBuf()
		}
		n := min(len(b), ps-len(u.cur))
		u.cur = append(u.cur, b[:n]...)
		u.off += int64(n)
		b = b[n:]
		if len(u.cur) < ps {
			continue
		}
		if err := u.sendCur(); err != nil {
			return err
		}
	}
	return nil
}

// sendCur sends the full buffer as the next part; the next data starts a new buffer.
func (u *upload) sendCur() error {
	if err := u.acquire(); err != nil {
		return err
	}
	part := u.cur
	u.cur = nil
	u.start += u.f.opt.PartSize
	if err := u.sendPart(part); err != nil {
		return err
	}
	u.takeAhead()
	return nil
}

// acquire waits while UploadConcurrency parts are in flight.
func (u *upload) acquire() error {
	select {
	case u.sem <- struct{}{}:
		return nil
	case <-u.ctx.Done():
		return u.ctx.Err()
	}
}

// sendPart starts a part upload; the caller acquired its slot, which the upload releases.
func (u *upload) sendPart(data []byte) error {
	if u.mp == nil {
		id, err := u.f.startMultipart(u.key, u.meta)
		if err != nil {
			<-u.sem
			u.f.putBuf(data)
			return err
		}
		u.mp = id
	}
	if u.nextPart == maxParts {
		<-u.sem
		u.f.putBuf(data)
		return fmt.Errorf("upload needs more than %d parts: raise part_size", maxParts)
	}
	u.nextPart++
	num := u.nextPart
	u.wg.Go(func() {
		defer func() { <-u.sem }()
		defer u.f.putBuf(data)
		ctx, cancel := context.WithTimeout(u.ctx, dataTimeout)
		defer cancel()
		out, err := u.f.c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &u.f.opt.Bucket, Key: aws.String(u.key),
			UploadId: u.mp, PartNumber: aws.Int32(num), Body: bytes.NewReader(data),
			ContentLength: aws.Int64(int64(len(data)))})
		u.pmu.Lock()
		defer u.pmu.Unlock()
		if err != nil {
			u.err = cmpOr(u.err, err)
			return
		}
		u.parts = append(u.parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(num)})
	})
	return nil
}

// prepareBase makes the existing object the start of the upload, once, at the first write:
// copied on the server as the first parts when it is large enough to be a part, else read
// into the buffer to go out again with the new data.
func (u *upload) prepareBase() error {
	b := u.base
	u.base = nil
	if b.size < MinPartSize {
		data, err := u.f.getRange(u.ctx, u.key, b.etag, 0, b.size)
		if err != nil {
			return err
		}
		u.cur, u.start = append(u.f.getBuf(), data...), 0 // < MinPartSize ≤ PartSize: fits
		return nil
	}
	id, err := u.f.startMultipart(u.key, u.meta)
	if err != nil {
		return err
	}
	u.mp = id
	for off := int64(0); off < b.size; {
		n := min(u.f.copyPart, b.size-off)
		if rest := b.size - off - n; rest > 0 && rest < MinPartSize {
			n += rest // every part but the last must be 5 MiB at least
		}
		u.nextPart++
		ctx, cancel := context.WithTimeout(u.ctx, dataTimeout)
		out, err := u.f.c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: &u.f.opt.Bucket,
			Key: aws.String(u.key), UploadId: id, PartNumber: aws.Int32(u.nextPart),
			CopySource: u.f.copySource(u.key), CopySourceIfMatch: aws.String(`"` + b.etag + `"`),
			CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", off, off+n-1))})
		cancel()
		if err != nil {
			return err
		}
		u.pmu.Lock()
		u.parts = append(u.parts, types.CompletedPart{ETag: out.CopyPartResult.ETag, PartNumber: aws.Int32(u.nextPart)})
		u.pmu.Unlock()
		off += n
	}
	return nil
}

// Write implements io.Writer: at the position, or at the end with O_APPEND.
func (u *upload) Write(p []byte) (int, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	off := u.pos
	if u.appendTo {
		off = u.hw
	}
	n, err := u.writeLocked(p, off)
	u.pos = off + int64(n)
	return n, err
}

func (u *upload) WriteString(s string) (int, error) { return u.Write([]byte(s)) }

// ReadAt reads back what is still in the buffer; the object itself before the first write.
func (u *upload) ReadAt(p []byte, off int64) (int, error) {
	if !u.readable {
		return 0, pathErr("read", u.name, syscall.EBADF)
	}
	u.mu.Lock()
	if u.base != nil && !u.wrote {
		b := u.base
		u.mu.Unlock()
		if off >= b.size {
			return 0, io.EOF
		}
		data, err := u.f.getRange(u.ctx, u.key, b.etag, off, min(int64(len(p)), b.size-off))
		n := copy(p, data)
		if err == nil && n < len(p) {
			err = io.EOF
		}
		return n, u.f.err("read", u.name, err)
	}
	defer u.mu.Unlock()
	return u.readBuffered(p, off, u.name)
}

// readBuffered reads back from the part being filled (u.mu held), naming the upload name in
// errors. What was already sent as a part, or is held out of order, cannot be read back.
func (u *upload) readBuffered(p []byte, off int64, name string) (int, error) {
	if off >= u.hw {
		return 0, io.EOF
	}
	if u.mp != nil || off < u.start || len(u.aheadSpans) > 0 || len(u.spans) > 0 {
		return 0, pathErr("read", name, ErrReadBack)
	}
	n := copy(p, u.cur[off-u.start:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (u *upload) Read(p []byte) (int, error) {
	u.mu.Lock()
	pos := u.pos
	u.mu.Unlock()
	n, err := u.ReadAt(p, pos)
	u.mu.Lock()
	u.pos += int64(n)
	u.mu.Unlock()
	return n, err
}

func (u *upload) Seek(offset int64, whence int) (int64, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	pos, ok := vfs.SeekPosition(u.pos, u.hw, offset, whence)
	if !ok {
		return u.pos, pathErr("seek", u.name, fs.ErrInvalid)
	}
	u.pos = pos
	return pos, nil
}

// Stat describes the upload: the size so far.
func (u *upload) Stat() (os.FileInfo, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return &info{name: path.Base(u.name), size: u.hw, mod: time.Now()}, nil
}

// Truncate can shorten or zero-extend what is still in the buffer.
func (u *upload) Truncate(size int64) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if size == u.hw {
		return nil
	}
	if u.base != nil && size == 0 {
		u.base, u.off, u.start, u.hw = nil, 0, 0, 0
		return nil
	}
	if u.base != nil || u.mp != nil || len(u.aheadSpans) > 0 || len(u.spans) > 0 || size < u.start || size-u.start > u.f.opt.PartSize {
		return pathErr("truncate", u.name, ErrRewrite)
	}
	if n := int(size - u.start); n <= len(u.cur) {
		u.cur = u.cur[:n]
	} else {
		if u.cur == nil {
			u.cur = u.f.getBuf()
		}
		u.cur = append(u.cur, make([]byte, n-len(u.cur))...) // ≤ PartSize: fits
	}
	u.off, u.hw = size, size
	u.wrote = true
	return nil
}

func (u *upload) Sync() error { return nil }

// Close sends what is left. An OpenFile handle then completes the upload (the object
// appears); a CreateUpload handle waits for Publish or Discard.
func (u *upload) Close() error {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return pathErr("close", u.name, fs.ErrClosed)
	}
	u.closed = true
	err := u.flushLocked()
	u.mu.Unlock()
	if err != nil {
		u.abort()
		return u.fail("close", err)
	}
	if u.deferred {
		return nil
	}
	if !u.wrote && u.base != nil {
		u.cancel()
		return nil // opened without writing: the object is as it was
	}
	if err := u.commit(); err != nil {
		return u.fail("close", err)
	}
	return nil
}

// flushLocked sends the last part and waits for all of them.
func (u *upload) flushLocked() error {
	if len(u.aheadSpans) > 0 || len(u.spans) > 0 {
		return ErrGap
	}
	if u.mp != nil && len(u.cur) > 0 {
		if err := u.acquire(); err != nil {
			return err
		}
		part := u.cur
		u.cur = nil
		if err := u.sendPart(part); err != nil {
			return err
		}
	}
	if u.mp != nil && u.cur != nil { // empty: the data ended at a part's end
		u.f.putBuf(u.cur)
		u.cur = nil
	}
	u.wg.Wait()
	return u.failed()
}

// commit makes the object appear: one PUT for a small upload, else the multipart completes.
// A failure aborts the upload.
func (u *upload) commit() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.done {
		return errors.New("upload already published or discarded")
	}
	u.done = true
	defer u.cancel()
	defer u.f.forget(u)
	// What was known of the name is stale whatever happens; what the upload wrote is known
	// but for its store time, which only Chtimes (MFMT, SITE UTIME, setstat after a put) can
	// do without.
	u.f.meta.created(u.name)
	gen := u.f.meta.generation()
	written := &info{name: path.Base(u.name), size: u.hw, meta: u.meta}
	if u.mp == nil {
		ctx, cancel := context.WithTimeout(u.ctx, dataTimeout)
		defer cancel()
		in := &s3.PutObjectInput{Bucket: &u.f.opt.Bucket, Key: aws.String(u.key), Body: bytes.NewReader(u.cur),
			ContentLength: aws.Int64(int64(len(u.cur))), Metadata: u.meta}
		u.f.storage(&in.StorageClass, &in.ServerSideEncryption, &in.SSEKMSKeyId)
		written.size = int64(len(u.cur))
		out, err := u.f.c.PutObject(ctx, in)
		u.f.putBuf(u.cur)
		u.cur = nil
		if err != nil {
			return err
		}
		written.etag = strings.Trim(aws.ToString(out.ETag), `"`)
		u.f.meta.put(gen, u.name, written, true)
		return nil
	}
	u.pmu.Lock()
	parts := slices.Clone(u.parts)
	u.pmu.Unlock()
	slices.SortFunc(parts, func(a, b types.CompletedPart) int { return int(aws.ToInt32(a.PartNumber) - aws.ToInt32(b.PartNumber)) })
	etag, err := u.f.completeMultipart(u.key, u.mp, parts)
	if err != nil {
		u.f.abortMultipart(u.key, u.mp)
		return err
	}
	written.etag = etag
	u.f.meta.put(gen, u.name, written, true)
	return nil
}

// Publish implements vfs.PendingUpload: the object appears under its name.
func (u *upload) Publish() error {
	u.mu.Lock()
	closed := u.closed
	u.mu.Unlock()
	if !closed {
		if err := u.Close(); err != nil {
			return err
		}
	}
	if err := u.failed(); err != nil {
		u.abort()
		return u.fail("publish", err)
	}
	return u.fail("publish", u.commit())
}

// Discard implements vfs.PendingUpload: the upload is aborted and never visible.
func (u *upload) Discard() error {
	u.mu.Lock()
	u.closed = true
	u.mu.Unlock()
	u.abort()
	return nil
}

// abort stops the parts in flight and aborts the multipart upload.
func (u *upload) abort() {
	u.cancel()
	u.wg.Wait()
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.done {
		return
	}
	u.done = true
	u.f.forget(u)
	if u.mp != nil {
		u.f.abortMultipart(u.key, u.mp)
	}
	if u.cur != nil {
		u.f.putBuf(u.cur)
		u.cur = nil
	}
	u.dropAheadBuf()
}

// getBuf returns an empty part buffer of PartSize, and counts it as held.
func (f *FS) getBuf() []byte {
	f.hold(f.opt.PartSize)
	return f.bufs.get(int(f.opt.PartSize))
}

// putBuf gives a buffer from getBuf back.
func (f *FS) putBuf(b []byte) {
	if b == nil {
		return
	}
	f.hold(-f.opt.PartSize)
	f.bufs.put(b)
}

// hold counts the part buffers the backend's uploads hold, and their peak (tests check the
// bound per upload with it).
func (f *FS) hold(n int64) {
	cur := f.held.Add(n)
	for {
		p := f.peak.Load()
		if cur <= p || f.peak.CompareAndSwap(p, cur) {
			return
		}
	}
}

package s3fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/spf13/afero"

	"github.com/wharf-project/wharf/vfs"
)

// ReadChunk is the size of one ranged GET of a sequential download; ReadAhead more chunks
// are fetched ahead of the reader, so a download holds at most (ReadAhead + 2) × ReadChunk.
const (
	ReadChunk = 4 << 20
	ReadAhead = 3
)

// listHeads is how many objects of a listing page are described at once: a listing does not
// carry the metadata that holds a modification time set by a client.
const listHeads = 16

// openHead is how much of an object an open for reading fetches when no fresh cache entry
// describes it: the GET that finds the object, where a HEAD did before, brings its first
// bytes with it, the whole of a small file, so that reading it costs no other request. It is
// also the size up to which an open from the cache starts reading the file at once, while the
// client sends its first read.
const openHead = 256 << 10

// openRead opens a file or a directory for reading.
func (f *FS) openRead(c string) (afero.File, error) {
	if u := f.pendingUpload(c); u != nil {
		return &uploadView{readOnly: readOnly{notDir{u.tmp}}, u: u}, nil
	}
	fi, head, cached, err := f.lookupRead(c)
	if err != nil {
		return nil, pathErr("open", c, unwrapPath(err))
	}
	if fi.IsDir() {
		return &dirFile{f: f, name: c, prefix: f.dirKey(c), fi: fi, gen: f.meta.generation(), start: time.Now(),
			names: map[string]struct{}{}}, nil
	}
	ctx, cancel := context.WithCancel(f.ctx)
	r := &readFile{readOnly: readOnly{notDir{c}}, f: f, name: c, key: f.key(c), fi: fi, head: head, cached: cached,
		ctx: ctx, cancel: cancel, chunks: map[int64]*chunk{}, last: -2}
	if cached && fi.size > 0 && fi.size <= openHead {
		_, _, _ = r.chunk(fi, 0) // starts the GET of the whole file
	}
	return r, nil
}

// lookupRead finds what an open for reading opens: from the cache when it can (cached), else
// with a GET of the object's first openHead bytes (head), then, when there is no such object,
// a LIST for a directory. A GET costs what a HEAD does and tells the same.
func (f *FS) lookupRead(c string) (fi *info, head []byte, cached bool, err error) {
	if c == "/" {
		fi, err = f.statFile(c)
		return fi, nil, false, err
	}
	if fi := f.meta.get(c, false); fi != nil {
		return fi, nil, true, nil
	}
	if f.meta.missing(c) {
		return nil, nil, true, pathErr("stat", c, fs.ErrNotExist)
	}
	gen := f.meta.generation()
	fi, head, err = f.getHead(c)
	switch {
	case err == nil:
		f.meta.put(gen, c, fi, false)
		return fi, head, false, nil
	case isNotFound(err):
		ctx, cancel := f.opCtx()
		defer cancel()
		out, err := f.listOne(ctx, c)
		fi, err = f.dirInfo(gen, c, out, err)
		return fi, nil, false, err
	case isInvalidRange(err): // an empty object: S3 refuses any range of it
		fi, err = f.statFile(c)
		return fi, nil, false, err
	}
	return nil, nil, false, f.err("stat", c, err)
}

// getHead GETs the first openHead bytes of c's object and describes the object.
func (f *FS) getHead(c string) (*info, []byte, error) {
	ctx, cancel := context.WithTimeout(f.ctx, dataTimeout)
	defer cancel()
	out, err := f.c.GetObject(ctx, &s3.GetObjectInput{Bucket: &f.opt.Bucket, Key: aws.String(f.key(c)),
		Range: aws.String(fmt.Sprintf("bytes=0-%d", openHead-1))})
	if err != nil {
		return nil, nil, err
	}
	defer out.Body.Close()
	size, ok := rangeTotal(aws.ToString(out.ContentRange))
	if !ok {
		size = aws.ToInt64(out.ContentLength) // the whole object: the store ignored the range
	}
	head := make([]byte, min(size, openHead))
	if _, err := io.ReadFull(out.Body, head); err != nil {
		return nil, nil, err
	}
	return objInfo(path.Base(c), size, out.LastModified, out.ETag, out.Metadata), head, nil
}

// rangeTotal is the object size a Content-Range header ("bytes 0-4095/4096") gives.
func rangeTotal(cr string) (int64, bool) {
	_, total, ok := strings.Cut(cr, "/")
	if !ok || !strings.HasPrefix(cr, "bytes ") {
		return 0, false
	}
	n, err := strconv.ParseInt(total, 10, 64)
	return n, err == nil && n >= 0
}

// isInvalidRange reports a range the object does not have (S3 answers 416 for any range of
// an empty object).
func isInvalidRange(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "InvalidRange" {
		return true
	}
	var re *smithyhttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusRequestedRangeNotSatisfiable
}

func unwrapPath(err error) error {
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Err
	}
	return err
}

// getRange reads n bytes of key from off; etag (if not empty) must still match, so that a
// download never mixes two versions of an object.
func (f *FS) getRange(ctx context.Context, key, etag string, off, n int64) ([]byte, error) {
	if n <= 0 {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, dataTimeout)
	defer cancel()
	in := &s3.GetObjectInput{Bucket: &f.opt.Bucket, Key: aws.String(key),
		Range: aws.String(fmt.Sprintf("bytes=%d-%d", off, off+n-1))}
	if etag != "" {
		in.IfMatch = aws.String(`"` + etag + `"`)
	}
	out, err := f.c.GetObject(ctx, in)
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	buf := make([]byte, n)
	got, err := io.ReadFull(out.Body, buf)
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		err = nil // the object is shorter than asked
	}
	return buf[:got], err
}

// chunk is one ReadChunk of a download, being fetched or fetched.
type chunk struct {
	done chan struct{}
	off  int64 // the object offset of data[0]: the chunk's start, or past the head
	data []byte
	err  error
}

// readFile is an object open for reading. Sequential reads (including the slightly
// out-of-order reads of SFTP clients) go through chunks fetched ahead; a read elsewhere is
// one ranged GET of just what it asks.
type readFile struct {
	readOnly
	f      *FS
	name   string
	key    string
	ctx    context.Context
	cancel context.CancelFunc

	// head is the start of the object that the open's GET brought (see lookupRead). It is set
	// at open and never changes: a handle with a head was not opened from the cache, so it is
	// never refreshed.
	head []byte

	mu sync.Mutex
	fi *info // what the handle reads: its size, and the ETag every GET must match
	// cached says fi came from the metadata cache; until a read returned data (delivered),
	// a GET that finds the object changed or gone looks it up again, once (retried).
	cached, delivered, retried bool
	chunks                     map[int64]*chunk
	last                       int64 // index of the chunk read last
	pos                        int64
	closed                     bool
}

func (r *readFile) Name() string { return r.name }

func (r *readFile) Stat() (os.FileInfo, error) { return r.info(), nil }

func (r *readFile) info() *info {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fi
}

// refresh looks the object up again after a GET found it changed or gone (err), if the handle
// was opened from the cache and has returned no data yet: a stale entry costs one more
// request, never a read of another version. It says whether to read again.
func (r *readFile) refresh(old *info, err error) bool {
	if !isNotFound(err) && !isChanged(err) {
		return false
	}
	r.mu.Lock()
	if r.fi != old {
		r.mu.Unlock()
		return true // another read refreshed it
	}
	if !r.cached || r.retried || r.delivered || r.closed {
		r.mu.Unlock()
		return false
	}
	r.retried = true
	r.mu.Unlock()
	r.f.meta.forget(r.name)
	fi, serr := r.f.statFile(r.name)
	if serr != nil || fi.IsDir() {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.fi, r.chunks, r.last = fi, map[int64]*chunk{}, -2
	return true
}

// deliver marks that the handle returned data of the version fi describes, and says whether
// fi is still the handle's (a refresh may have replaced it meanwhile).
func (r *readFile) deliver(fi *info) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.delivered = true
	return r.fi == fi
}

func (r *readFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, pathErr("read", r.name, fs.ErrInvalid)
	}
	for {
		fi := r.info()
		n, err := r.readAt(fi, p, off)
		if n == 0 && err != nil && err != io.EOF && r.refresh(fi, err) {
			continue
		}
		if err != nil && err != io.EOF {
			err = r.f.err("read", r.name, err)
		}
		return n, err
	}
}

// readAt reads the version fi describes; store errors are returned as the SDK gave them.
func (r *readFile) readAt(fi *info, p []byte, off int64) (int, error) {
	size := fi.size
	n := 0
	for n < len(p) {
		at := off + int64(n)
		if at >= size {
			return n, io.EOF
		}
		if at < int64(len(r.head)) {
			r.deliver(fi)
			n += copy(p[n:], r.head[at:])
			continue
		}
		idx := at / ReadChunk
		c, direct, err := r.chunk(fi, idx)
		if err != nil {
			return n, err
		}
		if direct {
			want := min(int64(len(p)-n), size-at)
			data, err := r.f.getRange(r.ctx, r.key, fi.etag, at, want)
			if err != nil {
				return n, err
			}
			if !r.deliver(fi) {
				return n, errStale
			}
			n += copy(p[n:], data)
			if int64(len(data)) < want {
				return n, io.EOF
			}
			continue
		}
		select {
		case <-c.done:
		case <-r.ctx.Done():
			return n, pathErr("read", r.name, fs.ErrClosed)
		}
		if c.err != nil {
			r.drop(c, idx)
			return n, c.err
		}
		if !r.deliver(fi) {
			return n, errStale
		}
		in := at - c.off
		if in >= int64(len(c.data)) {
			return n, io.EOF // the object shrank under us
		}
		n += copy(p[n:], c.data[in:])
	}
	return n, nil
}

// chunk returns chunk idx, fetching it and the ReadAhead after it for a sequential reader.
// direct is true for a read far from the previous one: it goes straight to the store.
func (r *readFile) chunk(fi *info, idx int64) (*chunk, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, false, pathErr("read", r.name, fs.ErrClosed)
	}
	if r.fi != fi {
		return nil, false, errStale
	}
	c, ok := r.chunks[idx]
	sequential := ok || r.last == -2 || (idx >= r.last-1 && idx <= r.last+1)
	if !sequential {
		return nil, true, nil
	}
	if idx > r.last {
		r.last = idx
	}
	// Keep the chunk before the reader (late SFTP reads) and those ahead; drop the rest.
	for i := range r.chunks {
		if i < r.last-1 || i > r.last+ReadAhead {
			delete(r.chunks, i)
		}
	}
	chunks := (r.fi.size + ReadChunk - 1) / ReadChunk
	for i := idx; i <= idx+ReadAhead && i < chunks; i++ {
		if _, ok := r.chunks[i]; !ok {
			r.chunks[i] = r.fetch(i)
		}
	}
	if !ok {
		c = r.chunks[idx]
	}
	return c, false, nil
}

func (r *readFile) fetch(idx int64) *chunk {
	// The first chunk starts past the head the open brought, which serves the reads before.
	off := max(idx*ReadChunk, min(int64(len(r.head)), (idx+1)*ReadChunk))
	n := min((idx+1)*ReadChunk, r.fi.size) - off
	c := &chunk{done: make(chan struct{}), off: off}
	etag := r.fi.etag
	go func() {
		defer close(c.done)
		c.data, c.err = r.f.getRange(r.ctx, r.key, etag, off, n)
	}()
	return c
}

// drop forgets chunk c (failed), at idx, unless a refresh replaced it already.
func (r *readFile) drop(c *chunk, idx int64) {
	r.mu.Lock()
	if r.chunks[idx] == c {
		delete(r.chunks, idx)
	}
	r.mu.Unlock()
}

// errStale is a read that raced with a refresh of its handle: it returned no data of the new
// version and is refused rather than mixing two.
var errStale = errors.New("object storage: the object changed during the read")

func (r *readFile) Read(p []byte) (int, error) { return readAtPos(&r.mu, &r.pos, p, r.ReadAt) }

// readAtPos is Read over readAt for a handle whose position is *pos, guarded by mu, which is
// not held while reading (ReadAt takes its own locks). An io.EOF that comes with data is
// left for the next call.
func readAtPos(mu *sync.Mutex, pos *int64, p []byte, readAt func([]byte, int64) (int, error)) (int, error) {
	mu.Lock()
	off := *pos
	mu.Unlock()
	n, err := readAt(p, off)
	mu.Lock()
	*pos = off + int64(n)
	mu.Unlock()
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

func (r *readFile) Seek(offset int64, whence int) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pos, ok := vfs.SeekPosition(r.pos, r.fi.size, offset, whence)
	if !ok {
		return r.pos, pathErr("seek", r.name, fs.ErrInvalid)
	}
	r.pos = pos
	return pos, nil
}

func (r *readFile) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return pathErr("close", r.name, fs.ErrClosed)
	}
	r.closed = true
	r.cancel()
	r.chunks = nil
	return nil
}

// notDir refuses to list a handle that is not a directory, naming it.
type notDir struct{ path string }

func (d notDir) Readdir(int) ([]os.FileInfo, error) {
	return nil, pathErr("readdir", d.path, syscall.ENOTDIR)
}
func (d notDir) Readdirnames(int) ([]string, error) {
	return nil, pathErr("readdir", d.path, syscall.ENOTDIR)
}

// readOnly refuses what a file handle open only for reading cannot do, naming it.
type readOnly struct{ notDir }

func (r readOnly) Write([]byte) (int, error) { return 0, pathErr("write", r.path, syscall.EBADF) }
func (r readOnly) WriteAt([]byte, int64) (int, error) {
	return 0, pathErr("write", r.path, syscall.EBADF)
}
func (r readOnly) WriteString(string) (int, error) {
	return 0, pathErr("write", r.path, syscall.EBADF)
}
func (r readOnly) Truncate(int64) error { return pathErr("truncate", r.path, syscall.EBADF) }
func (readOnly) Sync() error            { return nil }

// uploadView reads an upload not yet published (an AfterFileUpload script reading it).
type uploadView struct {
	readOnly
	u   *upload
	mu  sync.Mutex
	pos int64
}

func (v *uploadView) Name() string               { return v.u.tmp }
func (v *uploadView) Stat() (os.FileInfo, error) { return v.u.Stat() }
func (v *uploadView) Close() error               { return nil }

func (v *uploadView) ReadAt(p []byte, off int64) (int, error) {
	v.u.mu.Lock()
	defer v.u.mu.Unlock()
	return v.u.readBuffered(p, off, v.u.tmp)
}

func (v *uploadView) Read(p []byte) (int, error) { return readAtPos(&v.mu, &v.pos, p, v.ReadAt) }

func (v *uploadView) Seek(offset int64, whence int) (int64, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	fi, _ := v.u.Stat()
	pos, ok := vfs.SeekPosition(v.pos, fi.Size(), offset, whence)
	if !ok {
		return v.pos, pathErr("seek", v.u.tmp, fs.ErrInvalid)
	}
	v.pos = pos
	return pos, nil
}

// dirFile lists a directory a page of ListObjectsV2 at a time.
type dirFile struct {
	f      *FS
	name   string
	prefix string
	fi     *info
	// gen and start are the cache generation and time when the listing began; names what it
	// found so far, kept when it completes (nil past metaMax).
	gen   uint64
	start time.Time
	names map[string]struct{}

	mu     sync.Mutex
	token  *string
	ended  bool
	buf    []os.FileInfo
	closed bool
}

func (d *dirFile) Name() string               { return d.name }
func (d *dirFile) Stat() (os.FileInfo, error) { return d.fi, nil }
func (d *dirFile) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return pathErr("close", d.name, fs.ErrClosed)
	}
	d.closed = true
	d.buf = nil
	return nil
}

// Readdir implements afero.File: count > 0 returns up to count entries, io.EOF at the end.
func (d *dirFile) Readdir(count int) ([]os.FileInfo, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, pathErr("readdir", d.name, fs.ErrClosed)
	}
	for (count <= 0 || len(d.buf) < count) && !d.ended {
		if err := d.page(); err != nil {
			return nil, err
		}
	}
	if count <= 0 {
		out := d.buf
		d.buf = nil
		return out, nil
	}
	if len(d.buf) == 0 {
		return nil, io.EOF
	}
	n := min(count, len(d.buf))
	out := d.buf[:n:n]
	d.buf = d.buf[n:]
	return out, nil
}

func (d *dirFile) Readdirnames(n int) ([]string, error) {
	fis, err := d.Readdir(n)
	names := make([]string, len(fis))
	for i, fi := range fis {
		names[i] = fi.Name()
	}
	return names, err
}

// page appends the next page of the listing to buf.
func (d *dirFile) page() error {
	f := d.f
	ctx, cancel := f.opCtx()
	defer cancel()
	lo, err := f.c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &f.opt.Bucket, Prefix: aws.String(d.prefix),
		Delimiter: aws.String("/"), ContinuationToken: d.token})
	if err != nil {
		return f.err("readdir", d.name, err)
	}
	d.token = lo.NextContinuationToken
	d.ended = !aws.ToBool(lo.IsTruncated) || d.token == nil
	var files []*info
	for _, o := range lo.Contents {
		base := strings.TrimPrefix(aws.ToString(o.Key), d.prefix)
		if base == "" || strings.Contains(base, "/") {
			continue // the directory's own marker
		}
		fi := &info{name: base, size: aws.ToInt64(o.Size), mod: aws.ToTime(o.LastModified),
			etag: strings.Trim(aws.ToString(o.ETag), `"`)}
		files = append(files, fi)
	}
	described := f.describe(ctx, d.name, d.prefix, files)
	for i, fi := range files {
		d.buf = append(d.buf, fi)
		d.saw(fi.name)
		if described[i] {
			f.meta.put(d.gen, path.Join(d.name, fi.name), fi, false)
		}
	}
	for _, p := range lo.CommonPrefixes {
		base := strings.TrimSuffix(strings.TrimPrefix(aws.ToString(p.Prefix), d.prefix), "/")
		if base == "" || strings.Contains(base, "/") {
			continue
		}
		d.buf = append(d.buf, &info{name: base, dir: true, mod: f.opened})
		d.saw(base)
	}
	if d.ended && d.names != nil {
		f.meta.putListing(d.gen, d.name, d.start, d.names)
	}
	return nil
}

// saw adds a name to those of the listing.
func (d *dirFile) saw(name string) {
	if d.names == nil {
		return
	}
	if len(d.names) == metaMax {
		d.names = nil // too many to keep
		return
	}
	d.names[name] = struct{}{}
}

// describe reads the modification time kept in the metadata of listed objects, listHeads at a
// time, and says which it described: an object whose HEAD fails keeps the store's
// LastModified. A described entry is what a Stat would return. An object of the directory dir
// with a fresh cache entry of the same ETag and size takes it instead of a HEAD, and does not
// refresh it (a listing repeated every few seconds would otherwise keep it forever). An
// object the listing shows as a HEAD of the last mtimeTTL found it takes that HEAD's answer
// (see mtimeTTL).
func (f *FS) describe(ctx context.Context, dir, prefix string, files []*info) []bool {
	ok := make([]bool, len(files))
	sem := make(chan struct{}, listHeads)
	var wg sync.WaitGroup
	gen := f.meta.generation()
	for i, fi := range files {
		c := path.Join(dir, fi.name)
		if e := f.meta.get(c, false); e != nil && !e.dir && e.etag == fi.etag && e.size == fi.size {
			*fi = *e
			continue
		}
		if r := f.meta.recall(c, fi); r != nil {
			*fi = *r
			ok[i] = true
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			out, err := f.c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &f.opt.Bucket, Key: aws.String(prefix + fi.name)})
			if err != nil {
				return
			}
			listed := *fi
			*fi = *f.headInfo(fi.name, out)
			ok[i] = true
			if fi.etag == listed.etag && fi.size == listed.size {
				f.meta.remember(gen, c, &listed, fi)
			}
		})
	}
	wg.Wait()
	return ok
}

func (d *dirFile) Read([]byte) (int, error) { return 0, pathErr("read", d.name, syscall.EISDIR) }
func (d *dirFile) ReadAt([]byte, int64) (int, error) {
	return 0, pathErr("read", d.name, syscall.EISDIR)
}
func (d *dirFile) Seek(int64, int) (int64, error) { return 0, pathErr("seek", d.name, syscall.EISDIR) }
func (d *dirFile) Write([]byte) (int, error)      { return 0, pathErr("write", d.name, syscall.EISDIR) }
func (d *dirFile) WriteAt([]byte, int64) (int, error) {
	return 0, pathErr("write", d.name, syscall.EISDIR)
}
func (d *dirFile) WriteString(string) (int, error) {
	return 0, pathErr("write", d.name, syscall.EISDIR)
}
func (d *dirFile) Truncate(int64) error { return pathErr("truncate", d.name, syscall.EISDIR) }
func (d *dirFile) Sync() error          { return nil }

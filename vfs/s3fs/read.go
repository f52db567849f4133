package s3fs

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
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

// openRead opens a file or a directory for reading.
func (f *FS) openRead(c string) (afero.File, error) {
	if u := f.pendingUpload(c); u != nil {
		return &uploadView{readOnly: readOnly{notDir{u.tmp}}, u: u}, nil
	}
	fi, err := f.statFile(c)
	if err != nil {
		return nil, pathErr("open", c, unwrapPath(err))
	}
	if fi.IsDir() {
		return &dirFile{f: f, name: c, prefix: f.dirKey(c), fi: fi}, nil
	}
	ctx, cancel := context.WithCancel(f.ctx)
	return &readFile{readOnly: readOnly{notDir{c}}, f: f, name: c, key: f.key(c), fi: fi, ctx: ctx, cancel: cancel,
		chunks: map[int64]*chunk{}, last: -2}, nil
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
	fi     *info
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	chunks map[int64]*chunk
	last   int64 // index of the chunk read last
	pos    int64
	closed bool
}

func (r *readFile) Name() string { return r.name }

func (r *readFile) Stat() (os.FileInfo, error) { return r.fi, nil }

func (r *readFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, pathErr("read", r.name, fs.ErrInvalid)
	}
	size := r.fi.size
	n := 0
	for n < len(p) {
		at := off + int64(n)
		if at >= size {
			return n, io.EOF
		}
		idx := at / ReadChunk
		c, direct, err := r.chunk(idx)
		if err != nil {
			return n, err
		}
		if direct {
			want := min(int64(len(p)-n), size-at)
			data, err := r.f.getRange(r.ctx, r.key, r.fi.etag, at, want)
			n += copy(p[n:], data)
			if err != nil {
				return n, r.f.err("read", r.name, err)
			}
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
			r.drop(idx)
			return n, r.f.err("read", r.name, c.err)
		}
		in := at - idx*ReadChunk
		if in >= int64(len(c.data)) {
			return n, io.EOF // the object shrank under us
		}
		n += copy(p[n:], c.data[in:])
	}
	return n, nil
}

// chunk returns chunk idx, fetching it and the ReadAhead after it for a sequential reader.
// direct is true for a read far from the previous one: it goes straight to the store.
func (r *readFile) chunk(idx int64) (*chunk, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, false, pathErr("read", r.name, fs.ErrClosed)
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
	c := &chunk{done: make(chan struct{})}
	off := idx * ReadChunk
	n := min(ReadChunk, r.fi.size-off)
	go func() {
		defer close(c.done)
		c.data, c.err = r.f.getRange(r.ctx, r.key, r.fi.etag, off, n)
	}()
	return c
}

func (r *readFile) drop(idx int64) {
	r.mu.Lock()
	delete(r.chunks, idx)
	r.mu.Unlock()
}

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
	f.describe(ctx, d.prefix, files)
	for _, fi := range files {
		d.buf = append(d.buf, fi)
	}
	for _, p := range lo.CommonPrefixes {
		base := strings.TrimSuffix(strings.TrimPrefix(aws.ToString(p.Prefix), d.prefix), "/")
		if base == "" || strings.Contains(base, "/") {
			continue
		}
		d.buf = append(d.buf, &info{name: base, dir: true, mod: f.opened})
	}
	return nil
}

// describe reads the modification time kept in the metadata of listed objects, listHeads at a
// time. An object whose HEAD fails keeps the store's LastModified.
func (f *FS) describe(ctx context.Context, prefix string, files []*info) {
	sem := make(chan struct{}, listHeads)
	var wg sync.WaitGroup
	for _, fi := range files {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			out, err := f.c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &f.opt.Bucket, Key: aws.String(prefix + fi.name)})
			if err != nil {
				return
			}
			if t, ok := parseMtime(out.Metadata[metaMtime]); ok {
				fi.mod = t
			}
		})
	}
	wg.Wait()
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

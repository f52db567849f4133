// Package s3fs is a wharf backend on S3-compatible object storage (AWS S3, MinIO, Ceph RGW,
// Cloudflare R2, Versity's gateway), through aws-sdk-go-v2.
//
// Names map onto keys under a prefix; directories are prefixes, with a "dir/" marker object
// for the ones made by mkdir. Uploads stream as multipart uploads and appear only when they
// complete; an upload that fails or is vetoed is aborted and never visible. Downloads are
// ranged GETs with a bounded read-ahead. See docs/storage.md for what differs from a disk.
package s3fs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/spf13/afero"

	"github.com/wharf-project/wharf/vfs"
)

// S3's limits.
const (
	MinPartSize  = 5 << 20          // every part but the last
	MaxPartSize  = 5 << 30          // one part, and one CopyObject
	maxParts     = 10_000           // parts of one upload
	copyPartSize = 512 << 20        // parts of a server-side multipart copy
	maxCopySize  = int64(5 << 30)   // CopyObject's limit; larger objects copy in parts
	maxDelete    = 1000             // keys per DeleteObjects
	metaMtime    = "mtime"          // x-amz-meta-mtime, seconds since 1970 as rclone writes it
	opTimeout    = 60 * time.Second // one metadata request (the SDK retries inside it)
	dataTimeout  = 10 * time.Minute // one part or one ranged GET
	idleConns    = 128              // idle HTTP connections kept to the store
)

// Options configure a backend (config vfs[] entries of type s3).
type Options struct {
	Bucket    string
	Prefix    string // key prefix, {user} already replaced; "" = the whole bucket
	Endpoint  string // "" = AWS
	Region    string
	PathStyle bool
	// AccessKey and SecretKey; both empty = the default AWS credential chain (environment,
	// shared files, instance or task role).
	AccessKey, SecretKey string
	StorageClass         string
	SSE                  string // "", AES256 or aws:kms
	SSEKMSKeyID          string
	PartSize             int64 // bytes per part, at least MinPartSize
	UploadConcurrency    int   // parts in flight per upload
	MaxDirRenameObjects  int
	// CleanupAfter: incomplete multipart uploads under the prefix older than this are aborted
	// when the backend starts (0 = never).
	CleanupAfter time.Duration
	Logger       *slog.Logger
	// Buffers serves the part buffers of uploads; nil: a pool of the backend's own. One
	// pool for all the backends of a process keeps its memory to the uploads in progress.
	Buffers *PartBuffers
	// Client is the connection to the store, shared with other backends on it (see
	// NewClient); nil: the backend makes one of its own from Endpoint, Region, PathStyle,
	// AccessKey and SecretKey, which are ignored when Client is set.
	Client *Client
}

// ClientOptions say how to reach a store: the fields of Options that are not about a bucket
// or prefix.
type ClientOptions struct {
	Endpoint  string // "" = AWS
	Region    string
	PathStyle bool
	// AccessKey and SecretKey; both empty = the default AWS credential chain.
	AccessKey, SecretKey string
}

func (o Options) clientOptions() ClientOptions {
	return ClientOptions{Endpoint: o.Endpoint, Region: o.Region, PathStyle: o.PathStyle, AccessKey: o.AccessKey, SecretKey: o.SecretKey}
}

// Client is a connection to an S3 store: the SDK's client, its configuration and its pool of
// HTTP connections. A site opens one backend per user prefix, and the backends on one store
// with the same credentials share a Client. One SDK client per backend cost every user's
// first login the loading of the AWS configuration (with a CA bundle, the parsing of every
// certificate in it), and each user a connection pool of their own.
type Client struct {
	c *s3.Client
}

// NewClient loads the AWS configuration (environment, shared files) and makes a client. It
// sends nothing: credentials from the default chain are fetched at the first request.
func NewClient(ctx context.Context, opt ClientOptions) (*Client, error) {
	return newClient(ctx, opt, nil)
}

// newClient is NewClient with the HTTP client of the S3 client (nil = the SDK's); tests
// count requests.
func newClient(ctx context.Context, opt ClientOptions, hc s3.HTTPClient) (*Client, error) {
	var loads []func(*awsconfig.LoadOptions) error
	if opt.Region != "" {
		loads = append(loads, awsconfig.WithRegion(opt.Region))
	}
	if opt.AccessKey != "" || opt.SecretKey != "" {
		loads = append(loads, awsconfig.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(opt.AccessKey, opt.SecretKey, "")))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, loads...)
	if err != nil {
		return nil, fmt.Errorf("s3: loading the AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1" // what S3-compatible stores answer for
	}
	c := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if opt.Endpoint != "" {
			o.BaseEndpoint = aws.String(opt.Endpoint)
		}
		o.UsePathStyle = opt.PathStyle
		o.HTTPClient = hc
		if hc == nil {
			// The SDK keeps 10 idle connections per host: a listing's HEADs (listHeads at
			// once), the parts of a few uploads and the read-ahead of a few downloads go over
			// more, and every request past 10 opened a connection and closed it after use.
			o.HTTPClient = awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
				t.MaxIdleConns, t.MaxIdleConnsPerHost = idleConns, idleConns
			})
		}
		// Checksums only where the API requires them: several S3-compatible stores reject
		// the SDK's default trailing checksums. The signature covers the payload over plain
		// HTTP, TLS does over HTTPS.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	return &Client{c: c}, nil
}

// FS is a backend over one bucket and prefix.
type FS struct {
	c      *s3.Client
	opt    Options
	prefix string // "" or ending in "/"
	log    *slog.Logger
	ctx    context.Context // ends when the backend is closed
	stop   context.CancelFunc

	mu      sync.Mutex
	pending map[string]*upload   // uploads not yet published, by TempName
	dirs    map[string]time.Time // directories seen to exist, and when (see dirTTL)
	bufs    *PartBuffers
	held    atomic.Int64 // bytes of part buffers held by uploads
	peak    atomic.Int64 // the most held at once
	meta    metaCache    // what recent HEADs and listings found (see cache.go)

	// opened is the time of directories that have no marker to take one from (a zero time
	// reads as year 1 in listings, or wraps in SFTP's 32-bit times).
	opened time.Time

	// maxCopy and copyPart are maxCopySize and copyPartSize; tests lower them.
	maxCopy, copyPart int64
}

var (
	_ afero.Fs          = (*FS)(nil)
	_ vfs.Locator       = (*FS)(nil)
	_ vfs.UploadCreator = (*FS)(nil)
	_ vfs.UsageCounter  = (*FS)(nil)
	_ vfs.KnownHasher   = (*FS)(nil)
)

// New connects to the bucket (it must exist) and aborts the incomplete uploads under the
// prefix older than opt.CleanupAfter.
func New(ctx context.Context, opt Options) (*FS, error) { return newFS(ctx, opt, nil) }

// newFS is New with the HTTP client of the S3 client it makes when opt.Client is nil (nil =
// the SDK's); tests count requests.
func newFS(ctx context.Context, opt Options, hc s3.HTTPClient) (*FS, error) {
	if opt.Bucket == "" {
		return nil, errors.New("s3: no bucket")
	}
	p, err := CleanPrefix(opt.Prefix)
	if err != nil {
		return nil, err
	}
	if opt.PartSize == 0 {
		opt.PartSize = 8 << 20
	}
	if opt.PartSize < MinPartSize || opt.PartSize > MaxPartSize {
		return nil, fmt.Errorf("s3: part size %d is outside S3's 5 MiB to 5 GiB", opt.PartSize)
	}
	if opt.UploadConcurrency < 1 {
		opt.UploadConcurrency = 4
	}
	if opt.MaxDirRenameObjects < 1 {
		opt.MaxDirRenameObjects = 1000
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Buffers == nil {
		opt.Buffers = NewPartBuffers()
	}
	cl := opt.Client
	if cl == nil {
		var err error
		if cl, err = newClient(ctx, opt.clientOptions(), hc); err != nil {
			return nil, err
		}
	}
	c := cl.c
	bctx, stop := context.WithCancel(context.Background())
	f := &FS{c: c, opt: opt, prefix: p, bufs: opt.Buffers, log: opt.Logger, ctx: bctx, stop: stop, pending: map[string]*upload{}, dirs: map[string]time.Time{},
		maxCopy: maxCopySize, copyPart: copyPartSize, opened: time.Now().Truncate(time.Second)}
	hctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	if _, err := c.HeadBucket(hctx, &s3.HeadBucketInput{Bucket: aws.String(opt.Bucket)}); err != nil {
		stop()
		return nil, fmt.Errorf("s3: bucket %s: %w", opt.Bucket, err)
	}
	if opt.CleanupAfter > 0 {
		if n, err := f.CleanupUploads(ctx, opt.CleanupAfter); err != nil {
			f.log.Warn("s3: could not clean up incomplete uploads", "bucket", opt.Bucket, "prefix", p, "err", err)
		} else if n > 0 {
			f.log.Info("s3: aborted incomplete uploads", "bucket", opt.Bucket, "prefix", p, "count", n)
		}
	}
	return f, nil
}

// CleanPrefix checks a key prefix and gives it its one trailing slash: a prefix with empty,
// "." or ".." elements could overlap another user's.
func CleanPrefix(p string) (string, error) {
	p = strings.Trim(p, "/")
	if p == "" {
		return "", nil
	}
	for _, e := range strings.Split(p, "/") {
		if e == "" || e == "." || e == ".." || strings.ContainsRune(e, 0) {
			return "", fmt.Errorf("s3: invalid prefix %q: empty, \".\" or \"..\" element", p)
		}
	}
	return p + "/", nil
}

// Close stops what is in flight. Uploads not published are aborted.
func (f *FS) Close() error {
	f.mu.Lock()
	ups := make([]*upload, 0, len(f.pending))
	for _, u := range f.pending {
		ups = append(ups, u)
	}
	f.mu.Unlock()
	for _, u := range ups {
		_ = u.Discard()
	}
	f.stop()
	return nil
}

// Name implements afero.Fs.
func (f *FS) Name() string { return "S3" }

// Locate implements vfs.Locator: s3://bucket/key.
func (f *FS) Locate(name string) string {
	c, err := vfs.Clean(name)
	if err != nil {
		return ""
	}
	return "s3://" + f.opt.Bucket + "/" + f.key(c)
}

// key is the object key of a clean name ("/" is the prefix itself).
func (f *FS) key(c string) string { return f.prefix + strings.TrimPrefix(c, "/") }

// dirKey is the key prefix of the entries of the directory c, and its marker's key.
func (f *FS) dirKey(c string) string {
	if c == "/" {
		return f.prefix
	}
	return f.key(c) + "/"
}

func (f *FS) clean(op, name string) (string, error) {
	c, err := vfs.Clean(name)
	if err != nil {
		return "", &fs.PathError{Op: op, Path: strings.ReplaceAll(name, "\x00", `\x00`), Err: err}
	}
	if !utf8.ValidString(c) {
		// An object key is UTF-8: AWS refuses others, and a server that stores the bytes
		// lists them back as U+FFFD, a name that reaches nothing.
		return "", &fs.PathError{Op: op, Path: strings.ToValidUTF8(c, "\ufffd"), Err: errNotUTF8}
	}
	return c, nil
}

// errNotUTF8 is why a name that is not UTF-8 is refused.
var errNotUTF8 = fmt.Errorf("%w: object storage names must be UTF-8", fs.ErrInvalid)

// opCtx is the context of one metadata request.
func (f *FS) opCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(f.ctx, opTimeout)
}

// Create implements afero.Fs.
func (f *FS) Create(name string) (afero.File, error) {
	return f.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
}

// Open implements afero.Fs.
func (f *FS) Open(name string) (afero.File, error) { return f.OpenFile(name, os.O_RDONLY, 0) }

// OpenFile implements afero.Fs. Writing opens start an upload (see upload); O_APPEND and
// writes at the end of an existing object append to it.
func (f *FS) OpenFile(name string, flag int, _ os.FileMode) (afero.File, error) {
	c, err := f.clean("open", name)
	if err != nil {
		return nil, err
	}
	if flag&(os.O_WRONLY|os.O_RDWR) == 0 {
		return f.openRead(c)
	}
	if c == "/" {
		return nil, pathErr("open", c, syscall.EISDIR)
	}
	fi, err := f.stat(c)
	switch {
	case err == nil && fi.IsDir():
		return nil, pathErr("open", c, syscall.EISDIR)
	case err == nil && flag&os.O_EXCL != 0 && flag&os.O_CREATE != 0:
		return nil, pathErr("open", c, fs.ErrExist)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil, err
	case err != nil && flag&os.O_CREATE == 0:
		return nil, err
	case err != nil:
		if err := f.needParent("open", c); err != nil {
			return nil, err
		}
		fi = nil
	}
	var base *info
	if fi != nil && flag&os.O_TRUNC == 0 {
		base = fi
	}
	return f.newUpload(c, base, flag&os.O_APPEND != 0, flag&os.O_RDWR != 0, false), nil
}

// CreateUpload implements vfs.UploadCreator: an upload that appears only on Publish.
func (f *FS) CreateUpload(name string, _ os.FileMode) (vfs.PendingUpload, error) {
	c, err := f.clean("create", name)
	if err != nil {
		return nil, err
	}
	if c == "/" {
		return nil, pathErr("create", c, syscall.EISDIR)
	}
	if err := f.needParent("create", c); err != nil {
		return nil, err
	}
	u := f.newUpload(c, nil, false, true, true)
	f.mu.Lock()
	f.pending[u.tmp] = u
	f.mu.Unlock()
	return u, nil
}

// forget drops a pending upload from the registry.
func (f *FS) forget(u *upload) {
	f.mu.Lock()
	delete(f.pending, u.tmp)
	f.mu.Unlock()
}

func (f *FS) pendingUpload(c string) *upload {
	if !vfs.IsTempName(path.Base(c)) {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pending[c]
}

// needParent fails unless c's parent is a directory.
func (f *FS) needParent(op, c string) error {
	dir := path.Dir(c)
	if dir == "/" || f.knownDir(dir) {
		return nil
	}
	fi, _, err := f.statCached(dir, true, false)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return pathErr(op, c, fs.ErrNotExist)
		}
		return err
	}
	if !fi.IsDir() {
		return pathErr(op, c, syscall.ENOTDIR)
	}
	f.sawDir(dir)
	return nil
}

// dirTTL is how long a directory seen to exist is taken to exist for the parent check of an
// upload (a folder of 2,000 uploads is checked once, not 2,000 times). On object storage an
// upload into a folder removed meanwhile by another node only makes it exist again.
const dirTTL = 5 * time.Second

func (f *FS) knownDir(c string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.dirs[c]
	return ok && time.Since(t) < dirTTL
}

func (f *FS) sawDir(c string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.dirs) >= 1024 {
		clear(f.dirs) // a bound, not an LRU: the next uploads check again
	}
	f.dirs[c] = time.Now()
}

// forgetDirs drops c and what lies below it from the directories seen (it was removed or
// renamed).
func (f *FS) forgetDirs(c string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for d := range f.dirs {
		if d == c || strings.HasPrefix(d, c+"/") {
			delete(f.dirs, d)
		}
	}
}

// Stat implements afero.Fs.
func (f *FS) Stat(name string) (os.FileInfo, error) {
	c, err := f.clean("stat", name)
	if err != nil {
		return nil, err
	}
	if u := f.pendingUpload(c); u != nil {
		return u.Stat()
	}
	fi, _, err := f.statCached(c, true, false)
	if err != nil {
		return nil, err
	}
	return fi, nil
}

// statCached is stat answered from the metadata cache when it can be: a fresh entry, or a
// fresh complete listing of the parent that did not find c. partial accepts entries of
// objects written through this FS whose store time is unknown. cached says the answer came
// from the cache.
func (f *FS) statCached(c string, together, partial bool) (fi *info, cached bool, err error) {
	if c != "/" {
		if fi := f.meta.get(c, partial); fi != nil {
			return fi, true, nil
		}
		if f.meta.missing(c) {
			return nil, true, pathErr("stat", c, fs.ErrNotExist)
		}
	}
	fi, err = f.statBoth(c, together)
	return fi, false, err
}

// stat describes c: the object of that key, else a directory if any key lies below it.
// Where c may well be missing or a directory (before an upload, a parent), the HEAD and the
// LIST go together: one round trip instead of two, for one LIST too many when c is a file.
func (f *FS) stat(c string) (*info, error) { return f.statBoth(c, true) }

// statFile is stat for a name that is most likely a file (opened for reading): the LIST
// goes only after the HEAD missed.
func (f *FS) statFile(c string) (*info, error) { return f.statBoth(c, false) }

func (f *FS) statBoth(c string, together bool) (*info, error) {
	if c == "/" {
		return &info{name: "/", dir: true, mod: f.opened}, nil
	}
	gen := f.meta.generation()
	ctx, cancel := f.opCtx()
	defer cancel()
	type listed struct {
		out *s3.ListObjectsV2Output
		err error
	}
	list := func() listed {
		out, err := f.listOne(ctx, c)
		return listed{out, err}
	}
	var early chan listed
	if together {
		early = make(chan listed, 1)
		go func() { early <- list() }()
	}
	out, err := f.c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &f.opt.Bucket, Key: aws.String(f.key(c))})
	if err == nil {
		fi := f.headInfo(path.Base(c), out)
		f.meta.put(gen, c, fi, false)
		return fi, nil // the LIST is cancelled with ctx
	}
	if !isNotFound(err) {
		return nil, f.err("stat", c, err)
	}
	var l listed
	if early != nil {
		l = <-early
	} else {
		l = list()
	}
	return f.dirInfo(gen, c, l.out, l.err)
}

// listOne lists the first key below the directory c: whether c exists as a directory.
func (f *FS) listOne(ctx context.Context, c string) (*s3.ListObjectsV2Output, error) {
	return f.c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &f.opt.Bucket,
		Prefix: aws.String(f.dirKey(c)), MaxKeys: aws.Int32(1)})
}

// dirInfo describes c, which is no object, from listOne's answer (out, err), started at gen:
// a directory if any key lies below it, else missing.
func (f *FS) dirInfo(gen uint64, c string, out *s3.ListObjectsV2Output, err error) (*info, error) {
	if err != nil {
		return nil, f.err("stat", c, err)
	}
	if len(out.Contents) == 0 && len(out.CommonPrefixes) == 0 {
		return nil, pathErr("stat", c, fs.ErrNotExist)
	}
	fi := &info{name: path.Base(c), dir: true, mod: f.opened}
	if len(out.Contents) > 0 && aws.ToString(out.Contents[0].Key) == f.dirKey(c) {
		fi.mod = aws.ToTime(out.Contents[0].LastModified)
	}
	f.meta.put(gen, c, fi, false)
	return fi, nil
}

func (f *FS) headInfo(base string, out *s3.HeadObjectOutput) *info {
	return objInfo(base, aws.ToInt64(out.ContentLength), out.LastModified, out.ETag, out.Metadata)
}

// objInfo describes an object from what a HEAD or a GET of it answered: its modification
// time is the one kept in x-amz-meta-mtime, else the store's.
func objInfo(base string, size int64, modified *time.Time, etag *string, meta map[string]string) *info {
	fi := &info{name: base, size: size, mod: aws.ToTime(modified), etag: strings.Trim(aws.ToString(etag), `"`), meta: meta}
	if t, ok := parseMtime(meta[metaMtime]); ok {
		fi.mod = t
	}
	return fi
}

// Mkdir implements afero.Fs: a "dir/" marker object.
func (f *FS) Mkdir(name string, _ os.FileMode) error {
	c, err := f.clean("mkdir", name)
	if err != nil {
		return err
	}
	if c == "/" {
		return pathErr("mkdir", c, fs.ErrExist)
	}
	gen, at := f.meta.generation(), time.Now()
	if _, err := f.stat(c); err == nil {
		return pathErr("mkdir", c, fs.ErrExist)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := f.needParent("mkdir", c); err != nil {
		return err
	}
	if err := f.putKeyMarker(f.dirKey(c)); err != nil {
		f.meta.invalidate(c)
		return f.err("mkdir", c, err)
	}
	// The stat found no key below c: the new directory is empty.
	f.meta.madeDir(gen, c, at)
	f.sawDir(c)
	return nil
}

// MkdirAll implements afero.Fs. A marker for the last directory makes the ones above it
// exist too; none of them may be a file.
func (f *FS) MkdirAll(name string, _ os.FileMode) error {
	c, err := f.clean("mkdir", name)
	if err != nil {
		return err
	}
	if c == "/" {
		return nil
	}
	fi, err := f.stat(c)
	switch {
	case err == nil && fi.IsDir():
		return nil
	case err == nil:
		return pathErr("mkdir", c, syscall.ENOTDIR)
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	for d := path.Dir(c); d != "/"; d = path.Dir(d) {
		fi, err := f.stat(d)
		if err == nil && fi.IsDir() {
			break
		}
		if err == nil {
			return pathErr("mkdir", c, syscall.ENOTDIR)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return f.putMarker(c)
}

func (f *FS) putMarker(c string) error {
	defer f.meta.invalidate(c)
	return f.err("mkdir", c, f.putKeyMarker(f.dirKey(c)))
}

// putKeyMarker writes the empty marker object of a directory.
func (f *FS) putKeyMarker(key string) error {
	ctx, cancel := f.opCtx()
	defer cancel()
	in := &s3.PutObjectInput{Bucket: &f.opt.Bucket, Key: aws.String(key), Body: strings.NewReader(""),
		ContentLength: aws.Int64(0)}
	f.storage(&in.StorageClass, &in.ServerSideEncryption, &in.SSEKMSKeyId)
	_, err := f.c.PutObject(ctx, in)
	return err
}

// storage fills the storage class and encryption of a request that writes an object.
func (f *FS) storage(class *types.StorageClass, sse *types.ServerSideEncryption, kms **string) {
	if f.opt.StorageClass != "" {
		*class = types.StorageClass(f.opt.StorageClass)
	}
	if f.opt.SSE != "" {
		*sse = types.ServerSideEncryption(f.opt.SSE)
		if f.opt.SSEKMSKeyID != "" {
			*kms = aws.String(f.opt.SSEKMSKeyID)
		}
	}
}

// Remove implements afero.Fs: a file, or an empty directory.
func (f *FS) Remove(name string) error {
	c, err := f.clean("remove", name)
	if err != nil {
		return err
	}
	if c == "/" {
		return pathErr("remove", c, fs.ErrPermission)
	}
	fi, err := f.stat(c)
	if err != nil {
		return err
	}
	defer f.meta.invalidate(c)
	ctx, cancel := f.opCtx()
	defer cancel()
	if !fi.IsDir() {
		_, err := f.c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &f.opt.Bucket, Key: aws.String(f.key(c))})
		return f.err("remove", c, err)
	}
	lo, err := f.c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &f.opt.Bucket,
		Prefix: aws.String(f.dirKey(c)), MaxKeys: aws.Int32(2)})
	if err != nil {
		return f.err("remove", c, err)
	}
	for _, o := range lo.Contents {
		if aws.ToString(o.Key) != f.dirKey(c) {
			return pathErr("remove", c, syscall.ENOTEMPTY)
		}
	}
	if len(lo.CommonPrefixes) > 0 {
		return pathErr("remove", c, syscall.ENOTEMPTY)
	}
	f.forgetDirs(c)
	_, err = f.c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &f.opt.Bucket, Key: aws.String(f.dirKey(c))})
	return f.err("remove", c, err)
}

// RemoveAll implements afero.Fs.
func (f *FS) RemoveAll(name string) error {
	c, err := f.clean("removeall", name)
	if err != nil {
		return err
	}
	if c == "/" {
		return pathErr("removeall", c, fs.ErrPermission)
	}
	f.forgetDirs(c)
	defer f.meta.invalidate(c)
	keys := []string{f.key(c)}
	err = f.walkKeys(f.dirKey(c), func(o types.Object) error {
		keys = append(keys, aws.ToString(o.Key))
		if len(keys) == maxDelete {
			if err := f.deleteKeys(keys); err != nil {
				return err
			}
			keys = keys[:0]
		}
		return nil
	})
	if err == nil {
		err = f.deleteKeys(keys)
	}
	return f.err("removeall", c, err)
}

// walkKeys calls fn for every object under prefix, a page at a time.
func (f *FS) walkKeys(prefix string, fn func(types.Object) error) error {
	var token *string
	for {
		ctx, cancel := f.opCtx()
		lo, err := f.c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &f.opt.Bucket,
			Prefix: aws.String(prefix), ContinuationToken: token})
		cancel()
		if err != nil {
			return err
		}
		for _, o := range lo.Contents {
			if err := fn(o); err != nil {
				return err
			}
		}
		if !aws.ToBool(lo.IsTruncated) || lo.NextContinuationToken == nil {
			return nil
		}
		token = lo.NextContinuationToken
	}
}

func (f *FS) deleteKeys(keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	ids := make([]types.ObjectIdentifier, len(keys))
	for i, k := range keys {
		ids[i] = types.ObjectIdentifier{Key: aws.String(k)}
	}
	ctx, cancel := f.opCtx()
	defer cancel()
	out, err := f.c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: &f.opt.Bucket,
		Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)}})
	if err != nil {
		return err
	}
	for _, e := range out.Errors {
		if aws.ToString(e.Code) != "NoSuchKey" {
			return fmt.Errorf("deleting %s: %s", aws.ToString(e.Key), aws.ToString(e.Code))
		}
	}
	return nil
}

// Chmod implements afero.Fs: accepted and ignored (objects have no mode), for a name that
// exists. An object this FS wrote needs no lookup for that (metaCache.written).
func (f *FS) Chmod(name string, _ os.FileMode) error {
	c, err := f.clean("chmod", name)
	if err != nil {
		return err
	}
	if f.meta.written(c) {
		return nil
	}
	_, _, err = f.statCached(c, false, true)
	return err
}

// Chown implements afero.Fs: never allowed, as on disk.
func (f *FS) Chown(name string, _, _ int) error {
	c, err := f.clean("chown", name)
	if err != nil {
		return err
	}
	return pathErr("chown", c, fs.ErrPermission)
}

// Chtimes implements afero.Fs: the modification time is kept in the object's metadata
// (x-amz-meta-mtime, as rclone does), which means copying the object onto itself. Directories
// accept it and keep nothing.
func (f *FS) Chtimes(name string, _, mtime time.Time) error {
	c, err := f.clean("chtimes", name)
	if err != nil {
		return err
	}
	fi, cached, err := f.statCached(c, false, true)
	if err != nil || fi.IsDir() {
		return err
	}
	defer f.meta.forget(c)
	err = f.setMtime(c, fi, mtime)
	if cached && (isNotFound(err) || isChanged(err)) {
		// The cached entry is stale: the copy must not bring back old metadata.
		f.meta.forget(c)
		if fi, err = f.statFile(c); err != nil || fi.IsDir() {
			return err
		}
		err = f.setMtime(c, fi, mtime)
	}
	return f.err("chtimes", c, err)
}

// setMtime copies the object fi describes onto itself with mtime in its metadata, provided
// it is still that object (its ETag).
func (f *FS) setMtime(c string, fi *info, mtime time.Time) error {
	meta := map[string]string{}
	for k, v := range fi.meta {
		meta[k] = v
	}
	meta[metaMtime] = formatMtime(mtime)
	return f.copyObjectIf(f.key(c), f.key(c), fi.size, meta, fi.etag)
}

func formatMtime(t time.Time) string {
	return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond())
}

func parseMtime(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	sec, frac, _ := strings.Cut(s, ".")
	secs, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	var nanos int64
	if frac != "" {
		if nanos, err = strconv.ParseInt((frac + "000000000")[:9], 10, 64); err != nil || nanos < 0 {
			return time.Time{}, false
		}
	}
	return time.Unix(secs, nanos).UTC(), true
}

package s3fs_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/spf13/afero"

	"github.com/wharf-project/wharf/internal/s3test"
	"github.com/wharf-project/wharf/vfs"
	"github.com/wharf-project/wharf/vfs/s3fs"
	"github.com/wharf-project/wharf/vfs/vfstest"
)

const bucket = "wharf"

type env struct {
	srv  *s3test.Server
	fs   *s3fs.FS
	host string // the prefix's folder on the host
	opt  s3fs.Options
}

// newEnv starts a gateway and a backend on prefix "users/alice/" of its bucket.
func newEnv(t *testing.T, tweak ...func(*s3fs.Options)) *env {
	t.Helper()
	srv := s3test.Start(t)
	dir := srv.Bucket(t, bucket)
	opt := s3fs.Options{Bucket: bucket, Prefix: "users/alice", Endpoint: srv.Endpoint, Region: s3test.Region,
		PathStyle: true, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, PartSize: s3fs.MinPartSize,
		UploadConcurrency: 2}
	for _, f := range tweak {
		f(&opt)
	}
	f, err := s3fs.New(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return &env{srv: srv, fs: f, host: filepath.Join(dir, "users", "alice"), opt: opt}
}

func random(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// wantErr checks that err is a *fs.PathError naming path that matches kind and says nothing
// about the endpoint.
func (e *env) wantErr(t *testing.T, what string, err error, kind error, path string) {
	t.Helper()
	vfstest.WantPathErr(t, what, err, kind, path, e.secrets()...)
}

// secrets are what no error may tell a client: the endpoint and the secret key.
func (e *env) secrets() []string {
	return []string{strings.TrimPrefix(e.srv.Endpoint, "http://"), e.srv.SecretKey}
}

// TestBackendSuite runs the behaviour every backend shares (vfs/vfstest) on S3.
func TestBackendSuite(t *testing.T) {
	vfstest.Run(t, vfstest.Backend{FixedMode: 0o644, New: func(t *testing.T) (afero.Fs, []string) {
		e := newEnv(t)
		return e.fs, e.secrets()
	}})
}

// TestObjects is what S3 adds to the shared suite: files are objects under the prefix,
// writing inside one is refused, a listing carries the times, names locate as s3:// URLs.
func TestObjects(t *testing.T) {
	e := newEnv(t)
	fsys := e.fs
	vfstest.WriteFile(t, fsys, "/a.txt", []byte("hello world"))
	if b, err := os.ReadFile(filepath.Join(e.host, "a.txt")); err != nil || string(b) != "hello world" {
		t.Fatalf("object on the store's disk = %q, %v", b, err)
	}
	_, err := fsys.Create("/a.txt/f")
	e.wantErr(t, "create below a file", err, syscall.ENOTDIR, "/a.txt/f")
	// Writing inside an existing object is refused, and leaves it as it was.
	wf, err := fsys.OpenFile("/a.txt", os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = wf.WriteAt([]byte("J"), 0)
	e.wantErr(t, "write inside an object", err, errors.ErrUnsupported, "/a.txt")
	_ = wf.Close()
	if got := vfstest.ReadFile(t, fsys, "/a.txt"); string(got) != "hello world" {
		t.Errorf("after a refused write: %q", got)
	}
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 600, time.UTC)
	if err := fsys.Chtimes("/a.txt", mtime, mtime); err != nil {
		t.Fatal(err)
	}
	d, _ := fsys.Open("/")
	fis, err := d.Readdir(-1)
	_ = d.Close()
	if err != nil || len(fis) != 1 || !fis[0].ModTime().Equal(mtime) {
		t.Errorf("listing after Chtimes: %v, %v", fis, err)
	}
	if got := e.fs.Locate("/d/a.txt"); got != "s3://wharf/users/alice/d/a.txt" {
		t.Errorf("Locate = %q", got)
	}
}

// TestRenameLimit: a directory rename above max_dir_rename_objects is refused, and nothing
// moves.
func TestRenameLimit(t *testing.T) {
	e := newEnv(t, func(o *s3fs.Options) { o.MaxDirRenameObjects = 3 })
	fsys := e.fs
	if err := fsys.MkdirAll("/d2/sub", 0o750); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"sub/f", "1", "2", "3"} {
		vfstest.WriteFile(t, fsys, "/d2/"+n, []byte(n))
	}
	err := fsys.Rename("/d2", "/d3")
	e.wantErr(t, "rename a big directory", err, errors.ErrUnsupported, "/d2")
	if err != nil && !strings.Contains(err.Error(), "max_dir_rename_objects") {
		t.Errorf("refusal does not say why: %v", err)
	}
	if got := vfstest.ReadFile(t, fsys, "/d2/sub/f"); string(got) != "sub/f" {
		t.Errorf("after a refused rename: %q", got)
	}
	if _, err := fsys.Stat("/d3"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused rename left /d3: %v", err)
	}
}

// TestMultipart uploads 3.5 parts in order and out of order (SFTP pipelining), and checks
// that nothing is visible before the close, then reads it back sequentially and at random.
func TestMultipart(t *testing.T) {
	e := newEnv(t)
	data := random(t, 6*s3fs.MinPartSize+s3fs.MinPartSize/2)
	f, err := e.fs.Create("/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	// 32 KiB writes, each group of 8 sent in reverse order, from 4 goroutines.
	const w = 32 << 10
	var mu sync.Mutex
	for g := 0; g < len(data); g += 8 * w {
		var wg sync.WaitGroup
		for i := 7; i >= 0; i-- {
			off := g + i*w
			if off >= len(data) {
				continue
			}
			wg.Go(func() {
				mu.Lock() // the order of arrival is the reverse one
				defer mu.Unlock()
				if _, err := f.WriteAt(data[off:min(off+w, len(data))], int64(off)); err != nil {
					t.Error(err)
				}
			})
			wg.Wait()
		}
	}
	if len(e.srv.Uploads(t, bucket, "users/alice/")) != 1 {
		t.Error("no multipart upload in progress")
	}
	if _, err := e.fs.Stat("/big.bin"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("object visible before close: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// At most UploadConcurrency parts in flight and one filling (the writes received ahead
	// past it are in the ahead buffer, up to the window, which Held does not count).
	now, peak := e.fs.Held()
	t.Logf("peak of part buffers: %d bytes", peak)
	if limit := int64(e.opt.UploadConcurrency+1) * s3fs.MinPartSize; peak > limit || now != 0 {
		t.Errorf("part buffers: peak %d bytes (limit %d), %d still held after close", peak, limit, now)
	}
	if got := vfstest.ReadFile(t, e.fs, "/big.bin"); !bytes.Equal(got, data) {
		t.Fatal("content differs after a multipart upload")
	}
	if ups := e.srv.Uploads(t, bucket, ""); len(ups) != 0 {
		t.Errorf("uploads left: %v", ups)
	}
	r, _ := e.fs.Open("/big.bin")
	defer r.Close()
	for _, off := range []int64{int64(len(data)) - 10, 0, 7 << 20, 123} {
		buf := make([]byte, 1000)
		n, err := r.ReadAt(buf, off)
		want := data[off:min(off+1000, int64(len(data)))]
		if !bytes.Equal(buf[:n], want) || (err != nil && err != io.EOF) {
			t.Errorf("ReadAt(%d) = %d, %v", off, n, err)
		}
	}
	// Beyond the window: refused with a clear error, and the upload leaves nothing.
	f, _ = e.fs.Create("/far.bin")
	_, err = f.WriteAt([]byte("x"), s3fs.Window+1)
	e.wantErr(t, "write beyond the window", err, s3fs.ErrOutOfOrder, "/far.bin")
	_, _ = f.WriteAt([]byte("y"), 0)
	_, _ = f.WriteAt([]byte("z"), 10) // a gap: refused at close
	if err := f.Close(); !errors.Is(err, s3fs.ErrGap) {
		t.Errorf("close with a gap: %v", err)
	}
	if _, err := e.fs.Stat("/far.bin"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a failed upload is visible: %v", err)
	}
}

// TestOutOfOrderInPlace: writes that arrive ahead of the data, as an SFTP client's pipelined
// writes do, go straight into the part buffer when they fall within the part being filled,
// and into the ahead buffer past its end, never into copies. Before, every one was copied to the heap
// (63% of a 1 GiB OpenSSH upload's data), and the collector ran for it. The content is the
// same, and a rewrite of a range still in the buffer wins, as on a disk.
func TestOutOfOrderInPlace(t *testing.T) {
	e := newEnv(t)
	const w = 32 << 10
	const group = 64 // OpenSSH's requests in flight
	data := random(t, 3*s3fs.MinPartSize+s3fs.MinPartSize/5)
	f, err := e.fs.Create("/ooo.bin")
	if err != nil {
		t.Fatal(err)
	}
	write := func(off int) {
		t.Helper()
		if _, err := f.WriteAt(data[off:min(off+w, len(data))], int64(off)); err != nil {
			t.Fatal(err)
		}
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	ahead := 0 // bytes written ahead of the data
	for g := 0; g < len(data); g += group * w {
		// Each group in reverse order: all but its last write arrive ahead.
		for i := group - 1; i >= 0; i-- {
			if off := g + i*w; off < len(data) {
				if i > 0 {
					ahead += min(w, len(data)-off)
				}
				write(off)
			}
		}
	}
	runtime.ReadMemStats(&after)
	// Nothing written ahead is copied on the heap: within the part being filled it goes
	// into the part's buffer, past the part's end (two groups straddle one, at 5 and 15
	// MiB) into the ahead buffer. Copies on the heap were 2.4 MB here. The bound leaves
	// room for the HTTP client's allocations for the parts sent meanwhile (0.25–0.4 MB).
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d bytes written ahead of the data, %d bytes allocated", ahead, alloc)
	if alloc > uint64(ahead)/24 {
		t.Errorf("%d bytes allocated for %d bytes written ahead: the writes were copied", alloc, ahead)
	}
	// A range written ahead and written again before the data reaches it: the later wins.
	g := len(data) - 3*w
	if _, err := f.WriteAt(bytes.Repeat([]byte{'x'}, w), int64(g)); err == nil {
		write(g) // the data again, later
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got := vfstest.ReadFile(t, e.fs, "/ooo.bin"); !bytes.Equal(got, data) {
		t.Fatal("content differs after out-of-order writes")
	}
	if now, peak := e.fs.Held(); now != 0 || peak > int64(e.opt.UploadConcurrency+1)*s3fs.MinPartSize {
		t.Errorf("part buffers: peak %d, %d held after close", peak, now)
	}

	// A gap left in the buffer is still refused at close, and nothing appears.
	f, _ = e.fs.Create("/gap.bin")
	_, _ = f.WriteAt([]byte("late"), 2*w)
	_, _ = f.WriteAt([]byte("first"), 0)
	if err := f.Close(); !errors.Is(err, s3fs.ErrGap) {
		t.Errorf("close with a gap in the buffer: %v", err)
	}
	if _, err := e.fs.Stat("/gap.bin"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a failed upload is visible: %v", err)
	}
}

// TestShuffledWrites: writes of uneven sizes arrive shuffled in groups, as a pipelining
// client's do, across several parts' ends; the object is the data.
func TestShuffledWrites(t *testing.T) {
	e := newEnv(t)
	for seed := uint64(1); seed <= 3; seed++ {
		r := mrand.New(mrand.NewPCG(seed, 7))
		data := random(t, 3*s3fs.MinPartSize+r.IntN(s3fs.MinPartSize))
		type piece struct{ off, end int }
		var pieces []piece
		for off := 0; off < len(data); {
			end := min(off+1+r.IntN(48<<10), len(data))
			pieces = append(pieces, piece{off, end})
			off = end
		}
		name := fmt.Sprintf("/shuffled-%d.bin", seed)
		f, err := e.fs.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		const group = 64 // at most 64 × 48 KiB ahead: within the Window
		for g := 0; g < len(pieces); g += group {
			batch := slices.Clone(pieces[g:min(g+group, len(pieces))])
			r.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
			for _, p := range batch {
				if _, err := f.WriteAt(data[p.off:p.end], int64(p.off)); err != nil {
					t.Fatalf("seed %d: write [%d, %d): %v", seed, p.off, p.end, err)
				}
			}
		}
		if err := f.Close(); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if got := vfstest.ReadFile(t, e.fs, name); !bytes.Equal(got, data) {
			t.Fatalf("seed %d: content differs after shuffled writes", seed)
		}
	}
	if now, _ := e.fs.Held(); now != 0 {
		t.Errorf("%d bytes of part buffers held after the uploads", now)
	}
	if _, inUse := e.fs.Buffers(); inUse != 0 {
		t.Errorf("%d buffers in use after the uploads", inUse)
	}
}

// TestScatteredWritesBounded is the attack on the bookkeeping of writes received ahead:
// single bytes with a gap after each, within the window, inside the part being filled and
// past it. Each would be a piece of its own (millions within 4 MiB); the upload refuses the
// write that would hold more than s3fs.MaxAhead pieces, with a clear error, and nothing
// appears.
func TestScatteredWritesBounded(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name  string
		start int64 // where the scattered writes begin, after data written in order
	}{
		{"in the part", 0},
		{"past the part", s3fs.MinPartSize - 64<<10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := e.fs.Create("/scattered.bin")
			if err != nil {
				t.Fatal(err)
			}
			if tc.start > 0 {
				if _, err := f.WriteAt(make([]byte, tc.start), 0); err != nil {
					t.Fatal(err)
				}
			}
			held := 0
			for k := int64(1); k <= 4*s3fs.MaxAhead; k++ {
				off := tc.start + 64<<10 + 2*k // past the part's end in the second case
				if _, err = f.WriteAt([]byte{'x'}, off); err != nil {
					break
				}
				held++
			}
			if !errors.Is(err, s3fs.ErrScattered) || held != s3fs.MaxAhead {
				t.Fatalf("%d scattered writes held, then %v; want %d, then %v", held, err, s3fs.MaxAhead, s3fs.ErrScattered)
			}
			if err := f.Close(); !errors.Is(err, s3fs.ErrGap) {
				t.Errorf("close with gaps: %v", err)
			}
			if _, err := e.fs.Stat("/scattered.bin"); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("a failed upload is visible: %v", err)
			}
		})
	}
}

// TestPendingUpload is the atomic contract the core relies on: an upload from CreateAtomic
// appears only on Publish; Discard aborts it, even after all its parts were sent.
func TestPendingUpload(t *testing.T) {
	e := newEnv(t)
	vfstest.WriteFile(t, e.fs, "/keep.txt", []byte("old"))
	for _, size := range []int{10, 2*s3fs.MinPartSize + 1} {
		data := random(t, size)
		a, err := vfs.CreateAtomic(e.fs, "/keep.txt", 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		fi, err := e.fs.Stat(a.TempName())
		if err != nil || fi.Size() != int64(size) {
			t.Errorf("Stat of the pending upload = %v, %v", fi, err)
		}
		if got := vfstest.ReadFile(t, e.fs, "/keep.txt"); string(got) != "old" {
			t.Fatalf("closed but unpublished upload of %d bytes is visible", size)
		}
		if err := a.Discard(); err != nil {
			t.Fatal(err)
		}
		if got := vfstest.ReadFile(t, e.fs, "/keep.txt"); string(got) != "old" {
			t.Fatalf("discarded upload of %d bytes is visible", size)
		}
		if ups := e.srv.Uploads(t, bucket, ""); len(ups) != 0 {
			t.Errorf("discarded upload left a multipart upload: %v", ups)
		}
		if _, err := e.fs.Stat(a.TempName()); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Stat of a discarded upload: %v", err)
		}
		a, _ = vfs.CreateAtomic(e.fs, "/new.bin", 0o644)
		_, _ = a.Write(data)
		if size == 10 {
			r, err := e.fs.Open(a.TempName())
			if err != nil {
				t.Fatal(err)
			}
			if b, err := io.ReadAll(r); err != nil || !bytes.Equal(b, data) {
				t.Errorf("reading a small pending upload: %v", err)
			}
		}
		if err := a.Publish(); err != nil {
			t.Fatal(err)
		}
		if got := vfstest.ReadFile(t, e.fs, "/new.bin"); !bytes.Equal(got, data) {
			t.Fatalf("published upload of %d bytes differs", size)
		}
	}
}

// TestAppendLarge appends to an object of at least 5 MiB: the object is copied on the server
// as the first part.
func TestAppendLarge(t *testing.T) {
	e := newEnv(t)
	data := random(t, s3fs.MinPartSize+100)
	vfstest.WriteFile(t, e.fs, "/r.bin", data[:s3fs.MinPartSize+10])
	f, err := e.fs.OpenFile("/r.bin", os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := f.Stat(); fi.Size() != s3fs.MinPartSize+10 {
		t.Fatalf("size of the open object = %d", fi.Size())
	}
	if _, err := f.WriteAt(data[s3fs.MinPartSize+10:], s3fs.MinPartSize+10); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got := vfstest.ReadFile(t, e.fs, "/r.bin"); !bytes.Equal(got, data) {
		t.Fatal("appended object differs")
	}
}

func TestCleanupAndUsage(t *testing.T) {
	e := newEnv(t)
	c := e.srv.Client()
	ctx := context.Background()
	for _, k := range []string{"users/alice/crashed.bin", "users/bob/other.bin"} {
		if _, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(k)}); err != nil {
			t.Fatal(err)
		}
	}
	vfstest.WriteFile(t, e.fs, "/a", []byte("12345"))
	_ = e.fs.Mkdir("/d", 0o755)
	vfstest.WriteFile(t, e.fs, "/d/b", []byte("123"))
	b, n, err := e.fs.Usage(ctx)
	if err != nil || b != 8 || n != 2 {
		t.Errorf("Usage = %d bytes, %d files, %v", b, n, err)
	}
	opt := e.opt
	opt.CleanupAfter = time.Nanosecond
	f2, err := s3fs.New(ctx, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer f2.Close()
	if ups := e.srv.Uploads(t, bucket, ""); !slices.Equal(ups, []string{"users/bob/other.bin"}) {
		t.Errorf("after cleanup: %v, want only another prefix's upload", ups)
	}
	sum, ok, err := e.fs.KnownHash(ctx, "/a", "md5")
	want := md5.Sum([]byte("12345"))
	if err != nil || !ok || sum != hex.EncodeToString(want[:]) {
		t.Errorf("KnownHash = %q, %v, %v", sum, ok, err)
	}
}

func TestErrors(t *testing.T) {
	e := newEnv(t)
	opt := e.opt
	opt.SecretKey = "wrong"
	_, err := s3fs.New(context.Background(), opt)
	if err == nil {
		t.Fatal("a wrong secret key was accepted")
	}
	opt = e.opt
	opt.Bucket = "missing-bucket"
	if _, err := s3fs.New(context.Background(), opt); err == nil {
		t.Fatal("a missing bucket was accepted")
	}
	// A store that went away: a clean error, without the endpoint.
	f, _ := e.fs.Create("/x")
	_, _ = f.Write([]byte("x"))
	e.srv.Stop()
	err = f.Close()
	e.wantErr(t, "close with the store gone", err, err, "/x")
	_, err = e.fs.Stat("/y")
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stat with the store gone: %v", err)
	}
	e.wantErr(t, "stat with the store gone", err, err, "/y")
}

// TestMultipartCopy renames, sets the time of and appends to objects above the single-copy
// limit (5 GiB on S3, lowered here): they are copied in parts on the server.
func TestMultipartCopy(t *testing.T) {
	e := newEnv(t)
	e.fs.SetCopyLimits(s3fs.MinPartSize, s3fs.MinPartSize)
	data := random(t, 2*s3fs.MinPartSize+s3fs.MinPartSize/2)
	vfstest.WriteFile(t, e.fs, "/a.bin", data)
	if err := e.fs.Rename("/a.bin", "/b.bin"); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)
	if err := e.fs.Chtimes("/b.bin", mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if got := vfstest.ReadFile(t, e.fs, "/b.bin"); !bytes.Equal(got, data) {
		t.Fatal("content differs after a multipart copy")
	}
	if fi, err := e.fs.Stat("/b.bin"); err != nil || !fi.ModTime().Equal(mtime) {
		t.Errorf("mtime after a multipart copy: %v, %v", fi, err)
	}
	if _, err := e.fs.Stat("/a.bin"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("old name after rename: %v", err)
	}
	// Append: the copied first parts are 5 MiB each, the last one takes the rest.
	f, err := e.fs.OpenFile("/b.bin", os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("tail")); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got := vfstest.ReadFile(t, e.fs, "/b.bin"); !bytes.Equal(got, append(append([]byte(nil), data...), "tail"...)) {
		t.Fatal("content differs after an append by part copies")
	}
	if ups := e.srv.Uploads(t, bucket, ""); len(ups) != 0 {
		t.Errorf("uploads left: %v", ups)
	}
}

// TestUploadBuffersReturned: every way an upload ends gives its part buffers back to the
// pool (they live outside the Go heap, so one not returned would never be freed), and
// uploads one after another reuse the same few buffers.
func TestUploadBuffersReturned(t *testing.T) {
	e := newEnv(t)
	write := func(name string, n int) vfs.PendingUpload {
		t.Helper()
		up, err := e.fs.CreateUpload(name, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		data := random(t, n)
		for off := 0; off < n; off += 32 << 10 { // as an SFTP client writes
			if _, err := up.Write(data[off:min(off+32<<10, n)]); err != nil {
				t.Fatal(err)
			}
		}
		return up
	}
	for _, n := range []int{0, 10, s3fs.MinPartSize, s3fs.MinPartSize + 1, 2 * s3fs.MinPartSize} {
		name := fmt.Sprintf("/f-%d", n)
		if err := write(name, n).Publish(); err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if st, err := e.fs.Stat(name); err != nil || st.Size() != int64(n) {
			t.Fatalf("%d bytes: stat %v, %v", n, st, err)
		}
	}
	// Discarded (a veto) before and after its first part went out.
	for _, n := range []int{100, 3 * s3fs.MinPartSize / 2} {
		if err := write(fmt.Sprintf("/vetoed-%d", n), n).Discard(); err != nil {
			t.Fatal(err)
		}
	}
	// Closed with a gap: refused.
	f, _ := e.fs.Create("/gap")
	_, _ = f.WriteAt([]byte("x"), 0)
	_, _ = f.WriteAt([]byte("y"), 10)
	if err := f.Close(); !errors.Is(err, s3fs.ErrGap) {
		t.Errorf("close with a gap: %v", err)
	}
	// Data held past the part being filled when the upload ends: closed with the gap
	// before it, and discarded.
	head := random(t, s3fs.MinPartSize-1<<20)
	f, _ = e.fs.Create("/gap-past")
	_, _ = f.Write(head)
	if _, err := f.WriteAt([]byte("y"), s3fs.MinPartSize+10); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); !errors.Is(err, s3fs.ErrGap) {
		t.Errorf("close with a gap before data past the part: %v", err)
	}
	up, _ := e.fs.CreateUpload("/discarded-past", 0o644)
	_, _ = up.Write(head)
	if _, err := up.WriteAt([]byte("y"), s3fs.MinPartSize+10); err != nil {
		t.Fatal(err)
	}
	if err := up.Discard(); err != nil {
		t.Fatal(err)
	}
	// Truncated up, then closed.
	f, _ = e.fs.Create("/grown")
	if err := f.Truncate(1000); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	mapped, inUse := e.fs.Buffers()
	now, _ := e.fs.Held()
	t.Logf("buffers mapped: %d", mapped)
	if inUse != 0 || now != 0 {
		t.Errorf("after every upload ended: %d buffers (%d bytes) still in use", inUse, now)
	}
	if limit := e.opt.UploadConcurrency + 2; mapped > limit { // and one ahead buffer
		t.Errorf("%d buffers mapped for uploads one at a time, want at most %d", mapped, limit)
	}
}

// Server-side copies (a rename, a time kept in the metadata) name their source in
// x-amz-copy-source, which S3 servers URL-decode: every byte but the unreserved ones and '/'
// must be escaped there, '+' included, which form decoding (versitygw's, and other S3
// servers') reads as a space. rclone's test names hold every punctuation mark.
func TestCopySourceEscaping(t *testing.T) {
	e := newEnv(t)
	fsys := e.fs
	for _, name := range []string{"!\"#$%&'()*+,-.:;<=>?@[\\]^_`{|}~", "a+b c", "100%25 sure", "ü+ñ/é"} {
		dir, _ := filepath.Split(name)
		if dir != "" {
			if err := fsys.MkdirAll("/"+dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		vfstest.WriteFile(t, fsys, "/"+name, []byte("data of "+name))
		mtime := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
		if err := fsys.Chtimes("/"+name, mtime, mtime); err != nil {
			t.Errorf("chtimes %q: %v", name, err)
			continue
		}
		if fi, err := fsys.Stat("/" + name); err != nil || !fi.ModTime().Equal(mtime) {
			t.Errorf("stat %q after chtimes: %v, %v", name, fi, err)
		}
		if err := fsys.Rename("/"+name, "/"+name+"+renamed"); err != nil {
			t.Errorf("rename %q: %v", name, err)
			continue
		}
		if got := vfstest.ReadFile(t, fsys, "/"+name+"+renamed"); string(got) != "data of "+name {
			t.Errorf("renamed %q holds %q", name, got)
		}
	}
}

// An object key is UTF-8: a name that is not is refused before any request (a server that
// stored the bytes would list them back as U+FFFD, a name that reaches nothing).
func TestNamesMustBeUTF8(t *testing.T) {
	e := newEnv(t)
	fsys := e.fs
	vfstest.WriteFile(t, fsys, "/ok.txt", []byte("x"))
	bad := "/invalid utf-8\xfe"
	_, err := fsys.Create(bad)
	e.wantErr(t, "create", err, fs.ErrInvalid, "/invalid utf-8\ufffd")
	e.wantErr(t, "mkdir", fsys.Mkdir(bad, 0o755), fs.ErrInvalid, "/invalid utf-8\ufffd")
	e.wantErr(t, "rename onto", fsys.Rename("/ok.txt", bad), fs.ErrInvalid, "/invalid utf-8\ufffd")
	if entries, err := os.ReadDir(e.host); err != nil || len(entries) != 1 {
		t.Errorf("the prefix holds %v (%v), want ok.txt alone", entries, err)
	}
}

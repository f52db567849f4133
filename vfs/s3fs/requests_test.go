package s3fs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
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

// counter is an HTTP client that counts the S3 requests it sends, by kind.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) Do(r *http.Request) (*http.Response, error) {
	kind := r.Method
	switch {
	case r.Method == http.MethodGet && r.URL.Query().Has("list-type"):
		kind = "LIST"
	case r.Method == http.MethodPut && r.Header.Get("X-Amz-Copy-Source") != "":
		kind = "COPY"
	}
	c.mu.Lock()
	c.n[kind]++
	c.mu.Unlock()
	return http.DefaultClient.Do(r)
}

// take returns the counts since the last take, and the total.
func (c *counter) take() (map[string]int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out, total := maps.Clone(c.n), 0
	for _, v := range out {
		total += v
	}
	clear(c.n)
	return out, total
}

// newCounted is newEnv with a backend whose requests are counted.
func newCounted(t *testing.T) (*env, *counter) {
	t.Helper()
	e := newEnv(t)
	c := &counter{n: map[string]int{}}
	f, err := s3fs.NewWithHTTPClient(context.Background(), e.opt, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	e.fs = f
	c.take()
	return e, c
}

// TestRequestsPerDownload: after a listing, Stat, Open and Read of each listed file cost one
// request (its GET), as a directory download by SFTP (get -r) or lftp (mirror) does.
func TestRequestsPerDownload(t *testing.T) {
	e, c := newCounted(t)
	const files = 20
	if err := e.fs.Mkdir("/d", 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range files {
		vfstest.WriteFile(t, e.fs, fmt.Sprintf("/d/f%02d", i), []byte(strings.Repeat("x", 4096)))
	}
	c.take()
	d, err := e.fs.Open("/d")
	if err != nil {
		t.Fatal(err)
	}
	fis, err := d.Readdir(-1)
	_ = d.Close()
	if err != nil || len(fis) != files {
		t.Fatalf("listing: %d entries, %v", len(fis), err)
	}
	byKind, total := c.take()
	t.Logf("listing of %d files: %v", files, byKind)
	if total > files+3 {
		t.Errorf("listing of %d files: %d requests %v", files, total, byKind)
	}
	for _, fi := range fis {
		name := "/d/" + fi.Name()
		if _, err := e.fs.Stat(name); err != nil {
			t.Fatal(err)
		}
		f, err := e.fs.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(f)
		_ = f.Close()
		if err != nil || len(b) != 4096 {
			t.Fatalf("read %s: %d bytes, %v", name, len(b), err)
		}
	}
	byKind, total = c.take()
	t.Logf("stat+open+read of %d listed files: %v", files, byKind)
	if total > files {
		t.Errorf("stat+open+read of %d listed files: %d requests %v, want one GET each", files, total, byKind)
	}
	// The same listing again (clients list twice: lftp's mirror, a refresh) takes the
	// objects' times from the cache, with the same times.
	again := listDir(t, e.fs, "/d")
	byKind, total = c.take()
	t.Logf("listing again: %v", byKind)
	if total > 3 {
		t.Errorf("listing of %d files again: %d requests %v", files, total, byKind)
	}
	for i := range again {
		if again[i].Name() != fis[i].Name() || !again[i].ModTime().Equal(fis[i].ModTime()) || again[i].Size() != fis[i].Size() {
			t.Errorf("listed again: %v, first %v", again[i], fis[i])
		}
	}
}

// listDir lists a directory of the backend.
func listDir(t *testing.T, fsys afero.Fs, dir string) []os.FileInfo {
	t.Helper()
	d, err := fsys.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	fis, err := d.Readdir(-1)
	if err != nil {
		t.Fatal(err)
	}
	return fis
}

// TestRequestsPerUpload: after a listing of the folder (lftp mirror -R lists it first), an
// upload of a new small file as the core makes it (Stat, an atomic upload, publish, then
// MFMT's Chtimes) costs its PUT and the COPY that keeps the time.
func TestRequestsPerUpload(t *testing.T) {
	e, c := newCounted(t)
	if err := e.fs.Mkdir("/up", 0o755); err != nil {
		t.Fatal(err)
	}
	listDir(t, e.fs, "/up")
	c.take()
	const files = 10
	mtime := time.Date(2021, 5, 6, 7, 8, 9, 0, time.UTC)
	for i := range files {
		name := fmt.Sprintf("/up/f%02d", i)
		uploadNew(t, e.fs, name)
		if err := e.fs.Chtimes(name, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	byKind, total := c.take()
	t.Logf("stat+upload+chtimes of %d new files: %v", files, byKind)
	if total > 2*files+2 {
		t.Errorf("stat+upload+chtimes of %d new files: %d requests %v, want a PUT and a COPY each", files, total, byKind)
	}
	for i := range files {
		name := fmt.Sprintf("/up/f%02d", i)
		fi, err := e.fs.Stat(name)
		if err != nil || !fi.ModTime().Equal(mtime) || fi.Size() != int64(len(name)) {
			t.Errorf("after upload: %v, %v", fi, err)
		}
		if got := vfstest.ReadFile(t, e.fs, name); string(got) != name {
			t.Errorf("%s holds %q", name, got)
		}
	}
}

// uploadNew stats a new name, as the core does before an upload, then uploads its own name
// into it through a pending upload.
func uploadNew(t *testing.T, fsys *s3fs.FS, name string) {
	t.Helper()
	if _, err := fsys.Stat(name); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("stat of a new name: %v", err)
	}
	up, err := fsys.CreateUpload(name, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Write([]byte(name)); err != nil {
		t.Fatal(err)
	}
	if err := up.Publish(); err != nil {
		t.Fatal(err)
	}
}

// TestRequestsChmodAfterUpload: lftp's mirror -R chmods every file after the last upload;
// for files this FS wrote that costs no request, even past the stat cache's TTL (writtenTTL),
// while a name removed through the FS, or never written, is still not found.
func TestRequestsChmodAfterUpload(t *testing.T) {
	e, c := newCounted(t)
	if err := e.fs.Mkdir("/up", 0o755); err != nil {
		t.Fatal(err)
	}
	const files = 10
	for i := range files {
		uploadNew(t, e.fs, fmt.Sprintf("/up/f%02d", i))
	}
	e.fs.ExpireCache() // a large tree: the chmods come after the stat cache's TTL
	c.take()
	for i := range files {
		if err := e.fs.Chmod(fmt.Sprintf("/up/f%02d", i), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if byKind, total := c.take(); total != 0 {
		t.Errorf("chmod of %d files just uploaded: %d requests %v, want none", files, total, byKind)
	}
	if err := e.fs.Remove("/up/f00"); err != nil {
		t.Fatal(err)
	}
	if err := e.fs.Chmod("/up/f00", 0o644); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("chmod of a removed file: %v, want not found", err)
	}
	if err := e.fs.Chmod("/up/never", 0o644); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("chmod of a name never written: %v, want not found", err)
	}
	// A file another writer made is looked up.
	if _, err := e.srv.Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket),
		Key: aws.String("users/alice/up/other"), Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}
	c.take()
	if err := e.fs.Chmod("/up/other", 0o644); err != nil {
		t.Errorf("chmod of a file another writer made: %v", err)
	}
	if _, total := c.take(); total == 0 {
		t.Error("chmod of a file another writer made sent no request")
	}
}

// TestRequestsIntoNewFolder: uploads into a folder just made (SFTP put -r, lftp mirror -R)
// cost their PUT alone: the mkdir's lookup found the folder empty.
func TestRequestsIntoNewFolder(t *testing.T) {
	e, c := newCounted(t)
	if err := e.fs.Mkdir("/new", 0o755); err != nil {
		t.Fatal(err)
	}
	c.take()
	const files = 10
	for i := range files {
		name := fmt.Sprintf("/new/f%02d", i)
		uploadNew(t, e.fs, name)
	}
	byKind, total := c.take()
	t.Logf("stat+upload of %d new files in a new folder: %v", files, byKind)
	if total > files {
		t.Errorf("stat+upload of %d new files in a new folder: %d requests %v, want a PUT each", files, total, byKind)
	}
	// The folder's listing then holds them, and a file made behind the FS's back in a folder
	// made after it is not hidden: the mkdir's lookup saw it.
	if got := len(listDir(t, e.fs, "/new")); got != files {
		t.Errorf("listing: %d files, want %d", got, files)
	}
	if _, err := e.srv.Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket),
		Key: aws.String("users/alice/other/x"), Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}
	if err := e.fs.Mkdir("/other", 0o755); !errors.Is(err, fs.ErrExist) {
		t.Errorf("mkdir over a folder made by another writer: %v", err)
	}
	if _, err := e.fs.Stat("/other/x"); err != nil {
		t.Errorf("stat of a file another writer made: %v", err)
	}
}

// TestCacheInvalidation: every change made through the backend shows at once, even where a
// Stat or a listing just filled the cache.
func TestCacheInvalidation(t *testing.T) {
	e := newEnv(t)
	fsys := e.fs
	fill := func() {
		t.Helper()
		for _, d := range []string{"/", "/d"} {
			if _, err := fsys.Stat(d); err == nil {
				for _, fi := range listDir(t, fsys, d) {
					_, _ = fsys.Stat(path.Join(d, fi.Name()))
				}
			}
		}
		for _, n := range []string{"/a", "/b", "/d", "/e", "/d/x", "/e/x", "/n"} {
			_, _ = fsys.Stat(n)
		}
	}
	want := func(what, name, content string) {
		t.Helper()
		fi, err := fsys.Stat(name)
		if content == "" {
			if !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s: %s: stat = %v, %v; want missing", what, name, fi, err)
			}
			return
		}
		if content == "dir" {
			if err != nil || !fi.IsDir() {
				t.Errorf("%s: %s: stat = %v, %v; want a directory", what, name, fi, err)
			}
			return
		}
		if err != nil || fi.Size() != int64(len(content)) {
			t.Errorf("%s: %s: stat = %v, %v; want %d bytes", what, name, fi, err, len(content))
		}
		if got, err := afero.ReadFile(fsys, name); err != nil || string(got) != content {
			t.Errorf("%s: %s holds %q, %v; want %q", what, name, got, err, content)
		}
		found := false
		for _, fi := range listDir(t, fsys, path.Dir(name)) {
			found = found || fi.Name() == path.Base(name)
		}
		if !found {
			t.Errorf("%s: %s not listed", what, name)
		}
	}
	fill()
	vfstest.WriteFile(t, fsys, "/a", []byte("one"))
	want("create", "/a", "one")
	fill()
	vfstest.WriteFile(t, fsys, "/a", []byte("second"))
	want("overwrite", "/a", "second")
	fill()
	af, err := vfs.CreateAtomic(fsys, "/a", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = af.Write([]byte("third!!"))
	if err := af.Publish(); err != nil {
		t.Fatal(err)
	}
	want("atomic upload", "/a", "third!!")
	fill()
	wf, err := fsys.OpenFile("/a", os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = wf.Write([]byte("+"))
	if err := wf.Close(); err != nil {
		t.Fatal(err)
	}
	want("append", "/a", "third!!+")
	fill()
	mtime := time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := fsys.Chtimes("/a", mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if fi, err := fsys.Stat("/a"); err != nil || !fi.ModTime().Equal(mtime) {
		t.Errorf("chtimes: stat = %v, %v", fi, err)
	}
	fill()
	if err := fsys.Rename("/a", "/b"); err != nil {
		t.Fatal(err)
	}
	want("rename", "/a", "")
	want("rename", "/b", "third!!+")
	fill()
	if err := fsys.Mkdir("/d", 0o755); err != nil {
		t.Fatal(err)
	}
	want("mkdir", "/d", "dir")
	fill()
	if err := fsys.Rename("/b", "/d/x"); err != nil {
		t.Fatal(err)
	}
	want("rename into a directory", "/d/x", "third!!+")
	fill()
	if err := fsys.Rename("/d", "/e"); err != nil {
		t.Fatal(err)
	}
	want("rename a directory", "/d", "")
	want("rename a directory", "/d/x", "")
	want("rename a directory", "/e/x", "third!!+")
	fill()
	if err := fsys.Remove("/e/x"); err != nil {
		t.Fatal(err)
	}
	want("remove", "/e/x", "")
	fill()
	if err := fsys.Remove("/e"); err != nil {
		t.Fatal(err)
	}
	want("rmdir", "/e", "")
	fill()
	if err := fsys.MkdirAll("/n/m", 0o755); err != nil {
		t.Fatal(err)
	}
	want("mkdir -p", "/n", "dir")
	vfstest.WriteFile(t, fsys, "/n/m/f", []byte("f"))
	fill()
	_, _ = fsys.Stat("/n/m/f")
	if err := fsys.RemoveAll("/n"); err != nil {
		t.Fatal(err)
	}
	want("remove all", "/n/m/f", "")
	want("remove all", "/n", "")
}

// TestStaleEntry: an object replaced or removed behind the backend's back (another node, a
// direct write to the bucket) while its cache entry is fresh is never read mixed or old: the
// first GET fails its If-Match and the handle looks the object up again.
func TestStaleEntry(t *testing.T) {
	e, c := newCounted(t)
	fsys := e.fs
	old := random(t, 3*s3fs.ReadChunk/2)
	vfstest.WriteFile(t, fsys, "/f", old)
	if _, err := fsys.Stat("/f"); err != nil { // fills the cache
		t.Fatal(err)
	}
	s3c := e.srv.Client()
	key := "users/alice/f"
	put := func(data []byte, meta map[string]string) {
		t.Helper()
		if _, err := s3c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
			Body: bytes.NewReader(data), Metadata: meta}); err != nil {
			t.Fatal(err)
		}
	}
	fresh := random(t, 5*s3fs.ReadChunk/2) // larger: more chunks than the stale size says
	put(fresh, map[string]string{"owner": "other"})
	c.take()
	f, err := fsys.Open("/f")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(f)
	_ = f.Close()
	if err != nil || !bytes.Equal(got, fresh) {
		t.Fatalf("read after a replacement behind the backend: %d bytes (want %d), equal %v, %v",
			len(got), len(fresh), bytes.Equal(got, fresh), err)
	}
	byKind, _ := c.take()
	t.Logf("open+read of a stale entry: %v", byKind)
	// Chtimes from a stale entry keeps what the other writer stored.
	if _, err := fsys.Stat("/f"); err != nil {
		t.Fatal(err)
	}
	small := []byte("small, by another writer")
	put(small, map[string]string{"owner": "other"})
	mtime := time.Date(2018, 2, 3, 4, 5, 6, 0, time.UTC)
	if err := fsys.Chtimes("/f", mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if got, ok := e.srv.Object(t, bucket, key); !ok || !bytes.Equal(got, small) {
		t.Errorf("after chtimes from a stale entry: %q", got)
	}
	h, err := s3c.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil || h.Metadata["owner"] != "other" {
		t.Errorf("chtimes from a stale entry lost the other writer's metadata: %v, %v", h, err)
	}
	// Removed behind the backend's back: opening may succeed from the cache, reading says
	// it is gone.
	if _, err := fsys.Stat("/f"); err != nil {
		t.Fatal(err)
	}
	if _, err := s3c.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
		t.Fatal(err)
	}
	f, err = fsys.Open("/f")
	if err == nil {
		_, err = io.ReadAll(f)
		_ = f.Close()
	}
	e.wantErr(t, "read of an object removed behind the backend", err, fs.ErrNotExist, "/f")
}

// BenchmarkSmallFiles times what a folder download and a folder upload of 200 × 4 KiB files
// ask of the store (list, then stat, open and read each; list, then stat, upload and set the
// time of each), over loopback to versitygw.
func BenchmarkSmallFiles(b *testing.B) {
	const files = 200
	srv := s3test.Start(b)
	srv.Bucket(b, bucket)
	opt := s3fs.Options{Bucket: bucket, Prefix: "bench", Endpoint: srv.Endpoint, Region: s3test.Region,
		PathStyle: true, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey}
	fsys, err := s3fs.New(context.Background(), opt)
	if err != nil {
		b.Fatal(err)
	}
	defer fsys.Close()
	data := []byte(strings.Repeat("x", 4096))
	mtime := time.Date(2021, 5, 6, 7, 8, 9, 0, time.UTC)
	upload := func(dir string) {
		d, err := fsys.Open(dir)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = d.Readdir(-1)
		_ = d.Close()
		for i := range files {
			name := fmt.Sprintf("%s/f%03d", dir, i)
			_, _ = fsys.Stat(name)
			up, err := fsys.CreateUpload(name, 0o644)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = up.Write(data)
			if err := up.Publish(); err != nil {
				b.Fatal(err)
			}
			if err := fsys.Chtimes(name, mtime, mtime); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := fsys.Mkdir("/down", 0o755); err != nil {
		b.Fatal(err)
	}
	upload("/down")
	b.Run("download", func(b *testing.B) {
		for b.Loop() {
			d, err := fsys.Open("/down")
			if err != nil {
				b.Fatal(err)
			}
			fis, _ := d.Readdir(-1)
			_ = d.Close()
			for _, fi := range fis {
				name := "/down/" + fi.Name()
				if _, err := fsys.Stat(name); err != nil {
					b.Fatal(err)
				}
				f, err := fsys.Open(name)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, f); err != nil {
					b.Fatal(err)
				}
				_ = f.Close()
			}
		}
	})
	n := 0 // folders uploaded, across the runs of the sub-benchmark (-count)
	b.Run("upload", func(b *testing.B) {
		for b.Loop() {
			n++
			dir := fmt.Sprintf("/up%d", n)
			if err := fsys.Mkdir(dir, 0o755); err != nil {
				b.Fatal(err)
			}
			upload(dir)
		}
	})
}

// TestRequestsOpenUnlisted: a file the cache knows nothing of (not listed, or listed more
// than the cache's lifetime ago, as the last files of a long folder download are) opens and
// reads with one GET, which finds the object and brings a small file whole; what it found
// (size, ETag, the time kept in x-amz-meta-mtime) is what the handle and Stat say.
func TestRequestsOpenUnlisted(t *testing.T) {
	e, c := newCounted(t)
	s3c := e.srv.Client()
	mtime := time.Date(2020, 3, 4, 5, 6, 7, 0, time.UTC)
	put := func(name string, data []byte, meta map[string]string) {
		t.Helper()
		if _, err := s3c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket),
			Key: aws.String("users/alice" + name), Body: bytes.NewReader(data), Metadata: meta}); err != nil {
			t.Fatal(err)
		}
	}
	const files = 10
	for i := range files {
		put(fmt.Sprintf("/f%02d", i), []byte(strings.Repeat(string(rune('a'+i)), 4096)),
			map[string]string{"mtime": strconv.FormatInt(mtime.Unix(), 10)})
	}
	c.take()
	for i := range files {
		name := fmt.Sprintf("/f%02d", i)
		f, err := e.fs.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := f.Stat()
		if err != nil || fi.Size() != 4096 || !fi.ModTime().Equal(mtime) || fi.IsDir() {
			t.Errorf("%s: handle's stat %v (%v, %d bytes), %v; want %v", name, fi, fi.ModTime(), fi.Size(), err, mtime)
		}
		b, err := io.ReadAll(f)
		_ = f.Close()
		if err != nil || string(b) != strings.Repeat(string(rune('a'+i)), 4096) {
			t.Fatalf("read %s: %d bytes, %v", name, len(b), err)
		}
	}
	byKind, total := c.take()
	t.Logf("open+read of %d files not in the cache: %v", files, byKind)
	if total > files {
		t.Errorf("open+read of %d files not in the cache: %d requests %v, want one GET each", files, total, byKind)
	}
	// What the GET found is cached like a HEAD's answer.
	if fi, err := e.fs.Stat("/f00"); err != nil || !fi.ModTime().Equal(mtime) || fi.Size() != 4096 {
		t.Errorf("stat after the open: %v, %v", fi, err)
	}
	if byKind, total := c.take(); total != 0 {
		t.Errorf("stat after the open: %v, want none", byKind)
	}

	// An empty object, one larger than what the open fetches, a directory and a missing name
	// open as before.
	put("/empty", nil, nil)
	big := random(t, s3fs.ReadChunk+12345)
	put("/big", big, nil)
	put("/dir/x", []byte("x"), nil)
	if got := vfstest.ReadFile(t, e.fs, "/empty"); len(got) != 0 {
		t.Errorf("empty object: %q", got)
	}
	if got := vfstest.ReadFile(t, e.fs, "/big"); !bytes.Equal(got, big) {
		t.Errorf("big object: %d bytes, equal %v", len(got), bytes.Equal(got, big))
	}
	if got := listDir(t, e.fs, "/dir"); len(got) != 1 || got[0].Name() != "x" {
		t.Errorf("directory: %v", got)
	}
	_, err := e.fs.Open("/missing")
	e.wantErr(t, "open of a missing name", err, fs.ErrNotExist, "/missing")
}

// TestStaleSmallEntry: a small file opened from a cache entry starts its GET at the open; when
// the object was replaced behind the backend's back, that GET fails its If-Match and the read
// returns the new version whole, as for a large file (TestStaleEntry).
func TestStaleSmallEntry(t *testing.T) {
	e := newEnv(t)
	vfstest.WriteFile(t, e.fs, "/s", []byte("old"))
	if _, err := e.fs.Stat("/s"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.srv.Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket),
		Key: aws.String("users/alice/s"), Body: strings.NewReader("newer")}); err != nil {
		t.Fatal(err)
	}
	f, err := e.fs.Open("/s")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(f)
	_ = f.Close()
	if err != nil || string(got) != "newer" {
		t.Errorf("read of a small file replaced behind the backend: %q, %v", got, err)
	}
	// Opened and closed without a read: the GET started at the open ends with the handle.
	f, err = e.fs.Open("/s")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestIdleConnections: the HTTP client keeps more idle connections to the store than a
// listing sends HEADs at once; with the SDK's 10, every listing opened and closed dozens.
func TestIdleConnections(t *testing.T) {
	e := newEnv(t)
	if n := e.fs.IdleConnsPerHost(); n < 4*s3fs.ListHeads {
		t.Errorf("%d idle connections per host, want at least %d", n, 4*s3fs.ListHeads)
	}
}

// TestListingRemembersTimes: a listing takes the modification time of an object that it shows
// as a HEAD of the last mtimeTTL found it from that HEAD, without a HEAD of its own; a time
// set through the backend, and a content replaced by another writer, show at once.
func TestListingRemembersTimes(t *testing.T) {
	e, c := newCounted(t)
	const files = 10
	if err := e.fs.Mkdir("/d", 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range files {
		vfstest.WriteFile(t, e.fs, fmt.Sprintf("/d/f%02d", i), []byte(strings.Repeat("x", 100+i)))
	}
	t2018 := time.Date(2018, 2, 3, 4, 5, 6, 0, time.UTC)
	if err := e.fs.Chtimes("/d/f00", t2018, t2018); err != nil {
		t.Fatal(err)
	}
	e.fs.ExpireCache()
	c.take()
	first := listDir(t, e.fs, "/d")
	byKind, _ := c.take()
	if byKind["HEAD"] != files {
		t.Errorf("first listing: %v, want a HEAD per file", byKind)
	}
	if !first[0].ModTime().Equal(t2018) {
		t.Errorf("f00 listed with %v, want %v", first[0].ModTime(), t2018)
	}

	// Past the metadata cache's life: the listing alone, with the same times.
	e.fs.ExpireCache()
	again := listDir(t, e.fs, "/d")
	byKind, _ = c.take()
	if byKind["HEAD"] != 0 {
		t.Errorf("listing again: %v, want no HEAD", byKind)
	}
	for i := range again {
		if again[i].Name() != first[i].Name() || !again[i].ModTime().Equal(first[i].ModTime()) || again[i].Size() != first[i].Size() {
			t.Errorf("listed again: %v %v, first %v %v", again[i].Name(), again[i].ModTime(), first[i].Name(), first[i].ModTime())
		}
	}

	// A time set through the backend (a copy of the object onto itself, which on versitygw
	// keeps its ETag and store time) shows at the next listing.
	t2019 := time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := e.fs.Chtimes("/d/f01", t2019, t2019); err != nil {
		t.Fatal(err)
	}
	// Another writer replaces f02, with a time of its own.
	t2017 := time.Date(2017, 6, 7, 8, 9, 10, 0, time.UTC)
	if _, err := e.srv.Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket),
		Key: aws.String("users/alice/d/f02"), Body: strings.NewReader("other content"),
		Metadata: map[string]string{"mtime": strconv.FormatInt(t2017.Unix(), 10)}}); err != nil {
		t.Fatal(err)
	}
	e.fs.ExpireCache()
	c.take()
	third := listDir(t, e.fs, "/d")
	byKind, _ = c.take()
	if !third[1].ModTime().Equal(t2019) {
		t.Errorf("f01 after Chtimes: %v, want %v", third[1].ModTime(), t2019)
	}
	if !third[2].ModTime().Equal(t2017) || third[2].Size() != int64(len("other content")) {
		t.Errorf("f02 replaced by another writer: %v, %d bytes; want %v", third[2].ModTime(), third[2].Size(), t2017)
	}
	if byKind["HEAD"] != 2 {
		t.Errorf("listing after two changes: %v, want a HEAD for each changed file only", byKind)
	}
}

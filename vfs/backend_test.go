package vfs

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/afero"
)

// backend is a fresh, empty backend plus the host directory it must never
// mention in an error ("" for memory).
type backend struct {
	name string
	new  func(t *testing.T) (afero.Fs, string)
}

var backends = []backend{
	{"disk", func(t *testing.T) (afero.Fs, string) {
		base := t.TempDir()
		d, err := NewDisk(filepath.Join(base, "root"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = d.Close() })
		return d, base
	}},
	{"memory", func(*testing.T) (afero.Fs, string) { return NewMemory(), "" }},
}

// forEachBackend runs fn against a fresh instance of every backend.
func forEachBackend(t *testing.T, fn func(t *testing.T, fsys afero.Fs, host string)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			fsys, host := b.new(t)
			fn(t, fsys, host)
		})
	}
}

func writeFile(t *testing.T, fsys afero.Fs, name, data string) {
	t.Helper()
	if err := afero.WriteFile(fsys, name, []byte(data), 0o600); err != nil {
		t.Fatalf("write %s: %v", name, err)
	}
}

func readFile(t *testing.T, fsys afero.Fs, name string) string {
	t.Helper()
	b, err := afero.ReadFile(fsys, name)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return string(b)
}

// wantErr checks that err is a *fs.PathError for the clean backend name path
// that matches kind and does not mention host.
func wantErr(t *testing.T, what string, err error, kind error, path, host string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want %v", what, kind)
		return
	}
	if !errors.Is(err, kind) {
		t.Errorf("%s: error %v does not match %v", what, err, kind)
	}
	var pe *fs.PathError
	if !errors.As(err, &pe) {
		t.Errorf("%s: error %T (%v) is not a *fs.PathError", what, err, err)
	} else if path != "" && pe.Path != path {
		t.Errorf("%s: error names %q, want %q", what, pe.Path, path)
	}
	noLeak(t, what, err, host)
}

func noLeak(t *testing.T, what string, err error, host string) {
	t.Helper()
	if err != nil && host != "" && strings.Contains(err.Error(), host) {
		t.Errorf("%s: error leaks the host path: %v", what, err)
	}
}

func TestBackendFiles(t *testing.T) {
	forEachBackend(t, func(t *testing.T, fsys afero.Fs, host string) {
		writeFile(t, fsys, "/a.txt", "hello")
		if got := readFile(t, fsys, "a.txt"); got != "hello" {
			t.Fatalf("relative name reads %q", got)
		}
		fi, err := fsys.Stat("//a.txt/")
		if err != nil || fi.Size() != 5 || fi.Name() != "a.txt" || fi.IsDir() {
			t.Fatalf("Stat = %v, %v", fi, err)
		}
		f, err := fsys.Open("./x/../a.txt")
		if err != nil {
			t.Fatal(err)
		}
		if f.Name() != "/a.txt" {
			t.Errorf("Name() = %q, want /a.txt", f.Name())
		}
		_, err = f.Write([]byte("x"))
		wantErr(t, "write to read-only handle", err, errBadFD, "/a.txt", host)
		buf := make([]byte, 8)
		n, err := f.ReadAt(buf, 2)
		if n != 3 || err != io.EOF || string(buf[:n]) != "llo" {
			t.Errorf("short ReadAt = %d, %v, %q", n, err, buf[:n])
		}
		if n, err := f.ReadAt(buf, 99); n != 0 || err != io.EOF {
			t.Errorf("ReadAt past the end = %d, %v", n, err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		wantErr(t, "second close", f.Close(), fs.ErrClosed, "/a.txt", host)

		_, err = fsys.OpenFile("/a.txt", os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		wantErr(t, "exclusive create", err, fs.ErrExist, "/a.txt", host)
		_, err = fsys.Open("/missing")
		wantErr(t, "open missing", err, fs.ErrNotExist, "/missing", host)
		_, err = fsys.Create("/nodir/f")
		wantErr(t, "create without parent", err, fs.ErrNotExist, "/nodir/f", host)
		_, err = fsys.Create("/a.txt/f")
		if err == nil {
			t.Error("create below a file succeeded")
		}
		noLeak(t, "create below a file", err, host)

		af, err := fsys.OpenFile("/a.txt", os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := af.Write([]byte(" world")); err != nil {
			t.Fatal(err)
		}
		if _, err := af.WriteAt([]byte("x"), 0); err == nil {
			t.Error("WriteAt on an O_APPEND handle succeeded")
		}
		_ = af.Close()
		if got := readFile(t, fsys, "/a.txt"); got != "hello world" {
			t.Errorf("after append: %q", got)
		}

		mtime := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
		if err := fsys.Chtimes("/a.txt", mtime, mtime); err != nil {
			t.Fatal(err)
		}
		if err := fsys.Chmod("/a.txt", 0o640); err != nil {
			t.Fatal(err)
		}
		fi, err = fsys.Stat("/a.txt")
		if err != nil || !fi.ModTime().Equal(mtime) || fi.Mode().Perm() != 0o640 {
			t.Errorf("after Chtimes/Chmod: %v %v, %v", fi.ModTime(), fi.Mode(), err)
		}
	})
}

func TestBackendDirs(t *testing.T) {
	forEachBackend(t, func(t *testing.T, fsys afero.Fs, host string) {
		fi, err := fsys.Stat("/")
		if err != nil || !fi.IsDir() || fi.Name() != "/" {
			t.Fatalf("Stat(/) = %v, %v", fi, err)
		}
		if err := fsys.Mkdir("/d", 0o750); err != nil {
			t.Fatal(err)
		}
		wantErr(t, "mkdir twice", fsys.Mkdir("d", 0o750), fs.ErrExist, "/d", host)
		wantErr(t, "mkdir without parent", fsys.Mkdir("/x/y", 0o750), fs.ErrNotExist, "/x/y", host)
		if err := fsys.MkdirAll("/x/y/z", 0o750); err != nil {
			t.Fatal(err)
		}
		if err := fsys.MkdirAll("/x/y", 0o750); err != nil {
			t.Errorf("MkdirAll on an existing directory: %v", err)
		}
		writeFile(t, fsys, "/d/f1", "1")
		writeFile(t, fsys, "/d/f2", "2")
		if err := fsys.MkdirAll("/d/f1/sub", 0o750); err == nil {
			t.Error("MkdirAll through a file succeeded")
		}

		dir, err := fsys.Open("/")
		if err != nil {
			t.Fatal(err)
		}
		names, err := dir.Readdirnames(-1)
		_ = dir.Close()
		slices.Sort(names)
		if err != nil || !slices.Equal(names, []string{"d", "x"}) {
			t.Errorf("Readdirnames(/) = %q, %v", names, err)
		}
		dir, err = fsys.Open("/d")
		if err != nil {
			t.Fatal(err)
		}
		fis, err := dir.Readdir(1)
		if err != nil || len(fis) != 1 {
			t.Fatalf("Readdir(1) = %v, %v", fis, err)
		}
		rest, err := dir.Readdir(5)
		if err != nil || len(rest) != 1 {
			t.Fatalf("second Readdir(5) = %v, %v", rest, err)
		}
		if _, err := dir.Readdir(5); err != io.EOF {
			t.Errorf("Readdir at the end: %v, want io.EOF", err)
		}
		_, err = dir.Write([]byte("x"))
		if err == nil {
			t.Error("write to a directory succeeded")
		}
		noLeak(t, "write to a directory", err, host)
		_ = dir.Close()
		f, _ := fsys.Open("/d/f1")
		_, err = f.Readdir(-1)
		wantErr(t, "Readdir on a file", err, errNotDir, "/d/f1", host)
		_ = f.Close()
		_, err = fsys.OpenFile("/d", os.O_WRONLY, 0)
		wantErr(t, "open a directory for writing", err, errIsDir, "/d", host)

		wantErr(t, "remove non-empty", fsys.Remove("/d"), errNotEmpty, "/d", host)
		wantErr(t, "remove root", fsys.Remove("/"), fs.ErrPermission, "/", host)
		wantErr(t, "removeall root", fsys.RemoveAll(".."), fs.ErrPermission, "/", host)
		wantErr(t, "remove missing", fsys.Remove("/nope"), fs.ErrNotExist, "/nope", host)
		if err := fsys.Remove("/d/f2"); err != nil {
			t.Fatal(err)
		}
		if err := fsys.RemoveAll("/x"); err != nil {
			t.Fatal(err)
		}
		if err := fsys.RemoveAll("/x"); err != nil {
			t.Errorf("RemoveAll of a missing name: %v", err)
		}
		if _, err := fsys.Stat("/x/y/z"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("after RemoveAll: %v", err)
		}
	})
}

func TestBackendRename(t *testing.T) {
	forEachBackend(t, func(t *testing.T, fsys afero.Fs, host string) {
		writeFile(t, fsys, "/a", "A")
		writeFile(t, fsys, "/b", "B")
		if err := fsys.Rename("a", "/b"); err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, fsys, "/b"); got != "A" {
			t.Errorf("rename over a file: /b = %q", got)
		}
		wantErr(t, "rename missing", fsys.Rename("/a", "/c"), fs.ErrNotExist, "/a", host)
		wantErr(t, "rename root", fsys.Rename("/", "/c"), fs.ErrPermission, "/", host)
		if err := fsys.MkdirAll("/d1/sub", 0o750); err != nil {
			t.Fatal(err)
		}
		writeFile(t, fsys, "/d1/sub/f", "F")
		if err := fsys.Mkdir("/d2", 0o750); err != nil {
			t.Fatal(err)
		}
		wantErr(t, "rename over a directory", fsys.Rename("/d1", "/d2"), fs.ErrExist, "", host)
		if err := fsys.Remove("/d2"); err != nil {
			t.Fatal(err)
		}
		if err := fsys.Rename("/d1", "/d2"); err != nil {
			t.Fatalf("rename a directory: %v", err)
		}
		if got := readFile(t, fsys, "/d2/sub/f"); got != "F" {
			t.Errorf("after directory rename: %q", got)
		}
		if _, err := fsys.Stat("/d1/sub/f"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("old name still there: %v", err)
		}
		for _, bad := range [][2]string{{"/b", "/d2"}, {"/d2", "/b"}, {"/d2", "/d2/sub/x"}, {"/b", "/nodir/b"}} {
			err := fsys.Rename(bad[0], bad[1])
			if err == nil {
				t.Errorf("Rename(%q, %q) succeeded", bad[0], bad[1])
			}
			noLeak(t, "rename", err, host)
		}
	})
}

// TestBackendConcurrentAt writes and reads disjoint blocks of one handle from
// many goroutines, as pkg/sftp's workers do. Run with -race.
func TestBackendConcurrentAt(t *testing.T) {
	const blocks, size = 32, 1000
	forEachBackend(t, func(t *testing.T, fsys afero.Fs, _ string) {
		f, err := fsys.OpenFile("/big", os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var wg sync.WaitGroup
		for i := range blocks {
			wg.Go(func() {
				// Write in reverse order so the file grows out of order too.
				j := blocks - 1 - i
				if _, err := f.WriteAt(bytes.Repeat([]byte{byte('a' + j%26)}, size), int64(j*size)); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		for i := range blocks {
			wg.Go(func() {
				buf := make([]byte, size)
				if n, err := f.ReadAt(buf, int64(i*size)); n != size || err != nil {
					t.Errorf("ReadAt block %d = %d, %v", i, n, err)
				}
				if !bytes.Equal(buf, bytes.Repeat([]byte{byte('a' + i%26)}, size)) {
					t.Errorf("block %d has the wrong content", i)
				}
			})
		}
		wg.Wait()
		if fi, err := f.Stat(); err != nil || fi.Size() != blocks*size {
			t.Errorf("size = %v, %v", fi, err)
		}
	})
}

func TestLocate(t *testing.T) {
	base := t.TempDir()
	d, err := NewDisk(filepath.Join(base, "root"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	m := NewMemory()
	tests := []struct {
		name, disk, mem string
	}{
		{"/", filepath.Join(base, "root"), "mem:/"},
		{"a/b", filepath.Join(base, "root", "a", "b"), "mem:/a/b"},
		{"/../../etc/passwd", filepath.Join(base, "root", "etc", "passwd"), "mem:/etc/passwd"},
		{"a\x00", "", ""},
	}
	for _, tt := range tests {
		if got := d.Locate(tt.name); got != tt.disk {
			t.Errorf("Disk.Locate(%q) = %q, want %q", tt.name, got, tt.disk)
		}
		if got := m.Locate(tt.name); got != tt.mem {
			t.Errorf("Memory.Locate(%q) = %q, want %q", tt.name, got, tt.mem)
		}
	}
}

func TestInvalidNames(t *testing.T) {
	forEachBackend(t, func(t *testing.T, fsys afero.Fs, host string) {
		_, err := fsys.Open("/a\x00b")
		wantErr(t, "open with NUL", err, ErrInvalidPath, `/a\x00b`, host)
		wantErr(t, "mkdir with NUL", fsys.Mkdir("\x00", 0o750), ErrInvalidPath, `\x00`, host)
		wantErr(t, "rename with NUL", fsys.Rename("/a", "/b\x00"), ErrInvalidPath, `/b\x00`, host)
	})
}

// Package vfstest is the behaviour every storage backend shares, written once as a suite
// that each backend's tests run on a fresh instance, and the checks that go with it.
// It does not import vfs, so vfs's own (internal) tests can use it.
package vfstest

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/afero"
)

// Backend describes one backend to the suite.
type Backend struct {
	// New returns a fresh, empty backend and the strings its errors must never contain
	// (a host directory, an endpoint, a key); empty strings are ignored.
	New func(t *testing.T) (fsys afero.Fs, secrets []string)
	// FixedMode, when set, is the mode every file reports whatever Chmod asked (object
	// storage has no permissions: Chmod is accepted and ignored).
	FixedMode fs.FileMode
}

// Run runs the shared suite on b, each part on a fresh instance.
func Run(t *testing.T, b Backend) {
	t.Run("Files", func(t *testing.T) { fsys, s := b.New(t); files(t, fsys, s, b.FixedMode) })
	t.Run("Dirs", func(t *testing.T) { fsys, s := b.New(t); dirs(t, fsys, s) })
	t.Run("Rename", func(t *testing.T) { fsys, s := b.New(t); rename(t, fsys, s) })
}

// WriteFile writes data to name, failing the test on error.
func WriteFile(t testing.TB, fsys afero.Fs, name string, data []byte) {
	t.Helper()
	if err := afero.WriteFile(fsys, name, data, 0o600); err != nil {
		t.Fatalf("write %s: %v", name, err)
	}
}

// ReadFile reads name whole, failing the test on error.
func ReadFile(t testing.TB, fsys afero.Fs, name string) []byte {
	t.Helper()
	b, err := afero.ReadFile(fsys, name)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return b
}

// WantPathErr checks that err is a *fs.PathError matching kind, naming the clean backend
// name path (any name when path is ""), that contains none of secrets.
func WantPathErr(t testing.TB, what string, err, kind error, path string, secrets ...string) {
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
	NoLeak(t, what, err, secrets...)
}

// NoLeak checks that err, if any, contains none of secrets.
func NoLeak(t testing.TB, what string, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("%s: error leaks a host path, an endpoint or a key: %v", what, err)
		}
	}
}

func files(t *testing.T, fsys afero.Fs, secrets []string, fixedMode fs.FileMode) {
	wantErr := func(what string, err, kind error, path string) {
		t.Helper()
		WantPathErr(t, what, err, kind, path, secrets...)
	}
	WriteFile(t, fsys, "/a.txt", []byte("hello"))
	if got := ReadFile(t, fsys, "a.txt"); string(got) != "hello" {
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
	wantErr("write to a read-only handle", err, syscall.EBADF, "/a.txt")
	buf := make([]byte, 8)
	if n, err := f.ReadAt(buf, 2); n != 3 || err != io.EOF || string(buf[:n]) != "llo" {
		t.Errorf("short ReadAt = %d, %v, %q", n, err, buf[:n])
	}
	if n, err := f.ReadAt(buf, 99); n != 0 || err != io.EOF {
		t.Errorf("ReadAt past the end = %d, %v", n, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	wantErr("second close", f.Close(), fs.ErrClosed, "/a.txt")

	_, err = fsys.OpenFile("/a.txt", os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	wantErr("exclusive create", err, fs.ErrExist, "/a.txt")
	_, err = fsys.Open("/missing")
	wantErr("open missing", err, fs.ErrNotExist, "/missing")
	_, err = fsys.Create("/nodir/f")
	wantErr("create without parent", err, fs.ErrNotExist, "/nodir/f")
	_, err = fsys.Create("/a.txt/f")
	if err == nil {
		t.Error("create below a file succeeded")
	}
	NoLeak(t, "create below a file", err, secrets...)

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
	if err := af.Close(); err != nil {
		t.Fatal(err)
	}
	if got := ReadFile(t, fsys, "/a.txt"); string(got) != "hello world" {
		t.Errorf("after append: %q", got)
	}

	// Sub-second times survive: SFTP and FTP's MFMT carry them.
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 600, time.UTC)
	if err := fsys.Chtimes("/a.txt", mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Chmod("/a.txt", 0o640); err != nil {
		t.Fatal(err)
	}
	fi, err = fsys.Stat("/a.txt")
	wantMode := fixedMode
	if wantMode == 0 {
		wantMode = 0o640
	}
	if err != nil || !fi.ModTime().Equal(mtime) || fi.Mode().Perm() != wantMode {
		t.Errorf("after Chtimes/Chmod: %v %v, %v (want mode %v)", fi.ModTime(), fi.Mode(), err, wantMode)
	}
	if got := ReadFile(t, fsys, "/a.txt"); string(got) != "hello world" {
		t.Errorf("after Chtimes/Chmod: %q", got)
	}
}

func dirs(t *testing.T, fsys afero.Fs, secrets []string) {
	wantErr := func(what string, err, kind error, path string) {
		t.Helper()
		WantPathErr(t, what, err, kind, path, secrets...)
	}
	fi, err := fsys.Stat("/")
	if err != nil || !fi.IsDir() || fi.Name() != "/" {
		t.Fatalf("Stat(/) = %v, %v", fi, err)
	}
	if err := fsys.Mkdir("/d", 0o750); err != nil {
		t.Fatal(err)
	}
	wantErr("mkdir twice", fsys.Mkdir("d", 0o750), fs.ErrExist, "/d")
	wantErr("mkdir without parent", fsys.Mkdir("/x/y", 0o750), fs.ErrNotExist, "/x/y")
	if err := fsys.MkdirAll("/x/y/z", 0o750); err != nil {
		t.Fatal(err)
	}
	if err := fsys.MkdirAll("/x/y", 0o750); err != nil {
		t.Errorf("MkdirAll on an existing directory: %v", err)
	}
	WriteFile(t, fsys, "/d/f1", []byte("1"))
	WriteFile(t, fsys, "/d/f2", []byte("22"))
	if err := fsys.MkdirAll("/d/f1/sub", 0o750); err == nil {
		t.Error("MkdirAll through a file succeeded")
	}
	// Directories have a time (object storage: from a marker or else from when the
	// backend opened), never year 1, which wraps in SFTP's 32-bit times.
	for _, p := range []string{"/", "/x", "/x/y"} {
		if fi, err := fsys.Stat(p); err != nil || fi.ModTime().Year() < 2000 {
			t.Errorf("Stat(%s) time = %v, %v", p, fi.ModTime(), err)
		}
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
	NoLeak(t, "write to a directory", err, secrets...)
	_ = dir.Close()
	f, err := fsys.Open("/d/f1")
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Readdir(-1)
	wantErr("Readdir on a file", err, syscall.ENOTDIR, "/d/f1")
	_ = f.Close()
	_, err = fsys.OpenFile("/d", os.O_WRONLY, 0)
	wantErr("open a directory for writing", err, syscall.EISDIR, "/d")

	wantErr("remove non-empty", fsys.Remove("/d"), syscall.ENOTEMPTY, "/d")
	wantErr("remove root", fsys.Remove("/"), fs.ErrPermission, "/")
	wantErr("removeall root", fsys.RemoveAll(".."), fs.ErrPermission, "/")
	wantErr("remove missing", fsys.Remove("/nope"), fs.ErrNotExist, "/nope")
	if err := fsys.Remove("/d/f2"); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Remove("/d/f1"); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Remove("/d"); err != nil {
		t.Fatalf("rmdir of an emptied directory: %v", err)
	}
	if err := fsys.RemoveAll("/x"); err != nil {
		t.Fatal(err)
	}
	if err := fsys.RemoveAll("/x"); err != nil {
		t.Errorf("RemoveAll of a missing name: %v", err)
	}
	for _, p := range []string{"/d", "/x/y/z", "/x"} {
		if _, err := fsys.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Stat(%s) after removal: %v", p, err)
		}
	}
}

func rename(t *testing.T, fsys afero.Fs, secrets []string) {
	wantErr := func(what string, err, kind error, path string) {
		t.Helper()
		WantPathErr(t, what, err, kind, path, secrets...)
	}
	WriteFile(t, fsys, "/a", []byte("A"))
	WriteFile(t, fsys, "/b", []byte("B"))
	if err := fsys.Rename("a", "/b"); err != nil {
		t.Fatal(err)
	}
	if got := ReadFile(t, fsys, "/b"); string(got) != "A" {
		t.Errorf("rename over a file: /b = %q", got)
	}
	wantErr("rename missing", fsys.Rename("/a", "/c"), fs.ErrNotExist, "/a")
	wantErr("rename root", fsys.Rename("/", "/c"), fs.ErrPermission, "/")
	if err := fsys.MkdirAll("/d1/sub", 0o750); err != nil {
		t.Fatal(err)
	}
	WriteFile(t, fsys, "/d1/sub/f", []byte("F"))
	if err := fsys.Mkdir("/d2", 0o750); err != nil {
		t.Fatal(err)
	}
	wantErr("rename over a directory", fsys.Rename("/d1", "/d2"), fs.ErrExist, "")
	if err := fsys.Remove("/d2"); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Rename("/d1", "/d2"); err != nil {
		t.Fatalf("rename a directory: %v", err)
	}
	if got := ReadFile(t, fsys, "/d2/sub/f"); string(got) != "F" {
		t.Errorf("after directory rename: %q", got)
	}
	for _, p := range []string{"/d1/sub/f", "/d1"} {
		if _, err := fsys.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("old name %s still there: %v", p, err)
		}
	}
	for _, bad := range [][2]string{{"/b", "/d2"}, {"/d2", "/b"}, {"/d2", "/d2/sub/x"}, {"/b", "/nodir/b"}} {
		err := fsys.Rename(bad[0], bad[1])
		if err == nil {
			t.Errorf("Rename(%q, %q) succeeded", bad[0], bad[1])
		}
		NoLeak(t, "rename", err, secrets...)
	}
}

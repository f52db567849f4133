package vfs

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const secret = "TOP-SECRET"

// jail is a Disk at base/root next to base/outside, which holds a secret the
// backend must never reveal.
type jail struct {
	d       *Disk
	base    string // the temp dir: no error may mention it
	root    string
	outside string
}

func newJail(t *testing.T) *jail {
	t.Helper()
	base := t.TempDir()
	j := &jail{base: base, root: filepath.Join(base, "root"), outside: filepath.Join(base, "outside")}
	if err := os.MkdirAll(j.outside, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(j.outside, "secret.txt"), []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := NewDisk(j.root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	j.d = d
	return j
}

// plant creates a symbolic link directly on the host, as someone with host
// access could.
func (j *jail) plant(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, filepath.Join(j.root, link)); err != nil {
		t.Fatal(err)
	}
}

// mustFail checks that an operation failed, mentions no host path and did not
// return the secret.
func (j *jail) mustFail(t *testing.T, what string, err error, kind error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: succeeded", what)
		return
	}
	if kind != nil && !errors.Is(err, kind) {
		t.Errorf("%s: error %v does not match %v", what, err, kind)
	}
	j.noLeak(t, what, err)
}

// noLeak checks err for host paths. The root must never appear; the rest of
// the temp dir may appear only when the client typed it (it is then a name
// inside the backend, echoed back).
func (j *jail) noLeak(t *testing.T, what string, err error) {
	t.Helper()
	noLeak(t, what, err, j.root)
	if !strings.Contains(what, j.base) {
		noLeak(t, what, err, j.base)
	}
}

// tryRead opens and reads name, failing the test if the secret comes back.
func (j *jail) tryRead(t *testing.T, name string) error {
	t.Helper()
	f, err := j.d.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if strings.Contains(string(b), secret) {
		t.Fatalf("read the secret through %q", name)
	}
	if err == nil {
		return errors.New("opened and read without error")
	}
	return err
}

func TestDiskDotDotAndHostPaths(t *testing.T) {
	j := newJail(t)
	names := []string{
		"../outside/secret.txt",
		"/../outside/secret.txt",
		"a/../../outside/secret.txt",
		"../../../../../../" + j.outside + "/secret.txt",
		filepath.Join(j.outside, "secret.txt"),
		"/etc/passwd",
		"../../../../../../../etc/passwd",
	}
	for _, name := range names {
		j.mustFail(t, "open "+name, j.tryRead(t, name), fs.ErrNotExist)
		_, err := j.d.Stat(name)
		j.mustFail(t, "stat "+name, err, fs.ErrNotExist)
	}
}

func TestDiskPlantedSymlinks(t *testing.T) {
	j := newJail(t)
	hostSecret := filepath.Join(j.outside, "secret.txt")
	j.plant(t, hostSecret, "abs")
	j.plant(t, "../outside/secret.txt", "rel")
	j.plant(t, j.outside, "absdir")
	j.plant(t, "../outside", "reldir")
	j.plant(t, "rel", "chain1")    // chain1 -> rel -> outside
	j.plant(t, "chain1", "chain2") // chain2 -> chain1 -> rel -> outside
	// An absolute link back into the root is refused too: os.Root follows
	// only relative links, so no link depends on where the root is mounted.
	if err := os.WriteFile(filepath.Join(j.root, "inside.txt"), []byte("ok"), 0o600); err != nil {
		t.Fatal(err)
	}
	j.plant(t, filepath.Join(j.root, "inside.txt"), "absinside")

	for _, name := range []string{"/abs", "/rel", "/chain1", "/chain2", "/absdir/secret.txt", "/reldir/secret.txt", "/absinside"} {
		j.mustFail(t, "open "+name, j.tryRead(t, name), fs.ErrPermission)
		_, err := j.d.Stat(name)
		j.mustFail(t, "stat "+name, err, fs.ErrPermission)
		_, err = j.d.OpenFile(name, os.O_WRONLY|os.O_TRUNC, 0)
		j.mustFail(t, "open for writing "+name, err, nil)
	}
	for _, name := range []string{"/abs", "/rel", "/absdir", "/reldir", "/absinside"} {
		_, err := j.d.ReadlinkIfPossible(name)
		j.mustFail(t, "readlink "+name, err, fs.ErrPermission)
		fi, _, err := j.d.LstatIfPossible(name)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			t.Errorf("lstat %s = %v, %v; want the link itself", name, fi, err)
		}
	}

	// List the root and open every entry, as a client mirroring the tree
	// would: only the honest file can be read.
	dir, err := j.d.Open("/")
	if err != nil {
		t.Fatal(err)
	}
	names, err := dir.Readdirnames(-1)
	_ = dir.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		err := j.tryRead(t, "/"+n)
		if n == "inside.txt" {
			continue
		}
		j.mustFail(t, "open listed "+n, err, nil)
	}

	// Nothing can be created, listed or changed through a link to a
	// directory outside.
	for _, dirLink := range []string{"/absdir", "/reldir"} {
		_, err := j.d.Create(dirLink + "/new.txt")
		j.mustFail(t, "create in "+dirLink, err, nil)
		j.mustFail(t, "mkdir in "+dirLink, j.d.Mkdir(dirLink+"/sub", 0o750), nil)
		j.mustFail(t, "mkdirall in "+dirLink, j.d.MkdirAll(dirLink+"/a/b", 0o750), nil)
		j.mustFail(t, "remove in "+dirLink, j.d.Remove(dirLink+"/secret.txt"), nil)
		j.mustFail(t, "chmod in "+dirLink, j.d.Chmod(dirLink+"/secret.txt", 0o777), nil)
		j.mustFail(t, "rename into "+dirLink, j.d.Rename("/inside.txt", dirLink+"/moved"), nil)
		_, err = j.d.Open(dirLink)
		j.mustFail(t, "list "+dirLink, err, fs.ErrPermission)
		_, err = j.d.StatFS(dirLink)
		j.mustFail(t, "statfs "+dirLink, err, nil)
	}
	if err := j.d.RemoveAll("/absdir"); err != nil {
		t.Errorf("RemoveAll of a link: %v", err)
	}
	entries, err := os.ReadDir(j.outside)
	if err != nil || len(entries) != 1 {
		t.Fatalf("outside was changed: %v, %v", entries, err)
	}
	if b, err := os.ReadFile(filepath.Join(j.outside, "secret.txt")); err != nil || string(b) != secret {
		t.Fatalf("secret was changed: %q, %v", b, err)
	}
	if fi, err := os.Stat(filepath.Join(j.outside, "secret.txt")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret's mode was changed: %v, %v", fi, err)
	}
}

func TestDiskSymlinkCreation(t *testing.T) {
	j := newJail(t)
	if err := j.d.MkdirAll("/d/e", 0o750); err != nil {
		t.Fatal(err)
	}
	writeFile(t, j.d, "/d/file", "data")

	for _, tt := range []struct{ target, link string }{
		{"../outside/secret.txt", "/l1"},
		{"/../outside/secret.txt", "/l2"},
		{"../../x", "/d/l3"},
		{"e/../../../outside", "/d/l4"},
		{"..", "/l5"},
		{filepath.Join("..", "..", "..", j.outside), "/d/e/l6"},
	} {
		err := j.d.SymlinkIfPossible(tt.target, tt.link)
		j.mustFail(t, "symlink "+tt.link+" -> "+tt.target, err, fs.ErrPermission)
		if _, err := os.Lstat(filepath.Join(j.root, tt.link)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("refused link %s exists on disk", tt.link)
		}
	}
	_, err := j.d.ReadlinkIfPossible("/d/file")
	j.mustFail(t, "readlink of a file", err, nil)

	for _, tt := range []struct{ target, link, stored, readBack string }{
		{"/d/file", "/l-abs", "d/file", "/d/file"},
		{"/d/file", "/d/e/l-abs", "../file", "/d/file"},
		{"file", "/d/l-rel", "file", "/d/file"},
		{"../file", "/d/e/l-up", "../file", "/d/file"},
		{"/", "/d/e/l-root", "../..", "/"},
		// A host path is a path inside the backend like any other.
		{filepath.Join(j.outside, "secret.txt"), "/l-host", strings.TrimPrefix(filepath.Join(j.outside, "secret.txt"), "/"), filepath.Join(j.outside, "secret.txt")},
	} {
		if err := j.d.SymlinkIfPossible(tt.target, tt.link); err != nil {
			t.Errorf("symlink %s -> %s: %v", tt.link, tt.target, err)
			continue
		}
		if got, err := os.Readlink(filepath.Join(j.root, tt.link)); err != nil || got != tt.stored {
			t.Errorf("link %s stored as %q, %v; want %q", tt.link, got, err, tt.stored)
		}
		if got, err := j.d.ReadlinkIfPossible(tt.link); err != nil || got != tt.readBack {
			t.Errorf("readlink %s = %q, %v; want %q", tt.link, got, err, tt.readBack)
		}
	}
	for _, l := range []string{"/l-abs", "/d/e/l-abs", "/d/l-rel", "/d/e/l-up"} {
		if got := readFile(t, j.d, l); got != "data" {
			t.Errorf("read through %s = %q", l, got)
		}
	}
	j.mustFail(t, "read through /l-host", j.tryRead(t, "/l-host"), fs.ErrNotExist)
	j.mustFail(t, "symlink over a file", j.d.SymlinkIfPossible("/d", "/d/file"), fs.ErrExist)
	j.mustFail(t, "symlink at the root", j.d.SymlinkIfPossible("/d", "/"), fs.ErrExist)
}

func TestDiskHardlinks(t *testing.T) {
	j := newJail(t)
	writeFile(t, j.d, "/f", "data")
	if err := j.d.Link("/f", "/g"); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, j.d, "/g"); got != "data" {
		t.Errorf("hard link reads %q", got)
	}
	for _, old := range []string{"../outside/secret.txt", "/../outside/secret.txt", filepath.Join(j.outside, "secret.txt")} {
		j.mustFail(t, "link "+old, j.d.Link(old, "/h"), fs.ErrNotExist)
	}
	j.mustFail(t, "link to outside", j.d.Link("/f", "../outside/h"), fs.ErrNotExist)
	if _, err := os.Stat(filepath.Join(j.outside, "h")); !errors.Is(err, fs.ErrNotExist) {
		t.Error("hard link created outside the root")
	}
	// Linking a planted link copies the link, which stays unfollowable.
	j.plant(t, "../outside/secret.txt", "evil")
	if err := j.d.Link("/evil", "/evil2"); err == nil {
		j.mustFail(t, "read through a linked link", j.tryRead(t, "/evil2"), fs.ErrPermission)
	} else {
		j.noLeak(t, "link a planted link", err)
	}
	j.mustFail(t, "link the root", j.d.Link("/", "/r"), fs.ErrPermission)
}

func TestDiskRenameStaysInside(t *testing.T) {
	j := newJail(t)
	writeFile(t, j.d, "/f.txt", "data")
	j.mustFail(t, "rename to ../outside", j.d.Rename("/f.txt", "../outside/moved.txt"), fs.ErrNotExist)
	if err := j.d.Mkdir("/outside", 0o750); err != nil {
		t.Fatal(err)
	}
	if err := j.d.Rename("/f.txt", "../outside/moved.txt"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(j.root, "outside", "moved.txt")); err != nil {
		t.Errorf("renamed file not inside the root: %v", err)
	}
	if _, err := os.Stat(filepath.Join(j.outside, "moved.txt")); !errors.Is(err, fs.ErrNotExist) {
		t.Error("rename escaped the root")
	}
	j.mustFail(t, "rename from ../outside", j.d.Rename("../../outside/secret.txt", "/stolen"), fs.ErrNotExist)
}

func TestDiskErrorsAndFilesHideHostPaths(t *testing.T) {
	j := newJail(t)
	if err := j.d.Mkdir("/d", 0o750); err != nil {
		t.Fatal(err)
	}
	writeFile(t, j.d, "/d/f", "data")
	f, err := j.d.Open("/d")
	if err != nil {
		t.Fatal(err)
	}
	if f.Name() != "/d" {
		t.Errorf("Name() = %q", f.Name())
	}
	_, rerr := f.Read(make([]byte, 4))
	_, werr := f.Write([]byte("x"))
	terr := f.Truncate(0)
	_ = f.Close()
	_, cerr := f.Stat()
	ff, err := j.d.Open("/d/f")
	if err != nil {
		t.Fatal(err)
	}
	_, derr := ff.Readdir(-1)
	_ = ff.Close()
	_, _, lerr := j.d.LstatIfPossible("/nope")
	_, rlerr := j.d.ReadlinkIfPossible("/nope")
	_, serr := j.d.StatFS("/nope")
	for what, err := range map[string]error{
		"read a directory":  rerr,
		"write a directory": werr,
		"truncate":          terr,
		"stat closed":       cerr,
		"readdir a file":    derr,
		"lstat":             lerr,
		"readlink":          rlerr,
		"statfs":            serr,
		"chown":             j.d.Chown("/d/f", 0, 0),
		"chmod missing":     j.d.Chmod("/nope", 0o600),
		"chtimes missing":   j.d.Chtimes("/nope", jTime, jTime),
		"mkdir over file":   j.d.Mkdir("/d/f", 0o750),
		"mkdirall missing":  j.d.MkdirAll("/d/f/x", 0o750),
		"removeall nested":  j.d.RemoveAll("/d/f/x"),
	} {
		if err == nil {
			if what != "removeall nested" {
				t.Errorf("%s: no error", what)
			}
			continue
		}
		var pe *fs.PathError
		if !errors.As(err, &pe) || !strings.HasPrefix(pe.Path, "/") {
			t.Errorf("%s: %T %v is not a *fs.PathError with a backend path", what, err, err)
		}
		j.noLeak(t, what, err)
	}
	if !errors.Is(j.d.Chown("/d/f", 0, 0), fs.ErrPermission) {
		t.Error("Chown is not refused")
	}
}

func TestDiskStatFS(t *testing.T) {
	j := newJail(t)
	st, err := j.d.StatFS("/")
	if err != nil {
		t.Fatal(err)
	}
	if st.BlockSize == 0 || st.Blocks == 0 || st.BlocksAvail > st.Blocks || st.NameMax == 0 {
		t.Errorf("implausible StatFS: %+v", st)
	}
}

func TestNewDiskCreatesRoot(t *testing.T) {
	root := filepath.Join(t.TempDir(), "a", "b")
	d, err := NewDisk(root)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	fi, err := os.Stat(root)
	if err != nil || !fi.IsDir() {
		t.Fatalf("root not created: %v", err)
	}
	if _, err := NewDisk(filepath.Join(root, "..", "..", "a", "b", "x\x00")); err == nil {
		t.Error("NewDisk with a NUL byte succeeded")
	}
}

var jTime = time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)

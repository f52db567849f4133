package vfs

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"strings"
	"testing"

	"github.com/spf13/afero"
)

func TestIsTempName(t *testing.T) {
	for base, want := range map[string]bool{
		TempPrefix + "0123-a.txt": true,
		TempPrefix:                true,
		".wharf-upload":           false,
		"a.txt":                   false,
		"x" + TempPrefix:          false,
	} {
		if got := IsTempName(base); got != want {
			t.Errorf("IsTempName(%q) = %v", base, got)
		}
	}
}

// dirNames lists dir, failing the test on error.
func dirNames(t *testing.T, fsys afero.Fs, dir string) []string {
	t.Helper()
	fis, err := afero.ReadDir(fsys, dir)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, len(fis))
	for i, fi := range fis {
		names[i] = fi.Name()
	}
	return names
}

func TestAtomicPublishReplaces(t *testing.T) {
	forEachBackend(t, func(t *testing.T, fsys afero.Fs, _ string) {
		if err := fsys.Mkdir("/up", 0o750); err != nil {
			t.Fatal(err)
		}
		writeFile(t, fsys, "/up/f.txt", "old")
		a, err := CreateAtomic(fsys, "up/f.txt", 0o600)
		if err != nil {
			t.Fatal(err)
		}
		dir, base := path.Split(a.TempName())
		if dir != "/up/" || !IsTempName(base) || !strings.HasSuffix(base, "-f.txt") {
			t.Errorf("TempName() = %q", a.TempName())
		}
		if fi, err := fsys.Stat(a.TempName()); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("temp file: %v, %v", fi, err)
		}
		if _, err := a.WriteString("new content"); err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, fsys, "/up/f.txt"); got != "old" {
			t.Errorf("final name changed before Publish: %q", got)
		}
		if err := a.Publish(); err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, fsys, "/up/f.txt"); got != "new content" {
			t.Errorf("after Publish: %q", got)
		}
		if names := dirNames(t, fsys, "/up"); len(names) != 1 {
			t.Errorf("leftovers after Publish: %q", names)
		}
		if err := a.Publish(); err == nil {
			t.Error("second Publish succeeded")
		}
		if err := a.Discard(); err == nil {
			t.Error("Discard after Publish succeeded")
		}
		if got := readFile(t, fsys, "/up/f.txt"); got != "new content" {
			t.Errorf("after the second Publish: %q", got)
		}
	})
}

func TestAtomicAbort(t *testing.T) {
	tests := []struct {
		name  string
		abort func(a *AtomicFile) error
	}{
		{"discard open", func(a *AtomicFile) error { return a.Discard() }},
		{"close then discard", func(a *AtomicFile) error {
			if err := a.Close(); err != nil {
				return err
			}
			return a.Discard()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, fsys afero.Fs, _ string) {
				a, err := CreateAtomic(fsys, "/f.txt", 0o600)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := a.Write([]byte("partial")); err != nil {
					t.Fatal(err)
				}
				if err := tt.abort(a); err != nil {
					t.Fatalf("%s: %v", tt.name, err)
				}
				if names := dirNames(t, fsys, "/"); len(names) != 0 {
					t.Errorf("%s: leftovers %q", tt.name, names)
				}
				if err := a.Publish(); err == nil {
					t.Errorf("%s: Publish after Discard succeeded", tt.name)
				}
				if _, err := fsys.Stat("/f.txt"); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("%s: final name exists: %v", tt.name, err)
				}
			})
		})
	}
}

// Unlink removes the temporary name while the file stays open (writes still land, in a file
// no name reaches); the upload can then only be discarded, which has nothing left to remove.
func TestAtomicUnlink(t *testing.T) {
	for _, then := range []string{"publish", "discard"} {
		t.Run(then, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, fsys afero.Fs, _ string) {
				if err := fsys.Mkdir("/up", 0o750); err != nil {
					t.Fatal(err)
				}
				a, err := CreateAtomic(fsys, "/up/f.txt", 0o600)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := a.Write([]byte("partial")); err != nil {
					t.Fatal(err)
				}
				if err := a.Unlink(); err != nil {
					t.Fatal(err)
				}
				if names := dirNames(t, fsys, "/up"); len(names) != 0 {
					t.Errorf("after Unlink the folder holds %q", names)
				}
				if err := a.Unlink(); err != nil {
					t.Errorf("second Unlink: %v", err)
				}
				if _, err := a.Write([]byte(" more")); err != nil {
					t.Errorf("a write after Unlink: %v", err)
				}
				if then == "publish" {
					if err := a.Publish(); err == nil {
						t.Error("Publish after Unlink succeeded")
					}
				} else if err := a.Discard(); err != nil {
					t.Errorf("Discard after Unlink: %v", err)
				}
				if _, err := fsys.Stat("/up/f.txt"); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("final name exists: %v", err)
				}
				if err := fsys.Remove("/up"); err != nil {
					t.Errorf("removing the emptied folder: %v", err)
				}
			})
		})
	}
}

func TestAtomicCloseDoesNotPublish(t *testing.T) {
	forEachBackend(t, func(t *testing.T, fsys afero.Fs, _ string) {
		a, err := CreateAtomic(fsys, "/f.txt", 0o600)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Write([]byte("data")); err != nil {
			t.Fatal(err)
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		if err := a.Close(); !errors.Is(err, fs.ErrClosed) {
			t.Errorf("second Close: %v", err)
		}
		if _, err := fsys.Stat("/f.txt"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Close published: %v", err)
		}
		if err := a.Publish(); err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, fsys, "/f.txt"); got != "data" {
			t.Errorf("after Close and Publish: %q", got)
		}
	})
}

func TestAtomicConcurrentUploadsOfOneName(t *testing.T) {
	forEachBackend(t, func(t *testing.T, fsys afero.Fs, _ string) {
		a, err := CreateAtomic(fsys, "/f", 0o600)
		if err != nil {
			t.Fatal(err)
		}
		b, err := CreateAtomic(fsys, "/f", 0o600)
		if err != nil {
			t.Fatal(err)
		}
		if a.TempName() == b.TempName() {
			t.Fatal("two uploads share a temp file")
		}
		_, _ = a.WriteString("A")
		_, _ = b.WriteString("B")
		if err := a.Publish(); err != nil {
			t.Fatal(err)
		}
		if err := b.Publish(); err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, fsys, "/f"); got != "B" {
			t.Errorf("last Publish should win, got %q", got)
		}
	})
}

func TestAtomicErrors(t *testing.T) {
	forEachBackend(t, func(t *testing.T, fsys afero.Fs, host string) {
		_, err := CreateAtomic(fsys, "/", 0o600)
		wantErr(t, "root", err, fs.ErrInvalid, "/", host)
		_, err = CreateAtomic(fsys, "/nodir/f", 0o600)
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("missing parent: %v", err)
		}
		noLeak(t, "missing parent", err, host)
		_, err = CreateAtomic(NewReadOnly(fsys), "/f", 0o600)
		wantErr(t, "read-only", err, fs.ErrPermission, "", host)
		_, err = CreateAtomic(fsys, "/f\x00", 0o600)
		wantErr(t, "NUL", err, ErrInvalidPath, "", host)

		long := strings.Repeat("é", 127) // 254 bytes, a legal base name
		a, err := CreateAtomic(fsys, "/"+long, 0o600)
		if err != nil {
			t.Fatalf("long name: %v", err)
		}
		if base := path.Base(a.TempName()); len(base) > nameMax || !strings.HasPrefix(base, TempPrefix) {
			t.Errorf("temp base name of %d bytes: %q", len(base), base)
		}
		if err := a.Publish(); err != nil {
			t.Fatal(err)
		}
		if _, err := fsys.Stat("/" + long); err != nil {
			t.Error(err)
		}

		// Publishing over a directory fails and leaves no temp file.
		if err := fsys.Mkdir("/dir", 0o750); err != nil {
			t.Fatal(err)
		}
		a, err = CreateAtomic(fsys, "/dir", 0o600)
		if err != nil {
			t.Fatal(err)
		}
		err = a.Publish()
		if err == nil {
			t.Error("Publish over a directory succeeded")
		}
		noLeak(t, "publish over a directory", err, host)
		for _, n := range dirNames(t, fsys, "/") {
			if IsTempName(n) {
				t.Errorf("temp file %q left behind", n)
			}
		}
	})
}

// In a subdirectory of a Disk the upload works in the directory opened once: errors still
// name the full paths, no host path, and every upload releases the directory it opened.
func TestAtomicDiskSubdirectory(t *testing.T) {
	host := t.TempDir()
	d, err := NewDisk(host)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.MkdirAll("/sub/dir", 0o750); err != nil {
		t.Fatal(err)
	}
	fds := func() int {
		des, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skip("no /proc/self/fd")
		}
		return len(des)
	}
	// The Disk keeps one descriptor of its root from its first upload on (openUploadDir).
	if a, err := CreateAtomic(d, "/sub/warm.txt", 0o600); err != nil || a.Discard() != nil {
		t.Fatal("warm-up upload", err)
	}
	before := fds()
	for i := range 50 {
		a, err := CreateAtomic(d, "/sub/f.txt", 0o600)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(a.TempName(), "/sub/"+TempPrefix) {
			t.Fatalf("TempName() = %q", a.TempName())
		}
		if _, err := a.WriteString("data"); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			err = a.Publish()
		} else {
			err = a.Discard()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if after := fds(); after > before {
		t.Errorf("%d descriptors open after 50 uploads, %d before", after, before)
	}
	if names := dirNames(t, d, "/sub"); len(names) != 2 { // dir, f.txt
		t.Errorf("/sub holds %q", names)
	}

	// Publishing over a directory fails, names the full paths, and leaves nothing behind.
	a, err := CreateAtomic(d, "/sub/dir", 0o600)
	if err != nil {
		t.Fatal(err)
	}
	err = a.Publish()
	if err == nil || !strings.Contains(err.Error(), "/sub/"+TempPrefix) {
		t.Errorf("publish over a directory: %v", err)
	}
	noLeak(t, "publish over a directory", err, host)
	for _, n := range dirNames(t, d, "/sub") {
		if IsTempName(n) {
			t.Errorf("temp file %q left behind", n)
		}
	}

	// A parent that is a file, or missing, fails at once.
	_, err = CreateAtomic(d, "/sub/f.txt/x", 0o600)
	if err == nil {
		t.Error("upload under a file succeeded")
	}
	noLeak(t, "parent is a file", err, host)
	_, err = CreateAtomic(d, "/nodir/x", 0o600)
	wantErr(t, "missing parent", err, fs.ErrNotExist, "", host)
}

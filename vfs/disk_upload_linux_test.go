//go:build linux

package vfs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// newUploadDisk is a Disk at host/root with sub/ and a file outside the root, host/outside/o.
func newUploadDisk(t *testing.T) (*Disk, string) {
	t.Helper()
	host := t.TempDir()
	for _, d := range []string{"root/sub/deep", "outside"} {
		if err := os.MkdirAll(filepath.Join(host, d), 0o750); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(host, "outside", "o"), []byte("outside"), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := NewDisk(filepath.Join(host, "root"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d, host
}

// The fast path is the one the uploads take on Linux (the other atomic tests then run on it);
// without it they would pass on os.Root alone.
func TestUploadDirIsUsed(t *testing.T) {
	d, _ := newUploadDisk(t)
	for _, dir := range []string{"/", "/sub", "/sub/deep"} {
		ud, err := d.openUploadDir(dir)
		if err != nil {
			t.Fatalf("openUploadDir(%q): %v", dir, err)
		}
		if err := ud.Close(); err != nil {
			t.Error(err)
		}
	}
	tg := PrepareAtomic(d, "/sub/f")
	defer tg.Close()
	if _, ok := tg.dir.(*uploadDir); !ok {
		t.Fatalf("PrepareAtomic on a Disk uses %T, not the upload directory", tg.dir)
	}
}

// The upload directory is jailed like os.Root: a directory reached through a symbolic link
// that leaves the root, relative or absolute, takes no upload and nothing appears outside; a
// link that stays inside is followed.
func TestUploadDirStaysInsideTheRoot(t *testing.T) {
	d, host := newUploadDisk(t)
	root := filepath.Join(host, "root")
	for name, target := range map[string]string{
		"rel-out": "../outside",
		"abs-out": filepath.Join(host, "outside"),
		"abs-in":  filepath.Join(root, "sub"), // os.Root refuses absolute links too
		"in":      "sub/deep",
	} {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"rel-out", "abs-out", "abs-in"} {
		a, err := CreateAtomic(d, "/"+name+"/f", 0o600)
		if err == nil {
			_ = a.Discard()
			t.Errorf("upload through %s succeeded", name)
			continue
		}
		noLeak(t, name, err, host)
		if _, serr := d.Stat("/" + name + "/f"); serr == nil {
			t.Errorf("%s/f exists", name)
		}
	}
	if des, err := os.ReadDir(filepath.Join(host, "outside")); err != nil || len(des) != 1 {
		t.Errorf("outside holds %v (%v)", des, err)
	}
	a, err := CreateAtomic(d, "/in/f", 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.WriteString("inside"); err != nil {
		t.Fatal(err)
	}
	if err := a.Publish(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "sub", "deep", "f")); err != nil || string(b) != "inside" {
		t.Errorf("sub/deep/f = %q, %v", b, err)
	}
}

// AtomicTarget.Stat answers as the Disk's Stat does, symbolic links included.
func TestAtomicTargetStat(t *testing.T) {
	d, host := newUploadDisk(t)
	root := filepath.Join(host, "root")
	if err := os.WriteFile(filepath.Join(root, "sub", "file"), []byte("12345"), 0o640); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{
		"sub/link-in":  "file",
		"sub/link-out": "../../outside/o",
		"sub/link-dir": "deep",
	} {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"/sub/file", "/sub/missing", "/sub/deep", "/sub/link-in", "/sub/link-out", "/sub/link-dir", "/file-at-root"} {
		tg := PrepareAtomic(d, name)
		got, gerr := tg.Stat()
		if err := tg.Close(); err != nil {
			t.Error(err)
		}
		want, werr := d.Stat(name)
		if (gerr == nil) != (werr == nil) || (gerr != nil && errors.Is(gerr, fs.ErrNotExist) != errors.Is(werr, fs.ErrNotExist)) {
			t.Errorf("%s: Stat error %v, the Disk's %v", name, gerr, werr)
			continue
		}
		if gerr != nil {
			noLeak(t, name, gerr, host)
			continue
		}
		if got.Name() != want.Name() || got.Size() != want.Size() || got.Mode() != want.Mode() ||
			!got.ModTime().Equal(want.ModTime()) || LinkCount(got) != LinkCount(want) || !SameFile(got, want) {
			t.Errorf("%s: Stat %s %d %v %v, the Disk's %s %d %v %v", name, got.Name(), got.Size(), got.Mode(),
				got.ModTime(), want.Name(), want.Size(), want.Mode(), want.ModTime())
		}
	}
}

// A target given back without an upload releases its directory.
func TestAtomicTargetCloseReleases(t *testing.T) {
	d, _ := newUploadDisk(t)
	fds := func() int {
		des, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skip("no /proc/self/fd")
		}
		return len(des)
	}
	PrepareAtomic(d, "/sub/warm").Close() // the Disk's root descriptor, kept from now on
	before := fds()
	for range 50 {
		tg := PrepareAtomic(d, "/sub/deep/f")
		if _, err := tg.Stat(); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Stat of a missing name: %v", err)
		}
		if err := tg.Close(); err != nil {
			t.Fatal(err)
		}
		if err := tg.Close(); err != nil { // twice is harmless
			t.Fatal(err)
		}
	}
	if _, err := PrepareAtomic(d, "/sub/\x00").Create(0o600); err == nil { // a bad name releases too
		t.Error("upload of a name with NUL succeeded")
	}
	if after := fds(); after != before {
		t.Errorf("%d descriptors open after 50 targets, %d before", after, before)
	}
}

// After Close no upload starts, through the upload directory or os.Root.
func TestUploadAfterDiskClose(t *testing.T) {
	d, host := newUploadDisk(t)
	PrepareAtomic(d, "/sub/warm").Close() // the root descriptor is open
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.openUploadDir("/sub"); err == nil {
		t.Error("openUploadDir after Close succeeded")
	}
	if a, err := CreateAtomic(d, "/sub/f", 0o600); err == nil {
		_ = a.Discard()
		t.Error("upload after Close succeeded")
	}
	if des, err := os.ReadDir(filepath.Join(host, "root", "sub")); err != nil || len(des) != 1 {
		t.Errorf("sub holds %v (%v)", des, err)
	}
}

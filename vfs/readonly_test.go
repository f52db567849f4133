package vfs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spf13/afero"
)

func TestReadOnlyDeniesMutations(t *testing.T) {
	forEachBackend(t, func(t *testing.T, inner afero.Fs, host string) {
		writeFile(t, inner, "/f", "data")
		if err := inner.Mkdir("/d", 0o750); err != nil {
			t.Fatal(err)
		}
		ro := NewReadOnly(inner)
		now := time.Now()
		openErr := func(flag int) error {
			_, err := ro.OpenFile("/f", flag, 0o600)
			return err
		}
		tests := []struct {
			op  string
			err error
		}{
			{"create", func() error { _, err := ro.Create("/new"); return err }()},
			{"open wronly", openErr(os.O_WRONLY)},
			{"open rdwr", openErr(os.O_RDWR)},
			{"open append", openErr(os.O_RDONLY | os.O_APPEND)},
			{"open trunc", openErr(os.O_RDONLY | os.O_TRUNC)},
			{"open create", openErr(os.O_RDONLY | os.O_CREATE)},
			{"mkdir", ro.Mkdir("/d2", 0o750)},
			{"mkdirall", ro.MkdirAll("/d2/x", 0o750)},
			{"remove", ro.Remove("/f")},
			{"removeall", ro.RemoveAll("/d")},
			{"rename", ro.Rename("/f", "/g")},
			{"chmod", ro.Chmod("/f", 0o777)},
			{"chown", ro.Chown("/f", 1, 1)},
			{"chtimes", ro.Chtimes("/f", now, now)},
			{"symlink", ro.(afero.Linker).SymlinkIfPossible("/f", "/l")},
			{"link", ro.(HardLinker).Link("/f", "/h")},
		}
		for _, tt := range tests {
			wantErr(t, tt.op, tt.err, fs.ErrPermission, "", host)
		}
		if got := readFile(t, inner, "/f"); got != "data" {
			t.Errorf("content changed to %q", got)
		}
		if _, err := inner.Stat("/d"); err != nil {
			t.Errorf("directory removed: %v", err)
		}

		if got := readFile(t, ro, "/f"); got != "data" {
			t.Errorf("read through the wrapper: %q", got)
		}
		f, err := ro.Open("/f")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		_, werr := f.WriteAt([]byte("x"), 0)
		_, wserr := f.WriteString("x")
		wantErr(t, "write to an open file", werr, fs.ErrPermission, "/f", host)
		wantErr(t, "write string", wserr, fs.ErrPermission, "/f", host)
		wantErr(t, "truncate", f.Truncate(0), fs.ErrPermission, "/f", host)
		if _, err := ro.Stat("/d"); err != nil {
			t.Error(err)
		}
		if fis, err := afero.ReadDir(ro, "/"); err != nil || len(fis) != 2 {
			t.Errorf("ReadDir through the wrapper: %v, %v", fis, err)
		}
	})
}

func TestReadOnlyCapabilities(t *testing.T) {
	d, err := NewDisk(filepath.Join(t.TempDir(), "root"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	tests := []struct {
		name                    string
		inner                   afero.Fs
		locator, space, linkRdr bool
	}{
		{"disk", d, true, true, true},
		{"memory", NewMemory(), true, false, false},
		{"memmap", afero.NewMemMapFs(), false, false, false},
		{"space only", spaceOnly{NewMemory()}, false, true, false},
	}
	for _, tt := range tests {
		ro := NewReadOnly(tt.inner)
		_, loc := ro.(Locator)
		_, space := ro.(SpaceStater)
		if loc != tt.locator || space != tt.space {
			t.Errorf("%s: Locator %v, SpaceStater %v; want %v, %v", tt.name, loc, space, tt.locator, tt.space)
		}
		if _, ok := ro.(afero.Lstater); !ok {
			t.Errorf("%s: not an afero.Lstater", tt.name)
		}
		_, err := ro.(afero.LinkReader).ReadlinkIfPossible("/nope")
		if tt.linkRdr != !errors.Is(err, afero.ErrNoReadlink) {
			t.Errorf("%s: readlink error %v", tt.name, err)
		}
	}

	writeFile(t, d, "/f", "data")
	if err := d.SymlinkIfPossible("/f", "/l"); err != nil {
		t.Fatal(err)
	}
	ro := NewReadOnly(d)
	if got := ro.(Locator).Locate("/f"); got != d.Locate("/f") {
		t.Errorf("Locate = %q", got)
	}
	if _, err := ro.(SpaceStater).StatFS("/"); err != nil {
		t.Errorf("StatFS: %v", err)
	}
	if target, err := ro.(afero.LinkReader).ReadlinkIfPossible("/l"); err != nil || target != "/f" {
		t.Errorf("Readlink = %q, %v", target, err)
	}
	if fi, lstat, err := ro.(afero.Lstater).LstatIfPossible("/l"); err != nil || !lstat || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("Lstat = %v, %v, %v", fi, lstat, err)
	}
	if fi, lstat, err := NewReadOnly(NewMemory()).(afero.Lstater).LstatIfPossible("/"); err != nil || lstat || !fi.IsDir() {
		t.Errorf("Lstat fallback = %v, %v, %v", fi, lstat, err)
	}
}

type spaceOnly struct{ afero.Fs }

func (spaceOnly) StatFS(string) (*StatFS, error) { return &StatFS{}, nil }

package vfs

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/spf13/afero"

	"github.com/wharf-project/wharf/vfs/vfstest"
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
	vfstest.WriteFile(t, fsys, name, []byte(data))
}

func readFile(t *testing.T, fsys afero.Fs, name string) string {
	t.Helper()
	return string(vfstest.ReadFile(t, fsys, name))
}

// wantErr checks that err is a *fs.PathError for the clean backend name path
// that matches kind and does not mention host.
func wantErr(t *testing.T, what string, err error, kind error, path, host string) {
	t.Helper()
	vfstest.WantPathErr(t, what, err, kind, path, host)
}

func noLeak(t *testing.T, what string, err error, host string) {
	t.Helper()
	vfstest.NoLeak(t, what, err, host)
}

// TestBackendSuite runs the behaviour every backend shares (vfs/s3fs runs it too).
func TestBackendSuite(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			vfstest.Run(t, vfstest.Backend{New: func(t *testing.T) (afero.Fs, []string) {
				fsys, host := b.new(t)
				return fsys, []string{host}
			}})
		})
	}
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

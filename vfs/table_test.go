package vfs

import (
	"errors"
	"io/fs"
	"slices"
	"strings"
	"testing"
)

// mountsAt builds mounts over distinct memory backends, named after their
// mount points.
func mountsAt(points ...string) []*Mount {
	ms := make([]*Mount, len(points))
	for i, p := range points {
		ms[i] = &Mount{Path: p, Name: "vfs" + p, FS: NewMemory()}
	}
	return ms
}

func mustTable(t testing.TB, points ...string) *Table {
	t.Helper()
	tbl, err := NewTable(mountsAt(points...)...)
	if err != nil {
		t.Fatalf("NewTable(%q): %v", points, err)
	}
	return tbl
}

func TestNewTableRejects(t *testing.T) {
	mem := NewMemory()
	tests := []struct {
		name   string
		mounts []*Mount
	}{
		{"duplicate", []*Mount{{Path: "/a", FS: mem}, {Path: "/a", FS: mem}}},
		{"duplicate home", []*Mount{{Path: "/", FS: mem}, {Path: "/", FS: mem}}},
		{"relative", []*Mount{{Path: "a", FS: mem}}},
		{"trailing slash", []*Mount{{Path: "/a/", FS: mem}}},
		{"dot dot", []*Mount{{Path: "/a/../b", FS: mem}}},
		{"empty", []*Mount{{Path: "", FS: mem}}},
		{"nul", []*Mount{{Path: "/a\x00", FS: mem}}},
		{"nil mount", []*Mount{nil}},
		{"nil fs", []*Mount{{Path: "/a"}}},
	}
	for _, tt := range tests {
		if _, err := NewTable(tt.mounts...); err == nil {
			t.Errorf("%s: NewTable succeeded", tt.name)
		}
	}
}

func TestMountsIsACopy(t *testing.T) {
	tbl := mustTable(t, "/", "/b", "/a")
	got := tbl.Mounts()
	if len(got) != 3 || got[0].Path != "/" || got[1].Path != "/b" || got[2].Path != "/a" {
		t.Fatalf("Mounts() = %v, want the given order", got)
	}
	got[0] = nil
	if tbl.Mounts()[0] == nil {
		t.Fatal("Mounts() exposes the table's slice")
	}
}

func TestResolve(t *testing.T) {
	tbl := mustTable(t, "/", "/shared", "/shared/deep/x", "/a/b")
	tests := []struct {
		in, virtual, mount, path string
	}{
		{"", "/", "/", "/"},
		{"/", "/", "/", "/"},
		{"file.txt", "/file.txt", "/", "/file.txt"},
		{"/shared", "/shared", "/shared", "/"},
		{"/shared/", "/shared", "/shared", "/"},
		{"/shared/f", "/shared/f", "/shared", "/f"},
		{"/sharedx", "/sharedx", "/", "/sharedx"},
		{"/sharedx/f", "/sharedx/f", "/", "/sharedx/f"},
		{"/shared/deep", "/shared/deep", "/shared", "/deep"},
		{"/shared/deep/x", "/shared/deep/x", "/shared/deep/x", "/"},
		{"/shared/deep/x/y/z", "/shared/deep/x/y/z", "/shared/deep/x", "/y/z"},
		{"/shared/deep/xy", "/shared/deep/xy", "/shared", "/deep/xy"},
		{"/shared/../etc/passwd", "/etc/passwd", "/", "/etc/passwd"},
		{"/shared/deep/x/../../f", "/shared/f", "/shared", "/f"},
		{"../../shared/f", "/shared/f", "/shared", "/f"},
		{"/a", "/a", "/", "/a"},
		{"/a/b/c", "/a/b/c", "/a/b", "/c"},
	}
	for _, tt := range tests {
		r, err := tbl.Resolve(tt.in)
		if err != nil {
			t.Errorf("Resolve(%q): %v", tt.in, err)
			continue
		}
		if r.Virtual != tt.virtual || r.Mount.Path != tt.mount || r.Path != tt.path {
			t.Errorf("Resolve(%q) = {%q %q %q}, want {%q %q %q}",
				tt.in, r.Virtual, r.Mount.Path, r.Path, tt.virtual, tt.mount, tt.path)
		}
	}
	if _, err := tbl.Resolve("/a\x00b"); !errors.Is(err, ErrInvalidPath) || strings.ContainsRune(err.Error(), 0) {
		t.Errorf("Resolve with NUL: %v, want ErrInvalidPath without a NUL in the text", err)
	}
}

func TestResolveWithoutHome(t *testing.T) {
	tbl := mustTable(t, "/shared", "/a/b")
	for _, in := range []string{"/", "", "/x", "/sharedx", "/a", "/a/c", "/a/bc"} {
		_, err := tbl.Resolve(in)
		var pe *fs.PathError
		if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &pe) {
			t.Errorf("Resolve(%q) error = %v, want a *fs.PathError matching fs.ErrNotExist", in, err)
		}
	}
	for in, want := range map[string]string{"/shared/f": "/shared", "/a/b": "/a/b", "/a/b/c/../d": "/a/b"} {
		r, err := tbl.Resolve(in)
		if err != nil || r.Mount.Path != want {
			t.Errorf("Resolve(%q) = %v, %v; want mount %q", in, r.Mount, err, want)
		}
	}
}

func TestChildren(t *testing.T) {
	tests := []struct {
		mounts []string
		dir    string
		want   []string
	}{
		{[]string{"/", "/shared"}, "/", []string{"shared"}},
		{[]string{"/", "/shared"}, "/shared", nil},
		{[]string{"/a/b"}, "/", []string{"a"}},
		{[]string{"/a/b"}, "/a", []string{"b"}},
		{[]string{"/a/b"}, "/a/", []string{"b"}},
		{[]string{"/a/b"}, "a/x/..", []string{"b"}},
		{[]string{"/a/b"}, "/a/b", nil},
		{[]string{"/a/b"}, "/ab", nil},
		{[]string{"/z", "/a/b", "/a/c/d", "/m", "/a/b/e"}, "/", []string{"a", "m", "z"}},
		{[]string{"/z", "/a/b", "/a/c/d", "/m", "/a/b/e"}, "/a", []string{"b", "c"}},
		{[]string{"/shared", "/sharedx/y"}, "/shared", nil},
		{[]string{"/"}, "/", nil},
		{[]string{"/a/b"}, "/a\x00", nil},
	}
	for _, tt := range tests {
		got := mustTable(t, tt.mounts...).Children(tt.dir)
		if !slices.Equal(got, tt.want) {
			t.Errorf("mounts %q: Children(%q) = %q, want %q", tt.mounts, tt.dir, got, tt.want)
		}
	}
}

func TestIsSyntheticAndIsMountPoint(t *testing.T) {
	tests := []struct {
		mounts         []string
		path           string
		synthetic, mnt bool
	}{
		{[]string{"/a/b"}, "/", true, false},
		{[]string{"/a/b"}, "/a", true, false},
		{[]string{"/a/b"}, "/a/", true, false},
		{[]string{"/a/b"}, "/a/b", false, true},
		{[]string{"/a/b"}, "/a/b/c", false, false},
		{[]string{"/a/b"}, "/ab", false, false},
		{[]string{"/a/b"}, "/a/bc", false, false},
		{[]string{"/", "/shared"}, "/", false, true},
		{[]string{"/", "/shared"}, "/shared", false, true},
		{[]string{"/", "/shared"}, "/shared/x", false, false},
		{[]string{"/", "/a/b"}, "/a", true, false},
		{[]string{"/shared"}, "/", true, false},
		{[]string{"/shared"}, "/shared/..", true, false},
		{[]string{"/shared"}, "/\x00", false, false},
	}
	for _, tt := range tests {
		tbl := mustTable(t, tt.mounts...)
		if got := tbl.IsSynthetic(tt.path); got != tt.synthetic {
			t.Errorf("mounts %q: IsSynthetic(%q) = %v, want %v", tt.mounts, tt.path, got, tt.synthetic)
		}
		if got := tbl.IsMountPoint(tt.path); got != tt.mnt {
			t.Errorf("mounts %q: IsMountPoint(%q) = %v, want %v", tt.mounts, tt.path, got, tt.mnt)
		}
	}
}

func BenchmarkResolve(b *testing.B) {
	tbl := mustTable(b, "/", "/shared", "/shared/projects/2024", "/archive", "/a/b/c")
	paths := []string{
		"/home/user/documents/report.pdf",
		"/shared/projects/2024/q3/plan.xlsx",
		"shared/projects/../projects/2024/x",
		"/archive",
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := tbl.Resolve(paths[i%len(paths)]); err != nil {
			b.Fatal(err)
		}
	}
}

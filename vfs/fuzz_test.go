package vfs

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// covers is an independent, deliberately naive statement of separator-aware
// containment, so the fuzzer checks within() instead of reusing it.
func covers(mount, v string) bool {
	return mount == "/" || v == mount || strings.HasPrefix(v, mount+"/")
}

func isCleanAbs(p string) bool {
	return strings.HasPrefix(p, "/") && path.Clean(p) == p
}

func FuzzResolve(f *testing.F) {
	for _, s := range []string{
		"", "/", ".", "..", "../..", "//", "/./", "/.", "/..", "...",
		"/shared", "/shared/", "/sharedx", "/sharedx/y", "/shared/../..", "shared/deep/x/..",
		"/shared/deep/x", "/shared/deep/xy", "/shared/deep/x/y/../../x/z",
		"/a/b", "/a/bc", "/a/b/../b/c", "/a/b/..../", "a/./b/./c",
		"\x00", "/a\x00/..", "/shared\x00", `\..\..\`, `/shared\..\x`, "/ü/ß/\u202e",
		strings.Repeat("../", 64) + "shared/f", strings.Repeat("/a/b", 64),
	} {
		f.Add(s)
	}
	home := mustTable(f, "/", "/shared", "/shared/deep/x", "/a/b")
	bare := mustTable(f, "/shared", "/shared/deep/x", "/a/b")
	f.Fuzz(func(t *testing.T, s string) {
		for _, tbl := range []*Table{home, bare} {
			r, err := tbl.Resolve(s)
			if strings.IndexByte(s, 0) >= 0 {
				if !errors.Is(err, ErrInvalidPath) || strings.IndexByte(err.Error(), 0) >= 0 {
					t.Fatalf("Resolve(%q) = %v, want ErrInvalidPath without NUL", s, err)
				}
				continue
			}
			v, _ := Clean(s)
			if err != nil {
				if tbl == home || !errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("Resolve(%q): %v", s, err)
				}
				for _, m := range tbl.Mounts() {
					if covers(m.Path, v) {
						t.Fatalf("Resolve(%q) found nothing, but %q covers %q", s, m.Path, v)
					}
				}
				continue
			}
			if r.Virtual != v || !isCleanAbs(r.Virtual) || !isCleanAbs(r.Path) {
				t.Fatalf("Resolve(%q) = %+v: unclean", s, r)
			}
			if !covers(r.Mount.Path, r.Virtual) || path.Join(r.Mount.Path, r.Path) != r.Virtual {
				t.Fatalf("Resolve(%q) = %+v: not inside the mount", s, r)
			}
			for _, m := range tbl.Mounts() {
				if len(m.Path) > len(r.Mount.Path) && covers(m.Path, r.Virtual) {
					t.Fatalf("Resolve(%q) chose %q over the longer %q", s, r.Mount.Path, m.Path)
				}
			}
			if again, err := tbl.Resolve(r.Virtual); err != nil || again != r {
				t.Fatalf("Resolve is not idempotent for %q: %+v, %v", s, again, err)
			}
		}
	})
}

func FuzzDiskJail(f *testing.F) {
	base := f.TempDir()
	root := filepath.Join(base, "root")
	sibling := filepath.Join(base, "sibling")
	if err := os.Mkdir(sibling, 0o750); err != nil {
		f.Fatal(err)
	}
	d, err := NewDisk(root)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = d.Close() })
	links := map[string]string{
		"tosib":    "../sibling",
		"tosibabs": sibling,
		"deep":     "a/../../sibling",
		"self":     ".",
		"loop":     "loop",
		"dangling": "../sibling/new",
	}
	// reset removes whatever an input created, so every input meets the
	// same traps and the root does not grow without bound. The operations
	// under test never change an existing link.
	reset := func(tb testing.TB) {
		tb.Helper()
		entries, err := os.ReadDir(root)
		if err != nil {
			tb.Fatal(err)
		}
		for _, e := range entries {
			if _, planted := links[e.Name()]; !planted {
				if err := os.RemoveAll(filepath.Join(root, e.Name())); err != nil {
					tb.Fatal(err)
				}
			}
		}
	}
	for link, target := range links {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			f.Fatal(err)
		}
	}

	for _, s := range []string{
		"", "/", ".", "..", "x", "../sibling/x", "/../sibling/x", "../../../../sibling/x",
		sibling + "/x", root + "/x", "tosib/x", "tosibabs/x", "deep/x", "self/tosib/x",
		"self/self/tosibabs", "loop/x", "dangling", "tosib", "tosib/", "tosib/..", "tosib/../x",
		"\x00", "a\x00/../../sibling", "x/../../sibling", strings.Repeat("a/", 200), strings.Repeat("x", 300),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		defer reset(t)
		check := func(what string, err error) {
			// A name the client typed may be echoed back; anything else
			// naming the root is a leak.
			if err != nil && !strings.Contains(name, root) && strings.Contains(err.Error(), root) {
				t.Fatalf("%s(%q) leaks the host root: %v", what, name, err)
			}
		}
		fh, err := d.OpenFile(name, os.O_CREATE|os.O_WRONLY, 0o600)
		check("OpenFile", err)
		if err == nil {
			_, werr := fh.Write([]byte("x"))
			check("Write", werr)
			check("Close", fh.Close())
		}
		_, err = d.Stat(name)
		check("Stat", err)
		check("Mkdir", d.Mkdir(name, 0o750))
		check("MkdirAll", d.MkdirAll(name+"/sub/dir", 0o750))
		if err := d.SymlinkIfPossible(name, "/fuzzlink"); err == nil {
			stored, err := os.Readlink(filepath.Join(root, "fuzzlink"))
			if err != nil || !filepath.IsLocal(stored) && stored != "." {
				t.Fatalf("Symlink(%q) stored %q, %v", name, stored, err)
			}
		} else {
			check("Symlink", err)
		}

		if entries, err := os.ReadDir(sibling); err != nil || len(entries) != 0 {
			t.Fatalf("name %q touched the sibling directory: %v, %v", name, entries, err)
		}
		if entries, err := os.ReadDir(base); err != nil || len(entries) != 2 {
			t.Fatalf("name %q created something next to the root: %v, %v", name, entries, err)
		}
		loc := d.Locate(name)
		if loc == "" {
			if strings.IndexByte(name, 0) < 0 {
				t.Fatalf("Locate(%q) is empty", name)
			}
			return
		}
		if rel, err := filepath.Rel(root, loc); err != nil || !filepath.IsLocal(rel) && rel != "." {
			t.Fatalf("Locate(%q) = %q is outside the root", name, loc)
		}
	})
}

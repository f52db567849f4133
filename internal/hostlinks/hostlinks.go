// Package hostlinks checks symbolic links as programs on the host see them — backup tools,
// scanners and indexers follow every link, with no jail — for tests that must prove a
// mount's links never lead out of its root.
package hostlinks

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Resolve resolves p as realpath -m does: it follows every symbolic link, relative or
// absolute, and a missing component ends the resolution lexically.
func Resolve(t testing.TB, p string) string {
	t.Helper()
	rest := strings.Split(strings.Trim(p, "/"), "/")
	cur := "/"
	for links := 0; len(rest) > 0; {
		part := rest[0]
		rest = rest[1:]
		switch part {
		case "", ".":
			continue
		case "..":
			cur = filepath.Dir(cur)
			continue
		}
		next := filepath.Join(cur, part)
		fi, err := os.Lstat(next)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		if links++; links > 40 {
			t.Fatalf("link loop resolving %s", p)
		}
		text, err := os.Readlink(next)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.IsAbs(text) {
			cur = "/"
		}
		rest = append(strings.Split(text, "/"), rest...)
	}
	return cur
}

// NoEscapes fails the test if any symbolic link under root resolves, on the host, outside
// root; step says what was done last.
func NoEscapes(t testing.TB, root, step string) {
	t.Helper()
	real, err := filepath.EvalSymlinks(root)
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(real, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink == 0 {
			return err
		}
		if r := Resolve(t, p); r != real && !strings.HasPrefix(r, real+"/") {
			text, _ := os.Readlink(p)
			t.Errorf("after %s: link %s -> %q resolves on the host to %s, outside the root", step,
				strings.TrimPrefix(p, real), text, r)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

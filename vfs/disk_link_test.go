package vfs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/wharf-project/wharf/internal/hostlinks"
)

// TestDiskLinksStayInsideThroughRenames moves links, and the folders holding them, closer to
// the root, under links, and by hard link; after every step no link on the host may resolve
// outside the root. Moves that would take a link out are refused; the others work.
func TestDiskLinksStayInsideThroughRenames(t *testing.T) {
	j := newJail(t)
	for _, dir := range []string{"/a/b", "/m/n/o", "/x", "/p/q/r", "/d1/d2"} {
		if err := j.d.MkdirAll(dir, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, j.d, "/x/target.txt", "target")
	refuse := func(what string, err error) {
		t.Helper()
		j.mustFail(t, what, err, fs.ErrPermission)
		hostlinks.NoEscapes(t, j.root, what)
	}
	allow := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		hostlinks.NoEscapes(t, j.root, what)
	}

	allow("symlink /a/b/l -> ../../x", j.d.SymlinkIfPossible("../../x", "/a/b/l"))
	if got := readFile(t, j.d, "/a/b/l/target.txt"); got != "target" {
		t.Fatalf("through the link: %q", got)
	}
	refuse("rename /a/b to /c (closer to the root)", j.d.Rename("/a/b", "/c"))
	refuse("rename the link to /l", j.d.Rename("/a/b/l", "/l"))
	refuse("rename the link to /a/l", j.d.Rename("/a/b/l", "/a/l"))
	refuse("hard link of the link at /hl", j.d.Link("/a/b/l", "/hl"))
	allow("rename /a to /z (same depth)", j.d.Rename("/a", "/z"))
	allow("rename /z/b to /z/b2 (same depth)", j.d.Rename("/z/b", "/z/b2"))
	allow("rename /z to /deep/er/z (deeper)", errors.Join(j.d.MkdirAll("/deep/er", 0o750), j.d.Rename("/z", "/deep/er/z")))
	allow("rename the link deeper", j.d.Rename("/deep/er/z/b2/l", "/deep/er/z/b2/l2"))
	// From /deep/er/z/b2 the link still climbs two levels, to /deep/er.
	refuse("rename /deep/er/z/b2 to /b2", j.d.Rename("/deep/er/z/b2", "/b2"))

	// A folder whose links climb less than the move takes them up can move.
	allow("symlink /m/n/o/l -> ../t", j.d.SymlinkIfPossible("../t", "/m/n/o/l"))
	allow("rename /m/n to /n", j.d.Rename("/m/n", "/n"))
	allow("rename /n/o to /o", j.d.Rename("/n/o", "/o"))
	refuse("rename /o/l to /l", j.d.Rename("/o/l", "/l"))

	// A destination under a link that leads back up is shallower than it looks.
	allow("symlink /d1/d2/up -> /", j.d.SymlinkIfPossible("/", "/d1/d2/up"))
	allow("symlink /p/q/r/l -> /x", j.d.SymlinkIfPossible("/x", "/p/q/r/l"))
	refuse("rename /p/q/r to /d1/d2/up/p/r", errors.Join(j.d.MkdirAll("/d1/d2/up/p", 0o750), j.d.Rename("/p/q/r", "/d1/d2/up/p/r")))
	// A link created under such a link is stored for where it really is.
	allow("symlink /d1/d2/up/x/l -> /x/target.txt", j.d.SymlinkIfPossible("/x/target.txt", "/d1/d2/up/x/l"))
	if got, err := os.Readlink(filepath.Join(j.root, "x", "l")); err != nil || got != "target.txt" {
		t.Errorf("link under a link stored as %q, %v; want %q", got, err, "target.txt")
	}
	if got := readFile(t, j.d, "/x/l"); got != "target" {
		t.Errorf("through the link under a link: %q", got)
	}

	// Links someone put there on the host are held to the same rule.
	if err := os.MkdirAll(filepath.Join(j.root, "h1", "h2", "h3"), 0o750); err != nil {
		t.Fatal(err)
	}
	j.plant(t, "../../../x", "h1/h2/h3/planted")
	j.plant(t, "s/../../x", "h1/h2/crooked")
	hostlinks.NoEscapes(t, j.root, "planting")
	refuse("rename /h1/h2/h3 to /h3", j.d.Rename("/h1/h2/h3", "/h3"))
	refuse("rename a planted link to the root", j.d.Rename("/h1/h2/h3/planted", "/planted"))
	refuse("rename a link that climbs after a name", j.d.Rename("/h1/h2/crooked", "/h1/crooked"))
	allow("rename /h1 to /h0", j.d.Rename("/h1", "/h0"))
}

func TestDiskRealPath(t *testing.T) {
	j := newJail(t)
	if err := j.d.MkdirAll("/a/b", 0o750); err != nil {
		t.Fatal(err)
	}
	writeFile(t, j.d, "/a/b/f", "data")
	j.plant(t, ".", "self")
	j.plant(t, "a/b", "ab")
	j.plant(t, "../b/f", "a/b/f2")
	j.plant(t, "loop", "loop")
	j.plant(t, "../outside", "out")
	for _, tt := range []struct{ name, entry, target string }{
		{"/", "/", "/"},
		{"/a/b/f", "/a/b/f", "/a/b/f"},
		{"/self/self/a", "/a", "/a"},
		{"/self", "/self", "/"},
		{"/ab/f", "/a/b/f", "/a/b/f"},
		{"/self/ab/f2", "/a/b/f2", "/a/b/f"},
		{"/ab/missing/x", "/a/b/missing/x", "/a/b/missing/x"},
	} {
		if e, tg, err := j.d.RealPath(tt.name); err != nil || e != tt.entry || tg != tt.target {
			t.Errorf("RealPath(%q) = %q, %q, %v; want %q, %q", tt.name, e, tg, err, tt.entry, tt.target)
		}
	}
	_, _, err := j.d.RealPath("/loop")
	j.mustFail(t, "RealPath of a loop", err, nil)
	e, _, err := j.d.RealPath("/out")
	j.mustFail(t, "RealPath of a link out of the root", err, fs.ErrPermission)
	if e != "/out" {
		t.Errorf("RealPath of a link out of the root: entry %q", e)
	}
	_, _, err = j.d.RealPath("/out/secret.txt")
	j.mustFail(t, "RealPath out of the root", err, fs.ErrPermission)
}

func TestDiskRenameCheckIsBounded(t *testing.T) {
	j := newJail(t)
	j.d.maxCheck = 10
	if err := j.d.MkdirAll("/a/b/c", 0o750); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		writeFile(t, j.d, "/a/b/c/f"+strings.Repeat("x", i), "data")
	}
	if err := j.d.Rename("/a/b", "/b"); err != nil {
		t.Fatalf("moving 6 entries up: %v", err)
	}
	for i := range 10 {
		writeFile(t, j.d, "/b/c/g"+strings.Repeat("x", i), "data")
	}
	j.mustFail(t, "moving 16 entries up with a bound of 10", j.d.Rename("/b/c", "/c"), fs.ErrPermission)
	if err := j.d.Rename("/b/c", "/b/d"); err != nil {
		t.Fatalf("a move at the same depth reads nothing: %v", err)
	}
}

// BenchmarkDiskRenameUp measures the link check of a directory moved closer to the root:
// per entry below it.
func BenchmarkDiskRenameUp(b *testing.B) {
	d, err := NewDisk(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	const dirs, files = 100, 100
	for i := range dirs {
		dir := filepath.Join("/a/b", "d"+strings.Repeat("x", i%10)+string(rune('a'+i/10)))
		if err := d.MkdirAll(dir, 0o750); err != nil {
			b.Fatal(err)
		}
		for k := range files {
			f, err := d.Create(filepath.Join(dir, "f"+string(rune('a'+k/26))+string(rune('a'+k%26))))
			if err != nil {
				b.Fatal(err)
			}
			_ = f.Close()
		}
	}
	b.ResetTimer()
	for range b.N {
		if err := d.Rename("/a/b", "/b"); err != nil {
			b.Fatal(err)
		}
		if err := d.Rename("/b", "/a/b"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/(dirs*files+dirs), "ns/entry")
}

// BenchmarkDiskRealPath measures the resolution the session core does per operation once a
// script hid entries (RemoveFromListDir): a file four levels down, no links.
func BenchmarkDiskRealPath(b *testing.B) {
	d, err := NewDisk(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	if err := d.MkdirAll("/a/b/c", 0o750); err != nil {
		b.Fatal(err)
	}
	f, err := d.Create("/a/b/c/f")
	if err != nil {
		b.Fatal(err)
	}
	_ = f.Close()
	for b.Loop() {
		if _, _, err := d.RealPath("/a/b/c/f"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDiskLinkChecksAreSerialised races link creation in /a/b against moving /a/b to the root
// and back: a link created between the move's check and the move itself would escape.
func TestDiskLinkChecksAreSerialised(t *testing.T) {
	j := newJail(t)
	if err := j.d.MkdirAll("/a/b", 0o750); err != nil {
		t.Fatal(err)
	}
	// Entries to read make the move's check take a while.
	for i := range 200 {
		writeFile(t, j.d, "/a/b/f"+strconv.Itoa(i), "")
	}
	const rounds = 200
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range rounds {
			l := "/a/b/l" + strconv.Itoa(i)
			if err := j.d.SymlinkIfPossible("../../x", l); err == nil {
				_ = j.d.Remove(l)
			}
		}
	}()
	for range rounds {
		if j.d.Rename("/a/b", "/b") == nil {
			hostlinks.NoEscapes(t, j.root, "moving /a/b to /b")
			if err := j.d.Rename("/b", "/a/b"); err != nil {
				t.Fatal(err)
			}
		}
	}
	<-done
}

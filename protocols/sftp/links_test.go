package sftp

import (
	"bytes"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/internal/hostlinks"
)

// logBuffer is a slog destination tests can read while the server writes to it.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// wantDenied fails unless err is SSH_FX_PERMISSION_DENIED.
func wantDenied(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil || sftpKind(err) != core.ErrDenied {
		t.Errorf("%s: %v, want permission denied", what, err)
	}
}

// TestSymlinksOffByDefault: without allow_symlinks, SSH_FXP_SYMLINK is refused and nothing
// reaches the disk; links already on disk still read.
func TestSymlinksOffByDefault(t *testing.T) {
	a := newAttackSite(t)
	c := mustSFTP(t, a.srv, a.addr, "alice")
	if err := c.Mkdir("/d"); err != nil {
		t.Fatal(err)
	}
	for _, l := range []struct{ target, link string }{{"x", "/l"}, {"/d", "/d/l"}, {"../..", "/d/up"}} {
		wantDenied(t, "symlink "+l.link, c.Symlink(l.target, l.link))
		if _, err := os.Lstat(filepath.Join(a.home, l.link)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("refused link %s is on disk: %v", l.link, err)
		}
	}
	if err := os.WriteFile(filepath.Join(a.home, "d", "f"), []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("d/f", filepath.Join(a.home, "planted")); err != nil {
		t.Fatal(err)
	}
	if got, err := c.ReadLink("/planted"); err != nil || got != "/d/f" {
		t.Errorf("readlink of a link on disk = %q, %v", got, err)
	}
}

// TestSymlinkRenameAttack is issue #19's attack: with allow_symlinks on, alice creates
// /a/b/l -> ../../x and moves the link, or a folder above it, closer to the root. After every
// step no link in her home may resolve on the host outside it (into the next home).
func TestSymlinkRenameAttack(t *testing.T) {
	a := newAttackSite(t, func(c *config.Site) { c.VFS[0].AllowSymlinks = true })
	c := mustSFTP(t, a.srv, a.addr, "alice")
	// bob's home is next to alice's: ../x from alice's root is /home/x.
	if err := os.MkdirAll(filepath.Join(a.root, "home", "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"/a", "/a/b", "/x", "/p", "/p/q"} {
		if err := c.Mkdir(d); err != nil {
			t.Fatal(err)
		}
	}
	f, err := c.Create("/x/f.txt")
	if err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	const ok, denied, refused = 0, 1, 2
	steps := []struct {
		what string
		do   func() error
		want int
	}{
		{"symlink /a/b/l -> ../../x", func() error { return c.Symlink("../../x", "/a/b/l") }, ok},
		{"symlink /a/b/lf -> ../../x/f.txt", func() error { return c.Symlink("../../x/f.txt", "/a/b/lf") }, ok},
		{"rename /a/b to /c", func() error { return c.Rename("/a/b", "/c") }, denied},
		{"posix-rename /a/b to /c", func() error { return c.PosixRename("/a/b", "/c") }, denied},
		{"rename /a/b/l to /l", func() error { return c.Rename("/a/b/l", "/l") }, denied},
		{"rename /a/b/l to /a/l", func() error { return c.Rename("/a/b/l", "/a/l") }, denied},
		{"hard link /a/b/l at /hl", func() error { return c.Link("/a/b/l", "/hl") }, refused}, // a directory
		{"hard link /a/b/lf at /hlf", func() error { return c.Link("/a/b/lf", "/hlf") }, denied},
		{"rename /a to /p/q/a (deeper)", func() error { return c.Rename("/a", "/p/q/a") }, ok},
		{"rename /p/q/a/b to /p/b", func() error { return c.Rename("/p/q/a/b", "/p/b") }, ok},
		{"rename /p/b to /b", func() error { return c.Rename("/p/b", "/b") }, denied},
		{"symlink /p/q/up -> /", func() error { return c.Symlink("/", "/p/q/up") }, ok},
		{"rename /p/b to /p/q/up/b (shallower than it looks)", func() error { return c.Rename("/p/b", "/p/q/up/b") }, denied},
		{"symlink /p/q/up/x/l2 -> /x", func() error { return c.Symlink("/x", "/p/q/up/x/l2") }, ok},
		{"symlink /p/q/up/x/l3 -> ../../../../../x", func() error { return c.Symlink("../../../../../x", "/p/q/up/x/l3") }, ok},
	}
	for _, s := range steps {
		err := s.do()
		switch {
		case s.want == denied:
			wantDenied(t, s.what, err)
		case s.want == refused && err == nil:
			t.Errorf("%s: succeeded", s.what)
		case s.want == ok && err != nil:
			t.Fatalf("%s: %v", s.what, err)
		}
		hostlinks.NoEscapes(t, a.home, s.what)
	}
	// The links that stayed still work, and read back as paths in the home.
	if got, err := c.ReadLink("/p/b/l"); err != nil || got != "/x" {
		t.Errorf("readlink /p/b/l = %q, %v", got, err)
	}
	if got, err := c.ReadLink("/x/l2"); err != nil || got != "/x" {
		t.Errorf("readlink /x/l2 = %q, %v", got, err)
	}
}

// TestLinkRequestsWithoutHome: a user with folders but no home sends symlink and hard-link
// requests for "/", for a directory that exists only because of a folder below it, and
// across folders. Each is refused with a permission error, and nothing panics (the request
// guard would log it).
func TestLinkRequestsWithoutHome(t *testing.T) {
	root := t.TempDir()
	u := config.User{ID: "nohome", Password: "plain:" + testPassword, Folders: map[string]config.Mount{
		"/in/box": {VFS: "home", Permissions: []string{"all"}},
		"/pub":    {VFS: "pub", Permissions: []string{"all"}},
	}}
	cfg := testSiteConfig(root, u)
	cfg.VFS[0].AllowSymlinks = true
	cfg.VFS = append(cfg.VFS, config.VFS{Name: "pub", Type: "disk", Root: filepath.Join(root, "pub"), AllowSymlinks: true})
	var logs logBuffer
	site, err := core.NewSite(cfg, core.Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = site.Shutdown(t.Context()) })
	srv, addr := startServer(t, site)
	c := mustSFTP(t, srv, addr, "nohome")
	f, err := c.Create("/in/box/f")
	if err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	for _, r := range []struct {
		what string
		err  error
	}{
		{"symlink at /", c.Symlink("/in/box/f", "/")},
		{"symlink at /in", c.Symlink("/in/box/f", "/in")},
		{"symlink to /", c.Symlink("/", "/in/box/l")},
		{"symlink to /in", c.Symlink("/in", "/in/box/l")},
		{"symlink to another folder", c.Symlink("/pub", "/in/box/l")},
		{"hard link at /", c.Link("/in/box/f", "/")},
		{"hard link at /in", c.Link("/in/box/f", "/in")},
		{"hard link of /in", c.Link("/in", "/in/box/h")},
		{"hard link of /", c.Link("/", "/in/box/h")},
		{"hard link to another folder", c.Link("/in/box/f", "/pub/h")},
		{"readlink /in", func() error { _, err := c.ReadLink("/in"); return err }()},
	} {
		wantDenied(t, r.what, r.err)
	}
	if strings.Contains(logs.String(), "panic") {
		t.Errorf("the server logged a panic:\n%s", logs.String())
	}
}

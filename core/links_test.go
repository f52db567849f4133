package core_test

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/core/coretest"
)

// TestOpsWithoutHome runs every operation on the paths of a user without a home that lead to
// no backend: "/" and a directory that exists only because of a folder below it. None may
// panic (a nil mount); the link requests answer a permission error, the other changes fail.
func TestOpsWithoutHome(t *testing.T) {
	root := t.TempDir()
	site := testSite(t, []config.User{{ID: "nohome", Password: "plain:pw", Folders: map[string]config.Mount{
		"/in/box": {VFS: "disk", Permissions: []string{"all"}},
		"/m":      {VFS: "mem", Permissions: []string{"all"}},
	}}}, nil, func(c *config.Site) {
		c.VFS = append(c.VFS, config.VFS{Name: "disk", Type: "disk", Root: filepath.Join(root, "{user}"), AllowSymlinks: true})
	})
	s := login(t, site, "nohome")
	ctx := context.Background()
	if err := upload(ctx, s, "/in/box/f", "data"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/", "/in"} {
		denied := map[string]error{
			"symlink at":   s.Symlink(ctx, "/in/box/f", p),
			"symlink to":   s.Symlink(ctx, p, "/in/box/l"),
			"hard link at": s.Link(ctx, "/in/box/f", p),
			"hard link of": s.Link(ctx, p, "/in/box/h"),
			"readlink":     func() error { _, err := s.Readlink(ctx, p); return err }(),
			"setstat":      s.SetStat(ctx, p, core.Attrs{Mode: new(fs.FileMode(0o700))}),
			"rename from":  s.Rename(ctx, p, "/in/box/r", true),
			"rename to":    s.Rename(ctx, "/in/box/f", p, true),
			"remove":       s.Remove(ctx, p),
			"rmdir":        s.Rmdir(ctx, p),
		}
		for what, err := range denied {
			if !errors.Is(err, core.ErrDenied) {
				t.Errorf("%s %s: %v, want permission denied", what, p, err)
			}
		}
		for what, err := range map[string]error{
			"mkdir":          s.Mkdir(ctx, p),
			"open for write": func() error { _, err := s.OpenWrite(ctx, p, core.WriteMode{Truncate: true}, 0); return err }(),
			"open for read":  func() error { _, err := s.OpenRead(ctx, p, 0); return err }(),
			"hash":           func() error { _, err := s.Hash(ctx, p, "sha256", 0, -1); return err }(),
		} {
			if err == nil {
				t.Errorf("%s %s succeeded", what, p)
			}
		}
		if _, err := s.Stat(ctx, p); err != nil {
			t.Errorf("stat %s: %v", p, err)
		}
		if _, err := s.Lstat(ctx, p); err != nil {
			t.Errorf("lstat %s: %v", p, err)
		}
		if _, err := s.List(ctx, p); err != nil {
			t.Errorf("list %s: %v", p, err)
		}
		_, _ = s.StatFS(ctx, p)
	}
	// Across folders, and into a backend without links.
	if err := s.Symlink(ctx, "/m", "/in/box/l"); !errors.Is(err, core.ErrDenied) {
		t.Errorf("symlink across folders: %v", err)
	}
	if err := s.Link(ctx, "/in/box/f", "/m/h"); !errors.Is(err, core.ErrDenied) {
		t.Errorf("hard link across folders: %v", err)
	}
	if err := s.Symlink(ctx, "/m", "/m/l"); !errors.Is(err, core.ErrDenied) {
		t.Errorf("symlink in a vfs without allow_symlinks: %v", err)
	}
}

// TestHiddenThroughLinks: a script hides secret.txt and the folder private in "/"; a link made
// through wharf (/via -> .) or to the folder (/p -> private) must not reach them, nor may a
// path below the hidden folder.
func TestHiddenThroughLinks(t *testing.T) {
	d := &coretest.Dispatcher{}
	d.On(core.OnDirList, func(ev *core.Event) {
		if ev.RelPath == "/" {
			ev.Session.RemoveFromListDir("secret.txt")
			ev.Session.RemoveFromListDir("private")
		}
	})
	root := t.TempDir()
	site := testSite(t, []config.User{user("u", onDisk)}, d, func(c *config.Site) {
		c.VFS = append(c.VFS, config.VFS{Name: "disk", Type: "disk", Root: filepath.Join(root, "{user}"), AllowSymlinks: true})
	})
	s := login(t, site, "u")
	ctx := context.Background()
	for _, f := range []string{"/secret.txt", "/private/x.txt", "/open.txt"} {
		if f == "/private/x.txt" {
			if err := s.Mkdir(ctx, "/private"); err != nil {
				t.Fatal(err)
			}
		}
		if err := upload(ctx, s, f, "data"); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Symlink(ctx, ".", "/via"); err != nil {
		t.Fatal(err)
	}
	if err := s.Symlink(ctx, "private", "/p"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.List(ctx, "/"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/secret.txt", "/via/secret.txt", "/via/via/secret.txt", "/private/x.txt", "/p/x.txt", "/via/p/x.txt", "/p"} {
		if _, err := s.OpenRead(ctx, p, 0); !errors.Is(err, core.ErrNotFound) {
			t.Errorf("open %s: %v, want not found", p, err)
		}
		if _, err := s.Stat(ctx, p); !errors.Is(err, core.ErrNotFound) {
			t.Errorf("stat %s: %v, want not found", p, err)
		}
	}
	if _, err := s.List(ctx, "/via/p"); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("list /via/p: %v, want not found", err)
	}
	fis, err := s.List(ctx, "/via")
	if err != nil {
		t.Fatal(err)
	}
	for _, fi := range fis {
		if fi.Name() == "secret.txt" || fi.Name() == "private" || fi.Name() == "p" {
			t.Errorf("list /via shows %s", fi.Name())
		}
	}
	h, err := s.OpenRead(ctx, "/via/open.txt", 0)
	if err != nil {
		t.Fatalf("a visible file through the link: %v", err)
	}
	_ = h.Close()
}

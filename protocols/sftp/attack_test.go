package sftp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	pkgsftp "github.com/pkg/sftp"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/core/coretest"
	"github.com/wharf-project/wharf/vfs"
)

// attackSite has alice with a disk home and a read-only /shared mount, and a secret file
// next to (outside) the homes. opts change the site's config before it starts.
type attackSite struct {
	srv    *Server
	addr   string
	root   string
	home   string
	secret string
	d      *coretest.Dispatcher
}

const secretText = "TOP SECRET host file"

func newAttackSite(t *testing.T, opts ...func(*config.Site)) *attackSite {
	t.Helper()
	root := t.TempDir()
	u := testUser("alice")
	u.Folders = map[string]config.Mount{"/shared": {VFS: "shared", Permissions: []string{"list", "download"}}}
	cfg := testSiteConfig(root, u)
	cfg.VFS = append(cfg.VFS, config.VFS{Name: "shared", Type: "disk", Root: filepath.Join(root, "shared")})
	secret := filepath.Join(root, "secret.txt")
	if err := os.WriteFile(secret, []byte(secretText), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "shared"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "shared", "readme.txt"), []byte("shared"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, o := range opts {
		o(cfg)
	}
	d := &coretest.Dispatcher{}
	d.On(core.OnTransferError, func(*core.Event) {})
	srv, addr := startServer(t, newTestSite(t, cfg, d))
	home := filepath.Join(root, "home", "alice")
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}
	return &attackSite{srv: srv, addr: addr, root: root, home: home, secret: secret, d: d}
}

// mustNotRead fails if reading p returns the host's secret or /etc/passwd, or if the error
// names the host folder root (unless the client sent it).
func mustNotRead(t *testing.T, c *sftpSession, p, root string) {
	t.Helper()
	f, err := c.Open(p)
	if err != nil {
		if !strings.Contains(p, root) && strings.Contains(err.Error(), root) {
			t.Errorf("error for %q names a host path: %v", p, err)
		}
		return
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err == nil && (bytes.Contains(data, []byte(secretText)) || bytes.Contains(data, []byte("root:x:0:0"))) {
		t.Fatalf("read %q returned a host file", p)
	}
}

func TestPathEscapes(t *testing.T) {
	a := newAttackSite(t)
	c := mustSFTP(t, a.srv, a.addr, "alice")
	for _, p := range []string{
		"../../../../etc/passwd", "/../../../../etc/passwd", "/etc/passwd", a.secret,
		"../secret.txt", "../../secret.txt", "/shared/../../secret.txt", "..\\..\\secret.txt",
	} {
		mustNotRead(t, c, p, a.root)
	}
	if out, err := c.ReadDir("/../../.."); err == nil {
		for _, fi := range out {
			if fi.Name() == "secret.txt" || fi.Name() == "etc" {
				t.Fatalf("listing above the home shows %q", fi.Name())
			}
		}
	}
	// The error text is the core's virtual-path message, never the host folder.
	_, err := c.Stat("/../../secret.txt")
	if err == nil || strings.Contains(err.Error(), a.root) {
		t.Fatalf("stat outside the home: %v", err)
	}
}

func TestSymlinkEscapes(t *testing.T) {
	a := newAttackSite(t, func(c *config.Site) { c.VFS[0].AllowSymlinks = true })
	c := mustSFTP(t, a.srv, a.addr, "alice")
	// A link to an absolute host path resolves inside the home (where nothing is).
	if err := c.Symlink("/etc/passwd", "/x"); err == nil {
		mustNotRead(t, c, "/x", a.root)
	}
	if err := c.Symlink("../../../../etc/passwd", "/y"); err == nil {
		mustNotRead(t, c, "/y", a.root)
	}
	if err := c.Symlink(a.secret, "/z"); err == nil {
		mustNotRead(t, c, "/z", a.root)
	}
	// A link into another mount is refused.
	err := c.Symlink("/shared/readme.txt", "/to-shared")
	if err == nil {
		t.Fatal("symlink across mounts succeeded")
	}
	// A link someone planted on the host is not followed out of the root.
	if err := os.Symlink(a.secret, filepath.Join(a.home, "planted")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../secret.txt", filepath.Join(a.home, "planted-rel")); err != nil {
		t.Fatal(err)
	}
	mustNotRead(t, c, "/planted", a.root)
	mustNotRead(t, c, "/planted-rel", a.root)
	if _, err := c.ReadLink("/planted"); err == nil {
		t.Error("readlink of a link pointing out of the root succeeded")
	}
	// A link inside the home works and reads back as a virtual path.
	if err := c.MkdirAll("/in/sub"); err != nil {
		t.Fatal(err)
	}
	f, err := c.Create("/in/sub/target.txt")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.Write([]byte("inside"))
	_ = f.Close()
	if err := c.Symlink("sub/target.txt", "/in/link"); err != nil {
		t.Fatalf("symlink inside the home: %v", err)
	}
	if got, err := c.ReadLink("/in/link"); err != nil || got != "/in/sub/target.txt" {
		t.Fatalf("readlink = %q, %v", got, err)
	}
	if fi, err := c.Lstat("/in/link"); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("lstat of a link: %v, %v", fi, err)
	}
	g, err := c.Open("/in/link")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(g)
	_ = g.Close()
	if string(data) != "inside" {
		t.Fatalf("reading through the link: %q", data)
	}
}

func TestHardlinkEscapes(t *testing.T) {
	a := newAttackSite(t)
	c := mustSFTP(t, a.srv, a.addr, "alice")
	if err := c.Link("/shared/readme.txt", "/stolen.txt"); err == nil {
		t.Fatal("hard link from another mount succeeded")
	}
	if err := c.Link("/../../secret.txt", "/stolen2.txt"); err == nil {
		t.Fatal("hard link to a path outside the home succeeded")
	}
	if err := c.Link(a.secret, "/stolen3.txt"); err == nil {
		t.Fatal("hard link to a host path succeeded")
	}
	for _, n := range []string{"stolen.txt", "stolen2.txt", "stolen3.txt"} {
		if _, err := os.Lstat(filepath.Join(a.home, n)); err == nil {
			t.Errorf("%s was created", n)
		}
	}
	// Inside the home a hard link works.
	f, err := c.Create("/orig.txt")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.Write([]byte("orig"))
	_ = f.Close()
	if err := c.Link("/orig.txt", "/linked.txt"); err != nil {
		t.Fatalf("hard link inside the home: %v", err)
	}
}

func TestLargeDirectory(t *testing.T) {
	a := newAttackSite(t)
	dir := filepath.Join(a.home, "big")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	const n = 10_000
	for i := range n {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("file-%05d", i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := mustSFTP(t, a.srv, a.addr, "alice")
	fis, err := c.ReadDir("/big")
	if err != nil {
		t.Fatal(err)
	}
	if len(fis) != n {
		t.Fatalf("listed %d entries, want %d", len(fis), n)
	}
	seen := make(map[string]bool, n)
	for _, fi := range fis {
		seen[fi.Name()] = true
	}
	if len(seen) != n {
		t.Fatalf("listing has %d distinct names, want %d", len(seen), n)
	}
}

func TestDisconnectMidUpload(t *testing.T) {
	a := newAttackSite(t)
	c, err := dialSFTP(a.srv, a.addr, "alice", sshPassword())
	if err != nil {
		t.Fatal(err)
	}
	// OpenSSH's put opens write-only with truncation: an atomic upload.
	f, err := c.OpenFile("/partial.bin", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(randomBytes(t, 1<<20)); err != nil {
		t.Fatal(err)
	}
	// Cut the connection without closing the file.
	_ = c.ssh.Close()
	coretest.Eventually(t, 10*time.Second, "OnTransferError after the disconnect", func() bool {
		return count(a.d, core.OnTransferError) > 0
	})
	coretest.Eventually(t, 10*time.Second, "no file left behind", func() bool {
		entries, _ := os.ReadDir(a.home)
		return len(entries) == 0
	})
	if _, err := os.Stat(filepath.Join(a.home, "partial.bin")); err == nil {
		t.Fatal("the partial upload was published")
	}
}

func TestParallelClients(t *testing.T) {
	a := newAttackSite(t)
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			c, err := dialSFTP(a.srv, a.addr, "alice", sshPassword())
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			data := bytes.Repeat([]byte(fmt.Sprintf("client %02d|", i)), 30_000+i*101)
			p := fmt.Sprintf("/par/c%02d.bin", i)
			if err := c.MkdirAll("/par"); err != nil {
				errs <- err
				return
			}
			f, err := c.Create(p)
			if err != nil {
				errs <- err
				return
			}
			if _, err := f.ReadFrom(bytes.NewReader(data)); err != nil {
				errs <- err
				return
			}
			if err := f.Close(); err != nil {
				errs <- err
				return
			}
			g, err := c.Open(p)
			if err != nil {
				errs <- err
				return
			}
			var got bytes.Buffer
			_, err = g.WriteTo(&got)
			_ = g.Close()
			if err == nil && !bytes.Equal(got.Bytes(), data) {
				err = fmt.Errorf("%s: content differs", p)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	for i := range n {
		fi, err := os.Stat(filepath.Join(a.home, "par", fmt.Sprintf("c%02d.bin", i)))
		if err != nil || fi.Size() != int64(len(fmt.Sprintf("client %02d|", i))*(30_000+i*101)) {
			t.Errorf("host file %d: %v %v", i, fi, err)
		}
	}
}

// TestErrorMessages checks that the core's message reaches the client with the right code.
func TestErrorMessages(t *testing.T) {
	a := newAttackSite(t)
	c := mustSFTP(t, a.srv, a.addr, "alice")
	if err := c.MkdirAll("/d/e"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		err  error
		code error
		text string
	}{
		{c.RemoveDirectory("/d"), pkgsftp.ErrSSHFxFailure, "rmdir /d: directory not empty"},
		{c.Mkdir("/d"), pkgsftp.ErrSSHFxFailure, "mkdir /d: file exists"},
		{c.Rename("/d", "/shared/d"), pkgsftp.ErrSSHFxFailure, "operation crosses mount points"},
		{c.Remove("/shared/readme.txt"), nil, ""},
		{c.Chmod("/", 0o777), nil, ""}, // a mount point's mode is the operator's
	}
	for _, tc := range cases {
		if tc.err == nil {
			t.Errorf("want an error %q", tc.text)
			continue
		}
		if tc.code == nil {
			if !errors.Is(tc.err, os.ErrPermission) {
				t.Errorf("error %v: want permission denied", tc.err)
			}
			continue
		}
		var se *pkgsftp.StatusError
		if !errors.As(tc.err, &se) || se.FxCode() != tc.code || !strings.Contains(se.Error(), tc.text) {
			t.Errorf("error %v: want code %v with text %q", tc.err, tc.code, tc.text)
		}
	}
	_, err := c.Stat("/nope")
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stat of a missing file: %v, want not-exist", err)
	}
	if _, err := os.Stat(filepath.Join(a.home, vfs.TempPrefix)); err == nil {
		t.Error("temp file visible")
	}
}

package sftp

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wharf-project/wharf/core/config"
)

// The quota and upload-state attacks of issue #19 (items 8, 9, 10 and 24), performed over
// SFTP with pkg/sftp's client. The core's own tests check the count against the disk after
// every step; these prove the attacks fail end to end: each ends by trying to store a file
// that fits only if the attack fooled the quota.

const attackQuota = 1 << 20

type quotaEnv struct {
	srv  *Server
	addr string
	home string
}

func newQuotaEnv(t *testing.T, quota bool) *quotaEnv {
	t.Helper()
	root := t.TempDir()
	u := testUser("q")
	if quota {
		u.Quota = config.Quota{Bytes: attackQuota}
	}
	srv, addr := startServer(t, newTestSite(t, testSiteConfig(root, u), nil))
	return &quotaEnv{srv: srv, addr: addr, home: filepath.Join(root, "home", "q")}
}

func (e *quotaEnv) put(t *testing.T, c *sftpSession, name string, data []byte) error {
	t.Helper()
	f, err := c.Create(name)
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if werr != nil {
		return werr
	}
	return cerr
}

// overflow tries to store size more bytes: it must be refused and leave nothing.
func (e *quotaEnv) overflow(t *testing.T, c *sftpSession, size int) {
	t.Helper()
	if err := e.put(t, c, "/overflow", bytes.Repeat([]byte("o"), size)); err == nil {
		t.Fatalf("a %d-byte upload after the attack succeeded: the quota was bypassed", size)
	}
	if _, err := os.Stat(filepath.Join(e.home, "overflow")); !os.IsNotExist(err) {
		t.Fatalf("the refused upload left a file: %v", err)
	}
}

// Item 8: hard link, then posix-rename the original onto the link, repeated.
func TestSFTPQuotaHardLinkPosixRename(t *testing.T) {
	e := newQuotaEnv(t, true)
	c := mustSFTP(t, e.srv, e.addr, "q")
	if err := e.put(t, c, "/a", bytes.Repeat([]byte("a"), 300<<10)); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if err := c.Link("/a", "/b"); err != nil {
			t.Fatalf("round %d: link: %v", i, err)
		}
		if err := c.PosixRename("/a", "/b"); err != nil {
			t.Fatalf("round %d: posix-rename onto the link: %v", i, err)
		}
		if err := c.Remove("/b"); err != nil {
			t.Fatalf("round %d: remove: %v", i, err)
		}
	}
	e.overflow(t, c, 800<<10)
}

// Item 9: a second session truncates the file (by name and through a symbolic link) while
// the first holds it open for writing; the first rewrites the released range.
func TestSFTPQuotaTruncateUnderOpenHandle(t *testing.T) {
	for _, via := range []string{"/f", "/alias"} {
		t.Run(via, func(t *testing.T) {
			e := newQuotaEnv(t, true)
			a := mustSFTP(t, e.srv, e.addr, "q")
			b := mustSFTP(t, e.srv, e.addr, "q")
			data := bytes.Repeat([]byte("f"), 600<<10)
			if err := e.put(t, a, "/f", data); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("f", filepath.Join(e.home, "alias")); err != nil {
				t.Fatal(err)
			}
			h, err := a.OpenFile("/f", os.O_WRONLY) // in place: no O_TRUNC, no O_CREATE
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Truncate(via, 0); err != nil {
				t.Fatalf("truncate from the second session: %v", err)
			}
			if _, err := h.WriteAt(data, 0); err != nil {
				t.Fatalf("rewrite: %v", err)
			}
			if err := h.Close(); err != nil {
				t.Fatal(err)
			}
			e.overflow(t, b, 600<<10)
		})
	}
}

// Item 10: open an existing file with O_TRUNC, remove it from another session while open.
func TestSFTPQuotaRemoveWhileTruncatedOpen(t *testing.T) {
	e := newQuotaEnv(t, true)
	a := mustSFTP(t, e.srv, e.addr, "q")
	b := mustSFTP(t, e.srv, e.addr, "q")
	if err := e.put(t, a, "/f", bytes.Repeat([]byte("f"), 600<<10)); err != nil {
		t.Fatal(err)
	}
	if err := e.put(t, a, "/g", bytes.Repeat([]byte("g"), 400<<10)); err != nil {
		t.Fatal(err)
	}
	h, err := a.OpenFile("/f", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Remove("/f"); err != nil {
		t.Fatalf("remove while open: %v", err)
	}
	_, _ = h.Write([]byte("late"))
	_ = h.Close()
	e.overflow(t, b, 700<<10)
}

// Item 24: exactly what a client's integration suite did. An upload fails mid-stream and the
// client leaves its handle open; it removes the name (no visible file: the upload is
// atomic), uploads the same name again, sets its modification time; then the abandoned
// handle is closed. The new file must keep its content and time.
func TestSFTPAbandonedUploadNeverPublishes(t *testing.T) {
	e := newQuotaEnv(t, false)
	c := mustSFTP(t, e.srv, e.addr, "q")
	stale, err := c.OpenFile("/f", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stale.Write(bytes.Repeat([]byte("s"), 5<<10)); err != nil {
		t.Fatal(err)
	}
	_ = c.Remove("/f") // the client's clean-up after the failed upload; its result is ignored
	good := bytes.Repeat([]byte("g"), 100)
	if err := e.put(t, c, "/f", good); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	if err := c.Chtimes("/f", mtime, mtime); err != nil {
		t.Fatal(err)
	}
	_ = stale.Close()
	host := filepath.Join(e.home, "f")
	got, err := os.ReadFile(host)
	if err != nil || !bytes.Equal(got, good) {
		t.Fatalf("content is %d bytes (%v), want the 100 bytes of the second upload", len(got), err)
	}
	fi, err := c.Stat("/f")
	if err != nil || !fi.ModTime().Equal(mtime) {
		t.Fatalf("mtime %v (%v), want %v", fi.ModTime(), err, mtime)
	}
}

// OpenSSH "put -p" sets mode and times with FSETSTAT just before closing: over an existing
// file they must land on the new file, not on the old one it replaces.
func TestSFTPFsetstatOnUploadReplacingFile(t *testing.T) {
	e := newQuotaEnv(t, false)
	c := mustSFTP(t, e.srv, e.addr, "q")
	if err := e.put(t, c, "/f", []byte("old")); err != nil {
		t.Fatal(err)
	}
	f, err := c.OpenFile("/f", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("new content")); err != nil {
		t.Fatal(err)
	}
	if fi, err := f.Stat(); err != nil || fi.Size() != int64(len("new content")) {
		t.Fatalf("fstat of the open upload: %v, %v", fi, err)
	}
	if err := f.Chmod(0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(e.home, "f"))
	if err != nil || fi.Size() != int64(len("new content")) || fi.Mode().Perm() != 0o600 {
		t.Fatalf("published file: %v, %v; want the new content with mode 0600", fi, err)
	}
}

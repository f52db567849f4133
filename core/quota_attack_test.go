package core_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/vfs"
)

// The quota attacks of issue #19 (items 8–10): each ends by trying to store more than the
// quota, which must fail, and by checking that the count equals what is on disk.

const attackQuota = 1 << 20

func quotaUser(id string) config.User {
	return user(id, onDisk, func(u *config.User) { u.Quota = config.Quota{Bytes: attackQuota} })
}

// checkUsage compares the user's charged usage with a fresh scan of the home mount.
func checkUsage(t *testing.T, s *core.Session, when string) {
	t.Helper()
	b, f := core.UsageOf(s)
	sb, sf, err := core.ScanUsage(core.HomeFS(s))
	if err != nil {
		t.Fatal(err)
	}
	if b != sb || f != sf {
		t.Fatalf("%s: charged %d bytes in %d files, disk has %d bytes in %d files", when, b, f, sb, sf)
	}
}

// overflow tries to store a file that only fits if the attack fooled the count.
func overflow(t *testing.T, s *core.Session, size int) {
	t.Helper()
	err := upload(context.Background(), s, "/overflow", string(bytes.Repeat([]byte("o"), size)))
	if !errors.Is(err, core.ErrQuota) {
		t.Fatalf("a %d-byte upload after the attack: %v, want a quota error", size, err)
	}
}

// Item 8: hard-link a file, then posix-rename the original onto the link. rename(2) between
// two names of one file does nothing, so nothing may be released.
func TestQuotaHardLinkRenameOntoItself(t *testing.T) {
	site, _ := diskSite(t, nil, quotaUser("q"))
	s := login(t, site, "q")
	ctx := context.Background()
	if err := upload(ctx, s, "/a", string(bytes.Repeat([]byte("a"), 300<<10))); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := s.Link(ctx, "/a", "/b"); err != nil {
			t.Fatalf("round %d: link: %v", i, err)
		}
		if err := s.Rename(ctx, "/a", "/b", true); err != nil {
			t.Fatalf("round %d: rename onto the link: %v", i, err)
		}
		checkUsage(t, s, "after rename onto a link")
		if err := s.Remove(ctx, "/b"); err != nil {
			t.Fatalf("round %d: remove the link: %v", i, err)
		}
		checkUsage(t, s, "after removing the link")
	}
	overflow(t, s, 800<<10)
}

// Item 9: truncate a file from a second session (by its name or through a symbolic link)
// while a first session holds it open for writing, then rewrite the released range.
func TestQuotaTruncateUnderOpenHandle(t *testing.T) {
	for _, via := range []string{"/f", "/alias"} {
		t.Run(via, func(t *testing.T) {
			site, root := diskSite(t, nil, quotaUser("q"))
			a := login(t, site, "q")
			b := login(t, site, "q")
			ctx := context.Background()
			data := bytes.Repeat([]byte("f"), 600<<10)
			if err := upload(ctx, a, "/f", string(data)); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("f", filepath.Join(root, "q", "alias")); err != nil {
				t.Fatal(err)
			}
			h, err := a.OpenWrite(ctx, "/f", core.WriteMode{}, 0) // in place: the file exists
			if err != nil {
				t.Fatal(err)
			}
			if err := b.SetStat(ctx, via, core.Attrs{Size: new(int64)}); err != nil {
				t.Fatalf("truncate by the second session: %v", err)
			}
			checkUsage(t, b, "after the truncation")
			if _, err := h.WriteAt(data, 0); err != nil {
				t.Fatalf("rewrite: %v", err)
			}
			checkUsage(t, a, "after the rewrite")
			if err := h.Close(); err != nil {
				t.Fatal(err)
			}
			overflow(t, b, 600<<10)
			checkUsage(t, a, "at the end")
		})
	}
}

// Item 10: open an existing file with TRUNC, then remove it while the handle is open; its
// size must be released once. Both atomic and in-place uploads.
func TestQuotaRemoveWhileTruncatedOpen(t *testing.T) {
	for _, atomicUploads := range []bool{true, false} {
		t.Run(map[bool]string{true: "atomic", false: "in place"}[atomicUploads], func(t *testing.T) {
			root := t.TempDir()
			site := testSite(t, []config.User{quotaUser("q")}, nil, func(c *config.Site) {
				c.VFS = append(c.VFS, config.VFS{Name: "disk", Type: "disk", Root: filepath.Join(root, "{user}"),
					AtomicUploads: &atomicUploads})
			})
			a := login(t, site, "q")
			b := login(t, site, "q")
			ctx := context.Background()
			if err := upload(ctx, a, "/f", string(bytes.Repeat([]byte("f"), 600<<10))); err != nil {
				t.Fatal(err)
			}
			if err := upload(ctx, a, "/g", string(bytes.Repeat([]byte("g"), 400<<10))); err != nil {
				t.Fatal(err)
			}
			h, err := a.OpenWrite(ctx, "/f", core.WriteMode{Truncate: true}, 0)
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Remove(ctx, "/f"); err != nil {
				t.Fatalf("remove while open: %v", err)
			}
			_, _ = h.Write([]byte("late"))
			_ = h.Close()
			checkUsage(t, a, "after the handle closed")
			overflow(t, b, 700<<10)
		})
	}
}

// Item 24 (core part): a client's upload fails mid-stream and it leaves the handle open,
// removes the name (which finds no visible file, the upload being atomic), uploads the same
// name again and sets its time; then the abandoned handle is closed. The time must be on the
// new file and the stale upload must never be published.
func TestAbandonedUploadNeverPublishes(t *testing.T) {
	site, root := diskSite(t, nil, user("u", onDisk))
	s := login(t, site, "u")
	ctx := context.Background()
	stale, err := s.OpenWrite(ctx, "/f", core.WriteMode{Truncate: true}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stale.Write(bytes.Repeat([]byte("s"), 5<<10)); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "/f"); err != nil {
		t.Fatalf("removing a name whose only file is an upload in flight: %v", err)
	}
	good := bytes.Repeat([]byte("g"), 100)
	if err := upload(ctx, s, "/f", string(good)); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	if err := s.SetStat(ctx, "/f", core.Attrs{Atime: &mtime, Mtime: &mtime}); err != nil {
		t.Fatal(err)
	}
	if err := stale.Close(); err == nil {
		t.Error("closing the cancelled upload reported success")
	}
	host := filepath.Join(root, "u", "f")
	got, err := os.ReadFile(host)
	if err != nil || !bytes.Equal(got, good) {
		t.Fatalf("content %d bytes (%v), want the 100 good bytes", len(got), err)
	}
	if fi, _ := os.Stat(host); !fi.ModTime().Equal(mtime) {
		t.Fatalf("mtime %v, want %v", fi.ModTime(), mtime)
	}
	assertNoTemp(t, filepath.Join(root, "u"))
}

// An upload opened later wins over one opened earlier that finishes later, and a rename of
// the name cancels the uploads in flight to it.
func TestUploadOrderAndRenameCancel(t *testing.T) {
	site, root := diskSite(t, nil, user("u", onDisk))
	s := login(t, site, "u")
	ctx := context.Background()
	older, err := s.OpenWrite(ctx, "/f", core.WriteMode{Truncate: true}, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = older.Write([]byte("older"))
	if err := upload(ctx, s, "/f", "newer"); err != nil {
		t.Fatal(err)
	}
	if err := older.Close(); err == nil {
		t.Error("the superseded upload reported success")
	}
	if got, _ := os.ReadFile(filepath.Join(root, "u", "f")); string(got) != "newer" {
		t.Fatalf("content %q, want the newer upload", got)
	}
	// A rename of the name cancels an upload in flight to it.
	inflight, err := s.OpenWrite(ctx, "/f", core.WriteMode{Truncate: true}, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = inflight.Write([]byte("in flight"))
	if err := s.Rename(ctx, "/f", "/g", false); err != nil {
		t.Fatal(err)
	}
	if _, err := inflight.Write([]byte("more")); err == nil {
		t.Error("a write to a cancelled upload succeeded")
	}
	_ = inflight.Close()
	if _, err := os.Stat(filepath.Join(root, "u", "f")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the cancelled upload was published: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(root, "u", "g")); string(got) != "newer" {
		t.Fatalf("renamed content %q", got)
	}
	assertNoTemp(t, filepath.Join(root, "u"))
}

func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if vfs.IsTempName(e.Name()) {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

// A cancelled upload's temporary file loses its name at once, as a file being written does
// when it is unlinked on POSIX: the folder holds nothing of it, so a client that removed the
// file it was writing (rclone does, without closing the handle, when its source fails) can
// remove the folder while the handle is still open. The same holds for an upload cancelled
// by a rename of its folder or by a newer upload of its name.
func TestCancelledUploadLeavesNoTemporaryFile(t *testing.T) {
	site, root := diskSite(t, nil, user("u", onDisk))
	s := login(t, site, "u")
	ctx := context.Background()
	home := filepath.Join(root, "u")
	open := func(p string) *core.WriteHandle {
		t.Helper()
		h, err := s.OpenWrite(ctx, p, core.WriteMode{Truncate: true}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.Write(bytes.Repeat([]byte("x"), 5<<10)); err != nil {
			t.Fatal(err)
		}
		return h
	}

	// The name has no visible file, only the upload in flight; then with a visible file too.
	for _, visible := range []bool{false, true} {
		if err := s.Mkdir(ctx, "/d"); err != nil {
			t.Fatal(err)
		}
		if visible {
			if err := upload(ctx, s, "/d/f", "old"); err != nil {
				t.Fatal(err)
			}
		}
		h := open("/d/f")
		if err := s.Remove(ctx, "/d/f"); err != nil {
			t.Fatalf("visible %v: remove: %v", visible, err)
		}
		if err := s.Rmdir(ctx, "/d"); err != nil {
			t.Fatalf("visible %v: removing the folder of a removed upload still open: %v", visible, err)
		}
		if _, err := h.Write([]byte("more")); err == nil {
			t.Errorf("visible %v: a write to the cancelled upload succeeded", visible)
		}
		if err := h.Close(); err == nil {
			t.Errorf("visible %v: closing the cancelled upload reported success", visible)
		}
		if _, err := os.Lstat(filepath.Join(home, "d")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("visible %v: the folder is back after the close: %v", visible, err)
		}
	}

	// A rename of the folder cancels the upload: the renamed folder holds no temporary file.
	if err := s.Mkdir(ctx, "/e"); err != nil {
		t.Fatal(err)
	}
	h := open("/e/f")
	if err := s.Rename(ctx, "/e", "/e2", false); err != nil {
		t.Fatal(err)
	}
	assertNoTemp(t, filepath.Join(home, "e2"))
	if err := s.Rmdir(ctx, "/e2"); err != nil {
		t.Fatalf("removing the renamed folder: %v", err)
	}
	_ = h.Close()

	// A newer upload of the name that publishes first cancels the older one at once.
	older := open("/g")
	if err := upload(ctx, s, "/g", "newer"); err != nil {
		t.Fatal(err)
	}
	assertNoTemp(t, home)
	if err := older.Close(); err == nil {
		t.Error("the superseded upload reported success")
	}
	if got, _ := os.ReadFile(filepath.Join(home, "g")); string(got) != "newer" {
		t.Fatalf("content %q, want the newer upload", got)
	}
	assertNoTemp(t, home)
}

// A removed upload's data loses its name but still takes space until its handle closes, so
// it stays charged until then: removing the names of open uploads is no way past the quota.
func TestCancelledUploadStaysChargedUntilClosed(t *testing.T) {
	site, _ := diskSite(t, nil, user("u", onDisk, func(u *config.User) {
		u.Quota = config.Quota{Bytes: 64 << 10}
	}))
	s := login(t, site, "u")
	ctx := context.Background()
	h, err := s.OpenWrite(ctx, "/big", core.WriteMode{Truncate: true}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Write(make([]byte, 48<<10)); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "/big"); err != nil {
		t.Fatal(err)
	}
	if err := upload(ctx, s, "/next", string(make([]byte, 32<<10))); !errors.Is(err, core.ErrQuota) {
		t.Fatalf("an upload past the quota while the removed one is open: %v, want a quota error", err)
	}
	_ = h.Close()
	if err := upload(ctx, s, "/next", string(make([]byte, 32<<10))); err != nil {
		t.Fatalf("the same upload once the removed one is closed: %v", err)
	}
}

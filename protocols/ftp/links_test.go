package ftp

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/core/coretest"
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

// TestSiteSymlinkRefusedWithLinksAllowed: FTP never creates links, even on a vfs that allows
// them (SFTP does).
func TestSiteSymlinkRefusedWithLinksAllowed(t *testing.T) {
	site, root := newSite(t, nil, func(c *config.Site) { c.VFS[0].AllowSymlinks = true })
	ts := serve(t, site, modePlain)
	r := dialRaw(t, ts, modePlain)
	r.login(coretest.UserAlice, coretest.Password)
	for _, c := range []string{"SYMLINK x link", "SYMLINK ../../x link2"} {
		if code, msg := r.send("SITE %s", c); code != 504 {
			t.Fatalf("SITE %s: %d %q, want 504", c, code, msg)
		}
	}
	for _, name := range []string{"link", "link2"} {
		if _, err := os.Lstat(filepath.Join(root, "home", coretest.UserAlice, name)); err == nil {
			t.Fatalf("SITE SYMLINK created %s", name)
		}
	}
}

// TestCommandsWithoutHome sends every file command, for "/" and for a directory that exists
// only because of a folder below it, as a user without a home. Nothing may panic: the
// library would recover and answer "Unhandled internal error".
func TestCommandsWithoutHome(t *testing.T) {
	var logs logBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := coretest.SiteConfig(t.TempDir())
	cfg.Users = append(cfg.Users, config.User{ID: "nohome", Password: "plain:" + coretest.Password,
		Folders: map[string]config.Mount{"/in/box": {VFS: "home", Permissions: []string{"all"}}}})
	site, err := core.NewSite(cfg, core.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = site.Shutdown(context.Background()) })
	ts := serve(t, site, modePlain)
	r := dialRaw(t, ts, modePlain)
	r.login("nohome", coretest.Password)
	var replies []string
	for _, p := range []string{"/", "/in"} {
		for _, c := range []string{"SIZE", "MDTM", "MLST", "STAT", "DELE", "RMD", "MKD", "CWD", "AVBL",
			"HASH", "XCRC", "SITE CHMOD 644", "MFMT 20200101000000", "RNFR"} {
			code, msg := r.send("%s %s", c, p)
			replies = append(replies, msg)
			if c == "RNFR" && code == 350 {
				_, msg = r.send("RNTO /in/box/x")
				replies = append(replies, msg)
			}
		}
		for _, c := range []string{"RETR", "STOR", "APPE", "LIST", "MLSD", "NLST"} {
			var up []byte
			if c == "STOR" || c == "APPE" {
				up = []byte("data")
			}
			_, _, _, msg := r.transfer(up, "%s %s", c, p)
			replies = append(replies, msg)
		}
		r.cmd(250, "CWD /")
	}
	for _, msg := range replies {
		if strings.Contains(msg, "internal error") {
			t.Errorf("reply %q", msg)
		}
	}
	if l := logs.String(); strings.Contains(l, "panic") || strings.Contains(l, "Internal command handling error") {
		t.Errorf("the server logged a panic:\n%s", l)
	}
}

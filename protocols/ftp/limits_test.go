package ftp

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/core/coretest"
)

// TestEscapes sends raw, hostile names: nothing outside the home is read, listed, hashed,
// linked or removed, and no reply names a host path.
func TestEscapes(t *testing.T) {
	site, root := newSite(t, nil, nil)
	ts := serve(t, site, modePlain)
	home := filepath.Join(root, "home", coretest.UserAlice)
	secret := []byte("top secret outside the home")
	must(t, os.WriteFile(filepath.Join(root, "secret.txt"), secret, 0o600))
	top := []byte("top file in the home")
	must(t, os.WriteFile(filepath.Join(home, "top.txt"), top, 0o644))
	must(t, os.MkdirAll(filepath.Join(home, "sub"), 0o755))
	must(t, os.WriteFile(filepath.Join(home, "sub", "x.txt"), []byte("x"), 0o644))

	r := dialRaw(t, ts, modePlain)
	r.login(coretest.UserAlice, coretest.Password)
	noHostPath := func(what, msg string) {
		t.Helper()
		if strings.Contains(msg, root) {
			t.Fatalf("%s: reply reveals a host path: %q", what, msg)
		}
	}

	for _, p := range []string{"../../etc/passwd", "../../../../../../etc/passwd", "../secret.txt", "/../../secret.txt", "../../../" + filepath.Base(root) + "/secret.txt"} {
		first, data, final, msg := r.transfer(nil, "RETR %s", p)
		if first != 550 || len(data) != 0 {
			t.Fatalf("RETR %s: %d %q (%d bytes)", p, first, msg, len(data))
		}
		noHostPath("RETR "+p, fmt.Sprint(final, msg))
	}
	for _, p := range []string{"../../etc/passwd", "../secret.txt", "/../../secret.txt"} {
		code, msg := r.send("HASH %s", p)
		if code < 500 {
			t.Fatalf("HASH %s: %d %q", p, code, msg)
		}
		noHostPath("HASH "+p, msg)
	}
	// A raw relative name is resolved against the cwd, inside the home.
	r.cmd(250, "CWD sub")
	msg := r.cmd(213, "HASH ../top.txt")
	sum := sha256.Sum256(top)
	if !strings.Contains(msg, hex.EncodeToString(sum[:])) {
		t.Fatalf("HASH ../top.txt from /sub = %q, want the digest of /top.txt", msg)
	}
	for _, arg := range []string{"-la ../..", "-la ../../..", "../../.."} {
		_, data, final, msg := r.transfer(nil, "LIST %s", arg)
		if final != 226 {
			t.Fatalf("LIST %s: %d %q", arg, final, msg)
		}
		if bytes.Contains(data, []byte("secret.txt")) || bytes.Contains(data, []byte("home")) {
			t.Fatalf("LIST %s shows entries outside the home:\n%s", arg, data)
		}
		// "-la ../.." names a folder "-la .." plus "..": the cwd again, which is valid.
		if !bytes.Contains(data, []byte("top.txt")) && !bytes.Contains(data, []byte("x.txt")) {
			t.Fatalf("LIST %s does not show a folder of the home:\n%s", arg, data)
		}
	}
	r.cmd(250, "CWD /")

	// SITE: only CHMOD works; the library's SYMLINK and recursive RMDIR never run.
	for _, c := range []string{"SYMLINK /etc/passwd link", "SYMLINK ../secret.txt link2", "RMDIR sub", "MKDIR made", "CHOWN 0:0 top.txt", "UTIME 20200101000000 top.txt"} {
		code, msg := r.send("SITE %s", c)
		if code != 504 {
			t.Fatalf("SITE %s: %d %q, want 504", c, code, msg)
		}
	}
	for _, name := range []string{"link", "link2", "made"} {
		if _, err := os.Lstat(filepath.Join(home, name)); err == nil {
			t.Fatalf("refused SITE command created %s", name)
		}
	}
	if _, err := os.Stat(filepath.Join(home, "sub", "x.txt")); err != nil {
		t.Fatalf("refused SITE RMDIR removed content: %v", err)
	}
	r.cmd(200, "SITE CHMOD 600 top.txt")
	if fi, err := os.Stat(filepath.Join(home, "top.txt")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("SITE CHMOD 600: mode %v, %v", fi.Mode(), err)
	}
	r.cmd(501, "SITE CHMOD 755")
	code, msg := r.send("SITE CHMOD 644 ../secret.txt")
	if code != 550 {
		t.Fatalf("SITE CHMOD outside the home: %d %q", code, msg)
	}
	noHostPath("SITE CHMOD", msg)
	if fi, _ := os.Stat(filepath.Join(root, "secret.txt")); fi.Mode().Perm() != 0o600 {
		t.Fatal("SITE CHMOD changed a file outside the home")
	}
	r.cmd(200, "NOOP")
}

// TestHiddenEntries: an entry a script hid from a listing is also invisible to SIZE, MDTM,
// MLST, RETR and CWD for the rest of the session.
func TestHiddenEntries(t *testing.T) {
	site, root := newSite(t, nil, nil)
	ts := serve(t, site, modePlain)
	dir := filepath.Join(root, "home", coretest.UserAlice, "h")
	must(t, os.MkdirAll(filepath.Join(dir, "folder"+coretest.HiddenSuffix), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "secret"+coretest.HiddenSuffix), []byte("hidden"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "ok.txt"), []byte("ok"), 0o644))

	r := dialRaw(t, ts, modePlain)
	r.login(coretest.UserAlice, coretest.Password)
	for _, c := range []string{"LIST /h", "NLST /h", "MLSD /h"} {
		_, data, final, msg := r.transfer(nil, "%s", c)
		if final != 226 || !bytes.Contains(data, []byte("ok.txt")) || bytes.Contains(data, []byte(coretest.HiddenSuffix)) {
			t.Fatalf("%s: %d %q\n%s", c, final, msg, data)
		}
	}
	for _, c := range []string{"SIZE /h/secret.tmp", "MDTM /h/secret.tmp", "MLST /h/secret.tmp", "CWD /h/folder.tmp", "SIZE h/secret.tmp"} {
		if code, msg := r.send("%s", c); code < 500 {
			t.Fatalf("%s on a hidden entry: %d %q", c, code, msg)
		}
	}
	if first, data, _, msg := r.transfer(nil, "RETR /h/secret.tmp"); first != 550 || len(data) > 0 {
		t.Fatalf("RETR of a hidden file: %d %q", first, msg)
	}
	r.cmd(213, "SIZE /h/ok.txt")
}

// TestLargeDirectory lists 10,000 entries completely with NLST and MLSD.
func TestLargeDirectory(t *testing.T) {
	const n = 10_000
	site, root := newSite(t, nil, nil)
	ts := serve(t, site, modePlain)
	dir := filepath.Join(root, "home", coretest.UserAlice, "many")
	must(t, os.MkdirAll(dir, 0o755))
	for i := range n {
		must(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("file-%05d.txt", i)), nil, 0o644))
	}
	c, err := ts.dial(modePlain, coretest.UserAlice, coretest.Password)
	must(t, err)
	defer c.Quit()
	names, err := c.NameList("/many")
	must(t, err)
	if len(names) != n {
		t.Fatalf("NLST: %d names, want %d", len(names), n)
	}
	entries, err := c.List("/many") // MLSD
	must(t, err)
	if len(entries) != n {
		t.Fatalf("MLSD: %d entries, want %d", len(entries), n)
	}
}

// TestIdleTimeout: a 2 s idle timeout cuts an idle control connection, but not one whose
// transfer runs for several seconds (curl --limit-rate), in either direction.
func TestIdleTimeout(t *testing.T) {
	site, root := newSite(t, nil, func(c *config.Site) {
		c.Limits.IdleTimeout = config.Duration{Duration: 2 * time.Second}
	})
	ts := serve(t, site, modePlain)

	t.Run("idle control connection is cut", func(t *testing.T) {
		r := dialRaw(t, ts, modePlain)
		r.login(coretest.UserAlice, coretest.Password)
		start := time.Now()
		_ = r.conn.SetReadDeadline(time.Now().Add(15 * time.Second))
		code, msg, _ := r.tp.ReadResponse(0)
		if code != 421 {
			t.Fatalf("idle connection: reply %d %q, want 421", code, msg)
		}
		if _, err := r.tp.ReadLine(); err != io.EOF {
			t.Fatalf("after the idle reply: %v, want EOF", err)
		}
		if d := time.Since(start); d < 1500*time.Millisecond {
			t.Fatalf("cut after %v, before the 2 s idle timeout", d)
		}
	})

	t.Run("long transfers are not cut", func(t *testing.T) {
		curl := coretest.NeedBinary(t, "curl")
		home := filepath.Join(root, "home", coretest.UserAlice)
		// Larger than loopback socket buffers, so the server is still sending after 2 s.
		data := randomBytes(t, 24<<20)
		must(t, os.WriteFile(filepath.Join(home, "slow.bin"), data, 0o644))
		local := t.TempDir()
		url := fmt.Sprintf("ftp://127.0.0.1:%s/", port(ts))
		auth := coretest.UserAlice + ":" + coretest.Password
		start := time.Now()
		out := filepath.Join(local, "slow.bin")
		mustRun(t, time.Minute, nil, curl, "-sS", "--fail", "--limit-rate", "3M", "-u", auth, "-o", out, url+"slow.bin")
		if d := time.Since(start); d < 3*time.Second {
			t.Fatalf("download took %v: too fast to prove anything", d)
		}
		got, err := os.ReadFile(out)
		must(t, err)
		if !bytes.Equal(got, data) {
			t.Fatalf("slow download differs (%d bytes, want %d)", len(got), len(data))
		}
		start = time.Now()
		mustRun(t, time.Minute, nil, curl, "-sS", "--fail", "--limit-rate", "3M", "-u", auth, "-T", out, url+"slow-up.bin")
		if d := time.Since(start); d < 3*time.Second {
			t.Fatalf("upload took %v: too fast to prove anything", d)
		}
		got, err = os.ReadFile(filepath.Join(home, "slow-up.bin"))
		must(t, err)
		if !bytes.Equal(got, data) {
			t.Fatalf("slow upload differs (%d bytes, want %d)", len(got), len(data))
		}
	})
}

// TestLoginTimeout: a client that never logs in is dropped; one that did is not.
func TestLoginTimeout(t *testing.T) {
	site, _ := newSite(t, nil, func(c *config.Site) {
		c.Limits.LoginTimeout = config.Duration{Duration: time.Second}
	})
	ts := serve(t, site, modePlain)
	in := dialRaw(t, ts, modePlain)
	in.login(coretest.UserAlice, coretest.Password)
	idle := dialRaw(t, ts, modePlain)
	start := time.Now()
	_ = idle.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if code, msg, _ := idle.tp.ReadResponse(0); code != 421 || !strings.Contains(msg, "Login timeout") {
		t.Fatalf("connection without login: reply %d %q, want 421 Login timeout", code, msg)
	}
	if _, err := idle.tp.ReadLine(); err != io.EOF {
		t.Fatalf("after the 421 reply: %v, want EOF", err)
	}
	if d := time.Since(start); d < 800*time.Millisecond {
		t.Fatalf("dropped after %v, before the 1 s login timeout", d)
	}
	in.cmd(200, "NOOP")
	coretest.Eventually(t, defaultWait, "the dropped session to close", func() bool { return len(site.Sessions()) == 1 })
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

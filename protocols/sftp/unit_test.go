package sftp

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/coretest"
)

func TestParseSCPCommand(t *testing.T) {
	for _, tc := range []struct {
		cmd  string
		want *scpOptions
		err  error
	}{
		{"scp -t /in", &scpOptions{sink: true, paths: []string{"/in"}}, nil},
		{"scp -v -r -p -d -t -- /in/dir", &scpOptions{sink: true, recursive: true, preserve: true, targetDir: true, paths: []string{"/in/dir"}}, nil},
		{"/usr/bin/scp -rf 'a b' \"c\\\"d\" e\\ f", &scpOptions{source: true, recursive: true, paths: []string{"a b", `c"d`, "e f"}}, nil},
		{"scp -f -- -odd", &scpOptions{source: true, paths: []string{"-odd"}}, nil},
		{"scp -f '$(reboot)'", &scpOptions{source: true, paths: []string{"$(reboot)"}}, nil},
		{"scp -t a b", nil, errBadSCPArgs},
		{"scp -t -f x", nil, errBadSCPArgs},
		{"scp -x -t x", nil, errBadSCPArgs},
		{"scp -t", nil, errBadSCPArgs},
		{"ls -la", nil, errNotSCP},
		{"scpx -t /", nil, errNotSCP},
		{"scp -t 'unterminated", nil, errNotSCP},
		{"", nil, errNotSCP},
	} {
		got, err := parseSCPCommand(tc.cmd)
		if tc.err != nil {
			if err == nil || !strings.Contains(err.Error(), tc.err.Error()) {
				t.Errorf("%q: err %v, want %v", tc.cmd, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q = %+v, %v; want %+v", tc.cmd, got, err, tc.want)
		}
	}
}

func TestParseEntry(t *testing.T) {
	mode, size, name, err := parseEntry("0644 12345 my file.txt")
	if err != nil || mode != 0o644 || size != 12345 || name != "my file.txt" {
		t.Fatalf("got %v %d %q %v", mode, size, name, err)
	}
	for _, bad := range []string{"0644 1 ..", "0644 1 a/b", "0644 -1 a", "9999 1 a", "0644 1", "0644 1 "} {
		if _, _, _, err := parseEntry(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := parseTimes("1700000000 0 1700000001 0"); err != nil {
		t.Fatal(err)
	}
	if _, err := parseTimes("1 2 3"); err == nil {
		t.Fatal("bad T line accepted")
	}
}

func TestSanitizeVersion(t *testing.T) {
	for in, want := range map[string]string{
		"SSH-2.0-wharf":         "SSH-2.0-wharf",
		"Custom":                "SSH-2.0-Custom",
		"SSH-2.0-x\r\nINJECTED": "SSH-2.0-xINJECTED",
		"":                      "SSH-2.0-wharf",
	} {
		if got := sanitizeVersion(in); got != want {
			t.Errorf("sanitizeVersion(%q) = %q, want %q", in, got, want)
		}
	}
	if got := sanitizeVersion(strings.Repeat("a", 400)); len(got) != 253 {
		t.Errorf("long version: %d bytes", len(got))
	}
}

// TestFsetstatOnOpenUpload: attributes set on an open atomic upload apply to the published
// file (OpenSSH's put -p sends FSETSTAT just before CLOSE).
func TestFsetstatOnOpenUpload(t *testing.T) {
	root := t.TempDir()
	srv, addr := startServer(t, newTestSite(t, testSiteConfig(root, testUser("alice")), nil))
	c := mustSFTP(t, srv, addr, "alice")
	f, err := c.OpenFile("/p.bin", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("data")); err != nil {
		t.Fatal(err)
	}
	if err := f.Chmod(0o600); err != nil {
		t.Fatalf("fchmod on an open upload: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(root, "home", "alice", "p.bin"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("published file: %v %v", fi, err)
	}
}

// TestPanicInScript: a panicking event handler costs one request, not the server.
func TestPanicInScript(t *testing.T) {
	d := &coretest.Dispatcher{}
	d.On(core.BeforeFileDownload, func(*core.Event) { panic("script bug") })
	srv, addr := startServer(t, newTestSite(t, testSiteConfig(t.TempDir(), testUser("alice")), d))
	c := mustSFTP(t, srv, addr, "alice")
	f, err := c.Create("/x")
	if err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	if _, err := c.Open("/x"); err == nil {
		t.Fatal("open succeeded although the handler panicked")
	}
	if _, err := c.Stat("/x"); err != nil {
		t.Fatalf("session unusable after a panic: %v", err)
	}
}

// TestMiscRequests covers the requests the scenario kit does not: truncate, chmod, chtimes,
// statvfs, realpath, rename without replace, exclusive create.
func TestMiscRequests(t *testing.T) {
	root := t.TempDir()
	srv, addr := startServer(t, newTestSite(t, testSiteConfig(root, testUser("alice")), nil))
	c := mustSFTP(t, srv, addr, "alice")
	host := func(p string) string { return filepath.Join(root, "home", "alice", p) }
	f, err := c.Create("/f.txt")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.Write([]byte("0123456789"))
	_ = f.Close()
	if err := c.Truncate("/f.txt", 4); err != nil {
		t.Fatal(err)
	}
	if err := c.Chmod("/f.txt", 0o640); err != nil {
		t.Fatal(err)
	}
	mt := time.Date(2021, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := c.Chtimes("/f.txt", mt, mt); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(host("f.txt"))
	if err != nil || fi.Size() != 4 || fi.Mode().Perm() != 0o640 || !fi.ModTime().Equal(mt) {
		t.Fatalf("after setstat: %v %v %v %v", fi.Size(), fi.Mode(), fi.ModTime(), err)
	}
	if st, err := c.StatVFS("/"); err != nil || st.Bsize == 0 || st.Blocks == 0 {
		t.Fatalf("statvfs: %+v %v", st, err)
	}
	if p, err := c.RealPath("a/../b/./c"); err != nil || p != "/b/c" {
		t.Fatalf("realpath = %q, %v", p, err)
	}
	g, _ := c.Create("/g.txt")
	_ = g.Close()
	if err := c.Rename("/f.txt", "/g.txt"); err == nil {
		t.Fatal("SFTP v3 rename replaced an existing file")
	}
	if err := c.PosixRename("/f.txt", "/g.txt"); err != nil {
		t.Fatalf("posix-rename: %v", err)
	}
	if _, err := c.OpenFile("/g.txt", os.O_WRONLY|os.O_CREATE|os.O_EXCL); err == nil {
		t.Fatal("exclusive create of an existing file succeeded")
	}
	if _, err := c.OpenFile("/nope.txt", os.O_WRONLY); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("write-open without create of a missing file: %v", err)
	}
	if _, err := os.Stat(host("nope.txt")); err == nil {
		t.Fatal("open without O_CREAT created the file")
	}
	a, _ := c.OpenFile("/app.txt", os.O_WRONLY|os.O_CREATE|os.O_APPEND)
	_, _ = a.Write([]byte("one,"))
	_ = a.Close()
	a, _ = c.OpenFile("/app.txt", os.O_WRONLY|os.O_APPEND)
	_, _ = a.Write([]byte("two"))
	_ = a.Close()
	if b, _ := os.ReadFile(host("app.txt")); string(b) != "one,two" {
		t.Fatalf("append: %q", b)
	}
}

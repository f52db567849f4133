package scripting_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/core/coretest"
)

// End-to-end runs of the VFS scripts of testdata/scripts/syncplify with real clients: OpenSSH
// sftp, lftp and curl act on uploads that the scripts read, refuse, delete, move and copy.

// syncplifyScripts reads scripts of testdata/scripts/syncplify.
func syncplifyScripts(t *testing.T, names ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join("..", "testdata", "scripts", "syncplify", n))
		must(t, err)
		out[n] = string(b)
	}
	return out
}

// newStackWith is newStack with the site's config changed by mutate before it is built.
func newStackWith(t *testing.T, scripts map[string]string, handlers []config.EventHandler, mutate func(*config.Site)) *stack {
	t.Helper()
	return buildStack(t, scripts, handlers, stackSetup{mutate: mutate})
}

// windowsExe is the start of a PE file: "MZ", e_lfanew = 256 at offset 60, "PE\0\0" there.
func windowsExe() []byte {
	b := make([]byte, 512)
	copy(b, "MZ")
	b[60], b[61] = 0x00, 0x01
	copy(b[256:], "PE\x00\x00")
	return b
}

// lftpPut uploads local to remote as alice over FTP (AUTH TLS) with lftp.
func (s *stack) lftpPut(t *testing.T, local, remote string) (string, error) {
	t.Helper()
	return s.lftp(t, "alice", "pw", fmt.Sprintf("put %s -o %s", local, remote))
}

// e2eRefuseExecutable: an AfterFileUpload script reads an upload's bytes (still under
// its temporary name) and refuses a Windows executable whatever its name; OpenSSH sftp and
// lftp see the refusal, and nothing is published. Other uploads are stored.
func e2eRefuseExecutable(t *testing.T) {
	s := newStackWith(t, syncplifyScripts(t, "refuse-executable.js"),
		[]config.EventHandler{h("AfterFileUpload", "refuse-executable.js")}, func(*config.Site) {})
	exe := s.local(t, "holiday.jpg", windowsExe())
	txt := s.local(t, "notes.txt", []byte("MZ is not enough"))

	out, err := s.sftpBatch(t, "put "+exe+" /holiday.jpg")
	if err == nil {
		t.Errorf("sftp stored an executable:\n%s", out)
	}
	if out, err := s.sftpBatch(t, "put "+txt+" /notes.txt"); err != nil {
		t.Fatalf("sftp put notes.txt: %v\n%s", err, out)
	}
	if out, err := s.lftpPut(t, exe, "/again.jpg"); err == nil {
		t.Errorf("lftp stored an executable:\n%s", out)
	}
	onlyFiles(t, s.home("alice"), "notes.txt")
	if n := len(s.records("Windows executable refused")); n != 2 {
		t.Errorf("%d refusals logged, want 2", n)
	}
}

// e2eDeleteExeV6: Syncplify v6's FileReadAsHex/DelFile script deletes an executable
// after an lftp upload; the client's upload succeeds (as with Syncplify) and the file is gone.
func e2eDeleteExeV6(t *testing.T) {
	s := newStackWith(t, syncplifyScripts(t, "delete-exe-v6.js"),
		[]config.EventHandler{h("AfterFileUpload", "delete-exe-v6.js")}, func(*config.Site) {})
	exe := s.local(t, "tool.bin", windowsExe())
	txt := s.local(t, "a.txt", []byte("text"))
	if out, err := s.lftpPut(t, exe, "/tool.bin"); err != nil {
		t.Fatalf("lftp put: %v\n%s", err, out)
	}
	if out, err := s.lftpPut(t, txt, "/a.txt"); err != nil {
		t.Fatalf("lftp put: %v\n%s", err, out)
	}
	onlyFiles(t, s.home("alice"), "a.txt")
	if got := s.waitRecords(t, "Deleted EXE file: /tool.bin", 1); len(got) != 1 {
		t.Errorf("log %v", got)
	}
}

// e2eArchiveByDate: each upload is moved into /archive/<today>/ by the script; the
// user's file quota (2 files) counts the moved files exactly: two uploads fit, the third is
// refused.
func e2eArchiveByDate(t *testing.T) {
	s := newStackWith(t, syncplifyScripts(t, "archive-by-date.js"),
		[]config.EventHandler{h("AfterFileUpload", "archive-by-date.js")}, func(c *config.Site) {
			c.Users[0].Quota = config.Quota{Files: 2}
		})
	for _, n := range []string{"a.txt", "b.txt"} {
		if out, err := s.sftpBatch(t, "put "+s.local(t, n, []byte("data of "+n))+" /"+n); err != nil {
			t.Fatalf("sftp put %s: %v\n%s", n, err, out)
		}
	}
	day := time.Now().Format("2006-01-02")
	dir := filepath.Join(s.home("alice"), "archive", day)
	onlyFiles(t, dir, "a.txt", "b.txt")
	if b, err := os.ReadFile(filepath.Join(dir, "b.txt")); err != nil || string(b) != "data of b.txt" {
		t.Errorf("archived b.txt: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(s.home("alice"), "a.txt")); !os.IsNotExist(err) {
		t.Errorf("a.txt is still at the root: %v", err)
	}
	out, err := s.sftpBatch(t, "put "+s.local(t, "c.txt", []byte("c"))+" /c.txt")
	if err == nil || !strings.Contains(strings.ToLower(out), "quota") && !strings.Contains(out, "Failure") {
		t.Errorf("a third file over the quota: %v\n%s", err, out)
	}
	onlyFiles(t, dir, "a.txt", "b.txt")
}

// e2eCopyToBackup: curl uploads over SFTP; the script copies each upload to the site's
// second vfs ("backup") under the same path.
func e2eCopyToBackup(t *testing.T) {
	curl := coretest.NeedBinary(t, "curl")
	backup := t.TempDir()
	s := newStackWith(t, syncplifyScripts(t, "copy-to-backup.js"),
		[]config.EventHandler{h("AfterFileUpload", "copy-to-backup.js")}, func(c *config.Site) {
			c.VFS = append(c.VFS, config.VFS{Name: "backup", Type: "disk", Root: backup})
		})
	if v, _ := s.try(curl, "-V"); !strings.Contains(v, "sftp") {
		if os.Getenv("WHARF_E2E") == "1" {
			t.Fatalf("curl has no sftp:\n%s", v)
		}
		t.Skip("curl built without libssh2")
	}
	file := s.local(t, "report.csv", []byte("a,b\n1,2\n"))
	s.run(t, curl, "-sS", "--fail", "-k", "--connect-timeout", "10", "-u", "alice:pw", "--ftp-create-dirs", "-T", file,
		"sftp://127.0.0.1:"+s.sshPort()+"/in/report.csv")
	for _, p := range []string{filepath.Join(s.home("alice"), "in", "report.csv"), filepath.Join(backup, "in", "report.csv")} {
		if b, err := os.ReadFile(p); err != nil || string(b) != "a,b\n1,2\n" {
			t.Errorf("%s: %q %v", p, b, err)
		}
	}
	if got := s.waitRecords(t, "backed up /in/report.csv (8 bytes)", 1); len(got) != 1 {
		t.Errorf("log %v", got)
	}
}

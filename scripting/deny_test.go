package scripting_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
)

// The names the deny-executables examples must refuse, as uploads and as rename targets:
// Windows drops trailing dots and spaces ("evil.exe." is evil.exe there) and reads what
// follows a colon as a stream of the file before it (each part is checked), and case does
// not matter.
var executableNames = []string{"/x.exe", "/SETUP.EXE", "/run.ps1", "/evil.exe.", "/evil.exe ", "/x.EXE. ",
	"/x.Exe . .", "/evil.exe::$DATA", "/evil.bat:stream.txt", "/notes.txt:evil.exe", "/sub/dir/tool.cmd.."}

// And the names they must let through.
var ordinaryNames = []string{"/x.txt", "/exe", "/report.exe.pdf", "/notes.txt.", "/a.exe.txt ", "/exe.", "/a.b:c.txt"}

// denyEnv builds a site whose scripts_dir holds the shipped examples, with file the handler of
// both BeforeFileUpload and BeforeFileRename.
func denyEnv(t *testing.T, dir, file string) *env {
	t.Helper()
	abs, err := filepath.Abs(dir)
	must(t, err)
	cfg, root := newConfig(t, nil, []config.EventHandler{h("BeforeFileUpload", file), h("BeforeFileRename", file)})
	cfg.ScriptsDir = abs
	return buildEnv(t, cfg, root)
}

func TestExampleDenyExecutablesUploadsAndRenames(t *testing.T) {
	for _, c := range []struct{ dir, file string }{
		{"../testdata/scripts", "deny-executables.lua"},
		{"../testdata/config/scripts", "deny-exe.js"},
	} {
		t.Run(c.file, func(t *testing.T) {
			e := denyEnv(t, c.dir, c.file)
			s := e.login("alice")
			ctx := context.Background()
			must(t, s.Mkdir(ctx, "/sub"))
			must(t, s.Mkdir(ctx, "/sub/dir"))
			for _, p := range executableNames {
				if err := upload(s, p, "MZ"); !errors.Is(err, core.ErrDenied) {
					t.Errorf("upload %q: %v, want denied", p, err)
				}
			}
			for i, p := range ordinaryNames {
				if err := upload(s, p, "ok"); err != nil {
					t.Errorf("upload %q: %v", p, err)
				}
				// An ordinary file renamed to an executable name is refused, and stays.
				target := executableNames[i%len(executableNames)]
				if err := s.Rename(ctx, p, target, false); !errors.Is(err, core.ErrDenied) {
					t.Errorf("rename %q to %q: %v, want denied", p, target, err)
				}
				if _, err := s.Stat(ctx, p); err != nil {
					t.Errorf("%q after the refused rename: %v", p, err)
				}
			}
			// A hard link is a new name: an executable name is refused, an ordinary one not.
			if err := s.Link(ctx, "/x.txt", "/sub/link.EXE."); !errors.Is(err, core.ErrDenied) {
				t.Errorf("hard link to an executable name: %v, want denied", err)
			}
			must(t, s.Link(ctx, "/x.txt", "/sub/link.txt"))
			// Renames between ordinary names, and away from an executable name, still work.
			must(t, s.Rename(ctx, "/x.txt", "/y.txt", false))
			must(t, os.WriteFile(filepath.Join(e.root, "alice", "old.exe"), []byte("MZ"), 0o600))
			must(t, s.Rename(ctx, "/old.exe", "/old.txt", false))
			if n := len(e.logs.find("event script failed")); n != 0 {
				e.logs.dump(t)
				t.Fatalf("%d script failures", n)
			}
		})
	}
}

// The shipped example over the real protocols: a rename to an executable name is refused
// with the protocol's permission denied, and the file keeps its name.
func TestE2EDenyExecutablesRename(t *testing.T) {
	src, err := os.ReadFile("../testdata/scripts/deny-executables.lua")
	must(t, err)
	s := newStack(t, map[string]string{"deny.lua": string(src)},
		[]config.EventHandler{h("BeforeFileUpload", "deny.lua"), h("BeforeFileRename", "deny.lua")})
	home := s.home("alice")
	t.Run("SFTP", func(t *testing.T) {
		c := s.sftpc(t, "alice", "pw")
		defer c.close()
		must(t, c.upload("/a.txt", []byte("MZ")))
		for _, target := range []string{"/a.exe", "/a.EXE. ", "/a.exe.", "/a.exe::$DATA"} {
			if err := c.c.Rename("/a.txt", target); !isDenied(err) {
				t.Errorf("rename to %q: %v, want permission denied", target, err)
			}
			if err := c.c.PosixRename("/a.txt", target); !isDenied(err) {
				t.Errorf("posix-rename to %q: %v, want permission denied", target, err)
			}
		}
		must(t, c.c.Rename("/a.txt", "/b.txt"))
		onlyFiles(t, home, "b.txt")
	})
	t.Run("FTP", func(t *testing.T) {
		must(t, os.MkdirAll(filepath.Join(home, "ftp"), 0o755))
		c := s.ftpc(t, modeFTP, "alice", "pw")
		defer c.close()
		must(t, c.upload("/ftp/a.txt", []byte("MZ")))
		for _, target := range []string{"/ftp/a.exe", "/ftp/a.EXE. ", "/ftp/a.exe.", "/ftp/A.Bat"} {
			if err := c.c.Rename("/ftp/a.txt", target); !isDenied(err) {
				t.Errorf("rename to %q: %v, want 550", target, err)
			}
		}
		must(t, c.c.Rename("/ftp/a.txt", "/ftp/b.txt"))
		onlyFiles(t, filepath.Join(home, "ftp"), "b.txt")
	})
	if n := len(s.logs.find("refused rename to an executable")); n != 12 {
		t.Errorf("%d refusal log lines, want 12", n)
	}
	if !strings.Contains(strings.Join(s.logs.scriptLines(), "\n"), "refused rename to an executable: /a.txt -> /a.EXE. ") {
		s.logs.dump(t)
		t.Error("the refusal names the rename")
	}
}

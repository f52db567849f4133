package sftp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/coretest"
)

// scpRun starts "command" on a new session and returns its pipes.
type scpRun struct {
	s   *ssh.Session
	in  io.WriteCloser
	out *bufio.Reader
}

func startSCP(t *testing.T, c *ssh.Client, command string) *scpRun {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	in, err := s.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(command); err != nil {
		t.Fatal(err)
	}
	return &scpRun{s: s, in: in, out: bufio.NewReader(out)}
}

// response reads one response: "" for \x00, else the error line with its code byte.
func (r *scpRun) response(t *testing.T) string {
	t.Helper()
	b, err := r.out.ReadByte()
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	if b == 0 {
		return ""
	}
	line, err := r.out.ReadString('\n')
	if err != nil {
		t.Fatalf("reading error line: %v", err)
	}
	return string(b) + line
}

func (r *scpRun) send(t *testing.T, s string) {
	t.Helper()
	if _, err := io.WriteString(r.in, s); err != nil {
		t.Fatal(err)
	}
}

func (r *scpRun) exit() int {
	_ = r.in.Close()
	err := r.s.Wait()
	var ee *ssh.ExitError
	if errors.As(err, &ee) {
		return ee.ExitStatus()
	}
	if err != nil {
		return -1
	}
	return 0
}

func TestLegacySCPProtocol(t *testing.T) {
	root := t.TempDir()
	d := &coretest.Dispatcher{}
	d.On(core.BeforeFileUpload, func(ev *core.Event) {
		if strings.HasSuffix(ev.RelPath, ".exe") {
			ev.Session.BlockOperation()
		}
	})
	sftpOnly := testUser("sftponly")
	sftpOnly.Subsystems = []string{"SFTP"}
	srv, addr := startServer(t, newTestSite(t, testSiteConfig(root, testUser("alice"), sftpOnly), d))
	home := filepath.Join(root, "home", "alice")
	c, err := dialSSH(srv, addr, "alice", sshPassword())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	t.Run("sink", func(t *testing.T) {
		r := startSCP(t, c, "scp -t /")
		if got := r.response(t); got != "" {
			t.Fatalf("start: %q", got)
		}
		// A refused file is answered at its C line; the client sends no data then.
		r.send(t, "C0644 2 bad.exe\n")
		if got := r.response(t); !strings.HasPrefix(got, "\x01scp: open /bad.exe: permission denied") {
			t.Fatalf("blocked file: %q", got)
		}
		data := []byte("hello scp")
		r.send(t, "T1600000000 0 1600000000 0\n")
		if got := r.response(t); got != "" {
			t.Fatalf("T line: %q", got)
		}
		r.send(t, fmt.Sprintf("C0600 %d good.txt\n", len(data)))
		if got := r.response(t); got != "" {
			t.Fatalf("C line: %q", got)
		}
		r.send(t, string(data)+"\x00")
		if got := r.response(t); got != "" {
			t.Fatalf("after data: %q", got)
		}
		// A name that is not one path element is a fatal protocol error.
		r.send(t, "C0644 1 ../escape\n")
		if got := r.response(t); !strings.HasPrefix(got, "\x02") {
			t.Fatalf("bad name: %q", got)
		}
		if code := r.exit(); code != 1 {
			t.Errorf("exit status %d, want 1", code)
		}
		got, err := os.ReadFile(filepath.Join(home, "good.txt"))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("uploaded file: %q %v", got, err)
		}
		for _, n := range []string{"bad.exe", "escape"} {
			if _, err := os.Stat(filepath.Join(home, n)); err == nil {
				t.Errorf("%s was written", n)
			}
		}
		if _, err := os.Stat(filepath.Join(root, "home", "escape")); err == nil {
			t.Error("escape was written outside the home")
		}
	})

	t.Run("source", func(t *testing.T) {
		if err := os.WriteFile(filepath.Join(home, "dl.txt"), []byte("download me"), 0o644); err != nil {
			t.Fatal(err)
		}
		r := startSCP(t, c, "scp -f /missing.txt /dl.txt")
		r.send(t, "\x00")
		if got := r.response(t); !strings.Contains(got, "no such file or directory") {
			t.Fatalf("missing file: %q", got)
		}
		line, err := r.out.ReadString('\n')
		if err != nil || line != "C0644 11 dl.txt\n" {
			t.Fatalf("C line %q, %v", line, err)
		}
		r.send(t, "\x00")
		buf := make([]byte, 12)
		if _, err := io.ReadFull(r.out, buf); err != nil || string(buf) != "download me\x00" {
			t.Fatalf("data %q, %v", buf, err)
		}
		r.send(t, "\x00")
		if code := r.exit(); code != 1 {
			t.Errorf("exit status %d, want 1 (one file was missing)", code)
		}
	})

	t.Run("user without SCP", func(t *testing.T) {
		sc, err := dialSSH(srv, addr, "sftponly", sshPassword())
		if err != nil {
			t.Fatal(err)
		}
		defer sc.Close()
		r := startSCP(t, sc, "scp -t /")
		if got := r.response(t); !strings.Contains(got, "permission denied") {
			t.Fatalf("scp for a user without SCP: %q", got)
		}
		if code := r.exit(); code != 1 {
			t.Errorf("exit status %d", code)
		}
	})
}

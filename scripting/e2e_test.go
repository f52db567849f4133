package scripting_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	jftp "github.com/jlaffaye/ftp"
	pkgsftp "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/core/coretest"
	"github.com/wharf-project/wharf/protocols/ftp"
	"github.com/wharf-project/wharf/protocols/sftp"
)

// client is what the end-to-end tests do with a real protocol client.
type client interface {
	upload(p string, data []byte) error
	download(p string) ([]byte, error)
	list(dir string) ([]string, error)
	close()
}

type protocol struct {
	name string
	dial func(t *testing.T, e *env, user, password string) client
}

var protocols = []protocol{{"SFTP", dialSFTP}, {"FTP", dialFTP}}

// serveOn starts a server on a loopback port until the test ends.
func serveOn(t *testing.T, serve func(net.Listener) error, shutdown func(context.Context) error) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	done := make(chan error, 1)
	go func() { done <- serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = shutdown(ctx)
		<-done
	})
	return l.Addr().String()
}

type sftpClient struct {
	ssh *ssh.Client
	c   *pkgsftp.Client
}

func dialSFTP(t *testing.T, e *env, user, password string) client {
	t.Helper()
	srv, err := sftp.New(e.site, sftp.Options{StateDir: t.TempDir()})
	must(t, err)
	addr := serveOn(t, srv.Serve, srv.Shutdown)
	sc, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: user, Auth: []ssh.AuthMethod{ssh.Password(password)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second}) // a test server's fresh key
	must(t, err)
	c, err := pkgsftp.NewClient(sc)
	must(t, err)
	return &sftpClient{ssh: sc, c: c}
}

func (s *sftpClient) upload(p string, data []byte) error {
	f, err := s.c.Create(p)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func (s *sftpClient) download(p string) ([]byte, error) {
	f, err := s.c.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

func (s *sftpClient) list(dir string) ([]string, error) {
	fis, err := s.c.ReadDir(dir)
	var names []string
	for _, fi := range fis {
		names = append(names, fi.Name())
	}
	return names, err
}

func (s *sftpClient) close() { _ = s.c.Close(); _ = s.ssh.Close() }

type ftpClient struct{ c *jftp.ServerConn }

func dialFTP(t *testing.T, e *env, user, password string) client {
	t.Helper()
	srv, err := ftp.New(e.site, ftp.Options{StateDir: t.TempDir()})
	must(t, err)
	addr := serveOn(t, srv.Serve, srv.Shutdown)
	c, err := jftp.Dial(addr, jftp.DialWithTimeout(10*time.Second))
	must(t, err)
	must(t, c.Login(user, password))
	return &ftpClient{c: c}
}

func (f *ftpClient) upload(p string, data []byte) error { return f.c.Stor(p, bytes.NewReader(data)) }

func (f *ftpClient) download(p string) ([]byte, error) {
	r, err := f.c.Retr(p)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

func (f *ftpClient) list(dir string) ([]string, error) {
	entries, err := f.c.List(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name)
	}
	return names, err
}

func (f *ftpClient) close() { _ = f.c.Quit() }

func TestE2EDocExampleLogsLogins(t *testing.T) {
	e := newEnv(t, map[string]string{"log.lua": docExample}, []config.EventHandler{h("OnAuthSuccess", "log.lua")})
	for _, p := range protocols {
		p.dial(t, e, "alice", "pw").close()
	}
	re := regexp.MustCompile(`^User alice connected with session ID (\S+)$`)
	var ids []string
	coretest.Eventually(t, 5*time.Second, "two login lines", func() bool { return len(e.logs.find("connected with session ID")) == 2 })
	for _, r := range e.logs.find("connected with session ID") {
		m := re.FindStringSubmatch(r.Msg)
		if m == nil || m[1] != r.Attrs["session"] {
			t.Errorf("log line %q (session %s)", r.Msg, r.Attrs["session"])
			continue
		}
		ids = append(ids, m[1]+" "+r.Attrs["protocol"])
	}
	sort.Strings(ids)
	if len(ids) != 2 || strings.Fields(ids[0])[0] == strings.Fields(ids[1])[0] {
		t.Fatalf("session ids: %v, want two distinct", ids)
	}
	if !strings.HasSuffix(ids[0], " FTP") && !strings.HasSuffix(ids[1], " FTP") {
		t.Errorf("no FTP login logged: %v", ids)
	}
}

func TestE2EDenyExecutables(t *testing.T) {
	e := newEnv(t, map[string]string{"deny.lua": "if ExtractExt(CtxRelPath()) == '.exe' then Session.BlockOperation() end\n"},
		[]config.EventHandler{h("BeforeFileUpload", "deny.lua")})
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			c := p.dial(t, e, "alice", "pw")
			defer c.close()
			if err := c.upload("/x.exe", []byte("MZ")); err == nil {
				t.Error("x.exe accepted")
			}
			must(t, c.upload("/x.txt", []byte("text")))
			if got, err := c.download("/x.txt"); err != nil || string(got) != "text" {
				t.Errorf("x.txt: %q, %v", got, err)
			}
			names, err := c.list("/")
			must(t, err)
			for _, n := range names {
				if n == "x.exe" {
					t.Error("the refused upload left x.exe")
				}
			}
		})
	}
}

func TestE2EHideTempFiles(t *testing.T) {
	e := newEnv(t, map[string]string{"hide.lua": "Session.RemoveFromListDir('*.tmp')\n"},
		[]config.EventHandler{h("OnDirList", "hide.lua")})
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			c := p.dial(t, e, "alice", "pw")
			defer c.close()
			must(t, c.upload("/keep.txt", []byte("k")))
			must(t, c.upload("/scratch.tmp", []byte("s")))
			names, err := c.list("/")
			must(t, err)
			for _, n := range names {
				if n == "scratch.tmp" {
					t.Errorf("listing shows the hidden file: %v", names)
				}
			}
			if !strings.Contains(strings.Join(names, ","), "keep.txt") {
				t.Errorf("listing lacks keep.txt: %v", names)
			}
			if _, err := c.download("/scratch.tmp"); err == nil {
				t.Error("the hidden file can be downloaded by name")
			}
		})
	}
}

package sftp

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	pkgsftp "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/core/coretest"
)

const testPassword = "s3cret-Passw0rd"

// testLogger discards logs unless WHARF_TEST_LOG=1 (t.Log cannot be used: connection
// goroutines may log after a test ended).
func testLogger() *slog.Logger {
	if os.Getenv("WHARF_TEST_LOG") == "1" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// testState holds host keys generated once for all tests (RSA-3072 generation takes a
// while); TestHostKeys covers generation itself.
var testState struct {
	once sync.Once
	dir  string
	err  error
}

func sharedStateDir(t testing.TB) string {
	t.Helper()
	testState.once.Do(func() {
		testState.dir, testState.err = os.MkdirTemp("", "wharf-sftp-test-")
		if testState.err == nil {
			_, testState.err = loadHostKeys(nil, testState.dir, testLogger())
		}
	})
	if testState.err != nil {
		t.Fatalf("host keys: %v", testState.err)
	}
	return testState.dir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if testState.dir != "" {
		_ = os.RemoveAll(testState.dir)
	}
	os.Exit(code)
}

// testUser is a user with a password and all permissions on a disk home.
func testUser(id string) config.User {
	return config.User{ID: id, Password: "plain:" + testPassword, Home: config.Mount{VFS: "home", Permissions: []string{"all"}}}
}

// testSiteConfig is a site with a disk home per user under root and short, test-friendly limits.
func testSiteConfig(root string, users ...config.User) *config.Site {
	yes := true
	return &config.Site{
		Name: "test",
		Limits: config.Limits{MaxConnections: 200, MaxConnectionsPerIP: 200, MaxSessionsPerUser: 100,
			IdleTimeout: config.Duration{Duration: time.Minute}, LoginTimeout: config.Duration{Duration: 10 * time.Second}},
		VFS:   []config.VFS{{Name: "home", Type: "disk", Root: filepath.Join(root, "home", "{user}"), AtomicUploads: &yes}},
		Users: users,
	}
}

// newTestSite builds a site; d may be nil.
func newTestSite(t testing.TB, cfg *config.Site, d core.Dispatcher) *core.Site {
	t.Helper()
	site, err := core.NewSite(cfg, core.Options{Events: d, Logger: testLogger()})
	if err != nil {
		t.Fatalf("site: %v", err)
	}
	t.Cleanup(func() { _ = site.Shutdown(context.Background()) })
	return site
}

// startServer serves site on a loopback port until the test ends.
func startServer(t testing.TB, site *core.Site) (*Server, string) {
	t.Helper()
	srv, err := New(site, Options{StateDir: sharedStateDir(t), Logger: testLogger()})
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return srv, l.Addr().String()
}

// hostKeyCallback accepts only the server's own host keys.
func hostKeyCallback(srv *Server) ssh.HostKeyCallback {
	keys := srv.HostKeys()
	return func(_ string, _ net.Addr, key ssh.PublicKey) error {
		for _, k := range keys {
			if bytes.Equal(k.Marshal(), key.Marshal()) {
				return nil
			}
		}
		return errors.New("unknown host key")
	}
}

func dialSSH(srv *Server, addr, user string, auth ...ssh.AuthMethod) (*ssh.Client, error) {
	return ssh.Dial("tcp", addr, &ssh.ClientConfig{
		User: user, Auth: auth, HostKeyCallback: hostKeyCallback(srv), Timeout: 10 * time.Second,
	})
}

// sftpSession is an SSH connection with an SFTP client on it.
type sftpSession struct {
	ssh *ssh.Client
	*pkgsftp.Client
}

func dialSFTP(srv *Server, addr, user string, auth ...ssh.AuthMethod) (*sftpSession, error) {
	sc, err := dialSSH(srv, addr, user, auth...)
	if err != nil {
		return nil, err
	}
	c, err := pkgsftp.NewClient(sc, pkgsftp.UseConcurrentWrites(true))
	if err != nil {
		_ = sc.Close()
		return nil, err
	}
	return &sftpSession{ssh: sc, Client: c}, nil
}

func (s *sftpSession) Close() error {
	err := s.Client.Close()
	return errors.Join(err, s.ssh.Close())
}

func sshPassword() ssh.AuthMethod { return ssh.Password(testPassword) }

// mustSFTP logs in with the test password or fails the test.
func mustSFTP(t testing.TB, srv *Server, addr, user string) *sftpSession {
	t.Helper()
	c, err := dialSFTP(srv, addr, user, ssh.Password(testPassword))
	if err != nil {
		t.Fatalf("sftp login %s: %v", user, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// newKey returns a fresh ed25519 signer and its authorized_keys line.
func newKey(t testing.TB) (ssh.Signer, string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s, string(bytes.TrimSpace(ssh.MarshalAuthorizedKey(s.PublicKey())))
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// count returns how many times an event fired.
func count(d *coretest.Dispatcher, name core.EventName) int {
	n := 0
	for _, e := range d.Fired() {
		if e == name {
			n++
		}
	}
	return n
}

// writeTree creates n files with random content spread over a few subdirectories.
func writeTree(t testing.TB, dir string, n int) {
	t.Helper()
	for i := range n {
		sub := filepath.Join(dir, fmt.Sprintf("d%02d", i%7), fmt.Sprintf("e%d", i%3))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		size := (i * 977) % 20000
		if i%50 == 0 {
			size = 300_000 + i
		}
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%04d.bin", i)), randomBytes(t, size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// sameTree fails unless both host trees hold the same files with the same bytes.
func sameTree(t testing.TB, want, got string) {
	t.Helper()
	list := func(root string) map[string][]byte {
		m := map[string][]byte{}
		err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type().IsRegular() {
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				rel, _ := filepath.Rel(root, p)
				m[rel] = b
			}
			return nil
		})
		if err != nil {
			t.Fatalf("walk %s: %v", root, err)
		}
		return m
	}
	w, g := list(want), list(got)
	if len(w) != len(g) {
		var missing []string
		for k := range w {
			if _, ok := g[k]; !ok {
				missing = append(missing, k)
			}
		}
		slices.Sort(missing)
		t.Fatalf("tree %s has %d files, want %d (missing %v)", got, len(g), len(w), missing[:min(len(missing), 5)])
	}
	for k, b := range w {
		if !bytes.Equal(g[k], b) {
			t.Fatalf("file %s differs (%d bytes, want %d)", k, len(g[k]), len(b))
		}
	}
}

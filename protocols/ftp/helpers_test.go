package ftp

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jftp "github.com/jlaffaye/ftp"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/core/coretest"
)

// mode is how a test client reaches the server.
type mode int

const (
	modePlain    mode = iota // FTP
	modeExplicit             // AUTH TLS + PROT P
	modeImplicit             // implicit FTPS
)

func (m mode) String() string {
	return [...]string{"FTP", "FTPES", "FTPS"}[m]
}

// testServer is a running adapter on a loopback port.
type testServer struct {
	srv  *Server
	addr string
	site *core.Site
	cert *x509.Certificate
}

// testLogger writes the server log to the test log only when -v is given.
func testLogger(t testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// newSite builds a scenario-style site under a temp dir; edit changes its config first.
func newSite(t testing.TB, d core.Dispatcher, edit func(*config.Site)) (*core.Site, string) {
	t.Helper()
	root := t.TempDir()
	cfg := coretest.SiteConfig(root)
	if edit != nil {
		edit(cfg)
	}
	if d == nil {
		cd := &coretest.Dispatcher{}
		coretest.ScenarioRules(cd)
		d = cd
	}
	site, err := core.NewSite(cfg, core.Options{Events: d, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("site: %v", err)
	}
	t.Cleanup(func() { _ = site.Shutdown(context.Background()) })
	for _, dir := range []string{filepath.Join(root, "shared"), filepath.Join(root, "home", coretest.UserAlice)} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "shared", "readme.txt"), []byte(coretest.SharedData), 0o644); err != nil {
		t.Fatal(err)
	}
	return site, root
}

// serve starts an adapter for site on a port-0 loopback listener until the test ends.
func serve(t testing.TB, site *core.Site, m mode) *testServer {
	t.Helper()
	srv, err := New(site, Options{StateDir: t.TempDir(), Logger: testLogger(t), Implicit: m == modeImplicit})
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
	ts := &testServer{srv: srv, addr: l.Addr().String(), site: site}
	if srv.tls != nil {
		ts.cert, err = x509.ParseCertificate(srv.tls.leaf.Certificates[0].Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
	}
	return ts
}

// clientTLS trusts the server's certificate and caches sessions, so data connections resume
// the control connection's session (ServerName keys the cache: without it Go keys sessions by
// host:port and every passive port would miss).
func (ts *testServer) clientTLS() *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(ts.cert)
	return &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", ClientSessionCache: tls.NewLRUClientSessionCache(16)}
}

// dial logs in with jlaffaye/ftp.
func (ts *testServer) dial(m mode, user, password string, opts ...jftp.DialOption) (*jftp.ServerConn, error) {
	opts = append([]jftp.DialOption{jftp.DialWithTimeout(10 * time.Second)}, opts...)
	switch m {
	case modeExplicit:
		opts = append(opts, jftp.DialWithExplicitTLS(ts.clientTLS()))
	case modeImplicit:
		opts = append(opts, jftp.DialWithTLS(ts.clientTLS()))
	}
	c, err := jftp.Dial(ts.addr, opts...)
	if err != nil {
		return nil, err
	}
	if err := c.Login(user, password); err != nil {
		_ = c.Quit()
		return nil, err
	}
	return c, nil
}

// ftpClient implements coretest.Client with jlaffaye/ftp.
type ftpClient struct{ c *jftp.ServerConn }

func (f *ftpClient) Upload(p string, data []byte) error { return f.c.Stor(p, bytes.NewReader(data)) }
func (f *ftpClient) UploadAt(p string, data []byte, offset int64) error {
	return f.c.StorFrom(p, bytes.NewReader(data), uint64(offset))
}
func (f *ftpClient) Download(p string) ([]byte, error) { return f.DownloadFrom(p, 0) }
func (f *ftpClient) DownloadFrom(p string, offset int64) ([]byte, error) {
	r, err := f.c.RetrFrom(p, uint64(offset))
	if err != nil {
		return nil, err
	}
	data, rerr := io.ReadAll(r)
	return data, errors.Join(rerr, r.Close())
}
func (f *ftpClient) List(dir string) ([]coretest.Entry, error) {
	es, err := f.c.List(dir)
	if err != nil {
		return nil, err
	}
	out := make([]coretest.Entry, 0, len(es))
	for _, e := range es {
		if e.Name == "." || e.Name == ".." {
			continue
		}
		out = append(out, coretest.Entry{Name: e.Name, Size: int64(e.Size), IsDir: e.Type == jftp.EntryTypeFolder})
	}
	return out, nil
}
func (f *ftpClient) Stat(p string) (coretest.Entry, error) {
	e, err := f.c.GetEntry(p)
	if err != nil {
		return coretest.Entry{}, err
	}
	return coretest.Entry{Name: e.Name, Size: int64(e.Size), IsDir: e.Type == jftp.EntryTypeFolder}, nil
}
func (f *ftpClient) Mkdir(p string) error         { return f.c.MakeDir(p) }
func (f *ftpClient) Rmdir(p string) error         { return f.c.RemoveDir(p) }
func (f *ftpClient) Remove(p string) error        { return f.c.Delete(p) }
func (f *ftpClient) Rename(from, to string) error { return f.c.Rename(from, to) }
func (f *ftpClient) Close() error                 { return f.c.Quit() }

// replyKind maps a client error to a core kind: 552 is the quota, else the server's text.
func replyKind(err error) error {
	var te *textproto.Error
	if errors.As(err, &te) && te.Code == 552 {
		return core.ErrQuota
	}
	return coretest.KindFromText(err)
}

// protocol describes one connection kind for the scenario kit.
func protocol(m mode) coretest.Protocol {
	return coretest.Protocol{
		Name: m.String(),
		Serve: func(t *testing.T, site *core.Site) coretest.Dial {
			ts := serve(t, site, m)
			return func(user, password string) (coretest.Client, error) {
				c, err := ts.dial(m, user, password)
				if err != nil {
					return nil, err
				}
				return &ftpClient{c: c}, nil
			}
		},
		Kind: replyKind,
	}
}

// defaultWait bounds polls for things that happen at once on an idle machine.
const defaultWait = 10 * time.Second

func osStat(dir, name string) (os.FileInfo, error) { return os.Stat(filepath.Join(dir, name)) }

package ftp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/core/coretest"
)

// seen records what OnAuthSuccess handlers observed.
type seen struct {
	mu       sync.Mutex
	protocol []string
	version  []string
	lastCmd  []string
	closed   int
}

func recordingDispatcher() (*coretest.Dispatcher, *seen) {
	d := &coretest.Dispatcher{}
	coretest.ScenarioRules(d)
	s := &seen{}
	d.On(core.OnAuthSuccess, func(ev *core.Event) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.protocol = append(s.protocol, ev.Session.Protocol())
		s.version = append(s.version, ev.Session.ClientVersion())
		s.lastCmd = append(s.lastCmd, ev.Session.LastCommand())
	})
	d.On(core.OnConnectionClose, func(*core.Event) {
		s.mu.Lock()
		s.closed++
		s.mu.Unlock()
	})
	return d, s
}

func (s *seen) last() (proto, version, cmd string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.protocol) - 1
	return s.protocol[n], s.version[n], s.lastCmd[n]
}

// TestSessionFields checks GetProtocol/GetClientVersion per connection kind and that the
// last command never shows the password.
func TestSessionFields(t *testing.T) {
	cases := []struct {
		mode  mode
		clnt  string
		proto string
	}{
		{modePlain, "", core.ProtoFTP},
		{modePlain, "wharf-test 1.0", core.ProtoFTP},
		{modeExplicit, "FileZilla 3.66", core.ProtoFTPES},
		{modeImplicit, "curl/8", core.ProtoFTPS},
	}
	for _, tc := range cases {
		t.Run(tc.proto+"/"+tc.clnt, func(t *testing.T) {
			d, rec := recordingDispatcher()
			site, _ := newSite(t, d, nil)
			ts := serve(t, site, tc.mode)
			r := dialRaw(t, ts, tc.mode)
			if tc.clnt != "" {
				r.cmd(200, "CLNT %s", tc.clnt)
			}
			r.login(coretest.UserAlice, coretest.Password)
			proto, version, cmd := rec.last()
			if proto != tc.proto || version != tc.clnt {
				t.Fatalf("OnAuthSuccess saw protocol %q, client version %q; want %q, %q", proto, version, tc.proto, tc.clnt)
			}
			if strings.Contains(cmd, coretest.Password) {
				t.Fatalf("last command in OnAuthSuccess shows the password: %q", cmd)
			}
			sessions := site.Sessions()
			if len(sessions) != 1 {
				t.Fatalf("%d sessions, want 1", len(sessions))
			}
			sess := sessions[0]
			if got := sess.LastCommand(); got != "PASS ****" {
				t.Fatalf("last command after login = %q, want \"PASS ****\"", got)
			}
			if _, _, final, msg := r.transfer([]byte("a,b\n"), "STOR report.csv"); final != 226 {
				t.Fatalf("STOR: %d %q", final, msg)
			}
			if got := sess.LastCommand(); got != "STOR report.csv" {
				t.Fatalf("last command after STOR = %q, want \"STOR report.csv\"", got)
			}
			r.cmd(221, "QUIT")
			coretest.Eventually(t, defaultWait, "OnConnectionClose", func() bool {
				rec.mu.Lock()
				defer rec.mu.Unlock()
				return rec.closed == 1
			})
		})
	}
}

// TestShutdown ends live sessions through the core: OnConnectionClose fires, clients are
// disconnected, Serve returns ErrServerClosed.
func TestShutdown(t *testing.T) {
	d, rec := recordingDispatcher()
	site, _ := newSite(t, d, nil)
	srv, err := New(site, Options{Logger: testLogger(t)})
	must(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	ts := &testServer{srv: srv, addr: l.Addr().String(), site: site}
	a, err := ts.dial(modePlain, coretest.UserAlice, coretest.Password)
	must(t, err)
	defer a.Quit()
	b := dialRaw(t, ts, modePlain) // connected, not logged in

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	must(t, srv.Shutdown(ctx))
	if err := <-done; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve returned %v", err)
	}
	rec.mu.Lock()
	closed := rec.closed
	rec.mu.Unlock()
	if closed != 2 {
		t.Fatalf("OnConnectionClose fired %d times, want 2", closed)
	}
	if n := len(site.Sessions()); n != 0 {
		t.Fatalf("%d sessions left", n)
	}
	_ = b.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(b.conn); err != nil {
		t.Fatalf("unauthenticated client after shutdown: %v", err)
	}
	if err := a.NoOp(); err == nil {
		t.Fatal("a client still works after shutdown")
	}
	if _, err := net.DialTimeout("tcp", ts.addr, time.Second); err == nil {
		t.Fatal("the listener still accepts after shutdown")
	}
}

// TestConnectionRefused: a connection the core refuses gets a 421 reply, not a greeting.
func TestConnectionRefused(t *testing.T) {
	site, _ := newSite(t, nil, func(c *config.Site) { c.Limits.MaxConnections = 1 })
	ts := serve(t, site, modePlain)
	first := dialRaw(t, ts, modePlain)
	conn, err := net.DialTimeout("tcp", ts.addr, 5*time.Second)
	must(t, err)
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, _ := io.ReadAll(conn)
	if !bytes.HasPrefix(got, []byte("421 ")) || !bytes.Contains(got, []byte("too many connections")) {
		t.Fatalf("refused connection got %q, want a 421 reply", got)
	}
	first.cmd(200, "NOOP")
}

// TestGeneratedCertificate: the self-signed certificate is written once to the state
// directory (0600) and reused by the next server.
func TestGeneratedCertificate(t *testing.T) {
	site, _ := newSite(t, nil, nil)
	dir := t.TempDir()
	s1, err := New(site, Options{StateDir: dir})
	must(t, err)
	s2, err := New(site, Options{StateDir: dir})
	must(t, err)
	c1, c2 := s1.tls.leaf.Certificates[0].Certificate[0], s2.tls.leaf.Certificates[0].Certificate[0]
	if !bytes.Equal(c1, c2) {
		t.Fatal("a restarted server generated a new certificate")
	}
	for _, f := range []string{certFile, keyFile} {
		fi, err := osStat(dir, f)
		must(t, err)
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
}

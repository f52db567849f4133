package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"github.com/wharf-project/wharf/core/config"
)

// A client that reaches a PROXY-protocol listener directly cannot choose its address when
// the listener names its balancers (proxy_protocol_from): its connection is closed before
// any byte, however good its header. From a listed balancer the header's address is the
// one the rules see (here the user's allow_from).
func TestProxyProtocolFromRefusesForgedAddresses(t *testing.T) {
	t.Chdir(t.TempDir())
	t.Setenv("WHARF_DEMO_PASSWORD", "demo-pass-123")
	cfg, _, err := loadForServe("")
	if err != nil {
		t.Fatal(err)
	}
	site := &cfg.Sites[0]
	site.Listeners = []config.Listener{
		{Protocol: "sftp", Address: "127.0.0.1:0", ProxyProtocol: true,
			ProxyProtocolFrom: []config.Prefix{{Prefix: netip.MustParsePrefix("192.0.2.1/32")}}},
		{Protocol: "sftp", Address: "127.0.0.1:0", ProxyProtocol: true,
			ProxyProtocolFrom: []config.Prefix{{Prefix: netip.MustParsePrefix("127.0.0.0/8")}}},
	}
	for i := range site.Users {
		if site.Users[i].ID == "demo" {
			site.Users[i].AllowFrom = []config.Prefix{{Prefix: netip.MustParsePrefix("203.0.113.50/32")}}
		}
	}
	srv, logs := startTestServer(t, cfg)
	untrusted, trusted := srv.listeners[0].ln.Addr().String(), srv.listeners[1].ln.Addr().String()

	dialAs := func(addr, src string) net.Conn {
		t.Helper()
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		h := proxyproto.HeaderProxyFromAddrs(2, &net.TCPAddr{IP: net.ParseIP(src), Port: 40000}, conn.RemoteAddr())
		if _, err := h.WriteTo(conn); err != nil {
			t.Fatal(err)
		}
		return conn
	}

	// Directly, with the allowed address in a forged header: closed, nothing said.
	for range 3 {
		conn := dialAs(untrusted, "203.0.113.50")
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := io.ReadAll(conn)
		conn.Close()
		// Closed with the header unread: an end of stream or a reset, never a byte or a wait.
		var ne net.Error
		if len(got) > 0 || errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("a connection from an address not in proxy_protocol_from read %q, %v; want it closed at once", got, err)
		}
	}
	if strings.Contains(logs.String(), "from any address") {
		t.Errorf("a warning about headers from any address, with proxy_protocol_from set:\n%s", logs.String())
	}
	if n := strings.Count(logs.String(), "may not send a PROXY header"); n != 1 {
		t.Errorf("%d warnings for 3 refused connections, want 1 (rate-limited):\n%s", n, logs.String())
	}

	// Through a listed balancer: the header's address counts.
	s, err := sftpDial(dialAs(trusted, "203.0.113.50"), "demo", "demo-pass-123", nil)
	if err != nil {
		t.Fatalf("login from the allowed address through a trusted balancer: %v", err)
	}
	if _, err := s.ReadDir("/"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := sftpDial(dialAs(trusted, "198.51.100.1"), "demo", "demo-pass-123", nil); err == nil {
		s.Close()
		t.Fatal("a login from an address outside the user's allow_from was let in")
	}
}

// Without proxy_protocol_from the server says at start that any address may send a header.
func TestProxyProtocolFromAnyAddressWarns(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var logs syncBuffer
	proxyListener(ln, config.Listener{Protocol: "ftp", Address: "127.0.0.1:0", ProxyProtocol: true},
		slog.New(slog.NewTextHandler(&logs, nil)))
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "from any address") {
		t.Fatalf("no warning for a listener that takes PROXY headers from anyone:\n%s", logs.String())
	}
}

// startTestServer runs cfg in-process, logging to the buffer it returns, until the test ends.
func startTestServer(t *testing.T, cfg *config.Config) (*server, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	srv, err := newServer(cfg, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.shutdown(context.Background(), 0) })
	return srv, logs
}

package admin

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wharf-project/wharf/core/coretest"
)

// countingListener counts the connections it accepted that are still open, and the most
// that were open at once: the descriptors the server holds for its clients.
type countingListener struct {
	net.Listener
	open, most atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	n := l.open.Add(1)
	for m := l.most.Load(); n > m && !l.most.CompareAndSwap(m, n); m = l.most.Load() {
	}
	return &countedConn{Conn: c, l: l}, nil
}

type countedConn struct {
	net.Conn
	l    *countingListener
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.l.open.Add(-1) })
	return c.Conn.Close()
}

// TestIdleConnectionsAreBounded: clients that connect and send nothing hold at most MaxConns
// of the server's descriptors, are closed after ReadHeaderTimeout, and /healthz answers once
// they are gone.
func TestIdleConnectionsAreBounded(t *testing.T) {
	const maxConns, idle = 4, 20
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: ln}
	s := New(Options{Mode: ModeOff, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Limits: Limits{MaxConns: maxConns, ReadHeaderTimeout: 100 * time.Millisecond, IdleTimeout: 100 * time.Millisecond}})
	served := make(chan error, 1)
	go func() { served <- s.Serve(cl) }()
	t.Cleanup(func() {
		_ = s.Shutdown(context.Background())
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})

	var conns []net.Conn
	for range idle {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	coretest.Eventually(t, 10*time.Second, "the first idle connections to be accepted", func() bool { return cl.open.Load() > 0 })

	// The idle clients are served maxConns at a time, each closed after ReadHeaderTimeout;
	// the health check, behind them in the listen queue, gets its turn.
	hc := &http.Client{Timeout: 20 * time.Second}
	resp, err := hc.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatalf("/healthz behind %d idle connections: %v", idle, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "ok" {
		t.Fatalf("/healthz: %s %q", resp.Status, body)
	}
	if m := cl.most.Load(); m > maxConns {
		t.Fatalf("%d connections were open at once, want at most %d", m, maxConns)
	}
	// Every idle client was closed by the server, and so is the health check's kept-alive
	// connection once IdleTimeout passes.
	for i, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
			t.Fatalf("idle connection %d: read %d bytes, %v; want it closed by the server", i, n, err)
		}
	}
	coretest.Eventually(t, 10*time.Second, "every connection to be closed", func() bool { return cl.open.Load() == 0 })
}

// TestLargeHeadersRefused: headers beyond MaxHeaderBytes are refused (431).
func TestLargeHeadersRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(Options{Mode: ModeOff, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	req, err := http.NewRequest(http.MethodGet, "http://"+ln.Addr().String()+"/healthz", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Big", strings.Repeat("a", 2*defaultMaxHeaderBytes))
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("a %d KiB header: %s, want 431", 2*defaultMaxHeaderBytes>>10, resp.Status)
	}
}

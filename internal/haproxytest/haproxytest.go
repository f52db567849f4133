// Package haproxytest runs a real HAProxy (Debian's haproxy binary) for tests: a TCP
// frontend on a free loopback port that sends the PROXY protocol v2 header to the given
// backends, balanced round robin or by source address, as docs/cluster.md puts it in front of
// wharf nodes. It skips the test when haproxy is not installed, and fails it when
// WHARF_E2E=1 (CI installs it).
package haproxytest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wharf-project/wharf/core/coretest"
	"github.com/wharf-project/wharf/internal/childproc"
)

// Balance algorithms.
const (
	RoundRobin = "roundrobin" // each connection to the next backend
	Source     = "source"     // a client address always to the same backend (FTP data)
)

// Backend is a node behind the proxy.
type Backend struct {
	Name string // default node1, node2, …
	Addr string // host:port of the node's listener (it must take the PROXY v2 header)
	// HealthAddr, when set, is the node's metrics listener: HAProxy then sends clients only
	// to nodes whose /healthz answers 200, checked every 200 ms.
	HealthAddr string
}

// Options configure the proxy.
type Options struct {
	Backends []Backend
	Balance  string // RoundRobin (default) or Source
	// NoProxyHeader turns send-proxy-v2 off (the nodes then see the proxy's address).
	NoProxyHeader bool
}

// Proxy is a running HAProxy.
type Proxy struct {
	Addr string // 127.0.0.1:port of the frontend

	cmd    *exec.Cmd
	done   chan struct{}
	output *childproc.Output
	once   sync.Once
}

// Start writes the configuration, starts haproxy in the foreground and waits until its
// frontend accepts connections. It is stopped when the test ends.
func Start(t testing.TB, opts Options) *Proxy {
	t.Helper()
	bin := coretest.NeedBinary(t, "haproxy")
	if len(opts.Backends) == 0 {
		t.Fatal("haproxytest: no backends")
	}
	dir := t.TempDir()
	var lastErr error
	for range 5 { // a free port can be taken between finding it and binding it
		port, err := childproc.FreePort()
		if err != nil {
			t.Fatalf("haproxytest: %v", err)
		}
		cfg := filepath.Join(dir, "haproxy.cfg")
		if err := os.WriteFile(cfg, []byte(Config(port, opts)), 0o600); err != nil {
			t.Fatal(err)
		}
		p := &Proxy{Addr: "127.0.0.1:" + strconv.Itoa(port)}
		if lastErr = p.run(bin, cfg); lastErr == nil {
			t.Cleanup(p.Stop)
			return p
		}
	}
	t.Fatalf("haproxytest: haproxy did not start: %v", lastErr)
	return nil
}

// Config is the HAProxy configuration of a proxy on port.
func Config(port int, opts Options) string {
	balance := opts.Balance
	if balance == "" {
		balance = RoundRobin
	}
	var b strings.Builder
	// One thread: round robin is then strictly in turn (with several threads HAProxy may
	// hand two connections in a row to one server), and the tests' 2 cores are spared.
	fmt.Fprintf(&b, `global
    maxconn 1000
    nbthread 1

defaults
    mode tcp
    timeout connect 2s
    timeout client 5m
    timeout server 5m
    # A node that refuses (killed) is retried, then another one is used.
    retries 2
    option redispatch

frontend wharf
    bind 127.0.0.1:%d
    default_backend nodes

backend nodes
    balance %s
`, port, balance)
	health := false
	for _, be := range opts.Backends {
		health = health || be.HealthAddr != ""
	}
	if health {
		b.WriteString("    option httpchk GET /healthz\n    http-check expect status 200\n")
	}
	for i, be := range opts.Backends {
		name := be.Name
		if name == "" {
			name = "node" + strconv.Itoa(i+1)
		}
		fmt.Fprintf(&b, "    server %s %s", name, be.Addr)
		if !opts.NoProxyHeader {
			b.WriteString(" send-proxy-v2")
		}
		if be.HealthAddr != "" {
			host, port, _ := net.SplitHostPort(be.HealthAddr)
			fmt.Fprintf(&b, " check addr %s port %s inter 200ms fall 1 rise 1", host, port)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// run starts haproxy on cfg and waits until its frontend accepts a connection.
func (p *Proxy) run(bin, cfg string) error {
	// -db: foreground, no daemon; -W is not used, so SIGTERM stops it at once.
	cmd := exec.Command(bin, "-db", "-f", cfg)
	p.output = &childproc.Output{}
	cmd.Stdout, cmd.Stderr = p.output, p.output
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return err
	}
	p.cmd, p.done = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(p.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-p.done:
			return fmt.Errorf("haproxy exited: %s", p.output.String())
		default:
		}
		// A connection that haproxy accepts is held by it until closed: close at once.
		if c, err := net.DialTimeout("tcp", p.Addr, time.Second); err == nil {
			_ = c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			p.Stop()
			return fmt.Errorf("haproxy does not accept on %s: %s", p.Addr, p.output.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop ends haproxy (idempotent) and waits for it.
func (p *Proxy) Stop() {
	p.once.Do(func() {
		if p.cmd == nil || p.cmd.Process == nil {
			return
		}
		childproc.Stop(p.cmd.Process, syscall.SIGTERM, p.done, 5*time.Second)
	})
}

// Output is what haproxy printed (its warnings and errors).
func (p *Proxy) Output() string { return p.output.String() }

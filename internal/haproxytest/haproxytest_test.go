package haproxytest

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/wharf-project/wharf/core/coretest"
)

// node is a backend that requires the PROXY header (as a wharf listener with
// proxy_protocol: true does) and answers each connection with its name and the client
// address the header gave.
type node struct {
	name string
	ln   net.Listener
	// healthy is what its /healthz says, when it has one.
	healthy atomic.Bool
	health  net.Listener
}

func startNode(t *testing.T, name string, withHealth bool) *node {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := &node{name: name, ln: &proxyproto.Listener{Listener: raw, ReadHeaderTimeout: 5 * time.Second,
		ConnPolicy: func(proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) { return proxyproto.REQUIRE, nil }}}
	t.Cleanup(func() { _ = n.ln.Close() })
	go func() {
		for {
			c, err := n.ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				// RemoteAddr reads the header: the client's address, not the proxy's.
				fmt.Fprintf(c, "%s %s\n", n.name, c.RemoteAddr())
			}()
		}
	}()
	if withHealth {
		n.healthy.Store(true)
		hl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		n.health = hl
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/healthz" && n.healthy.Load() {
				_, _ = w.Write([]byte("ok\n"))
				return
			}
			w.WriteHeader(http.StatusServiceUnavailable)
		}), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(hl) }()
		t.Cleanup(func() { _ = srv.Close() })
	}
	return n
}

// ask connects through the proxy and returns the node that answered, the client address it
// saw and the client's own address.
func ask(t *testing.T, p *Proxy) (name, client, local string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("through the proxy: %v\n%s", err, p.Output())
	}
	name, client, _ = strings.Cut(strings.TrimSpace(line), " ")
	return name, client, c.LocalAddr().String()
}

// TestRoundRobinSendsProxyV2: connections go to the nodes in turn, and each node learns the
// client's own address and port from the PROXY v2 header.
func TestRoundRobinSendsProxyV2(t *testing.T) {
	a, b := startNode(t, "a", false), startNode(t, "b", false)
	p := Start(t, Options{Backends: []Backend{{Addr: a.ln.Addr().String()}, {Addr: b.ln.Addr().String()}}})
	seen := map[string]int{}
	for range 6 {
		name, client, local := ask(t, p)
		if client != local {
			t.Fatalf("node %s saw client %s, the client is %s", name, client, local)
		}
		seen[name]++
	}
	if seen["a"] != 3 || seen["b"] != 3 {
		t.Fatalf("round robin: %v", seen)
	}
}

// TestSourceAffinityAndHealth: with balance source, one client address always reaches the
// same node; a node whose /healthz turns 503 gets no more clients, and one that is killed
// is skipped.
func TestSourceAffinityAndHealth(t *testing.T) {
	a, b := startNode(t, "a", true), startNode(t, "b", true)
	p := Start(t, Options{Balance: Source, Backends: []Backend{
		{Addr: a.ln.Addr().String(), HealthAddr: a.health.Addr().String()},
		{Addr: b.ln.Addr().String(), HealthAddr: b.health.Addr().String()},
	}})
	first, _, _ := ask(t, p)
	for range 5 {
		if name, _, _ := ask(t, p); name != first {
			t.Fatalf("source affinity: %s then %s", first, name)
		}
	}
	nodes := map[string]*node{"a": a, "b": b}
	other := map[string]string{"a": "b", "b": "a"}[first]
	nodes[first].healthy.Store(false)
	coretest.Eventually(t, 10*time.Second, "the unhealthy node to be left out", func() bool {
		name, _, _ := ask(t, p)
		return name == other
	})
	nodes[first].healthy.Store(true)
	coretest.Eventually(t, 10*time.Second, "the node to be back", func() bool {
		name, _, _ := ask(t, p)
		return name == first
	})
	// Killed (kill -9): its listener and its /healthz are gone; once a check has failed,
	// its clients go to the other node.
	_ = nodes[first].ln.Close()
	_ = nodes[first].health.Close()
	coretest.Eventually(t, 10*time.Second, "the dead node's clients to reach the other", func() bool {
		c, err := net.DialTimeout("tcp", p.Addr, time.Second)
		if err != nil {
			return false
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		return strings.HasPrefix(line, other+" ")
	})
	for range 3 {
		if name, _, _ := ask(t, p); name != other {
			t.Fatalf("after %s died, %s answered", first, name)
		}
	}
}

// TestStop: the frontend is closed once the proxy is stopped.
func TestStop(t *testing.T) {
	a := startNode(t, "a", false)
	p := Start(t, Options{Backends: []Backend{{Addr: a.ln.Addr().String()}}})
	p.Stop()
	if c, err := net.DialTimeout("tcp", p.Addr, time.Second); err == nil {
		c.Close()
		t.Fatal("the proxy still accepts after Stop")
	}
}

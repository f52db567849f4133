package ftp

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/wharf-project/wharf/core/coretest"
)

// keepAliveProbe is an upload's body that, once the data connection is open, reads
// SO_KEEPALIVE of the server's end of every open data connection.
type keepAliveProbe struct {
	srv  *Server
	done bool
	got  []int
	err  error
}

func (p *keepAliveProbe) Read(b []byte) (int, error) {
	if p.done {
		return 0, io.EOF
	}
	p.done = true
	p.srv.mu.Lock()
	defer p.srv.mu.Unlock()
	for d := range p.srv.data {
		tc, ok := d.Conn.(*net.TCPConn)
		if !ok {
			p.err = errors.New("data connection is not TCP")
			continue
		}
		rc, err := tc.SyscallConn()
		if err != nil {
			p.err = err
			continue
		}
		v := -1
		if err := rc.Control(func(fd uintptr) { v, err = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE) }); err != nil {
			p.err = err
		}
		p.got = append(p.got, v)
	}
	return copy(b, "data"), nil
}

// Passive data connections have no TCP keep-alives (issue #24: they have a stall deadline,
// and keep-alives cost four setsockopt calls per transfer); the control connection keeps
// Go's.
func TestDataConnectionsWithoutKeepAlive(t *testing.T) {
	site, _ := newSite(t, nil, nil)
	ts := serve(t, site, modePlain)
	c, err := ts.dial(modePlain, coretest.UserAlice, coretest.Password)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Quit()
	p := &keepAliveProbe{srv: ts.srv}
	if err := c.Stor("/ka.txt", p); err != nil {
		t.Fatal(err)
	}
	if p.err != nil || len(p.got) != 1 || p.got[0] != 0 {
		t.Errorf("SO_KEEPALIVE of the data connections: %v (%v), want [0]", p.got, p.err)
	}
	ts.srv.mu.Lock()
	defer ts.srv.mu.Unlock()
	if len(ts.srv.conns) != 1 {
		t.Fatalf("%d control connections", len(ts.srv.conns))
	}
	for cc := range ts.srv.conns {
		tc, ok := cc.Conn.(*net.TCPConn)
		if !ok {
			t.Fatalf("control connection is a %T", cc.Conn)
		}
		rc, _ := tc.SyscallConn()
		v := -1
		_ = rc.Control(func(fd uintptr) { v, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE) })
		if v != 1 {
			t.Errorf("SO_KEEPALIVE of the control connection: %d, want 1", v)
		}
	}
}

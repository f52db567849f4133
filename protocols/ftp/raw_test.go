package ftp

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rawClient speaks FTP line by line, for commands and checks client libraries do not offer
// (CLNT, SITE, HASH, raw paths, timeouts).
type rawClient struct {
	t    *testing.T
	ts   *testServer
	conn net.Conn
	tp   *textproto.Conn
	prot bool        // PROT P: data connections use TLS
	tlsc *tls.Config // for data connections
}

func dialRaw(t *testing.T, ts *testServer, m mode) *rawClient {
	t.Helper()
	if m == modePlain {
		return dialRawTLS(t, ts, m, nil)
	}
	return dialRawTLS(t, ts, m, ts.clientTLS())
}

// dialRawTLS is dialRaw with the client's TLS config (used on control and data connections).
func dialRawTLS(t *testing.T, ts *testServer, m mode, tlsc *tls.Config) *rawClient {
	t.Helper()
	return dialRawWith(t, ts, m, tlsc, &net.Dialer{Timeout: 5 * time.Second})
}

// dialRawFrom is dialRaw from a chosen loopback source address.
func dialRawFrom(t *testing.T, ts *testServer, m mode, ip net.IP) *rawClient {
	t.Helper()
	var tlsc *tls.Config
	if m != modePlain {
		tlsc = ts.clientTLS()
	}
	return dialRawWith(t, ts, m, tlsc, &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: ip}})
}

func dialRawWith(t *testing.T, ts *testServer, m mode, tlsc *tls.Config, d *net.Dialer) *rawClient {
	t.Helper()
	var conn net.Conn
	var err error
	if m == modeImplicit {
		conn, err = tls.DialWithDialer(d, "tcp", ts.addr, tlsc)
	} else {
		conn, err = d.Dial("tcp", ts.addr)
	}
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	r := &rawClient{t: t, ts: ts, conn: conn, tp: textproto.NewConn(conn)}
	t.Cleanup(func() { _ = r.tp.Close() })
	r.expect(220)
	if m != modePlain {
		r.tlsc = tlsc
	}
	if m == modeExplicit {
		r.cmd(234, "AUTH TLS")
		tc := tls.Client(conn, r.tlsc)
		if err := tc.Handshake(); err != nil {
			t.Fatalf("AUTH TLS handshake: %v", err)
		}
		r.conn, r.tp = tc, textproto.NewConn(tc)
	}
	return r
}

// send writes a command and returns the reply, whatever its code.
func (r *rawClient) send(format string, args ...any) (int, string) {
	r.t.Helper()
	_ = r.conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := r.tp.Cmd(format, args...); err != nil {
		r.t.Fatalf("send %q: %v", fmt.Sprintf(format, args...), err)
	}
	return r.read()
}

func (r *rawClient) read() (int, string) {
	r.t.Helper()
	code, msg, err := r.tp.ReadResponse(0)
	if err != nil && code == 0 {
		r.t.Fatalf("read reply: %v", err)
	}
	return code, msg
}

// cmd sends a command and fails the test unless the reply has the code want.
func (r *rawClient) cmd(want int, format string, args ...any) string {
	r.t.Helper()
	code, msg := r.send(format, args...)
	if code != want {
		r.t.Fatalf("%q: reply %d %q, want %d", fmt.Sprintf(format, args...), code, msg, want)
	}
	return msg
}

func (r *rawClient) expect(want int) string {
	r.t.Helper()
	code, msg := r.read()
	if code != want {
		r.t.Fatalf("reply %d %q, want %d", code, msg, want)
	}
	return msg
}

func (r *rawClient) login(user, password string) {
	r.t.Helper()
	r.cmd(331, "USER %s", user)
	r.cmd(230, "PASS %s", password)
	r.cmd(200, "TYPE I")
	if r.tlsc != nil {
		r.cmd(200, "PBSZ 0")
		r.cmd(200, "PROT P")
		r.prot = true
	}
}

// transfer runs a data command over EPSV and returns the preliminary reply code, the data
// read (for downloads and listings) and the final reply.
func (r *rawClient) transfer(upload []byte, format string, args ...any) (first int, data []byte, final int, finalMsg string) {
	r.t.Helper()
	msg := r.cmd(229, "EPSV")
	i, j := strings.Index(msg, "(|||"), strings.LastIndex(msg, "|)")
	port, err := strconv.Atoi(msg[i+4 : j])
	if err != nil {
		r.t.Fatalf("EPSV reply %q", msg)
	}
	host, _, _ := net.SplitHostPort(r.ts.addr)
	dc, err := net.DialTimeout("tcp", net.JoinHostPort(host, strconv.Itoa(port)), 5*time.Second)
	if err != nil {
		r.t.Fatalf("data connection: %v", err)
	}
	defer dc.Close()
	_ = dc.SetDeadline(time.Now().Add(20 * time.Second))
	code, m := r.send(format, args...)
	if code != 150 && code != 125 {
		return code, nil, code, m
	}
	var conn net.Conn = dc
	if r.prot {
		conn = tls.Client(dc, r.tlsc)
	}
	if upload != nil {
		_, _ = conn.Write(upload)
	} else {
		data, _ = io.ReadAll(conn)
	}
	_ = conn.Close()
	final, finalMsg = r.read()
	return code, data, final, finalMsg
}

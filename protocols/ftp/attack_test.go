package ftp

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/core/coretest"
)

// Attacks on FTP and FTPS data connections and on control-connection replies (issue #19,
// items 11 to 14). Each test performs the attack with raw sockets and checks that it fails,
// and that the legitimate client still gets its data.

const secret = "the victim's secret payload"

// writeSecret puts secret.txt in alice's home.
func writeSecret(t *testing.T, root string) {
	t.Helper()
	must(t, os.WriteFile(filepath.Join(root, "home", coretest.UserAlice, "secret.txt"), []byte(secret), 0o644))
}

// epsvAddr sends EPSV and returns the data address it announces.
func (r *rawClient) epsvAddr() string {
	r.t.Helper()
	msg := r.cmd(229, "EPSV")
	i, j := strings.Index(msg, "(|||"), strings.LastIndex(msg, "|)")
	if i < 0 || j < i {
		r.t.Fatalf("EPSV reply %q", msg)
	}
	host, _, _ := net.SplitHostPort(r.ts.addr)
	return net.JoinHostPort(host, msg[i+4:j])
}

// pasvAddr sends PASV and returns the data address it announces.
func (r *rawClient) pasvAddr() string {
	r.t.Helper()
	msg := r.cmd(227, "PASV")
	m := regexp.MustCompile(`\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)`).FindStringSubmatch(msg)
	if m == nil {
		r.t.Fatalf("PASV reply %q", msg)
	}
	hi, _ := strconv.Atoi(m[5])
	lo, _ := strconv.Atoi(m[6])
	return net.JoinHostPort(strings.Join(m[1:5], "."), strconv.Itoa(hi*256+lo))
}

// countingCache is a client session cache that counts the sessions it learnt, so an attack
// test can check that its attacker really held a session to resume.
type countingCache struct {
	tls.ClientSessionCache
	puts atomic.Int32
}

func (c *countingCache) Put(key string, cs *tls.ClientSessionState) {
	if cs != nil {
		c.puts.Add(1)
	}
	c.ClientSessionCache.Put(key, cs)
}

// raceResult is what a racing data connection got.
type raceResult struct {
	handshake error
	resumed   bool
	data      []byte
}

// raceTLS connects to addr and, in the background, runs a TLS client handshake with tlsc and
// reads everything the server sends.
func raceTLS(t *testing.T, addr string, tlsc *tls.Config) <-chan raceResult {
	t.Helper()
	raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
	must(t, err)
	t.Cleanup(func() { _ = raw.Close() })
	_ = raw.SetDeadline(time.Now().Add(20 * time.Second))
	out := make(chan raceResult, 1)
	go func() {
		tc := tls.Client(raw, tlsc)
		var res raceResult
		if res.handshake = tc.Handshake(); res.handshake == nil {
			res.resumed = tc.ConnectionState().DidResume
			res.data, _ = io.ReadAll(tc)
		}
		_ = tc.Close()
		out <- res
	}()
	return out
}

// TestFTPSDataTakeover (item 11): a second client from the victim's address races to the
// victim's passive port and resumes a TLS session of its own. Only a session issued to a
// logged-in control connection of the victim's own user may open the victim's data
// connection; a sibling connection of the same user (rclone shares one session cache across
// its connections) still may.
func TestFTPSDataTakeover(t *testing.T) {
	cases := []struct {
		name       string
		attacker   string // "" = AUTH TLS (or the implicit handshake) only, never logged in
		loginAfter bool   // the attacker logs in only while its data connection waits
		accepted   bool
	}{
		{"connection that never logged in", "", false, false},
		{"connection of another user", coretest.UserBob, false, false},
		{"connection logging in as another user", coretest.UserBob, true, false},
		{"sibling connection of the same user", coretest.UserAlice, false, true},
		// rclone: a sibling whose USER and PASS are still on their way.
		{"sibling connection still logging in", coretest.UserAlice, true, true},
	}
	for _, m := range []mode{modeExplicit, modeImplicit} {
		for _, tc := range cases {
			t.Run(m.String()+"/"+tc.name, func(t *testing.T) {
				site, root := newSite(t, nil, nil)
				writeSecret(t, root)
				ts := serve(t, site, m)
				if tc.attacker == "" {
					// A session of a connection that never logs in is refused after this
					// wait; the default (issuerLoginWait) would only slow the test down.
					ts.srv.issuerWait.Store(int64(500 * time.Millisecond))
				}

				victim := dialRaw(t, ts, m)
				victim.login(coretest.UserAlice, coretest.Password)
				victim.cmd(200, "NOOP")

				cache := &countingCache{ClientSessionCache: tls.NewLRUClientSessionCache(8)}
				atlsc := ts.clientTLS()
				atlsc.ClientSessionCache = cache
				attacker := dialRawTLS(t, ts, m, atlsc) // from 127.0.0.1, like the victim
				if tc.attacker != "" && !tc.loginAfter {
					attacker.login(tc.attacker, coretest.Password)
				}
				attacker.cmd(200, "NOOP") // reads the session tickets sent after the handshake
				if cache.puts.Load() == 0 {
					t.Fatal("the attacker holds no TLS session to resume")
				}

				addr := victim.epsvAddr()
				race := raceTLS(t, addr, atlsc) // queued before the victim's RETR is accepted
				code, msg := victim.send("RETR secret.txt")
				if tc.loginAfter {
					// The server waits in the data connection's handshake for this login.
					attacker.login(tc.attacker, coretest.Password)
				}
				var final int
				var finalMsg string
				if code == 150 || code == 125 {
					final, finalMsg = victim.read()
				}
				var res raceResult
				select {
				case res = <-race:
				case <-time.After(30 * time.Second):
					t.Fatal("racing data connection did not finish")
				}
				if !tc.accepted {
					if bytes.Contains(res.data, []byte(secret)) {
						t.Fatalf("the attacker's data connection (resumed its own session: %v) received the victim's file", res.resumed)
					}
					if final == 226 {
						t.Fatalf("the victim's RETR succeeded over the attacker's connection: %d %q", final, finalMsg)
					}
					if !strings.Contains(finalMsg, "does not belong") {
						t.Errorf("refused transfer's reply %d %q (first %d %q), want it to name the foreign TLS session", final, finalMsg, code, msg)
					}
				} else {
					if res.handshake != nil || !res.resumed || string(res.data) != secret || final != 226 {
						t.Fatalf("sibling connection's session: handshake %v, resumed %v, data %q, reply %d %q",
							res.handshake, res.resumed, res.data, final, finalMsg)
					}
				}
				// Both control connections survive.
				victim.cmd(200, "NOOP")
				attacker.cmd(200, "NOOP")
				// And the victim's own next transfer works.
				if _, data, final, msg := victim.transfer(nil, "RETR secret.txt"); final != 226 || string(data) != secret {
					t.Fatalf("victim's own RETR afterwards: %d %q, data %q", final, msg, data)
				}
			})
		}
	}
}

// TestRcloneSyncFTPES (item 11): rclone shares one TLS session cache across its control and
// data connections, so its data connections resume sessions of sibling control connections;
// `rclone sync` must keep working with session reuse required.
func TestRcloneSyncFTPES(t *testing.T) {
	rclone := coretest.NeedBinary(t, "rclone")
	site, root := newSite(t, nil, nil)
	ts := serve(t, site, modeExplicit)
	local := t.TempDir()
	src := filepath.Join(local, "src")
	makeTree(t, src, 30)
	env := []string{"RCLONE_CONFIG=" + filepath.Join(local, "rclone.conf"), "HOME=" + local}
	obscured := strings.TrimSpace(mustRun(t, time.Minute, env, rclone, "obscure", coretest.Password))
	remote := fmt.Sprintf(":ftp,host=127.0.0.1,port=%s,user=%s,pass=%s,explicit_tls=true,no_check_certificate=true:sync",
		port(ts), coretest.UserAlice, obscured)
	dst := filepath.Join(root, "home", coretest.UserAlice, "sync")

	mustRun(t, 2*time.Minute, env, rclone, "sync", "--transfers", "4", "--checkers", "4", src, remote)
	sameTree(t, src, dst)

	// A second sync uploads a changed file and deletes a removed one.
	must(t, os.WriteFile(filepath.Join(src, "d1", "e1", "f001.bin"), []byte("changed"), 0o644))
	must(t, os.Remove(filepath.Join(src, "d2", "e2", "f002.bin")))
	mustRun(t, 2*time.Minute, env, rclone, "sync", "--transfers", "4", "--checkers", "4", src, remote)
	sameTree(t, src, dst)
	mustRun(t, 2*time.Minute, env, rclone, "check", src, remote)
}

// TestPassiveHijackOnRetry (item 12): on plain FTP, a connection from another address that
// reaches the victim's passive port first is refused, closed and forgotten: the victim's own
// data connection, accepted next, gets the data, and no later RETR goes to the attacker.
func TestPassiveHijackOnRetry(t *testing.T) {
	site, root := newSite(t, nil, nil)
	writeSecret(t, root)
	ts := serve(t, site, modePlain)
	victim := dialRaw(t, ts, modePlain)
	victim.login(coretest.UserAlice, coretest.Password)
	addr := victim.pasvAddr()

	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	attacker, err := d.Dial("tcp", addr)
	must(t, err)
	defer attacker.Close()

	_ = victim.conn.SetDeadline(time.Now().Add(40 * time.Second))
	if _, err := victim.tp.Cmd("RETR secret.txt"); err != nil {
		t.Fatal(err)
	}
	own, err := net.DialTimeout("tcp", addr, 5*time.Second)
	must(t, err)
	defer own.Close()
	_ = own.SetDeadline(time.Now().Add(20 * time.Second))
	code, msg := victim.read()
	if code != 150 {
		// The library refused the attacker's connection but kept it: the next RETR, without
		// a new PASV, would go to it.
		code2, msg2 := victim.send("RETR secret.txt")
		_ = attacker.SetReadDeadline(time.Now().Add(5 * time.Second))
		stolen, _ := io.ReadAll(attacker)
		t.Fatalf("victim's RETR: %d %q, want 150 over its own connection; a retried RETR: %d %q; the attacker received %q",
			code, msg, code2, msg2, stolen)
	}
	data, err := io.ReadAll(own)
	must(t, err)
	if final, msg := victim.read(); final != 226 || string(data) != secret {
		t.Fatalf("victim's transfer: %d %q, data %q", final, msg, data)
	}
	// The attacker's connection was closed without data.
	_ = attacker.SetReadDeadline(time.Now().Add(10 * time.Second))
	stolen, err := io.ReadAll(attacker)
	if len(stolen) > 0 || err != nil {
		t.Fatalf("attacker's data connection: %q, %v; want closed without data", stolen, err)
	}
	// A RETR without a new PASV opens no data connection at all.
	if code, msg := victim.send("RETR secret.txt"); code < 400 {
		t.Fatalf("RETR without a new PASV: %d %q", code, msg)
	}
}

// TestActivePrivilegedPort (item 13): PORT and EPRT to a privileged port (< 1024) of the
// client's address are refused, as vsftpd does; unprivileged ports are accepted.
func TestActivePrivilegedPort(t *testing.T) {
	site, _ := newSite(t, nil, func(c *config.Site) { c.FTP.ActiveMode = true })
	ts := serve(t, site, modePlain)
	r := dialRaw(t, ts, modePlain)
	r.login(coretest.UserAlice, coretest.Password)
	for _, cmd := range []string{"PORT 127,0,0,1,0,22", "PORT 127,0,0,1,3,255", "PORT 127,0,0,1,0,0",
		"EPRT |1|127.0.0.1|25|", "EPRT |1|127.0.0.1|1023|", "EPRT |2|::1|80|"} {
		if code, msg := r.send("%s", cmd); code != 500 || !strings.Contains(msg, "Illegal") {
			t.Errorf("%s: %d %q, want 500 Illegal ... command", cmd, code, msg)
		}
	}
	r.cmd(200, "PORT 127,0,0,1,4,0")
	r.cmd(200, "EPRT |1|127.0.0.1|1024|")
	// A refused PORT leaves no data address behind.
	r2 := dialRaw(t, ts, modePlain)
	r2.login(coretest.UserAlice, coretest.Password)
	r2.cmd(500, "PORT 127,0,0,1,0,21")
	if code, msg := r2.send("RETR /shared/readme.txt"); code < 400 {
		t.Fatalf("RETR after a refused PORT: %d %q", code, msg)
	}
}

// injected is a name that, written raw into a reply, ends the line and forges a 227 reply
// that would send the client's next data connection to 6.6.6.6.
const injected = "227 Entering Passive Mode (6,6,6,6,1,1)"

// replyReader reads replies byte-exactly, to see what a client splitting on CR or LF would.
type replyReader struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

var replyStart = regexp.MustCompile(`^(\d{3})([ -])`)

// readReply reads one whole reply and fails on anything that could split it: a CR not
// followed by LF or NUL (RFC 959/2640: a CR in a name is sent as CR NUL), an LF not after a
// CR, or a line inside a multi-line reply that looks like the start of a reply.
func (rr *replyReader) readReply() (int, string) {
	rr.t.Helper()
	_ = rr.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	var lines []string
	code := ""
	for {
		line, err := rr.br.ReadString('\n')
		if err != nil {
			rr.t.Fatalf("read reply: %v (after %q)", err, lines)
		}
		if !strings.HasSuffix(line, "\r\n") {
			rr.t.Fatalf("reply line ends with a bare LF: %q", line)
		}
		body := strings.TrimSuffix(line, "\r\n")
		for i := 0; i < len(body); i++ {
			if body[i] == '\r' && (i+1 == len(body) || body[i+1] != 0) {
				rr.t.Fatalf("reply line has a bare CR (a client splitting on it reads %q): %q", body[i+1:], body)
			}
		}
		lines = append(lines, body)
		m := replyStart.FindStringSubmatch(body)
		if code == "" {
			if m == nil {
				rr.t.Fatalf("reply does not start with a code: %q", body)
			}
			code = m[1]
			if m[2] == " " {
				break
			}
			continue
		}
		if m != nil && m[1] == code && m[2] == " " {
			break
		}
		if m != nil && m[2] == " " {
			rr.t.Fatalf("line %q inside a %s multi-line reply looks like another reply", body, code)
		}
	}
	n, _ := strconv.Atoi(code)
	return n, strings.Join(lines, "\n")
}

// TestReplyInjection (item 14): names holding a CR never split a reply. (An LF cannot reach
// a reply through wharf: commands end at LF, and the core's errors name only the client's
// path; third_party/ftpserverlib's wharf_test.go covers LF where the library writes replies.)
// Every command that echoes a name is followed by NOOP, whose reply must come next: a
// forged reply queued by a split line would be read in its place.
func TestReplyInjection(t *testing.T) {
	site, root := newSite(t, nil, nil)
	home := filepath.Join(root, "home", coretest.UserAlice)
	crDir := "d\r" + injected
	crFile := "x\r" + injected
	must(t, os.Mkdir(filepath.Join(home, crDir), 0o755))
	must(t, os.WriteFile(filepath.Join(home, crFile), []byte("data"), 0o644))
	ts := serve(t, site, modePlain)

	conn, err := net.DialTimeout("tcp", ts.addr, 5*time.Second)
	must(t, err)
	defer conn.Close()
	rr := &replyReader{t: t, c: conn, br: bufio.NewReader(conn)}
	send := func(line string) (int, string) {
		t.Helper()
		_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := conn.Write([]byte(line + "\r\n")); err != nil {
			t.Fatal(err)
		}
		return rr.readReply()
	}
	if code, _ := rr.readReply(); code != 220 {
		t.Fatalf("greeting %d", code)
	}
	send("USER " + coretest.UserAlice)
	if code, msg := send("PASS " + coretest.Password); code != 230 {
		t.Fatalf("login: %d %q", code, msg)
	}
	send("TYPE I")

	cmds := []string{
		"CWD " + crDir, "PWD", "CDUP",
		"CWD /" + crDir + "/missing", "CWD " + crFile,
		"SIZE " + crFile, "SIZE " + crDir, "MDTM " + crFile, "MDTM missing\r" + injected,
		"MLST " + crFile, "MLST " + crDir,
		"STAT " + crFile,
		"HASH " + crFile, "XSHA256 " + crFile, "XCRC missing\r" + injected,
		"MFMT 20200102030405 " + crFile,
		"SITE CHMOD 644 " + crFile, "SITE CHMOD 644 missing\r" + injected,
		"AVBL " + crDir, "AVBL " + crFile,
		"RNFR missing\r" + injected, "RNTO x2\r" + injected,
		"MKD n\r" + injected, "RMD n\r" + injected, "RMD missing\r" + injected,
		"DELE missing\r" + injected,
		"RETR missing\r" + injected, "STOR /nodir\r" + injected + "/f",
		"RNFR " + crFile, "RNTO x2\r" + injected, "DELE x2\r" + injected,
	}
	for _, c := range cmds {
		code, msg := send(c)
		echoed := strings.Contains(msg, "\r\x00"+injected)
		t.Logf("%q -> %d %q (name echoed CR NUL-escaped: %v)", c, code, msg, echoed)
		if code, msg := send("NOOP"); code != 200 {
			t.Fatalf("after %q the NOOP reply was %d %q: a forged reply was queued", c, code, msg)
		}
	}
	// The escaped name still reads back: CR NUL is a CR (RFC 2640 section 3.1).
	send("CWD /" + crDir)
	_, msg := send("PWD")
	if got := strings.ReplaceAll(msg, "\r\x00", "\r"); !strings.Contains(got, `"/`+crDir+`"`) {
		t.Fatalf("PWD = %q, want the directory with CR NUL for its CR", msg)
	}
}

// TestPassiveListenerChecksAddress (item 12): wharf's own passive listener accepts only
// connections from its control connection's address; others are closed and never returned.
func TestPassiveListenerChecksAddress(t *testing.T) {
	site, _ := newSite(t, nil, nil)
	srv, err := New(site, Options{Logger: testLogger(t)})
	must(t, err)
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer raw.Close()
	ctrl := &ctrlConn{srv: srv, remote: "127.0.0.1:40000"}
	l := &boundListener{Listener: raw, srv: srv, ctrl: ctrl}

	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	foreign, err := d.Dial("tcp", raw.Addr().String())
	must(t, err)
	defer foreign.Close()
	own, err := net.DialTimeout("tcp", raw.Addr().String(), 5*time.Second)
	must(t, err)
	defer own.Close()

	_ = raw.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
	c, err := l.Accept()
	must(t, err)
	defer c.Close()
	if c.RemoteAddr().String() != own.LocalAddr().String() {
		t.Fatalf("accepted %s, want the control connection's address (%s)", c.RemoteAddr(), own.LocalAddr())
	}
	_ = foreign.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := foreign.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("foreign connection: read %d, %v; want it closed", n, err)
	}
	// With nobody else connecting, Accept ends at the listener's deadline.
	_ = raw.(*net.TCPListener).SetDeadline(time.Now().Add(200 * time.Millisecond))
	foreign2, err := d.Dial("tcp", raw.Addr().String())
	must(t, err)
	defer foreign2.Close()
	if c, err := l.Accept(); err == nil {
		_ = c.Close()
		t.Fatalf("Accept returned %s, want the deadline", c.RemoteAddr())
	} else if !strings.Contains(err.Error(), "another address") {
		t.Fatalf("Accept error %q, want it to say a connection from another address was refused", err)
	}
}

// TestActiveModeTLS: active-mode data connections get the client's own TLS configuration
// too (GetDataTLSConfig): resuming the control connection's session works, a fresh session
// is refused.
func TestActiveModeTLS(t *testing.T) {
	site, root := newSite(t, nil, func(c *config.Site) { c.FTP.ActiveMode = true })
	writeSecret(t, root)
	ts := serve(t, site, modeExplicit)
	r := dialRaw(t, ts, modeExplicit)
	r.login(coretest.UserAlice, coretest.Password)
	r.cmd(200, "NOOP")

	retr := func(tlsc *tls.Config) (int, string, []byte) {
		t.Helper()
		l, err := net.Listen("tcp", "127.0.0.1:0")
		must(t, err)
		defer l.Close()
		p := l.Addr().(*net.TCPAddr).Port
		r.cmd(200, "PORT 127,0,0,1,%d,%d", p/256, p%256)
		got := make(chan []byte, 1)
		go func() {
			c, err := l.Accept()
			if err != nil {
				got <- nil
				return
			}
			_ = c.SetDeadline(time.Now().Add(20 * time.Second))
			data, _ := io.ReadAll(tls.Client(c, tlsc))
			_ = c.Close()
			got <- data
		}()
		r.cmd(150, "RETR secret.txt")
		code, msg := r.read()
		return code, msg, <-got
	}
	if code, msg, data := retr(r.tlsc); code != 226 || string(data) != secret {
		t.Fatalf("active RETR resuming the control session: %d %q, data %q", code, msg, data)
	}
	fresh := ts.clientTLS()
	fresh.ClientSessionCache = nil
	if code, msg, data := retr(fresh); code < 400 || len(data) > 0 || !strings.Contains(msg, "not resumed") {
		t.Fatalf("active RETR over a fresh session: %d %q, data %q", code, msg, data)
	}
}

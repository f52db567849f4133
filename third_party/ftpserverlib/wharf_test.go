package ftpserver

// Tests of wharf's patches (see WHARF.md).

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/require"
)

// wharfClient is a raw control connection, reading replies with textproto.
type wharfClient struct {
	t    *testing.T
	conn net.Conn
	tp   *textproto.Conn
}

func dialWharf(t *testing.T, server *FtpServer) *wharfClient {
	t.Helper()

	conn, err := net.DialTimeout("tcp", server.Addr(), 5*time.Second)
	require.NoError(t, err)

	c := &wharfClient{t: t, conn: conn, tp: textproto.NewConn(conn)}
	t.Cleanup(func() { _ = c.tp.Close() })
	c.expect(StatusServiceReady)

	return c
}

func (c *wharfClient) send(format string, args ...any) (int, string) {
	c.t.Helper()
	require.NoError(c.t, c.conn.SetDeadline(time.Now().Add(20*time.Second)))
	_, err := c.tp.Cmd(format, args...)
	require.NoError(c.t, err)

	return c.read()
}

func (c *wharfClient) read() (int, string) {
	c.t.Helper()
	code, msg, err := c.tp.ReadResponse(0)

	if code == 0 {
		require.NoError(c.t, err)
	}

	return code, msg
}

func (c *wharfClient) expect(code int) string {
	c.t.Helper()
	got, msg := c.read()
	require.Equal(c.t, code, got, msg)

	return msg
}

func (c *wharfClient) cmd(code int, format string, args ...any) string {
	c.t.Helper()
	got, msg := c.send(format, args...)
	require.Equal(c.t, code, got, msg)

	return msg
}

func (c *wharfClient) login() {
	c.t.Helper()
	c.cmd(StatusUserOK, "USER %s", authUser)
	c.cmd(StatusUserLoggedIn, "PASS %s", authPass)
	c.cmd(StatusOK, "TYPE I")
}

// startTLS upgrades the control connection (AUTH TLS) and protects data connections.
func (c *wharfClient) startTLS(cfg *tls.Config) {
	c.t.Helper()
	c.cmd(StatusAuthAccepted, "AUTH TLS")
	tc := tls.Client(c.conn, cfg)
	require.NoError(c.t, tc.Handshake())
	c.conn, c.tp = tc, textproto.NewConn(tc)
}

var pasvReply = regexp.MustCompile(`\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)`)

func (c *wharfClient) pasv() string {
	c.t.Helper()
	m := pasvReply.FindStringSubmatch(c.cmd(StatusEnteringPASV, "PASV"))
	require.NotNil(c.t, m)
	hi, _ := strconv.Atoi(m[5])
	lo, _ := strconv.Atoi(m[6])

	return net.JoinHostPort(strings.Join(m[1:5], "."), strconv.Itoa(hi*256+lo))
}

// foreignDialer dials from another loopback address than the control connection's.
func foreignDialer(t *testing.T) *net.Dialer {
	t.Helper()

	probe, err := net.Listen("tcp", "127.0.1.1:0")
	if err != nil {
		t.Skip("127.0.1.1 not available. Run 'sudo ifconfig lo0 alias 127.0.1.1 up' to enable this test.")
	}

	require.NoError(t, probe.Close())

	return &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.1.1")}}
}

// TestWharfPassiveRefusedConnectionForgotten (patch 1): a data connection from another
// address that reaches the passive port first is closed; the client's own connection is
// accepted next, and no later transfer without a new PASV goes to the refused one.
func TestWharfPassiveRefusedConnectionForgotten(t *testing.T) {
	driver := &TestServerDriver{Settings: &Settings{PasvConnectionsCheck: IPMatchRequired}}
	server := NewTestServerWithTestDriver(t, driver)
	payload := []byte("secret payload")
	require.NoError(t, os.WriteFile(filepath.Join(driver.serverDir, "secret.txt"), payload, 0o600))

	c := dialWharf(t, server)
	c.login()
	addr := c.pasv()

	foreign, err := foreignDialer(t).Dial("tcp", addr)
	require.NoError(t, err)

	defer func() { _ = foreign.Close() }()

	_, err = c.tp.Cmd("RETR secret.txt")
	require.NoError(t, err)

	own, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)

	defer func() { _ = own.Close() }()

	if code, msg := c.read(); code != StatusFileStatusOK {
		// Upstream: 425, and the refused connection stays the transfer connection.
		code2, msg2 := c.send("RETR secret.txt")
		require.NoError(t, foreign.SetReadDeadline(time.Now().Add(5*time.Second)))
		stolen, _ := io.ReadAll(foreign)
		t.Fatalf("RETR: %d %q; a retried RETR: %d %q; the foreign connection received %q", code, msg, code2, msg2, stolen)
	}

	require.NoError(t, own.SetReadDeadline(time.Now().Add(10*time.Second)))
	data, err := io.ReadAll(own)
	require.NoError(t, err)
	require.Equal(t, payload, data)
	c.expect(StatusClosingDataConn)

	require.NoError(t, foreign.SetReadDeadline(time.Now().Add(10*time.Second)))
	stolen, err := io.ReadAll(foreign)
	require.NoError(t, err, "the refused connection must be closed")
	require.Empty(t, stolen)

	code, msg := c.send("RETR secret.txt")
	require.GreaterOrEqual(t, code, 400, msg)
}

// TestWharfPassiveOnlyForeignConnection (patch 1): when only refused connections arrive
// before the deadline, the reply says why.
func TestWharfPassiveOnlyForeignConnection(t *testing.T) {
	driver := &TestServerDriver{Settings: &Settings{PasvConnectionsCheck: IPMatchRequired, ConnectionTimeout: 1}}
	server := NewTestServerWithTestDriver(t, driver)
	require.NoError(t, os.WriteFile(filepath.Join(driver.serverDir, "file.txt"), []byte("x"), 0o600))

	c := dialWharf(t, server)
	c.login()
	addr := c.pasv()

	foreign, err := foreignDialer(t).Dial("tcp", addr)
	require.NoError(t, err)

	defer func() { _ = foreign.Close() }()

	code, msg := c.send("RETR file.txt")
	require.Equal(t, StatusCannotOpenDataConnection, code, msg)
	require.Contains(t, msg, "data connection security requirements not met")
}

// TestWharfActivePrivilegedPort (patch 2): PORT and EPRT to a port below 1024 are refused.
func TestWharfActivePrivilegedPort(t *testing.T) {
	server := NewTestServerWithTestDriver(t, &TestServerDriver{Settings: &Settings{ActiveTransferPortNon20: true}})
	c := dialWharf(t, server)
	c.login()

	for _, cmd := range []string{
		"PORT 127,0,0,1,0,22", "PORT 127,0,0,1,3,255", "PORT 127,0,0,1,0,0",
		"EPRT |1|127.0.0.1|25|", "EPRT |1|127.0.0.1|1023|",
	} {
		code, msg := c.send("%s", cmd)
		require.Equal(t, StatusSyntaxErrorNotRecognised, code, cmd)
		require.Contains(t, msg, "Illegal", cmd)
	}

	c.cmd(StatusOK, "PORT 127,0,0,1,4,0")
	c.cmd(StatusOK, "EPRT |1|127.0.0.1|1024|")
	c.cmd(StatusOK, "EPRT |1|127.0.0.1|65535|")
}

func TestWharfEscapeReplyText(t *testing.T) {
	for in, want := range map[string]string{
		"plain":               "plain",
		"":                    "",
		"a\rb":                "a\r\x00b",
		"a\nb":                "a\x00b",
		"a\r\nb":              "a\r\x00\x00b",
		"end\r":               "end\r\x00",
		"already\r\x00done":   "already\r\x00done",
		"\r\r":                "\r\x00\r\x00",
		"x\r227 Entering (1)": "x\r\x00227 Entering (1)",
	} {
		got := escapeReplyText(in)
		require.Equal(t, want, got, "%q", in)
		require.Equal(t, got, escapeReplyText(got), "escaping %q twice", in)
	}
}

// writtenReplies runs fn on a client handler that writes to a buffer.
func writtenReplies(fn func(c *clientHandler)) string {
	var buf bytes.Buffer

	c := &clientHandler{
		writer: bufio.NewWriter(&buf),
		logger: slog.New(slog.NewTextHandler(io.Discard, nil)), //nolint:sloglint // as the upstream tests
	}
	fn(c)

	return buf.String()
}

// TestWharfWriteMessage (patch 3): one-line replies stay one line whatever they quote;
// the library's own multi-line replies still have several.
func TestWharfWriteMessage(t *testing.T) {
	forged := "227 Entering Passive Mode (6,6,6,6,1,1)"
	out := writtenReplies(func(c *clientHandler) {
		c.writeMessage(StatusActionNotTaken, "Couldn't access /x\r\n"+forged+": not found")
	})
	require.Equal(t, "550 Couldn't access /x\r\x00\x00"+forged+": not found\r\n", out)

	out = writtenReplies(func(c *clientHandler) {
		c.writeMessage(StatusActionNotTaken, "/y\n"+forged)
	})
	require.Equal(t, "550 /y\x00"+forged+"\r\n", out)

	out = writtenReplies(func(c *clientHandler) {
		c.writeMessageLines(StatusFileStatus, "Computing SHA-256 digest", "SHA-256 0-1 abc n\r\n"+forged)
	})
	require.Equal(t, "213-Computing SHA-256 digest\r\n213 SHA-256 0-1 abc n\r\x00\x00"+forged+"\r\n", out)

	out = writtenReplies(func(c *clientHandler) {
		c.writeMessageText(StatusServiceReady, "Welcome\nto the server\r\n")
	})
	require.Equal(t, "220-Welcome\r\n220 to the server\r\n", out)

	out = writtenReplies(func(c *clientHandler) {
		defer c.multilineAnswer(StatusFileStatus, "STAT a\rb")()
		c.writeLine(" line\nwith LF")
	})
	require.Equal(t, "213-STAT a\r\x00b\r\n line\x00with LF\r\n213 End\r\n", out)
}

// lfErrorDriver fails Stat with an error whose text holds an LF and a forged reply, like
// an error that quotes a name with an LF in it.
type lfErrorDriver struct {
	*TestClientDriver
}

func (d lfErrorDriver) Stat(name string) (os.FileInfo, error) {
	if strings.Contains(name, "lf-error") {
		return nil, errors.New("stat " + name + "\n227 Entering Passive Mode (6,6,6,6,1,1)\nsecond: not found")
	}

	return d.TestClientDriver.Stat(name) //nolint:wrapcheck // the test driver's error
}

// replyLines reads one reply byte-exactly and fails on a bare CR or LF, or on a line inside
// a multi-line reply that looks like the end of another reply.
func replyLines(t *testing.T, br *bufio.Reader) (int, []string) {
	t.Helper()

	var lines []string

	code := ""

	for {
		line, err := br.ReadString('\n')
		require.NoError(t, err)
		require.True(t, strings.HasSuffix(line, "\r\n"), "bare LF in %q", line)

		body := strings.TrimSuffix(line, "\r\n")
		for i := range len(body) {
			if body[i] == '\r' {
				require.True(t, i+1 < len(body) && body[i+1] == 0, "bare CR in %q", body)
			}
		}

		lines = append(lines, body)

		if code == "" {
			require.Regexp(t, `^\d{3}[ -]`, body)
			code = body[:3]

			if body[3] == ' ' {
				break
			}

			continue
		}

		if strings.HasPrefix(body, code+" ") {
			break
		}

		require.NotRegexp(t, `^\d{3} `, body, "a line inside the %s reply looks like another reply", code)
	}

	n, _ := strconv.Atoi(code)

	return n, lines
}

// TestWharfReplyInjection (patch 3): names holding CR or LF never split a reply; the reply
// after each command is the one to the NOOP that follows it.
func TestWharfReplyInjection(t *testing.T) {
	forged := "227 Entering Passive Mode (6,6,6,6,1,1)"
	driver := &TestServerDriver{Settings: &Settings{EnableHASH: true}}
	driver.AuthProvider = func(user, pass string) (ClientDriver, error) {
		if user != authUser || pass != authPass {
			return nil, errBadUserNameOrPassword
		}

		return lfErrorDriver{NewTestClientDriver(driver)}, nil
	}
	server := NewTestServerWithTestDriver(t, driver)
	crName := "x\r" + forged
	require.NoError(t, os.WriteFile(filepath.Join(driver.serverDir, crName), []byte("data"), 0o600))
	require.NoError(t, os.Mkdir(filepath.Join(driver.serverDir, "d\r"+forged), 0o750))

	conn, err := net.DialTimeout("tcp", server.Addr(), 5*time.Second)
	require.NoError(t, err)

	defer func() { _ = conn.Close() }()

	require.NoError(t, conn.SetDeadline(time.Now().Add(30*time.Second)))
	br := bufio.NewReader(conn)
	send := func(line string) (int, []string) {
		_, err := conn.Write([]byte(line + "\r\n"))
		require.NoError(t, err)

		return replyLines(t, br)
	}

	code, _ := replyLines(t, br)
	require.Equal(t, StatusServiceReady, code)
	send("USER " + authUser)
	code, _ = send("PASS " + authPass)
	require.Equal(t, StatusUserLoggedIn, code)
	send("TYPE I")

	for _, cmd := range []string{
		"SIZE lf-error", "MDTM lf-error", "MLST lf-error", "CWD lf-error", "RNFR lf-error",
		"STAT lf-error", "HASH lf-error", "AVBL lf-error",
		"CWD d\r" + forged, "PWD", "CDUP", "SIZE d\r" + forged, "MLST " + crName, "STAT " + crName,
		"XSHA256 " + crName, "MKD n\r" + forged, "RMD n\r" + forged, "DELE missing\r" + forged,
		"RNFR " + crName, "RNTO y\r" + forged, "RETR missing\r" + forged,
	} {
		code, lines := send(cmd)
		t.Logf("%q -> %d %q", cmd, code, lines)

		if strings.Contains(cmd, "lf-error") {
			require.Len(t, lines, 1, "the error's LF split the reply to %q", cmd)
		}

		code, lines = send("NOOP")
		require.Equal(t, StatusOK, code, "after %q: %q", cmd, lines)
	}

	// FEAT and the server STAT, multi-line replies of the library's own, are intact.
	code, lines := send("FEAT")
	require.Equal(t, StatusSystemStatus, code)
	require.Contains(t, lines, " UTF8")
	require.Greater(t, len(lines), 5)
	code, lines = send("STAT")
	require.Equal(t, StatusSystemStatus, code)
	require.Greater(t, len(lines), 3)
}

// hookDriver records the per-client hooks of patch 4.
type hookDriver struct {
	TestServerDriver
	wrapped, tlsConfigs atomic.Int32
	handshakes          atomic.Int32
	plainWrapperCalled  atomic.Bool
	mu                  sync.Mutex
	clients             []uint32
}

func (d *hookDriver) WrapClientPassiveListener(cc ClientContext, l net.Listener) (net.Listener, error) {
	d.wrapped.Add(1)
	d.mu.Lock()
	d.clients = append(d.clients, cc.ID())
	d.mu.Unlock()

	return l, nil
}

func (d *hookDriver) WrapPassiveListener(l net.Listener) (net.Listener, error) {
	d.plainWrapperCalled.Store(true)

	return l, nil
}

func (d *hookDriver) GetDataTLSConfig(cc ClientContext) (*tls.Config, error) {
	d.tlsConfigs.Add(1)
	d.mu.Lock()
	d.clients = append(d.clients, cc.ID())
	d.mu.Unlock()

	cfg, err := d.GetTLSConfig()
	if err != nil {
		return nil, err
	}

	base := cfg.Clone()
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		d.handshakes.Add(1)

		return base, nil
	}

	return cfg, nil
}

// TestWharfClientHooks (patch 4): the per-client passive wrapper replaces the plain one, and
// data connections get the per-client TLS configuration, in passive and active mode.
func TestWharfClientHooks(t *testing.T) {
	driver := &hookDriver{TestServerDriver: TestServerDriver{TLS: true, Settings: &Settings{ActiveTransferPortNon20: true}}}
	driver.Init()
	server := NewTestServerWithDriverAndLogger(t, driver, nil)
	require.NoError(t, afero.WriteFile(driver.fs, "/file.txt", []byte("payload"), 0o600))

	tlsc := &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the test certificate
	c := dialWharf(t, server)
	c.startTLS(tlsc)
	c.login()
	c.cmd(StatusOK, "PBSZ 0")
	c.cmd(StatusOK, "PROT P")

	// Passive.
	addr := c.pasv()
	raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	require.NoError(t, raw.SetDeadline(time.Now().Add(20*time.Second)))
	c.cmd(StatusFileStatusOK, "RETR file.txt")
	data, err := io.ReadAll(tls.Client(raw, tlsc))
	require.NoError(t, err)
	require.Equal(t, "payload", string(data))
	c.expect(StatusClosingDataConn)
	require.Equal(t, int32(1), driver.wrapped.Load())
	require.False(t, driver.plainWrapperCalled.Load())

	// Active.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)

	defer func() { _ = l.Close() }()

	port := l.Addr().(*net.TCPAddr).Port //nolint:forcetypeassert // a TCP listener
	c.cmd(StatusOK, "PORT 127,0,0,1,%d,%d", port/256, port%256)

	got := make(chan []byte, 1)

	go func() {
		conn, errAccept := l.Accept()
		if errAccept != nil {
			got <- nil

			return
		}

		_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
		b, _ := io.ReadAll(tls.Client(conn, tlsc))
		got <- b
	}()

	c.cmd(StatusFileStatusOK, "RETR file.txt")
	require.Equal(t, "payload", string(<-got))
	c.expect(StatusClosingDataConn)

	require.Equal(t, int32(2), driver.tlsConfigs.Load())
	require.Equal(t, int32(2), driver.handshakes.Load())
	driver.mu.Lock()
	defer driver.mu.Unlock()

	for _, id := range driver.clients {
		require.Equal(t, driver.Clients[0].ID(), id)
	}
}

// keepAliveDriver records whether the data connections its passive listeners accept have
// SO_KEEPALIVE set.
type keepAliveDriver struct {
	TestServerDriver
	keepAlive chan int
}

func (d *keepAliveDriver) WrapPassiveListener(l net.Listener) (net.Listener, error) {
	return &keepAliveListener{Listener: l, d: d}, nil
}

type keepAliveListener struct {
	net.Listener
	d *keepAliveDriver
}

func (l *keepAliveListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}

	v := -1

	if tc, ok := conn.(*net.TCPConn); ok {
		if rc, errRaw := tc.SyscallConn(); errRaw == nil {
			_ = rc.Control(func(fd uintptr) { v, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE) })
		}
	}
	l.d.keepAlive <- v

	return conn, nil
}

// TestWharfPassiveKeepAlive (patch 7): Settings.PassiveKeepAlive < 0 accepts data connections
// without TCP keep-alives; the default keeps Go's.
func TestWharfPassiveKeepAlive(t *testing.T) {
	for _, tc := range []struct {
		name    string
		setting time.Duration
		ports   PasvPortGetter
		want    int
	}{
		{"default", 0, nil, 1},
		{"off", -1, nil, 0},
		{"off, port range", -1, PortRange{Start: 30000, End: 59999}, 0},
		{"30s", 30 * time.Second, nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			driver := &keepAliveDriver{
				TestServerDriver: TestServerDriver{Settings: &Settings{
					PassiveKeepAlive: tc.setting, PassiveTransferPortRange: tc.ports,
				}},
				keepAlive: make(chan int, 1),
			}
			driver.Init()
			server := NewTestServerWithDriverAndLogger(t, driver, nil)
			require.NoError(t, afero.WriteFile(driver.fs, "/file.txt", []byte("payload"), 0o600))

			c := dialWharf(t, server)
			c.login()
			raw, err := net.DialTimeout("tcp", c.pasv(), 5*time.Second)
			require.NoError(t, err)

			defer func() { _ = raw.Close() }()

			require.NoError(t, raw.SetDeadline(time.Now().Add(20*time.Second)))
			c.cmd(StatusFileStatusOK, "RETR file.txt")
			data, err := io.ReadAll(raw)
			require.NoError(t, err)
			require.Equal(t, "payload", string(data))
			c.expect(StatusClosingDataConn)
			require.Equal(t, tc.want, <-driver.keepAlive)
		})
	}
}

// The RFC 959 commands every server must take (STRU F) or that clients send (HELP, XCUP),
// and transfer commands without a name (7).
func TestWharfMinimumCommands(t *testing.T) {
	server := NewTestServerWithTestDriver(t, &TestServerDriver{})
	c := dialWharf(t, server)

	// HELP before login, as FEAT: the implemented commands, not the refused ones.
	help := c.cmd(StatusHelpMessage, "HELP")
	for _, want := range []string{"RETR", "STOR", "STRU", "XCUP", "HELP", "FEAT"} {
		require.Contains(t, strings.Fields(help), want)
	}
	for _, not := range []string{"REIN", "SMNT", "STOU"} {
		require.NotContains(t, strings.Fields(help), not)
	}

	// HELP <command>: what it takes, or that it is unknown (the name is case-insensitive).
	require.Equal(t, "Syntax: STOR <file name>", c.cmd(StatusHelpMessage, "HELP stor"))
	require.Equal(t, "NOOP is implemented", c.cmd(StatusHelpMessage, "HELP NOOP"))
	require.Equal(t, "Unknown command SMNT", c.cmd(StatusCommandNotImplemented, "HELP SMNT"))
	require.Equal(t, "Unknown command FOO", c.cmd(StatusCommandNotImplemented, "HELP foo"))

	c.login()
	require.Contains(t, c.cmd(StatusSystemStatus, "STAT"), "Connected to "+server.Addr()+" from ")
	c.cmd(StatusOK, "STRU F")
	c.cmd(StatusOK, "stru f")
	c.cmd(StatusNotImplementedParam, "STRU R")
	c.cmd(StatusNotImplementedParam, "STRU P")
	c.cmd(StatusSyntaxErrorParameters, "STRU X")

	c.cmd(StatusPathCreated, "MKD sub")
	c.cmd(StatusFileOK, "CWD sub")
	require.Contains(t, c.cmd(StatusFileOK, "XCUP"), "/")
	require.Contains(t, c.cmd(StatusPathCreated, "PWD"), `"/"`)

	for _, cmd := range []string{"STOR", "RETR", "APPE"} {
		require.Contains(t, c.cmd(StatusSyntaxErrorParameters, "%s", cmd), "file name")
	}
	for _, cmd := range []string{"MKD", "XMKD ", "RMD", "DELE", "RNFR", "RNTO", "SIZE", "MDTM", "XCRC", "XSHA256"} {
		require.Contains(t, c.cmd(StatusSyntaxErrorParameters, "%s", cmd), "needs an argument", cmd)
	}
	c.cmd(StatusPathCreated, "PWD") // the session goes on
}

// OPTS MLST chooses the facts of MLST and MLSD lines, FEAT shows the choice (RFC 3659, 7.9)
// (10).
func TestWharfOptsMLST(t *testing.T) {
	server := NewTestServerWithTestDriver(t, &TestServerDriver{})
	c := dialWharf(t, server)
	c.login()
	require.Contains(t, c.cmd(StatusSystemStatus, "FEAT"), "MLST type*;size*;modify*;")
	c.cmd(StatusPathCreated, "MKD d")
	require.Regexp(t, `(?m)^ Type=dir;Size=\d+;Modify=\d{14}; d$`, c.cmd(StatusFileOK, "MLST d"))

	require.Equal(t, "MLST OPTS type;", c.cmd(StatusOK, "OPTS MLST type;"))
	require.Regexp(t, `(?m)^ Type=dir; d$`, c.cmd(StatusFileOK, "MLST d"))
	require.Contains(t, c.cmd(StatusSystemStatus, "FEAT"), "MLST type*;size;modify;")

	// Unknown facts are left out, names are case-insensitive, the order is the server's.
	require.Equal(t, "MLST OPTS size;modify;", c.cmd(StatusOK, "OPTS MLST MODIFY;unix.mode;Size;"))
	require.Regexp(t, `(?m)^ Size=\d+;Modify=\d{14}; d$`, c.cmd(StatusFileOK, "MLST d"))

	// No facts at all: the name alone.
	require.Equal(t, "MLST OPTS", c.cmd(StatusOK, "OPTS MLST"))
	require.Regexp(t, `(?m)^  d$`, c.cmd(StatusFileOK, "MLST d"))
}

// REST refuses a negative offset (it used to be kept and reach the driver's open or seek),
// and a reply to an offset it cannot parse says what REST takes, not what Go's parser said
// (12).
func TestWharfRESTOffset(t *testing.T) {
	server := NewTestServerWithTestDriver(t, &TestServerDriver{})
	c := dialWharf(t, server)
	c.login()
	c.cmd(StatusOK, "TYPE I")
	require.Contains(t, c.cmd(StatusSyntaxErrorParameters, "REST -5"), "0 or more")
	reply := c.cmd(StatusActionNotTaken, "REST 99999999999999999999999")
	require.True(t, strings.HasPrefix(reply, "Couldn't parse size"), reply)
	require.NotContains(t, reply, "strconv")
	c.cmd(StatusFileActionPending, "REST 0")
	c.cmd(StatusFileActionPending, "REST 10")
}

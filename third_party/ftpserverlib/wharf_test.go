package ftpserver

// Tests of wharf's patches (see WHARF.md).

import (
	"io"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

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

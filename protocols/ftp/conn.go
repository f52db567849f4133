package ftp

import (
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"

	"github.com/wharf-project/wharf/core"
)

// ticketToken identifies one control connection inside the TLS session tickets issued on it.
type ticketToken [16]byte

// ctrlListener hands the library control connections it can recognise later: ClientContext
// does not expose its socket, and the TLS layer needs to know which handshake is a control
// connection.
type ctrlListener struct {
	net.Listener
	srv       *Server
	tlsConfig *tls.Config // implicit TLS; nil for plain FTP
}

func (l *ctrlListener) Accept() (net.Conn, error) {
	raw, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	c := &ctrlConn{Conn: raw, srv: l.srv, remote: raw.RemoteAddr().String(), local: raw.LocalAddr().String(),
		settled: make(chan struct{})}
	if _, err := rand.Read(c.token[:]); err != nil {
		_ = raw.Close()
		return nil, err
	}
	c.front = c
	if l.tlsConfig != nil {
		c.front = tls.Server(c, l.tlsConfig)
	}
	l.srv.register(c)
	return c.front, nil
}

// ctrlConn is a control connection's socket (below TLS).
type ctrlConn struct {
	net.Conn
	srv           *Server
	token         ticketToken
	remote, local string
	front         net.Conn // what the library reads and writes (the TLS conn for implicit FTPS)
	sess          atomic.Pointer[core.Session]
	bytesRead     atomic.Int64
	expired       atomic.Bool   // the login timeout passed: every read deadline is in the past
	settled       chan struct{} // closed by settle: the connection logged in or ended
	settleOnce    sync.Once
}

// Read counts client traffic as session activity (NOOP and friends never reach the core).
func (c *ctrlConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.bytesRead.Add(int64(n))
		if s := c.sess.Load(); s != nil {
			s.Touch()
		}
	}
	return n, err
}

// expire makes the library's next (or current) read time out, so that it sends its own
// "421 timeout" reply through whatever TLS layer it has put on top.
func (c *ctrlConn) expire() {
	c.expired.Store(true)
	_ = c.Conn.SetReadDeadline(time.Unix(1, 0))
}

// SetDeadline and SetReadDeadline keep an expired connection's reads expired: the library
// sets its idle deadline before each read.
func (c *ctrlConn) SetDeadline(t time.Time) error {
	if c.expired.Load() {
		_ = c.Conn.SetWriteDeadline(t)
		return c.Conn.SetReadDeadline(time.Unix(1, 0))
	}
	return c.Conn.SetDeadline(t)
}

func (c *ctrlConn) SetReadDeadline(t time.Time) error {
	if c.expired.Load() {
		return c.Conn.SetReadDeadline(time.Unix(1, 0))
	}
	return c.Conn.SetReadDeadline(t)
}

// refuse sends a final reply before the library has written anything, and closes.
func (c *ctrlConn) refuse(line string) {
	_ = c.front.SetDeadline(time.Now().Add(5 * time.Second)) // an implicit-TLS handshake reads too
	_, _ = c.front.Write([]byte(line + "\r\n"))
	_ = c.front.Close()
}

// user returns the id of the user logged in on the connection, "" before login and after
// the session closed.
func (c *ctrlConn) user() string {
	s := c.sess.Load()
	if s == nil || s.Closed() {
		return ""
	}
	return s.UserID()
}

// settle marks that the connection has logged in or ended: awaitUser stops waiting.
func (c *ctrlConn) settle() {
	c.settleOnce.Do(func() { close(c.settled) })
}

// awaitUser returns the id of the user logged in on the connection. A connection still
// logging in is waited for, at most for wait: clients that share one TLS session cache
// across their connections (rclone) resume the session of a sibling that has just done AUTH
// TLS while its USER and PASS are still on their way.
func (c *ctrlConn) awaitUser(wait time.Duration) string {
	if u := c.user(); u != "" || c.settled == nil {
		return u
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-c.settled:
	case <-t.C:
	}
	return c.user()
}

// terminate ends the connection at shutdown: through the core when a session exists (its
// closer closes the socket), else by closing the socket.
func (c *ctrlConn) terminate() {
	if s := c.sess.Load(); s != nil {
		s.Terminate(false)
		return
	}
	_ = c.Conn.Close()
}

// dataListener wraps a passive listener so data connections get a stall deadline and are
// known to Shutdown.
type dataListener struct {
	net.Listener
	srv  *Server
	idle time.Duration
}

func (l *dataListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	d := &dataConn{Conn: c, srv: l.srv, idle: l.idle}
	l.srv.addData(d)
	return d, nil
}

var _ ftpserver.MainDriverExtensionClientPassiveWrapper = (*mainDriver)(nil)

// WrapClientPassiveListener binds a client's passive listener to its control connection
// (the library calls it instead of WrapPassiveListener): the listener only hands on
// connections from the control connection's address, and the TLS layer (GetDataTLSConfig)
// checks each data connection's session against that control connection.
func (d *mainDriver) WrapClientPassiveListener(cc ftpserver.ClientContext, l net.Listener) (net.Listener, error) {
	st := stateOf(cc)
	if st == nil || st.ctrl == nil {
		return nil, errors.New("no control connection for this client")
	}
	wl, err := d.WrapPassiveListener(l)
	if err != nil {
		return nil, err
	}
	return &boundListener{Listener: wl, srv: d.srv, ctrl: st.ctrl}, nil
}

// boundListener is a passive listener that belongs to one control connection.
type boundListener struct {
	net.Listener
	srv  *Server
	ctrl *ctrlConn
}

// errForeignAddress is added to the accept error when connections from another address
// were refused before the deadline, so the client's reply says why no data connection came.
var errForeignAddress = errors.New("refused a data connection from another address than the control connection")

// Accept returns the next connection from the control connection's address. Another host
// racing to the port (it is announced in clear on plain FTP) gets its connection closed, and
// the wait goes on until the library's accept deadline: the client's own connection, queued
// behind it, is still accepted.
func (l *boundListener) Accept() (net.Conn, error) {
	refused := false
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if refused {
				return nil, fmt.Errorf("%w (%w)", err, errForeignAddress)
			}
			return nil, err
		}
		if sameHost(c.RemoteAddr().String(), l.ctrl.remote) {
			return c, nil
		}
		refused = true
		l.srv.log.Warn("data connection refused: not from the control connection's address",
			"remote", c.RemoteAddr().String(), "control", l.ctrl.remote)
		_ = c.Close()
	}
}

// dataConn is a passive data connection whose every read and write must make progress within
// the stall deadline (the TLS handshake included).
type dataConn struct {
	net.Conn
	srv  *Server
	idle time.Duration
	once sync.Once
}

func (c *dataConn) Close() error {
	c.once.Do(func() { c.srv.dropData(c) })
	return c.Conn.Close()
}

func (c *dataConn) Read(p []byte) (int, error) {
	if c.idle > 0 {
		_ = c.Conn.SetReadDeadline(time.Now().Add(c.idle))
	}
	return c.Conn.Read(p)
}

func (c *dataConn) Write(p []byte) (int, error) {
	if c.idle > 0 {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(c.idle))
	}
	return c.Conn.Write(p)
}

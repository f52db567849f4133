package ftp

import (
	"crypto/rand"
	"crypto/tls"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

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
	c := &ctrlConn{Conn: raw, srv: l.srv, remote: raw.RemoteAddr().String(), local: raw.LocalAddr().String()}
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
	expired       atomic.Bool // the login timeout passed: every read deadline is in the past
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

// ReadFrom sends r with one stall deadline, like one Write: given a file (core's SendTo hands
// it one chunk at a time), a TCP socket sends it with sendfile(2).
func (c *dataConn) ReadFrom(r io.Reader) (int64, error) {
	if c.idle > 0 {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(c.idle))
	}
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

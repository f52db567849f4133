package sftp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wharf-project/wharf/third_party/ssh"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/internal/accept"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("sftp: server closed")

// Defaults for limits a site leaves at zero.
const (
	defaultLoginTimeout = 30 * time.Second
	defaultIdleTimeout  = 15 * time.Minute
	defaultSoftwareID   = "wharf"
	defaultMaxSessions  = 10 // ssh.max_sessions, as OpenSSH's MaxSessions
	maxAuthTries        = 6
)

// Options configure a Server. The zero value works when the site names its host keys.
type Options struct {
	// StateDir holds the host keys generated on first start when the site configures none
	// (ssh_host_ed25519_key, ssh_host_rsa_key).
	StateDir string
	// Logger receives server-level messages; sessions log through the site's logger.
	// Default: the site's logger.
	Logger *slog.Logger
}

// Server serves SFTP and SCP over SSH for one site.
type Server struct {
	site      *core.Site
	log       *slog.Logger
	hostKeys  []ssh.Signer
	acceptLog *accept.Reporter // failed accepts, rate-limited

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	wg        sync.WaitGroup // one per connection goroutine
}

// New prepares a server for site: it loads or generates the host keys.
func New(site *core.Site, opts Options) (*Server, error) {
	if site == nil {
		return nil, errors.New("sftp: nil site")
	}
	log := opts.Logger
	if log == nil {
		log = site.Logger()
	}
	log = log.With("component", "sftp")
	sshCfg := site.Config().SSH
	keys, err := loadHostKeys(sshCfg.HostKeys, opts.StateDir, log)
	if err != nil {
		return nil, fmt.Errorf("sftp: %w", err)
	}
	keys, skipped, err := hostKeySigners(keys, sshCfg.HostKeyAlgorithms)
	if err != nil {
		return nil, fmt.Errorf("sftp: %w", err)
	}
	for _, k := range skipped {
		log.Warn("host key not offered: none of ssh.host_key_algorithms fits it", "key", k)
	}
	return &Server{
		site: site, log: log, hostKeys: keys, acceptLog: accept.NewReporter(log, 0),
		listeners: map[net.Listener]struct{}{}, conns: map[*conn]struct{}{},
	}, nil
}

// HostKeys returns the public host keys the server presents (for known_hosts and tests).
func (s *Server) HostKeys() []ssh.PublicKey {
	out := make([]ssh.PublicKey, 0, len(s.hostKeys))
	for _, k := range s.hostKeys {
		out = append(out, k.PublicKey())
	}
	return out
}

// Serve accepts connections on l until Shutdown (then it returns ErrServerClosed) or until
// l is closed. A failed accept (out of file descriptors, a client that gave up) is retried
// after a wait, never the end of the listener. Serve closes l when it returns.
func (s *Server) Serve(l net.Listener) error {
	l = accept.Wrap(l, s.acceptLog)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = l.Close()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
		_ = l.Close()
	}()

	for {
		nc, err := l.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			return fmt.Errorf("sftp: accept: %w", err)
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = nc.Close()
			return ErrServerClosed
		}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(nc)
	}
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Shutdown stops accepting, ends every session of this server (each fires OnConnectionClose)
// and waits until their connections are gone or ctx ends. SSH sessions are long-lived, so
// unlike net/http it does not wait for them to become idle: transfers in progress are cut
// and reported as transfer errors.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	for l := range s.listeners {
		_ = l.Close()
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.sess.Terminate(false)
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("sftp: shutdown: %w", ctx.Err())
	}
}

// conn is one accepted TCP connection and its session.
type conn struct {
	srv  *Server
	nc   net.Conn
	sess *core.Session
	log  *slog.Logger
}

// serveConn admits a connection and runs its SSH handshake and login. The logged-in
// connection is then served on a new goroutine and this one ends: the login can run deep
// (key exchange, password hashing, event scripts), and the stack it grew would otherwise
// stay with the connection for its whole life, which for an idle session is most of its
// memory.
func (s *Server) serveConn(nc net.Conn) {
	// What ends with the connection, undone in reverse order by whichever goroutine is
	// serving it when it ends.
	var undo cleanup
	undo.add(s.wg.Done)
	undo.add(func() { _ = nc.Close() })
	handedOff := false
	defer func() {
		if !handedOff {
			undo.run()
		}
	}()
	defer s.recoverConn(nc)

	// The site admits the connection before any byte is sent: a refused client gets no banner.
	sess, err := s.site.Connect(context.Background(), core.ConnInfo{
		Remote: nc.RemoteAddr(), Local: nc.LocalAddr(), Protocol: core.ProtoSFTP,
	})
	if err != nil {
		s.log.Debug("connection refused", "remote", nc.RemoteAddr().String(), "err", err)
		if errors.Is(err, core.ErrLimit) {
			// RFC 4253 4.2 lets a server send text lines before its identification, and
			// clients show them (OpenSSH with -v): say why instead of closing silently.
			// Banned and blocked addresses get no byte at all.
			_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = io.WriteString(nc, limitLine(err))
		}
		return
	}
	undo.add(sess.Close)
	sess.SetCloser(func() { _ = nc.Close() })

	c := &conn{srv: s, nc: newBatchConn(nc), sess: sess, log: sess.Logger()}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	undo.add(func() { s.forget(c) })
	serve := c.login()
	if serve == nil {
		return
	}
	handedOff = true
	go func() {
		defer undo.run()
		defer s.recoverConn(nc)
		serve()
	}()
}

// recoverConn logs a panic that would otherwise end the process; deferred, it lets the
// connection's cleanup run.
func (s *Server) recoverConn(nc net.Conn) {
	if r := recover(); r != nil {
		s.log.Error("panic in ssh connection", "remote", nc.RemoteAddr().String(), "panic", r, "stack", string(debug.Stack()))
	}
}

// cleanup is a list of steps run in reverse order of adding.
type cleanup []func()

func (u *cleanup) add(f func()) { *u = append(*u, f) }

func (u cleanup) run() {
	for i := len(u) - 1; i >= 0; i-- {
		u[i]()
	}
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// login runs the SSH handshake and authentication. It returns the function that serves the
// logged-in connection until it ends, or nil if the connection ended before.
func (c *conn) login() (serve func()) {
	ctx := c.sess.Context()
	siteCfg := c.srv.site.Config()
	limits := siteCfg.Limits
	login := limits.LoginTimeout.Duration
	if login <= 0 {
		login = defaultLoginTimeout
	}
	idle := limits.IdleTimeout.Duration
	if idle <= 0 {
		idle = defaultIdleTimeout
	}

	cfg := c.serverConfig(ctx)
	id := siteCfg.SSH.SoftwareID
	if id == "" {
		id = defaultSoftwareID
	}
	cfg.ServerVersion = sanitizeVersion(c.srv.site.SoftwareID(ctx, c.sess, "SSH-2.0-"+id))

	// One deadline covers the key exchange and every authentication round trip.
	_ = c.nc.SetDeadline(time.Now().Add(login))
	start := time.Now()
	sconn, chans, reqs, err := ssh.NewServerConn(c.nc, cfg)
	if err != nil {
		c.handshakeFailed(err, time.Since(start) >= login)
		return nil
	}
	_ = c.nc.SetDeadline(time.Time{})
	c.sess.SetClientVersion(string(sconn.ClientVersion()))
	c.log = c.sess.Logger() // now with the user
	return func() {
		defer sconn.Close()
		defer c.watchIdle(idle)()
		c.serveChannels(ctx, chans, reqs)
	}
}

// serveChannels answers global requests, accepts session channels and answers their
// requests until the connection ends, then waits for the channels' subsystems and commands.
// It answers the requests of one channel itself; a channel opened while that one is open (an
// OpenSSH master multiplexing sessions) gets a goroutine for its requests. At most
// ssh.max_sessions channels are open at once; each lets the client send only
// channelStartWindow bytes until it asks for SFTP or SCP.
func (c *conn) serveChannels(ctx context.Context, chans <-chan ssh.NewChannel, reqs <-chan *ssh.Request) {
	maxSessions := c.srv.site.Config().SSH.MaxSessions
	if maxSessions <= 0 {
		maxSessions = defaultMaxSessions
	}
	var wg sync.WaitGroup
	var first *channel // the channel whose requests this loop answers
	var open []*channel
	refused := 0 // channels refused for the limit
	for chans != nil || reqs != nil {
		var nch ssh.NewChannel
		var ok bool
		var firstReqs <-chan *ssh.Request
		if first != nil {
			firstReqs = first.reqs
		}
		select {
		case req, more := <-reqs:
			// Global requests: keepalives get "false", forwarding is refused.
			if !more {
				reqs = nil
			} else if req.WantReply {
				_ = req.Reply(false, nil)
			}
			continue
		case req, more := <-firstReqs:
			if !more {
				first.done.Store(true)
				first = nil
			} else {
				c.channelRequest(ctx, first, req, &wg)
			}
			continue
		case nch, ok = <-chans:
			if !ok {
				chans = nil
				continue
			}
		}
		if nch.ChannelType() != "session" {
			_ = nch.Reject(ssh.Prohibited, "only session channels are allowed")
			continue
		}
		open = slices.DeleteFunc(open, (*channel).closed)
		if len(open) >= maxSessions {
			refused++
			if refused == 1 { // once per connection: a flood of opens must not flood the log
				c.log.Info("session channel refused: too many on this connection", "limit", maxSessions)
			}
			_ = nch.Reject(ssh.ResourceShortage, fmt.Sprintf("too many sessions on this connection (limit %d)", maxSessions))
			continue
		}
		ch, creqs, err := acceptWithWindow(nch, channelStartWindow)
		if err != nil {
			c.log.Debug("accept channel", "err", err)
			continue
		}
		sc := &channel{ch: ch, reqs: creqs}
		open = append(open, sc)
		if first == nil {
			first = sc
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer sc.done.Store(true)
			for req := range sc.reqs {
				c.channelRequest(ctx, sc, req, &wg)
			}
		}()
	}
	if refused > 1 {
		c.log.Info("session channels refused on this connection", "refused", refused, "limit", maxSessions)
	}
	// The connection is gone; let open handles close (firing their events) before the
	// session ends.
	wg.Wait()
}

// handshakeFailed logs why a connection ended before it was logged in, and strikes a client
// that did not speak SSH or ran out the login timeout. Failed logins were struck by the core
// already; a client that tried no login at all is struck once when its session closes.
func (c *conn) handshakeFailed(err error, timedOut bool) {
	var ne net.Error
	switch {
	case c.sess.Accounted():
		c.log.Info("ssh authentication failed", "err", err)
	case timedOut || errors.As(err, &ne) && ne.Timeout():
		c.log.Info("login timeout: closing connection", "err", err)
		c.sess.Strike("login timeout")
	case isProtocolGarbage(err):
		c.log.Info("ssh handshake failed: not an SSH client", "err", err)
		c.sess.Strike("ssh handshake failed: " + err.Error())
	default:
		c.log.Info("ssh handshake failed", "err", err)
	}
}

// isProtocolGarbage reports whether a handshake error means the peer sent something that is
// not SSH (an HTTP request, random bytes), as opposed to a client that hung up.
func isProtocolGarbage(err error) bool {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return false // resets and timeouts are the network's, not the peer's words
	}
	msg := err.Error()
	return strings.Contains(msg, "version") || strings.Contains(msg, "overflow") ||
		strings.Contains(msg, "packet") || strings.Contains(msg, "padding") || strings.Contains(msg, "unexpected message")
}

// limitLine is the text line sent before closing a connection a limit refused.
func limitLine(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "+core.ErrLimit.Error()); i > 0 {
		msg = msg[:i] // "too many connections from your address: too many connections"
	}
	return "Connection refused: " + msg + " (" + core.ErrLimit.Error() + ")\r\n"
}

// serverConfig builds the connection's SSH configuration: its callbacks authenticate
// through this connection's session.
func (c *conn) serverConfig(ctx context.Context) *ssh.ServerConfig {
	a := &authenticator{sess: c.sess, ctx: ctx}
	sshCfg := c.srv.site.Config().SSH
	cfg := &ssh.ServerConfig{
		Config:                      sshAlgorithms(sshCfg),
		PublicKeyAuthAlgorithms:     publicKeyAlgorithms(sshCfg),
		MaxAuthTries:                maxAuthTries,
		PasswordCallback:            a.password,
		PublicKeyCallback:           a.publicKeyQuery,
		VerifiedPublicKeyCallback:   a.verifiedPublicKey,
		KeyboardInteractiveCallback: a.interactive,
	}
	for _, k := range c.srv.hostKeys {
		cfg.AddHostKey(k)
	}
	return cfg
}

// The core updates LastActivity on every operation and every ReadAt/WriteAt, so a slow
// transfer keeps the session alive while SSH keepalives alone do not.
//
// watchIdle closes the connection once it has been idle for idle: a timer checks the
// session's last activity when it fires and re-arms for the rest. It runs no goroutine
// between checks (there can be many idle sessions). The returned stop ends the watch.
func (c *conn) watchIdle(idle time.Duration) (stop func()) {
	var mu sync.Mutex
	stopped := false
	var t *time.Timer
	t = time.AfterFunc(idle, func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		if left := idle - time.Since(c.sess.LastActivity()); left > 0 {
			t.Reset(left)
			return
		}
		c.log.Info("idle timeout", "idle", idle.String())
		_ = c.nc.Close()
	})
	return func() {
		mu.Lock()
		stopped = true
		mu.Unlock()
		t.Stop()
	}
}

// sanitizeVersion keeps a script-chosen identification a valid SSH version line.
func sanitizeVersion(v string) string {
	v = strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return -1
		}
		return r
	}, v)
	if !strings.HasPrefix(v, "SSH-2.0-") {
		v = "SSH-2.0-" + v
	}
	if v == "SSH-2.0-" {
		v += defaultSoftwareID
	}
	if len(v) > 253 { // 255 including CR LF (RFC 4253 4.2)
		v = v[:253]
	}
	return v
}

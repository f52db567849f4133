// Package smtptest runs a real SMTP server (github.com/emersion/go-smtp) on loopback for
// tests: STARTTLS, implicit TLS or none, AUTH PLAIN, and the messages it received.
package smtptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Options configure a Server.
type Options struct {
	TLS      string // starttls (default), implicit or none
	Username string // "" = no AUTH offered or required
	Password string
	// Mail and Rcpt, when set, decide each sender and recipient: an *smtp.SMTPError refuses
	// it with its code.
	Mail func(from string) error
	Rcpt func(to string) error
	// Addr is where to listen; default 127.0.0.1:0. A test restarting a server on the same
	// address passes the first one's.
	Addr string
	// CertDir, when set, reuses (or writes) the certificate and key there, so that a server
	// restarted on the same address presents the same certificate.
	CertDir string
}

// Message is a message the server received.
type Message struct {
	From string
	To   []string
	Data []byte
	TLS  bool   // the transaction ran over TLS
	User string // the authenticated user, "" without AUTH
}

// Server is a running SMTP server.
type Server struct {
	Host   string
	Port   int
	CAFile string // the server's certificate (self-signed), PEM, for smtp.ca_file

	opts Options
	srv  *smtp.Server
	ln   net.Listener

	mu    sync.Mutex
	msgs  []Message
	conns map[string]bool // client addresses: sessions restart after STARTTLS, connections do not
	added chan struct{}
}

// Start starts a server; it is stopped when the test ends.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	if opts.TLS == "" {
		opts.TLS = "starttls"
	}
	dir := opts.CertDir
	if dir == "" {
		dir = tb.TempDir()
	}
	cert, caFile, err := certificate(dir)
	if err != nil {
		tb.Fatal(err)
	}
	s := &Server{opts: opts, CAFile: caFile, added: make(chan struct{}, 1), conns: map[string]bool{}}
	srv := smtp.NewServer(backend{s})
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.MaxMessageBytes = 32 << 20
	tlsConf := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	for i := 0; ; i++ { // a restart may find the address still in TIME_WAIT for a moment
		ln, err = net.Listen("tcp", addr)
		if err == nil || i == 50 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		tb.Fatal(err)
	}
	switch opts.TLS {
	case "starttls":
		srv.TLSConfig = tlsConf
	case "implicit":
		ln = tls.NewListener(ln, tlsConf)
	}
	s.srv, s.ln = srv, ln
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	s.Host = host
	s.Port, _ = strconv.Atoi(port)
	go func() { _ = srv.Serve(ln) }()
	tb.Cleanup(s.Close)
	return s
}

// Addr is host:port.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Close stops the server.
func (s *Server) Close() {
	_ = s.ln.Close() // Serve may not have taken the listener yet
	_ = s.srv.Close()
}

// Messages returns the messages received so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Connections returns how many connections clients opened.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Wait waits until n messages arrived or the timeout passed, and returns those received.
func (s *Server) Wait(n int, timeout time.Duration) []Message {
	s.WaitCount(n, timeout)
	return s.Messages()
}

// Count returns how many messages arrived so far.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs)
}

// WaitCount waits until n messages arrived or the timeout passed, and returns how many did
// (a count, not a copy of thousands of messages at every arrival).
func (s *Server) WaitCount(n int, timeout time.Duration) int {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		if got := s.Count(); got >= n {
			return got
		}
		select {
		case <-s.added:
		case <-deadline.C:
			return s.Count()
		}
	}
}

type backend struct{ s *Server }

func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	b.s.mu.Lock()
	b.s.conns[c.Conn().RemoteAddr().String()] = true
	b.s.mu.Unlock()
	_, isTLS := c.TLSConnectionState()
	return &session{s: b.s, c: c, tls: isTLS}, nil
}

type session struct {
	s    *Server
	c    *smtp.Conn
	tls  bool
	user string
	from string
	to   []string
}

func (x *session) AuthMechanisms() []string {
	if x.s.opts.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (x *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, username, password string) error {
		if username != x.s.opts.Username || password != x.s.opts.Password {
			return smtp.ErrAuthFailed
		}
		x.user = username
		return nil
	}), nil
}

func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	if x.s.opts.Username != "" && x.user == "" {
		return smtp.ErrAuthRequired
	}
	if f := x.s.opts.Mail; f != nil {
		if err := f(from); err != nil {
			return err
		}
	}
	x.from, x.to = from, nil
	return nil
}

func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if f := x.s.opts.Rcpt; f != nil {
		if err := f(to); err != nil {
			return err
		}
	}
	x.to = append(x.to, to)
	return nil
}

func (x *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := x.c.TLSConnectionState()
	x.s.mu.Lock()
	x.s.msgs = append(x.s.msgs, Message{From: x.from, To: x.to, Data: b, TLS: isTLS || x.tls, User: x.user})
	x.s.mu.Unlock()
	select {
	case x.s.added <- struct{}{}:
	default:
	}
	return nil
}

func (x *session) Reset()        { x.from, x.to = "", nil }
func (x *session) Logout() error { return nil }

// certificate loads or makes a self-signed certificate for 127.0.0.1 and localhost in dir,
// and returns it with the path of its PEM.
func certificate(dir string) (tls.Certificate, string, error) {
	certFile, keyFile := filepath.Join(dir, "smtp-cert.pem"), filepath.Join(dir, "smtp-key.pem")
	if c, err := tls.LoadX509KeyPair(certFile, keyFile); err == nil {
		return c, certFile, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "smtptest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	if err := errors.Join(os.WriteFile(certFile, certPEM, 0o600), os.WriteFile(keyFile, keyPEM, 0o600)); err != nil {
		return tls.Certificate{}, "", err
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	return c, certFile, err
}

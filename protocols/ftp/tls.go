package ftp

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
)

// Generated certificate files in the state directory.
const (
	certFile = "ftps_cert.pem"
	keyFile  = "ftps_key.pem"
)

// SelfSignedCertFile is the file in the state directory that holds the generated
// certificate: clients can trust it (lftp's ssl:ca-file, curl's --cacert).
const SelfSignedCertFile = certFile

// tokenTag marks the entry of SessionState.Extra that carries a ticketToken.
var tokenTag = []byte("wharf-ftp-ctrl:")

// Errors a refused data connection reports; the client sees them in the transfer's reply.
var (
	errNotResumed = errors.New("TLS session of data connection not resumed: " +
		"the data connection must reuse the control connection's TLS session")
	errForeignSession = errors.New("TLS session of data connection does not belong to this client: " +
		"it must be a session of a logged-in control connection of the same user from the same address")
)

// tlsSetup holds the TLS configurations of a Server.
//
// Session reuse is enforced like this: every session ticket issued on a control connection
// carries that connection's random token (WrapSession adds it to SessionState.Extra; the ticket
// is encrypted with the server's ticket key, so a client cannot forge or alter it). Each
// client's data connections get a TLS configuration bound to that client's control
// connection (GetDataTLSConfig, which the library calls for PASV/EPSV and PORT/EPRT). A data
// connection's handshake decrypts the ticket it presents (UnwrapSession) and finds the live
// control connection it was issued on; VerifyConnection refuses the data connection unless
// the handshake resumed and that control connection is logged in now, as the same user as
// the data connection's own control connection, from the data connection's address
// (sessionRefusal). So a session of a sibling connection of the same user qualifies (rclone
// shares one session cache across its connections), one of a connection that never logged
// in, or of another user, never does. GetConfigForClient tells the two kinds of handshake
// apart: control connections are *ctrlConn, anything else is a data connection.
type tlsSetup struct {
	srv   *Server
	leaf  *tls.Config // certificate, versions, ticket key; no callbacks
	front *tls.Config // leaf + GetConfigForClient: what the library and listeners use
	// cert is the certificate of new handshakes. Every handshake gets its config from
	// configForClient, which sets it, so a reload can replace it while connections in flight
	// keep theirs (leaf.Certificates keeps the certificate loaded at start).
	cert atomic.Pointer[tls.Certificate]
}

// loadCertificate loads the certificate files named by cfg, or the generated one in stateDir.
func loadCertificate(cfg config.TLS, stateDir string) (*tls.Certificate, error) {
	if cfg.Cert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.Cert, cfg.Key)
		if err != nil {
			return nil, fmt.Errorf("load TLS certificate: %w", err)
		}
		return &cert, nil
	}
	cert, err := selfSigned(stateDir)
	if err != nil {
		return nil, err
	}
	return &cert, nil
}

func newTLSSetup(s *Server) (*tlsSetup, error) {
	cert, err := loadCertificate(s.site.Config().TLS, s.opts.StateDir)
	if err != nil {
		return nil, err
	}
	t := &tlsSetup{srv: s}
	t.cert.Store(cert)
	leaf := &tls.Config{
		Certificates: []tls.Certificate{*cert},
		MinVersion:   tls.VersionTLS12,
	}
	// One explicit ticket key shared by every clone: control and data handshakes must
	// encrypt and decrypt each other's tickets.
	var key [32]byte
	if _, err := rand.Read(key[:]); err != nil {
		return nil, fmt.Errorf("session ticket key: %w", err)
	}
	leaf.SetSessionTicketKeys([][32]byte{key})
	t.leaf = leaf
	t.front = leaf.Clone()
	t.front.GetConfigForClient = t.configForClient
	return t, nil
}

func (t *tlsSetup) configForClient(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	if c, ok := hello.Conn.(*ctrlConn); ok {
		return t.controlConfig(c), nil
	}
	// A data connection reaches front only if the library did not ask for the client's own
	// configuration (dataFront): with no control connection to check against, it is refused.
	return t.dataConfig(nil, hello.Conn), nil
}

// dataFront is the TLS configuration of owner's data connections.
func (t *tlsSetup) dataFront(owner *ctrlConn) *tls.Config {
	cfg := t.leaf.Clone()
	cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		return t.dataConfig(owner, hello.Conn), nil
	}
	return cfg
}

var _ ftpserver.MainDriverExtensionDataTLSConfig = (*mainDriver)(nil)

// GetDataTLSConfig returns the TLS configuration of cc's data connections, bound to its
// control connection.
func (d *mainDriver) GetDataTLSConfig(cc ftpserver.ClientContext) (*tls.Config, error) {
	if d.srv.tls == nil {
		return nil, errors.New("TLS is not enabled on this server")
	}
	st := stateOf(cc)
	if st == nil || st.ctrl == nil {
		return nil, errors.New("no control connection for this client")
	}
	return d.srv.tls.dataFront(st.ctrl), nil
}

// base returns a copy of leaf with the current certificate.
func (t *tlsSetup) base() *tls.Config {
	cfg := t.leaf.Clone()
	cfg.Certificates = []tls.Certificate{*t.cert.Load()}
	return cfg
}

// controlConfig binds the tickets issued on a control connection to it.
func (t *tlsSetup) controlConfig(c *ctrlConn) *tls.Config {
	cfg := t.base()
	cfg.WrapSession = func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
		setToken(ss, c.token)
		return cfg.EncryptTicket(cs, ss)
	}
	cfg.VerifyConnection = func(tls.ConnectionState) error {
		// A TLS handshake on a plain listener's control connection is AUTH TLS.
		if !t.srv.opts.Implicit {
			if s := c.sess.Load(); s != nil {
				s.SetProtocol(core.ProtoFTPES)
			}
		}
		return nil
	}
	return cfg
}

// dataConfig is the configuration of one handshake of a data connection of owner's (nil:
// unknown, always refused): with ftp.tls_session_reuse required, it must resume a session
// that sessionRefusal accepts. The callbacks of one handshake may share state unlocked.
func (t *tlsSetup) dataConfig(owner *ctrlConn, conn net.Conn) *tls.Config {
	if t.srv.site.Config().FTP.TLSSessionReuse == "optional" {
		return t.base()
	}
	var issuer *ctrlConn
	var token ticketToken
	cfg := t.base()
	cfg.UnwrapSession = func(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
		ss, err := cfg.DecryptTicket(identity, cs)
		if err != nil || ss == nil {
			return nil, nil // not ours or expired: full handshake, refused below
		}
		issuer = nil
		if tok, ok := getToken(ss); ok {
			token, issuer = tok, t.srv.owner(tok)
		}
		return ss, nil
	}
	cfg.WrapSession = func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
		// Tickets issued on a data connection (TLS 1.3 sends them after every handshake) stay
		// bound to the control connection of the session it resumed, so a client may resume
		// from either.
		if issuer != nil {
			setToken(ss, token)
		}
		return cfg.EncryptTicket(cs, ss)
	}
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		remote := conn.RemoteAddr().String()
		if !cs.DidResume {
			t.srv.log.Warn("data connection refused: TLS session not resumed", "remote", remote)
			return errNotResumed
		}
		if why := sessionRefusal(owner, issuer, remote, time.Duration(t.srv.issuerWait.Load())); why != "" {
			t.srv.log.Warn("data connection refused: "+why, "remote", remote)
			return errForeignSession
		}
		if s := owner.sess.Load(); s != nil {
			s.Logger().Debug("data connection resumed a TLS session of this user",
				"tls", tls.VersionName(cs.Version), "sibling", issuer != owner)
		}
		return nil
	}
	return cfg
}

// issuerLoginWait bounds how long a data connection's handshake waits for the control
// connection whose session it resumed to finish logging in.
const issuerLoginWait = 10 * time.Second

// sessionRefusal says why a data connection of owner's, from remote, may not resume a TLS
// session issued on the control connection issuer ("" when it may): the issuer must be
// logged in (tickets are issued at AUTH TLS, before login, so it is its login by now that
// counts, waited for up to wait), as owner's user, and both connections must come from
// remote's address.
func sessionRefusal(owner, issuer *ctrlConn, remote string, wait time.Duration) string {
	switch {
	case owner == nil:
		return "no control connection to check the TLS session against"
	case issuer == nil:
		return "TLS session not issued to a live control connection"
	case !sameHost(owner.remote, remote):
		return "not from the control connection's address"
	case !sameHost(issuer.remote, remote):
		return "TLS session issued to a connection from another address"
	}
	user := issuer.awaitUser(wait)
	switch {
	case user == "":
		return "TLS session issued to a connection that is not logged in"
	case user != owner.user():
		return "TLS session issued to a connection of another user"
	}
	return ""
}

func setToken(ss *tls.SessionState, tok ticketToken) {
	extra := ss.Extra[:0:0]
	for _, e := range ss.Extra {
		if !bytes.HasPrefix(e, tokenTag) {
			extra = append(extra, e)
		}
	}
	ss.Extra = append(extra, append(append([]byte(nil), tokenTag...), tok[:]...))
}

func getToken(ss *tls.SessionState) (ticketToken, bool) {
	var tok ticketToken
	for _, e := range ss.Extra {
		if bytes.HasPrefix(e, tokenTag) && len(e) == len(tokenTag)+len(tok) {
			copy(tok[:], e[len(tokenTag):])
			return tok, true
		}
	}
	return tok, false
}

func sameHost(a, b string) bool {
	ha, _, err1 := net.SplitHostPort(a)
	hb, _, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil {
		return false
	}
	ia, ib := net.ParseIP(ha), net.ParseIP(hb)
	return ia != nil && ia.Equal(ib)
}

// selfSigned loads the generated certificate from dir, or creates it there (in memory only
// when dir is ""), so clients that pin it see the same certificate after a restart.
func selfSigned(dir string) (tls.Certificate, error) {
	if dir != "" {
		cp, kp := filepath.Join(dir, certFile), filepath.Join(dir, keyFile)
		if cert, err := tls.LoadX509KeyPair(cp, kp); err == nil {
			return cert, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return tls.Certificate{}, fmt.Errorf("load generated certificate from the state directory: %w", err)
		}
	}
	certPEM, keyPEM, err := generateCert()
	if err != nil {
		return tls.Certificate{}, err
	}
	if dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return tls.Certificate{}, fmt.Errorf("create state directory: %w", err)
		}
		// Key first: a crash between the two writes leaves no certificate, so the next start
		// generates a fresh pair instead of failing on a mismatch.
		if err := writeFileAtomic(filepath.Join(dir, keyFile), keyPEM); err != nil {
			return tls.Certificate{}, err
		}
		if err := writeFileAtomic(filepath.Join(dir, certFile), certPEM); err != nil {
			return tls.Certificate{}, err
		}
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generated certificate: %w", err)
	}
	return cert, nil
}

func generateCert() (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate certificate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("certificate serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "wharf", Organization: []string{"wharf self-signed"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(5, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if h, err := os.Hostname(); err == nil && h != "" && h != "localhost" {
		tmpl.DNSNames = append(tmpl.DNSNames, h)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create certificate: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encode certificate key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), nil
}

// writeFileAtomic writes a 0600 file under a temporary name and renames it into place, so
// two servers starting together never read a half-written file.
func writeFileAtomic(name string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(name), ".tmp-"+filepath.Base(name)+"-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(name), err)
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	cerr := f.Close()
	if err := errors.Join(werr, cerr, os.Chmod(tmp, 0o600)); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", filepath.Base(name), err)
	}
	if err := os.Rename(tmp, name); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", filepath.Base(name), err)
	}
	return nil
}

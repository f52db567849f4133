package ftp

import (
	"crypto/tls"

	"github.com/wharf-project/wharf/core/config"
)

// PrepareTLSReload loads the certificate that cfg names (or the generated one in the state
// directory) and returns a function that makes it the certificate of new handshakes. Loading
// and swapping are separate so that a reload can check every site before changing any:
// nothing changes when loading fails. Connections already established keep their
// certificate, and TLS sessions resumed on data connections stay valid because the ticket
// key does not change. A server without TLS returns a no-op.
func (s *Server) PrepareTLSReload(cfg config.TLS) (apply func(), err error) {
	if s.tls == nil {
		return func() {}, nil
	}
	cert, err := loadCertificate(cfg, s.opts.StateDir)
	if err != nil {
		return nil, err
	}
	return func() { s.tls.cert.Store(cert) }, nil
}

// Certificate returns the certificate served to new TLS handshakes (nil without TLS).
func (s *Server) Certificate() *tls.Certificate {
	if s.tls == nil {
		return nil
	}
	return s.tls.cert.Load()
}

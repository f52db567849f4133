// Package ftp is wharf's FTP adapter: plain FTP, explicit FTPS (AUTH TLS, "FTPES") and implicit
// FTPS, built on github.com/fclairamb/ftpserverlib.
//
// The adapter owns the protocol grammar only. Every file-system call the library makes is
// translated into one call on the connection's core.Session, and the core's error kinds are
// translated back into reply codes (core.ErrQuota → 552, everything else → 550 with the core's
// text, which never names host paths). Policy — permissions, quotas, hidden entries, scripts —
// stays in the core.
//
// Beyond the library the adapter adds: per-connection sessions with login and idle timeouts,
// a SITE command limited to CHMOD, a self-signed certificate kept in the state directory, and
// enforced TLS session resumption on data connections (ftp.tls_session_reuse: required), where
// a protected data connection must resume a TLS session issued on a control connection that is
// logged in as the same user as the data connection's own, from the same address. Each
// client's passive listener is bound to its control connection: it hands on only connections
// from that connection's address, and closes others.
package ftp

// Package sftp is wharf's SSH adapter: it serves the SFTP subsystem (with pkg/sftp's
// RequestServer) and the legacy SCP protocol (its own implementation, over "exec") on top of
// the protocol-neutral session core.
//
// The adapter owns only the protocol: SSH transport, authentication callbacks, channel and
// request grammar, SFTP packet routing and the SCP wire format. Every file request becomes
// exactly one call on the *core.Session of the connection, and the core's error kinds become
// SSH_FX status codes (or SCP error lines) carrying the core's message, which never names a
// host path. Policy (who may do what, where, how much) lives in the core.
//
// Usage mirrors net/http:
//
//	srv, err := sftp.New(site, sftp.Options{StateDir: "/var/lib/wharf"})
//	...
//	go srv.Serve(listener)
//	...
//	srv.Shutdown(ctx)
package sftp

package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/internal/accept"
)

// proxyHeaderTimeout bounds the wait for a connection's PROXY header.
const proxyHeaderTimeout = 10 * time.Second

// proxyListener makes ln expect a PROXY header on every connection (listener l has
// proxy_protocol: true) and take the client's address from it. With proxy_protocol_from,
// only those addresses (the balancers) may send one: a connection from anywhere else is
// closed when it is accepted, before any byte is read or written, so that a client that
// reaches the port directly cannot choose the address its bans, allow list and limits see.
func proxyListener(ln net.Listener, l config.Listener, log *slog.Logger) net.Listener {
	pl := &proxyproto.Listener{Listener: ln, ReadHeaderTimeout: proxyHeaderTimeout}
	if len(l.ProxyProtocolFrom) > 0 {
		pl.ConnPolicy = trustedProxies(l.ProxyProtocolFrom,
			&refusalLog{log: log, address: l.Address, throttle: accept.NewThrottle(accept.LogInterval)})
	} else {
		log.Warn("listener takes PROXY headers from any address: a client that reaches it directly can choose the address its bans and allow_from see; list the balancers in proxy_protocol_from",
			"listener", l.Address)
	}
	return pl
}

// trustedProxies requires a PROXY header from the addresses in from and refuses every other
// connection. The error wraps proxyproto.ErrInvalidUpstream, on which the listener closes the
// connection and goes on accepting.
func trustedProxies(from []config.Prefix, log *refusalLog) proxyproto.ConnPolicyFunc {
	return func(o proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
		addr := upstreamAddr(o.Upstream)
		if addr.IsValid() {
			for _, p := range from {
				if p.Contains(addr) {
					return proxyproto.REQUIRE, nil
				}
			}
		}
		log.refused(addr)
		return proxyproto.REJECT, fmt.Errorf("%w: %s may not send a PROXY header (proxy_protocol_from)", proxyproto.ErrInvalidUpstream, addr)
	}
}

// upstreamAddr is the peer's IP address, unmapped; the zero Addr when it has none.
func upstreamAddr(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort().Addr().Unmap()
	case nil:
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// refusalLog logs refused connections at most once per accept.LogInterval, as the accept
// loops log their errors, with the number refused since the last line: a scanner hammering
// the port cannot flood the log, and a balancer missing from proxy_protocol_from is still
// plain to see.
type refusalLog struct {
	log      *slog.Logger
	address  string
	throttle *accept.Throttle
}

func (r *refusalLog) refused(from netip.Addr) {
	ok, n := r.throttle.Allow()
	if !ok {
		return
	}
	attrs := []any{"listener", r.address, "remote", from.String()}
	if n > 0 {
		attrs = append(attrs, "suppressed", n) // as the accept loops' warnings say it
	}
	r.log.Warn("connection refused: its address may not send a PROXY header (listener's proxy_protocol_from)", attrs...)
}

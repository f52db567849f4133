package core_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
)

// TestPreAuthenticationLimits is issue #19 item 25: connections that have not logged in are
// bounded per address and per site (OpenSSH's PerSourceMaxStartups and MaxStartups), apart
// from the limits on connections and sessions, so that a flood is refused while a client
// that logs in may hold many sessions.
func TestPreAuthenticationLimits(t *testing.T) {
	site := testSite(t, []config.User{user("u")}, nil, func(c *config.Site) {
		c.Limits = config.Limits{MaxConnections: 100, MaxConnectionsPerIP: 64, MaxSessionsPerUser: 0,
			MaxUnauthenticated: 6, MaxUnauthenticatedPerIP: 4}
	})
	ctx := context.Background()
	dial := func(ip string) (*core.Session, error) {
		s, err := site.Connect(ctx, core.ConnInfo{Remote: &net.TCPAddr{IP: net.ParseIP(ip), Port: 5555}, Protocol: core.ProtoSFTP})
		if err == nil {
			t.Cleanup(s.Close)
		}
		return s, err
	}
	var waiting []*core.Session
	for i := range 4 {
		s, err := dial("198.51.100.1")
		if err != nil {
			t.Fatalf("unauthenticated connection %d: %v", i+1, err)
		}
		waiting = append(waiting, s)
	}
	_, err := dial("198.51.100.1")
	if !errors.Is(err, core.ErrLimit) || !strings.Contains(err.Error(), "log in") {
		t.Fatalf("fifth unauthenticated connection from one address: %v", err)
	}
	// Logging in frees the slot: a client may hold many logged-in sessions.
	if err := waiting[0].AuthPassword(ctx, "u", "pw"); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		s, err := dial("198.51.100.1")
		if err != nil {
			t.Fatalf("connection %d after logins: %v", i, err)
		}
		if err := s.AuthPassword(ctx, "u", "pw"); err != nil {
			t.Fatalf("login %d: %v", i, err)
		}
	}
	// Per site: 3 still waiting from one address, 3 from another, and the seventh is refused.
	for range 3 {
		if _, err := dial("198.51.100.2"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := dial("198.51.100.3"); !errors.Is(err, core.ErrLimit) {
		t.Fatalf("seventh unauthenticated connection on the site: %v", err)
	}
	// A connection that ends frees its slot.
	waiting[1].Close()
	if _, err := dial("198.51.100.3"); err != nil {
		t.Fatalf("after one closed: %v", err)
	}
	if n := site.CountByUser("u"); n != 21 {
		t.Fatalf("%d sessions of u, want 21 (no per-user limit by default)", n)
	}
}

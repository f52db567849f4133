package ftp

import (
	"bytes"
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/core/coretest"
)

// TestTLSSessionReuse proves both modes of ftp.tls_session_reuse with Go clients that do and
// do not resume the control connection's session on data connections.
func TestTLSSessionReuse(t *testing.T) {
	for _, m := range []mode{modeExplicit, modeImplicit} {
		t.Run(m.String(), func(t *testing.T) {
			t.Run("required refuses a fresh session", func(t *testing.T) {
				site, root := newSite(t, nil, nil)
				ts := serve(t, site, m)
				tlsc := ts.clientTLS()
				tlsc.ClientSessionCache = nil // this client never resumes
				r := dialRawTLS(t, ts, m, tlsc)
				r.login(coretest.UserAlice, coretest.Password)
				first, _, final, msg := r.transfer([]byte("data"), "STOR fresh.txt")
				if first != 150 || final < 400 || !strings.Contains(msg, "TLS session of data connection not resumed") {
					t.Fatalf("STOR over a fresh TLS session: %d then %d %q, want a refusal naming the TLS session", first, final, msg)
				}
				if _, err := os.Stat(filepath.Join(root, "home", coretest.UserAlice, "fresh.txt")); err == nil {
					t.Fatal("a refused upload reached the disk")
				}
				// The control connection survives.
				r.cmd(200, "NOOP")
				r.cmd(257, "PWD")
			})
			t.Run("required accepts a resumed session", func(t *testing.T) {
				site, root := newSite(t, nil, nil)
				ts := serve(t, site, m)
				r := dialRaw(t, ts, m)
				r.login(coretest.UserAlice, coretest.Password)
				// TLS 1.3 tickets arrive after the handshake: one round trip makes sure the
				// client has read them before it opens a data connection.
				r.cmd(200, "NOOP")
				_, _, final, msg := r.transfer([]byte("resumed"), "STOR ok.txt")
				if final != 226 {
					t.Fatalf("STOR over a resumed session: %d %q", final, msg)
				}
				got, err := os.ReadFile(filepath.Join(root, "home", coretest.UserAlice, "ok.txt"))
				if err != nil || string(got) != "resumed" {
					t.Fatalf("uploaded file = %q, %v", got, err)
				}
				_, data, final, msg := r.transfer(nil, "RETR ok.txt")
				if final != 226 || string(data) != "resumed" {
					t.Fatalf("RETR over a resumed session: %d %q, data %q", final, msg, data)
				}
			})
			t.Run("required refuses another connection's session", func(t *testing.T) {
				site, _ := newSite(t, nil, nil)
				ts := serve(t, site, m)
				// Capture a ticket issued to connection A, close A, then offer A's ticket on
				// a data connection of B.
				cache := &freezableCache{inner: tls.NewLRUClientSessionCache(4)}
				tlsc := ts.clientTLS()
				tlsc.ClientSessionCache = cache
				a := dialRawTLS(t, ts, m, tlsc)
				a.login(coretest.UserAlice, coretest.Password)
				a.cmd(200, "NOOP")
				cache.freeze()
				a.cmd(221, "QUIT")
				coretest.Eventually(t, defaultWait, "connection A to close", func() bool { return len(site.Sessions()) == 0 })

				b := dialRawTLS(t, ts, m, tlsc)
				b.login(coretest.UserAlice, coretest.Password)
				_, _, final, msg := b.transfer([]byte("x"), "STOR foreign.txt")
				if final < 400 || !strings.Contains(msg, "does not belong") {
					t.Fatalf("STOR over another connection's session: %d %q", final, msg)
				}
				b.cmd(200, "NOOP")
			})
			t.Run("optional accepts a fresh session", func(t *testing.T) {
				site, _ := newSite(t, nil, func(c *config.Site) { c.FTP.TLSSessionReuse = "optional" })
				ts := serve(t, site, m)
				tlsc := ts.clientTLS()
				tlsc.ClientSessionCache = nil
				r := dialRawTLS(t, ts, m, tlsc)
				r.login(coretest.UserAlice, coretest.Password)
				payload := bytes.Repeat([]byte("z"), 100_000)
				if _, _, final, msg := r.transfer(payload, "STOR free.txt"); final != 226 {
					t.Fatalf("STOR with optional reuse: %d %q", final, msg)
				}
				if _, data, final, msg := r.transfer(nil, "RETR free.txt"); final != 226 || !bytes.Equal(data, payload) {
					t.Fatalf("RETR with optional reuse: %d %q (%d bytes)", final, msg, len(data))
				}
			})
		})
	}
}

// freezableCache stops learning new sessions once frozen, so a test can replay an old
// ticket.
type freezableCache struct {
	mu     sync.Mutex
	inner  tls.ClientSessionCache
	frozen bool
}

func (c *freezableCache) Get(key string) (*tls.ClientSessionState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inner.Get(key)
}

func (c *freezableCache) Put(key string, cs *tls.ClientSessionState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.frozen && cs != nil {
		c.inner.Put(key, cs)
	}
}

func (c *freezableCache) freeze() {
	c.mu.Lock()
	c.frozen = true
	c.mu.Unlock()
}

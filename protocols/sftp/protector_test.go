package sftp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pkgsftp "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/core/coretest"
)

// Loopback addresses: 127.0.0.1 is on the safe list of the protector tests, 127.0.0.2 is
// the attacker (Linux routes all of 127/8 to lo).
var (
	safeIP     = net.IPv4(127, 0, 0, 1)
	attackerIP = net.IPv4(127, 0, 0, 2)
)

// strikeLog counts the protector's facts.
type strikeLog struct {
	mu      sync.Mutex
	strikes []string // reasons
	bans    int
}

func (l *strikeLog) Observe(f *core.Fact) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch f.Kind {
	case core.FactStrike:
		l.strikes = append(l.strikes, f.IP+" "+f.Reason)
	case core.FactBan:
		l.bans++
	}
}

func (l *strikeLog) reasons() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.strikes...)
}

// protectedSite is a site with a protector: threshold failures ban for banFor; 127.0.0.1 is
// safe. Bans persist in stateDir when it is not "".
func protectedSite(t testing.TB, stateDir string, banFor time.Duration, d core.Dispatcher, obs core.Observer, edit func(*config.Site)) *core.Site {
	t.Helper()
	yes := true
	cfg := testSiteConfig(t.TempDir(), testUser("alice"))
	cfg.Protector = config.Protector{Enabled: &yes, Threshold: 3, Window: config.Duration{Duration: time.Minute},
		BanFor: config.Duration{Duration: banFor}, Safe: []config.Prefix{{Prefix: netip.MustParsePrefix("127.0.0.1/32")}}}
	if edit != nil {
		edit(cfg)
	}
	site, err := core.NewSite(cfg, core.Options{Events: d, Observer: obs, Logger: testLogger(), StateDir: stateDir})
	if err != nil {
		t.Fatalf("site: %v", err)
	}
	t.Cleanup(func() { _ = site.Shutdown(context.Background()) })
	return site
}

func dialFrom(ip net.IP, addr string) (net.Conn, error) {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 5 * time.Second}
	return d.Dial("tcp", addr)
}

// loginFrom logs in over SSH from a chosen source address.
func loginFrom(srv *Server, addr string, ip net.IP, user, password string) (*ssh.Client, error) {
	nc, err := dialFrom(ip, addr)
	if err != nil {
		return nil, err
	}
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	cc, chans, reqs, err := ssh.NewClientConn(nc, addr, &ssh.ClientConfig{
		User: user, Auth: []ssh.AuthMethod{ssh.Password(password)}, HostKeyCallback: hostKeyCallback(srv),
	})
	if err != nil {
		_ = nc.Close()
		return nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	return ssh.NewClient(cc, chans, reqs), nil
}

// firstBytes connects from ip and returns what the server sends before it closes or within
// wait, and how long until the connection was closed (0 if it stayed open). It returns at
// the first line unless closeAfterBanner asks it to wait for the close.
func firstBytes(t *testing.T, ip net.IP, addr string, wait time.Duration, closeAfterBanner bool) (string, time.Duration) {
	t.Helper()
	start := time.Now()
	nc, err := dialFrom(ip, addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer nc.Close()
	_ = nc.SetReadDeadline(time.Now().Add(wait))
	var buf bytes.Buffer
	b := make([]byte, 256)
	for {
		n, err := nc.Read(b)
		buf.Write(b[:n])
		if bytes.Contains(buf.Bytes(), []byte("\n")) && !closeAfterBanner {
			return buf.String(), 0
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return buf.String(), 0
		}
		if err != nil { // EOF or reset: the server closed
			return buf.String(), time.Since(start)
		}
	}
}

// TestProtectorSSH: wrong passwords from one address get it banned after the threshold; its
// next connection is closed before the SSH banner, OnBlocklistAdd fires once, a safe
// address is never banned, and the ban ends after ban_for.
func TestProtectorSSH(t *testing.T) {
	const banFor = 2 * time.Second
	d := &coretest.Dispatcher{}
	d.On(core.OnBlocklistAdd, func(*core.Event) {})
	d.On(core.OnBlocklistHit, func(*core.Event) {})
	site := protectedSite(t, "", banFor, d, nil, nil)
	srv, addr := startServer(t, site)
	attacker := netip.MustParseAddr(attackerIP.String())

	for i := range 3 {
		if site.Banned(attacker) {
			t.Fatalf("banned after %d failed logins, threshold 3", i)
		}
		c, err := loginFrom(srv, addr, attackerIP, "alice", "wrong password")
		if err == nil {
			_ = c.Close()
			t.Fatal("login with a wrong password succeeded")
		}
		if !strings.Contains(err.Error(), "unable to authenticate") {
			t.Fatalf("failed login %d: %v, want an authentication failure", i+1, err)
		}
	}
	banned := time.Now()
	if !site.Banned(attacker) {
		t.Fatal("not banned after 3 failed logins")
	}
	got, latency := firstBytes(t, attackerIP, addr, 3*time.Second, false)
	if strings.Contains(got, "SSH-") || latency == 0 {
		t.Fatalf("banned address got %q (closed after %v), want a close before any banner", got, latency)
	}
	t.Logf("banned address: connection closed after %v without a byte", latency)
	if n := count(d, core.OnBlocklistAdd); n != 1 {
		t.Fatalf("OnBlocklistAdd fired %d times, want 1", n)
	}
	if n := count(d, core.OnBlocklistHit); n != 1 {
		t.Fatalf("OnBlocklistHit fired %d times, want 1", n)
	}

	// The safe address fails as often as it likes and still logs in.
	for range 8 {
		if c, err := loginFrom(srv, addr, safeIP, "alice", "wrong password"); err == nil {
			_ = c.Close()
			t.Fatal("login with a wrong password succeeded")
		}
	}
	c, err := loginFrom(srv, addr, safeIP, "alice", testPassword)
	if err != nil {
		t.Fatalf("safe address after 8 failures: %v", err)
	}
	_ = c.Close()

	// The ban ends after ban_for.
	var lifted time.Duration
	coretest.Eventually(t, banFor+5*time.Second, "the ban to end", func() bool {
		got, _ := firstBytes(t, attackerIP, addr, 200*time.Millisecond, false)
		lifted = time.Since(banned)
		return strings.HasPrefix(got, "SSH-2.0-")
	})
	if lifted < banFor-200*time.Millisecond {
		t.Fatalf("ban lifted after %v, ban_for is %v", lifted, banFor)
	}
	t.Logf("ban lifted after %v (ban_for %v)", lifted.Round(10*time.Millisecond), banFor)
	c, err = loginFrom(srv, addr, attackerIP, "alice", testPassword)
	if err != nil {
		t.Fatalf("login after the ban ended: %v", err)
	}
	_ = c.Close()
	if n := count(d, core.OnBlocklistAdd); n != 1 {
		t.Fatalf("OnBlocklistAdd fired %d times in all, want 1", n)
	}
}

// TestProtectorSSHBanSurvivesRestart: a ban is kept in the state folder and still applies to
// a new site and server.
func TestProtectorSSHBanSurvivesRestart(t *testing.T) {
	state := t.TempDir()
	site := protectedSite(t, state, time.Hour, nil, nil, nil)
	srv, addr := startServer(t, site)
	for range 3 {
		if c, err := loginFrom(srv, addr, attackerIP, "alice", "wrong"); err == nil {
			_ = c.Close()
			t.Fatal("login with a wrong password succeeded")
		}
	}
	ctx := context.Background()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := site.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(state, "bans-test.json")); err != nil {
		t.Fatalf("ban state file: %v", err)
	}
	restarted := protectedSite(t, state, time.Hour, nil, nil, nil)
	_, addr2 := startServer(t, restarted)
	got, latency := firstBytes(t, attackerIP, addr2, 3*time.Second, false)
	if got != "" || latency == 0 {
		t.Fatalf("after a restart the banned address got %q, want a close before any banner", got)
	}
	if got, _ := firstBytes(t, safeIP, addr2, 3*time.Second, false); !strings.HasPrefix(got, "SSH-2.0-") {
		t.Fatalf("other address after a restart got %q", got)
	}
}

// TestSSHLoginTimeoutAndGarbage: a client that sends nothing after the banner is dropped after
// login_timeout; one that sends something that is not SSH is dropped and struck once.
func TestSSHLoginTimeoutAndGarbage(t *testing.T) {
	obs := &strikeLog{}
	site := protectedSite(t, "", time.Minute, nil, obs, func(c *config.Site) {
		c.Limits.LoginTimeout = config.Duration{Duration: time.Second}
		c.Protector.Threshold = 100
	})
	_, addr := startServer(t, site)

	got, after := firstBytes(t, attackerIP, addr, 10*time.Second, true)
	if !strings.HasPrefix(got, "SSH-2.0-") || after < 900*time.Millisecond || after > 5*time.Second {
		t.Fatalf("silent client: got %q, closed after %v; want the banner, then a close after the 1 s login timeout", got, after)
	}
	t.Logf("silent client dropped after %v (login_timeout 1s)", after.Round(10*time.Millisecond))
	coretest.Eventually(t, 5*time.Second, "the login-timeout strike", func() bool {
		return len(obs.reasons()) == 1
	})
	if r := obs.reasons()[0]; !strings.HasSuffix(r, "login timeout") {
		t.Fatalf("strike %q, want a login timeout", r)
	}

	nc, err := dialFrom(attackerIP, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Write(bytes.Repeat([]byte("GARBAGE"), 100)); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var ne net.Error
	if _, err := io.Copy(io.Discard, nc); errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("garbage client: %v, want the server to close", err) // EOF or a reset is fine
	}
	coretest.Eventually(t, 5*time.Second, "the handshake strike", func() bool { return len(obs.reasons()) == 2 })
	if r := obs.reasons()[1]; !strings.Contains(r, "ssh handshake failed") {
		t.Fatalf("strike %q, want a handshake failure", r)
	}
}

// TestSSHSessionLimitMessage: the refusal of a session over the user's limit reaches the
// client as an authentication banner.
func TestSSHSessionLimitMessage(t *testing.T) {
	u := testUser("alice")
	u.MaxSessions = 1
	site := newTestSite(t, testSiteConfig(t.TempDir(), u), nil)
	srv, addr := startServer(t, site)
	first := mustSFTP(t, srv, addr, "alice")
	_, err := dialKit(srv, addr, "alice", testPassword)
	if err == nil || !strings.Contains(err.Error(), "maximum number of sessions") {
		t.Fatalf("second session: %v, want the session-limit banner", err)
	}
	if _, err := first.Getwd(); err != nil {
		t.Fatalf("first session after the refusal: %v", err)
	}
}

// TestSSHFlood opens 2,000 connections from ten attacker addresses as fast as possible; most
// never log in (some send garbage). A legitimate SFTP login during the flood succeeds within
// 2 s, and goroutines and heap return to their baseline afterwards.
func TestSSHFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("flood test")
	}
	site := protectedSite(t, "", time.Minute, nil, nil, func(c *config.Site) {
		c.Limits.MaxConnections, c.Limits.MaxConnectionsPerIP = 500, 20
		c.Limits.LoginTimeout = config.Duration{Duration: 2 * time.Second}
		c.Protector.Threshold = 10
	})
	srv, addr := startServer(t, site)
	warm := mustSFTP(t, srv, addr, "alice")
	if err := warm.Close(); err != nil {
		t.Fatal(err)
	}
	base := coretest.MeasureFootprint()

	const total, inFlight = 2000, 200
	var (
		mu      sync.Mutex
		held    []net.Conn
		dialed  atomic.Int64
		refused atomic.Int64
	)
	sem := make(chan struct{}, inFlight)
	var wg sync.WaitGroup
	floodDone := make(chan struct{})
	go func() {
		defer close(floodDone)
		for i := range total {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				ip := net.IPv4(127, 0, 0, byte(2+i%10))
				nc, err := dialFrom(ip, addr)
				dialed.Add(1)
				if err != nil {
					refused.Add(1)
					return
				}
				if i%3 == 0 {
					_, _ = nc.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
				}
				mu.Lock()
				held = append(held, nc)
				mu.Unlock()
			}()
		}
		wg.Wait()
	}()

	// Legitimate logins, one after the other, from the flood's start until its connections
	// are closed again.
	type result struct {
		took time.Duration
		err  error
	}
	results := make(chan result, 1000)
	stop := make(chan struct{})
	loginsDone := make(chan struct{})
	go func() {
		defer close(loginsDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			start := time.Now()
			c, err := loginFrom(srv, addr, safeIP, "alice", testPassword)
			if err == nil {
				var sc *pkgsftp.Client
				if sc, err = pkgsftp.NewClient(c); err == nil {
					_, err = sc.ReadDir("/")
					_ = sc.Close()
				}
				_ = c.Close()
			}
			select {
			case results <- result{time.Since(start), err}:
			default:
			}
		}
	}()
	<-floodDone
	mu.Lock()
	n := len(held)
	mu.Unlock()
	// Hold the connections a moment, so logins also run while they occupy the server.
	time.Sleep(500 * time.Millisecond)
	mu.Lock()
	for _, nc := range held {
		_ = nc.Close()
	}
	held = nil
	mu.Unlock()
	close(stop)
	<-loginsDone
	close(results)
	var logins int
	var worst time.Duration
	for r := range results {
		if r.err != nil {
			t.Fatalf("legitimate login during the flood: %v", r.err)
		}
		logins++
		worst = max(worst, r.took)
	}
	t.Logf("flood: %d connections (%d failed to dial, %d held open); %d legitimate SFTP logins + listings meanwhile, slowest %v",
		total, refused.Load(), n, logins, worst.Round(time.Millisecond))
	if logins == 0 || worst > 2*time.Second {
		t.Fatalf("%d legitimate logins during the flood, slowest %v; want at least one, each < 2 s", logins, worst)
	}
	if n == 0 {
		t.Fatal("the flood opened no connection")
	}

	coretest.WaitFootprint(t, site, base)
}

package ftp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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

// strikeLog records the protector's strikes.
type strikeLog struct {
	mu      sync.Mutex
	strikes []string // "<ip> <reason>"
}

func (l *strikeLog) Observe(f *core.Fact) {
	if f.Kind != core.FactStrike {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.strikes = append(l.strikes, f.IP+" "+f.Reason)
}

// matching counts the strikes whose text contains s.
func (l *strikeLog) matching(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, x := range l.strikes {
		if strings.Contains(x, s) {
			n++
		}
	}
	return n
}

// protectedSite is the scenario site with a protector: 3 strikes ban for banFor, 127.0.0.1
// is safe.
func protectedSite(t *testing.T, banFor time.Duration, d core.Dispatcher, obs core.Observer, edit func(*config.Site)) *core.Site {
	t.Helper()
	root := t.TempDir()
	cfg := coretest.SiteConfig(root)
	yes := true
	cfg.Protector = config.Protector{Enabled: &yes, Threshold: 3, Window: config.Duration{Duration: time.Minute},
		BanFor: config.Duration{Duration: banFor}, Safe: []config.Prefix{{Prefix: netip.MustParsePrefix("127.0.0.1/32")}}}
	if edit != nil {
		edit(cfg)
	}
	site, err := core.NewSite(cfg, core.Options{Events: d, Observer: obs, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("site: %v", err)
	}
	t.Cleanup(func() { _ = site.Shutdown(context.Background()) })
	must(t, os.MkdirAll(filepath.Join(root, "home", coretest.UserAlice), 0o755))
	return site
}

// greeting connects from ip and returns the first reply and how long until the server closed
// the connection after it (0 if it stayed open for wait).
func greeting(t *testing.T, ts *testServer, ip net.IP, wait time.Duration) (int, string, time.Duration) {
	t.Helper()
	start := time.Now()
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: ip}}
	nc, err := d.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer nc.Close()
	_ = nc.SetReadDeadline(time.Now().Add(wait))
	tp := textproto.NewConn(nc)
	code, msg, err := tp.ReadResponse(0)
	if err != nil && code == 0 {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return 0, "", 0
		}
		return 0, err.Error(), time.Since(start)
	}
	if _, err := tp.ReadLine(); err != nil {
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			return code, msg, time.Since(start)
		}
	}
	return code, msg, 0
}

// failLogin sends a wrong password from ip; the server answers 530 and closes.
func failLogin(t *testing.T, ts *testServer, ip net.IP) {
	t.Helper()
	r := dialRawFrom(t, ts, modePlain, ip)
	r.cmd(331, "USER %s", coretest.UserAlice)
	r.cmd(530, "PASS wrong-password")
	_ = r.tp.Close()
}

// TestProtectorFTP: wrong passwords from one address get it banned after the threshold; its
// next connection is answered 421 and closed, OnBlocklistAdd fires once, a safe address is
// never banned, and the ban ends after ban_for.
func TestProtectorFTP(t *testing.T) {
	const banFor = 2 * time.Second
	d := &coretest.Dispatcher{}
	d.On(core.OnBlocklistAdd, func(*core.Event) {})
	site := protectedSite(t, banFor, d, nil, nil)
	ts := serve(t, site, modePlain)
	attacker := netip.MustParseAddr(attackerIP.String())

	for i := range 3 {
		if site.Banned(attacker) {
			t.Fatalf("banned after %d failed logins, threshold 3", i)
		}
		failLogin(t, ts, attackerIP)
	}
	banned := time.Now()
	if !site.Banned(attacker) {
		t.Fatal("not banned after 3 failed logins")
	}
	code, msg, latency := greeting(t, ts, attackerIP, 3*time.Second)
	if code != 421 || latency == 0 {
		t.Fatalf("banned address: %d %q (closed after %v), want 421 and a close", code, msg, latency)
	}
	t.Logf("banned address: %d %q, closed after %v", code, msg, latency)
	if n := countEvents(d, core.OnBlocklistAdd); n != 1 {
		t.Fatalf("OnBlocklistAdd fired %d times, want 1", n)
	}

	for range 8 {
		failLogin(t, ts, safeIP)
	}
	c, err := ts.dial(modePlain, coretest.UserAlice, coretest.Password)
	if err != nil {
		t.Fatalf("safe address after 8 failures: %v", err)
	}
	_ = c.Quit()

	var lifted time.Duration
	coretest.Eventually(t, banFor+5*time.Second, "the ban to end", func() bool {
		code, _, _ := greeting(t, ts, attackerIP, 200*time.Millisecond)
		lifted = time.Since(banned)
		return code == 220
	})
	if lifted < banFor-200*time.Millisecond {
		t.Fatalf("ban lifted after %v, ban_for is %v", lifted, banFor)
	}
	t.Logf("ban lifted after %v (ban_for %v)", lifted.Round(10*time.Millisecond), banFor)
	r := dialRawFrom(t, ts, modePlain, attackerIP)
	r.login(coretest.UserAlice, coretest.Password)
	if n := countEvents(d, core.OnBlocklistAdd); n != 1 {
		t.Fatalf("OnBlocklistAdd fired %d times in all, want 1", n)
	}
}

func countEvents(d *coretest.Dispatcher, name core.EventName) int {
	n := 0
	for _, e := range d.Fired() {
		if e == name {
			n++
		}
	}
	return n
}

// TestUnknownCommandStrikes: unknown commands beyond the first two of a connection are
// strikes, over plain FTP and inside TLS (FTPES after AUTH TLS, implicit FTPS) alike; the
// library's ordinary replies, and a normal session, are not.
func TestUnknownCommandStrikes(t *testing.T) {
	for _, m := range []mode{modePlain, modeExplicit, modeImplicit} {
		t.Run(m.String(), func(t *testing.T) {
			obs := &strikeLog{}
			site := protectedSite(t, time.Minute, nil, obs, func(c *config.Site) { c.Protector.Threshold = 100 })
			ts := serve(t, site, m)
			r := dialRawFrom(t, ts, m, attackerIP)
			for i := range 4 {
				code, msg := r.send("XYZZY%d", i)
				if code != 500 {
					t.Fatalf("unknown command: %d %q, want 500", code, msg)
				}
			}
			if n := obs.matching("unknown FTP command"); n != 2 {
				t.Fatalf("4 unknown commands counted %d strikes, want 2", n)
			}
			r.login(coretest.UserAlice, coretest.Password)
			r.cmd(257, "PWD")
			if code, _ := r.send("RETR /no-such-file"); code != 550 {
				t.Fatalf("RETR of a missing file: %d", code)
			}
			r.cmd(221, "QUIT")
			coretest.Eventually(t, defaultWait, "the session to close", func() bool { return len(site.Sessions()) == 0 })
			if n := obs.matching(""); n != 2 {
				t.Fatalf("%d strikes, want only the two unknown commands", n)
			}
		})
	}
}

// TestLoginTimeoutTLS: inside TLS (after AUTH TLS, or implicit FTPS) the login timeout still
// ends with a 421 reply the client can read.
func TestLoginTimeoutTLS(t *testing.T) {
	for _, m := range []mode{modeExplicit, modeImplicit} {
		t.Run(m.String(), func(t *testing.T) {
			site, _ := newSite(t, nil, func(c *config.Site) {
				c.Limits.LoginTimeout = config.Duration{Duration: time.Second}
			})
			ts := serve(t, site, m)
			r := dialRaw(t, ts, m)
			start := time.Now()
			_ = r.conn.SetReadDeadline(time.Now().Add(15 * time.Second))
			code, msg, _ := r.tp.ReadResponse(0)
			if code != 421 {
				t.Fatalf("reply %d %q, want 421", code, msg)
			}
			if _, err := r.tp.ReadLine(); err == nil {
				t.Fatal("connection still open after the 421 reply")
			}
			if d := time.Since(start); d < 800*time.Millisecond || d > 5*time.Second {
				t.Fatalf("dropped after %v, login timeout 1 s", d)
			}
		})
	}
}

// TestBandwidthDownload: curl downloads 5 MiB as a user limited to 512 KiB/s in 9-12 s.
func TestBandwidthDownload(t *testing.T) {
	curl := coretest.NeedBinary(t, "curl")
	site, root := newSite(t, nil, nil)
	ts := serve(t, site, modePlain)
	home := filepath.Join(root, "home", coretest.UserSlow)
	must(t, os.MkdirAll(home, 0o755))
	data := randomBytes(t, 5<<20)
	must(t, os.WriteFile(filepath.Join(home, "five.bin"), data, 0o644))
	out := filepath.Join(t.TempDir(), "five.bin")
	url := fmt.Sprintf("ftp://127.0.0.1:%s/five.bin", port(ts))
	start := time.Now()
	mustRun(t, time.Minute, nil, curl, "-sS", "--fail", "-u", coretest.UserSlow+":"+coretest.Password, "-o", out, url)
	took := time.Since(start)
	got, err := os.ReadFile(out)
	must(t, err)
	if len(got) != len(data) {
		t.Fatalf("downloaded %d bytes, want %d", len(got), len(data))
	}
	t.Logf("5 MiB at %d KiB/s took %v", coretest.SlowKiBps, took.Round(time.Millisecond))
	if took < 9*time.Second || took > 12*time.Second {
		t.Fatalf("5 MiB at %d KiB/s took %v, want 9-12 s", coretest.SlowKiBps, took)
	}
}

// TestFTPFlood opens 2,000 connections from ten attacker addresses as fast as possible; most
// never log in (some send commands without logging in). Legitimate logins during the flood
// succeed within 2 s, and goroutines and heap return to their baseline afterwards.
func TestFTPFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("flood test")
	}
	site := protectedSite(t, time.Minute, nil, nil, func(c *config.Site) {
		c.Limits.MaxConnections, c.Limits.MaxConnectionsPerIP = 500, 20
		c.Limits.LoginTimeout = config.Duration{Duration: 2 * time.Second}
		c.Protector.Threshold = 10
	})
	ts := serve(t, site, modePlain)
	login := func() error {
		c, err := ts.dial(modePlain, coretest.UserAlice, coretest.Password)
		if err != nil {
			return err
		}
		_, err = c.List("/")
		return errors.Join(err, c.Quit())
	}
	must(t, login())
	coretest.Eventually(t, defaultWait, "the warm-up session to end", func() bool { return len(site.Sessions()) == 0 })
	base := coretest.MeasureFootprint()

	const total, inFlight = 2000, 200
	var (
		mu     sync.Mutex
		held   []net.Conn
		failed atomic.Int64
	)
	sem := make(chan struct{}, inFlight)
	floodDone := make(chan struct{})
	go func() {
		defer close(floodDone)
		var wg sync.WaitGroup
		for i := range total {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%10))}}
				nc, err := d.Dial("tcp", ts.addr)
				if err != nil {
					failed.Add(1)
					return
				}
				if i%3 == 0 {
					_, _ = io.WriteString(nc, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
				}
				mu.Lock()
				held = append(held, nc)
				mu.Unlock()
			}()
		}
		wg.Wait()
	}()

	stop := make(chan struct{})
	type result struct {
		took time.Duration
		err  error
	}
	results := make(chan result, 1000)
	go func() {
		defer close(results)
		for {
			select {
			case <-stop:
				return
			default:
			}
			start := time.Now()
			err := login()
			select {
			case results <- result{time.Since(start), err}:
			default:
			}
		}
	}()
	<-floodDone
	// Hold the connections a moment, so logins also run while they occupy the server.
	time.Sleep(500 * time.Millisecond)
	mu.Lock()
	n := len(held)
	for _, nc := range held {
		_ = nc.Close()
	}
	held = nil
	mu.Unlock()
	close(stop)
	var logins int
	var worst time.Duration
	for r := range results {
		if r.err != nil {
			t.Fatalf("legitimate login during the flood: %v", r.err)
		}
		logins++
		worst = max(worst, r.took)
	}
	t.Logf("flood: %d connections (%d failed to dial, %d held open); %d legitimate FTP logins + listings meanwhile, slowest %v",
		total, failed.Load(), n, logins, worst.Round(time.Millisecond))
	if logins == 0 || worst > 2*time.Second {
		t.Fatalf("%d legitimate logins during the flood, slowest %v; want at least one, each < 2 s", logins, worst)
	}

	coretest.WaitFootprint(t, site, base)
}

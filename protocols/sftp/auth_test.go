package sftp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/core/coretest"
)

// recorder is a dispatcher that records the events the tests count.
func recorder(events ...core.EventName) *coretest.Dispatcher {
	d := &coretest.Dispatcher{}
	for _, ev := range events {
		d.On(ev, func(*core.Event) {})
	}
	return d
}

func TestAuthFailuresLookAlike(t *testing.T) {
	ftpOnly := testUser("ftponly")
	ftpOnly.Subsystems = []string{"FTP"}
	d := recorder(core.OnAuthFail, core.OnAuthSuccess)
	srv, addr := startServer(t, newTestSite(t, testSiteConfig(t.TempDir(), testUser("alice"), ftpOnly), d))

	var msgs []string
	for _, tc := range []struct{ user, pass string }{
		{"alice", "wrong password"},
		{"nobody", testPassword},
		{"ftponly", testPassword},
	} {
		before := count(d, core.OnAuthFail)
		_, err := dialSSH(srv, addr, tc.user, ssh.Password(tc.pass))
		if err == nil {
			t.Fatalf("%s/%q: login succeeded", tc.user, tc.pass)
		}
		msgs = append(msgs, err.Error())
		if count(d, core.OnAuthFail) == before {
			t.Errorf("%s: OnAuthFail did not fire", tc.user)
		}
	}
	for _, m := range msgs[1:] {
		if m != msgs[0] {
			t.Errorf("failures differ: %q vs %q", m, msgs[0])
		}
	}
	if count(d, core.OnAuthSuccess) != 0 {
		t.Error("OnAuthSuccess fired")
	}
	// And the right password works.
	c, err := dialSSH(srv, addr, "alice", ssh.Password(testPassword))
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
}

func TestPublicKeyAuth(t *testing.T) {
	signer, line := newKey(t)
	other, _ := newKey(t)
	u := testUser("alice")
	u.PublicKeys = []string{line}
	d := recorder(core.OnAuthSuccess, core.OnAuthFail)
	srv, addr := startServer(t, newTestSite(t, testSiteConfig(t.TempDir(), u), d))
	if _, err := dialSSH(srv, addr, "alice", ssh.PublicKeys(other)); err == nil {
		t.Fatal("login with someone else's key succeeded")
	}
	c, err := dialSFTP(srv, addr, "alice", ssh.PublicKeys(other, signer))
	if err != nil {
		t.Fatalf("login with the user's key: %v", err)
	}
	_ = c.Close()
	if count(d, core.OnAuthSuccess) != 1 {
		t.Errorf("OnAuthSuccess fired %d times", count(d, core.OnAuthSuccess))
	}
}

func TestMultiStepAuth(t *testing.T) {
	signer, line := newKey(t)
	u := testUser("alice")
	u.PublicKeys = []string{line}
	u.AuthMethods = []string{"publickey+password"}
	srv, addr := startServer(t, newTestSite(t, testSiteConfig(t.TempDir(), u), nil))

	for name, auth := range map[string][]ssh.AuthMethod{
		"password only": {ssh.Password(testPassword)},
		"key only":      {ssh.PublicKeys(signer)},
		"key, bad pass": {ssh.PublicKeys(signer), ssh.Password("nope")},
	} {
		if c, err := dialSSH(srv, addr, "alice", auth...); err == nil {
			_ = c.Close()
			t.Errorf("%s: login succeeded", name)
		}
	}
	c, err := dialSFTP(srv, addr, "alice", ssh.PublicKeys(signer), ssh.Password(testPassword))
	if err != nil {
		t.Fatalf("publickey+password: %v", err)
	}
	if _, err := c.Getwd(); err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
}

func TestKeyboardInteractiveDefaultPrompt(t *testing.T) {
	srv, addr := startServer(t, newTestSite(t, testSiteConfig(t.TempDir(), testUser("alice")), nil))
	var prompts []string
	var echos []bool
	ki := func(answer string) ssh.AuthMethod {
		return ssh.KeyboardInteractive(func(_, _ string, qs []string, es []bool) ([]string, error) {
			prompts, echos = qs, es
			out := make([]string, len(qs))
			for i := range out {
				out[i] = answer
			}
			return out, nil
		})
	}
	if _, err := dialSSH(srv, addr, "alice", ki("wrong")); err == nil {
		t.Fatal("keyboard-interactive with a wrong password succeeded")
	}
	c, err := dialSFTP(srv, addr, "alice", ki(testPassword))
	if err != nil {
		t.Fatalf("keyboard-interactive: %v", err)
	}
	_ = c.Close()
	if len(prompts) != 1 || prompts[0] != "Password: " || echos[0] {
		t.Fatalf("prompts %q echo %v, want one non-echoed password prompt", prompts, echos)
	}
}

func TestLoginTimeout(t *testing.T) {
	cfg := testSiteConfig(t.TempDir(), testUser("alice"))
	cfg.Limits.LoginTimeout = config.Duration{Duration: 300 * time.Millisecond}
	d := recorder(core.OnConnectionClose)
	site := newTestSite(t, cfg, d)
	_, addr := startServer(t, site)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	start := time.Now()
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	banner, err := io.ReadAll(nc) // the server's identification, then EOF when it drops us
	if err != nil {
		t.Fatalf("connection not closed by the server: %v", err)
	}
	if !bytes.HasPrefix(banner, []byte("SSH-2.0-wharf")) {
		t.Errorf("identification %q", banner)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("dropped after %v", el)
	}
	coretest.Eventually(t, 5*time.Second, "session closed", func() bool {
		return len(site.Sessions()) == 0 && count(d, core.OnConnectionClose) == 1
	})
}

func TestIdleTimeout(t *testing.T) {
	cfg := testSiteConfig(t.TempDir(), testUser("alice"))
	cfg.Limits.IdleTimeout = config.Duration{Duration: 700 * time.Millisecond}
	site := newTestSite(t, cfg, nil)
	srv, addr := startServer(t, site)

	t.Run("idle session is closed", func(t *testing.T) {
		c := mustSFTP(t, srv, addr, "alice")
		done := make(chan struct{})
		go func() {
			_ = c.ssh.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("idle session still open after 10s")
		}
	})
	t.Run("slow transfer is not", func(t *testing.T) {
		c := mustSFTP(t, srv, addr, "alice")
		f, err := c.OpenFile("/slow.bin", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
		if err != nil {
			t.Fatal(err)
		}
		// 12 chunks, 250 ms apart: three times the idle timeout in all, never idle for long.
		chunk := bytes.Repeat([]byte("z"), 4096)
		for i := range 12 {
			if _, err := f.Write(chunk); err != nil {
				t.Fatalf("write %d: %v", i, err)
			}
			time.Sleep(250 * time.Millisecond) // a slow client, on purpose
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		fi, err := c.Stat("/slow.bin")
		if err != nil || fi.Size() != 12*4096 {
			t.Fatalf("stat: %v %v", fi, err)
		}
	})
}

func TestRefusedConnectionGetsNoBanner(t *testing.T) {
	cfg := testSiteConfig(t.TempDir(), testUser("alice"))
	p, _ := config.ParsePrefix("127.0.0.1/32")
	cfg.Protector.Block = []config.Prefix{{Prefix: p}}
	_, addr := startServer(t, newTestSite(t, cfg, nil))
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	data, err := io.ReadAll(nc)
	if err != nil || len(data) != 0 {
		t.Fatalf("refused connection got %q, %v; want an immediate close", data, err)
	}
}

func TestSoftwareIDAndClientVersion(t *testing.T) {
	d := &coretest.Dispatcher{}
	d.On(core.BeforeSendSoftwareID, func(ev *core.Event) { ev.Conn.SetSoftwareID("SSH-2.0-Custom_1.0") })
	versions := make(chan string, 1)
	d.On(core.OnAuthSuccess, func(ev *core.Event) { versions <- ev.Session.ClientVersion() })
	commands := make(chan string, 1)
	d.On(core.BeforeFileRename, func(ev *core.Event) { commands <- ev.Session.LastCommand() })
	srv, addr := startServer(t, newTestSite(t, testSiteConfig(t.TempDir(), testUser("alice")), d))
	c := mustSFTP(t, srv, addr, "alice")
	if got := string(c.ssh.ServerVersion()); got != "SSH-2.0-Custom_1.0" {
		t.Errorf("server version %q", got)
	}
	if got, want := <-versions, string(c.ssh.ClientVersion()); got != want {
		t.Errorf("session client version %q, want %q", got, want)
	}
	f, err := c.Create("/a")
	if err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	if err := c.Rename("/a", "/b"); err != nil {
		t.Fatal(err)
	}
	if got := <-commands; got != "RENAME /a /b" {
		t.Errorf("last command %q", got)
	}
}

func TestSubsystemRules(t *testing.T) {
	scpOnly := testUser("scponly")
	scpOnly.Subsystems = []string{"SCP"}
	cfg := testSiteConfig(t.TempDir(), testUser("alice"), scpOnly)
	no := false
	cfg.SSH.SCP = &no
	d := recorder(core.BeforeOpenSFTP)
	srv, addr := startServer(t, newTestSite(t, cfg, d))

	// A user without SFTP logs in (SCP is in the family) but gets no sftp subsystem.
	sc, err := dialSSH(srv, addr, "scponly", sshPassword())
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	s, err := sc.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RequestSubsystem("sftp"); err == nil {
		t.Error("sftp subsystem granted to a user without SFTP")
	}
	_ = s.Close()

	ac, err := dialSSH(srv, addr, "alice", sshPassword())
	if err != nil {
		t.Fatal(err)
	}
	defer ac.Close()
	run := func(cmd string) (string, error) {
		s, err := ac.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var stderr bytes.Buffer
		s.Stderr = &stderr
		if cmd == "" {
			err = s.Shell()
			if err == nil {
				err = s.Wait()
			}
		} else {
			err = s.Run(cmd)
		}
		return stderr.String(), err
	}
	for _, tc := range []struct{ cmd, want string }{
		{"scp -t /x", "SCP is disabled"},
		{"ls -la /", "commands are not available"},
		{"rm -rf / ; scp -f /x", "commands are not available"},
		{"", "shell access is not available"},
	} {
		msg, err := run(tc.cmd)
		var ee *ssh.ExitError
		if !errors.As(err, &ee) || ee.ExitStatus() != 1 || !strings.Contains(msg, tc.want) {
			t.Errorf("%q: err %v, stderr %q; want exit 1 and %q", tc.cmd, err, msg, tc.want)
		}
	}
	// Port forwarding is refused.
	if conn, err := ac.Dial("tcp", addr); err == nil {
		_ = conn.Close()
		t.Error("direct-tcpip channel accepted")
	}
	// SFTP still works on the same connection.
	s2, err := ac.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.RequestSubsystem("sftp"); err != nil {
		t.Fatalf("sftp subsystem: %v", err)
	}
	_ = s2.Close()
	if count(d, core.BeforeOpenSFTP) != 1 {
		t.Errorf("BeforeOpenSFTP fired %d times, want 1", count(d, core.BeforeOpenSFTP))
	}
}

func TestBlockedSubsystem(t *testing.T) {
	d := &coretest.Dispatcher{}
	d.On(core.BeforeOpenSFTP, func(ev *core.Event) { ev.Session.BlockOperation() })
	srv, addr := startServer(t, newTestSite(t, testSiteConfig(t.TempDir(), testUser("alice")), d))
	if c, err := dialSFTP(srv, addr, "alice", sshPassword()); err == nil {
		_ = c.Close()
		t.Fatal("sftp subsystem opened although BeforeOpenSFTP blocked it")
	}
}

func TestShutdownEndsSessions(t *testing.T) {
	d := recorder(core.OnConnectionClose)
	site := newTestSite(t, testSiteConfig(t.TempDir(), testUser("alice")), d)
	srv, err := New(site, Options{StateDir: sharedStateDir(t), Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	c, err := dialSFTP(srv, l.Addr().String(), "alice", sshPassword())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
	if count(d, core.OnConnectionClose) != 1 {
		t.Errorf("OnConnectionClose fired %d times", count(d, core.OnConnectionClose))
	}
	if _, err := c.Getwd(); err == nil {
		if _, err := c.Stat("/"); err == nil {
			t.Error("client still served after Shutdown")
		}
	}
	if err := srv.Serve(l); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Shutdown: %v", err)
	}
}

func TestHostKeys(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	site := newTestSite(t, testSiteConfig(t.TempDir(), testUser("alice")), nil)
	s1, err := New(site, Options{StateDir: dir, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("state dir: %v %v", fi.Mode(), err)
	}
	for _, f := range []string{ed25519KeyFile, rsaKeyFile} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v", f, fi.Mode(), err)
		}
		data, _ := os.ReadFile(filepath.Join(dir, f))
		if !bytes.HasPrefix(data, []byte("-----BEGIN OPENSSH PRIVATE KEY-----")) {
			t.Errorf("%s is not an OpenSSH private key", f)
		}
	}
	types := map[string]bool{}
	for _, k := range s1.HostKeys() {
		types[k.Type()] = true
		if k.Type() == ssh.KeyAlgoRSA {
			if n := k.(ssh.CryptoPublicKey).CryptoPublicKey(); n == nil {
				t.Error("rsa key without crypto key")
			}
		}
	}
	if !types[ssh.KeyAlgoED25519] || !types[ssh.KeyAlgoRSA] {
		t.Errorf("host key types %v", types)
	}
	// A restart reuses the keys.
	s2, err := New(site, Options{StateDir: dir, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range s2.HostKeys() {
		if !bytes.Equal(k.Marshal(), s1.HostKeys()[i].Marshal()) {
			t.Error("host key changed across restarts")
		}
	}
	// Configured key files are used instead.
	cfg := testSiteConfig(t.TempDir(), testUser("alice"))
	cfg.SSH.HostKeys = []string{filepath.Join(dir, ed25519KeyFile)}
	s3, err := New(newTestSite(t, cfg, nil), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(s3.HostKeys()) != 1 || s3.HostKeys()[0].Type() != ssh.KeyAlgoED25519 {
		t.Errorf("configured host keys not used: %v", s3.HostKeys())
	}
	// No keys and nowhere to put them is an error, not a silent ephemeral key.
	if _, err := New(site, Options{}); err == nil {
		t.Error("New without host keys or state dir succeeded")
	}
}

func TestNoWeakAlgorithms(t *testing.T) {
	srv, addr := startServer(t, newTestSite(t, testSiteConfig(t.TempDir(), testUser("alice")), nil))
	for name, cfg := range map[string]ssh.Config{
		"cbc":      {Ciphers: []string{"aes128-cbc"}},
		"sha1 mac": {Ciphers: []string{ssh.CipherAES128CTR}, MACs: []string{ssh.HMACSHA1}},
		"dh14sha1": {KeyExchanges: []string{"diffie-hellman-group14-sha1"}},
	} {
		_, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{Config: cfg, User: "alice",
			Auth: []ssh.AuthMethod{sshPassword()}, HostKeyCallback: hostKeyCallback(srv), Timeout: 5 * time.Second})
		if err == nil || !strings.Contains(err.Error(), "no common algorithm") {
			t.Errorf("%s: %v, want no common algorithm", name, err)
		}
	}
	// ssh-rsa (SHA-1) host key signatures are refused.
	_, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: "alice", Auth: []ssh.AuthMethod{sshPassword()},
		HostKeyCallback: hostKeyCallback(srv), HostKeyAlgorithms: []string{ssh.KeyAlgoRSA}, Timeout: 5 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "no common algorithm") {
		t.Errorf("ssh-rsa host key algorithm: %v, want no common algorithm", err)
	}
}

// Global requests are answered without holding up the connection: keepalives get "false"
// (OpenSSH's ServerAliveInterval only needs an answer), port forwarding is refused, and the
// session goes on working in between.
func TestGlobalRequests(t *testing.T) {
	site := newTestSite(t, testSiteConfig(t.TempDir(), testUser("alice")), nil)
	srv, addr := startServer(t, site)
	c := mustSFTP(t, srv, addr, "alice")
	for i := range 50 {
		ok, _, err := c.ssh.SendRequest("keepalive@openssh.com", true, nil)
		if err != nil || ok {
			t.Fatalf("keepalive %d: ok=%v err=%v", i, ok, err)
		}
		if i%10 == 0 {
			if _, err := c.Getwd(); err != nil {
				t.Fatal(err)
			}
		}
	}
	fwd := ssh.Marshal(&struct {
		Addr string
		Port uint32
	}{"127.0.0.1", 0})
	if ok, _, err := c.ssh.SendRequest("tcpip-forward", true, fwd); err != nil || ok {
		t.Fatalf("tcpip-forward: ok=%v err=%v", ok, err)
	}
	if _, err := c.ssh.Listen("tcp", "127.0.0.1:0"); err == nil {
		t.Fatal("remote port forwarding was accepted")
	}
	// A request without want-reply needs no answer and must not stall the connection.
	if _, _, err := c.ssh.SendRequest("no-more-sessions@openssh.com", false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadDir("/"); err != nil {
		t.Fatal(err)
	}
}

package core_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharf-project/wharf/third_party/ssh"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
)

func newSigner(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func authorizedLine(k ssh.PublicKey) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}

// loginKey tries a public-key login as the adapter does: the query, then the signed attempt.
func loginKey(t *testing.T, site *core.Site, ip, name string, key ssh.PublicKey) error {
	t.Helper()
	sess := connect(t, site, ip, core.ProtoSFTP)
	accepted := sess.AcceptsKey(name, key)
	err := sess.AuthPublicKey(context.Background(), name, key)
	if accepted != (err == nil) {
		t.Errorf("AcceptsKey says %v but AuthPublicKey says %v", accepted, err)
	}
	return err
}

// TestPublicKeyFromOption: public_keys and authorized_keys_file honour from= (issue #23
// item 13).
func TestPublicKeyFromOption(t *testing.T) {
	inline, inFile := newSigner(t), newSigner(t)
	file := filepath.Join(t.TempDir(), "authorized_keys")
	if err := os.WriteFile(file, []byte(`from="10.1.0.0/16,!10.1.0.66" `+authorizedLine(inFile.PublicKey())+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	site := testSite(t, []config.User{user("alice", func(u *config.User) {
		u.PublicKeys = []string{`from="192.0.2.*" ` + authorizedLine(inline.PublicKey())}
		u.AuthorizedKeysFile = file
	})}, nil, func(c *config.Site) { c.Protector.Threshold = 1000 })
	for _, tc := range []struct {
		ip   string
		key  ssh.PublicKey
		want bool
	}{
		{"192.0.2.10", inline.PublicKey(), true},
		{"198.51.100.10", inline.PublicKey(), false},
		{"10.1.2.3", inFile.PublicKey(), true},
		{"10.1.0.66", inFile.PublicKey(), false},
		{"10.2.0.1", inFile.PublicKey(), false},
	} {
		if err := loginKey(t, site, tc.ip, "alice", tc.key); (err == nil) != tc.want {
			t.Errorf("%s from %s: %v, want success %v", ssh.FingerprintSHA256(tc.key), tc.ip, err, tc.want)
		}
	}
}

// TestAuthorizedKeysFileFollowsChanges: a key added to or removed from the file counts from
// the next login, without a reload; a file that turns bad gives no keys (the inline ones
// still work) until it is fixed; a reload reads it too.
func TestAuthorizedKeysFileFollowsChanges(t *testing.T) {
	inline, a, b := newSigner(t), newSigner(t), newSigner(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "authorized_keys")
	write := func(lines ...string) {
		t.Helper()
		// A new file renamed into place, as editors and provisioning tools write it.
		if err := os.WriteFile(file+".new", []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(file+".new", file); err != nil {
			t.Fatal(err)
		}
	}
	write(authorizedLine(a.PublicKey()))
	cfg := func(c *config.Site) { c.Protector.Threshold = 1000 }
	users := []config.User{user("alice", func(u *config.User) {
		u.PublicKeys = []string{authorizedLine(inline.PublicKey())}
		u.AuthorizedKeysFile = file
	})}
	site := testSite(t, users, nil, cfg)
	try := func(k ssh.Signer) error { return loginKey(t, site, "192.0.2.1", "alice", k.PublicKey()) }

	if try(a) != nil || try(b) == nil || try(inline) != nil {
		t.Fatal("initial keys")
	}
	write(authorizedLine(b.PublicKey()))
	if try(a) == nil || try(b) != nil {
		t.Fatal("after replacing a by b the file's keys did not follow")
	}
	write(authorizedLine(b.PublicKey()), `command="/bin/true" `+authorizedLine(a.PublicKey()))
	if try(b) == nil || try(a) == nil {
		t.Fatal("a file with a bad line still gave keys")
	}
	if try(inline) != nil {
		t.Fatal("a bad file took the inline keys with it")
	}
	write(authorizedLine(a.PublicKey()), authorizedLine(b.PublicKey()))
	if try(a) != nil || try(b) != nil {
		t.Fatal("the fixed file was not read again")
	}

	// A reload with a bad file is refused (wharf reload checks by building the site).
	write("nonsense")
	if err := site.Reload(&config.Site{Name: "t", VFS: []config.VFS{{Name: "mem", Type: "memory"}}, Users: users}); err == nil ||
		!strings.Contains(err.Error(), "line 1") {
		t.Fatalf("reload with a bad authorized_keys_file: %v", err)
	}
	if _, err := core.NewSite(&config.Site{Name: "t", VFS: []config.VFS{{Name: "mem", Type: "memory"}}, Users: users}, core.Options{}); err == nil {
		t.Fatal("NewSite accepted a bad authorized_keys_file")
	}
}

// ca makes user certificates signed by one authority.
type ca struct {
	t      *testing.T
	signer ssh.Signer
}

func (c ca) line() string { return authorizedLine(c.signer.PublicKey()) }

func (c ca) cert(key ssh.PublicKey, mutate func(*ssh.Certificate)) *ssh.Certificate {
	c.t.Helper()
	cert := &ssh.Certificate{
		Key: key, Serial: 7, CertType: ssh.UserCert, KeyId: "alice@corp", ValidPrincipals: []string{"alice"},
		ValidAfter: uint64(time.Now().Add(-time.Hour).Unix()), ValidBefore: uint64(time.Now().Add(time.Hour).Unix()),
		Permissions: ssh.Permissions{Extensions: map[string]string{"permit-pty": ""}},
	}
	if mutate != nil {
		mutate(cert)
	}
	if err := cert.SignCert(rand.Reader, c.signer); err != nil {
		c.t.Fatal(err)
	}
	return cert
}

// TestUserCertificates: ssh.trusted_user_ca_keys as OpenSSH's TrustedUserCAKeys (issue #23
// item 13): principals name the user id, validity and source-address are checked, and any
// other critical option, force-command included, refuses the certificate. A user without
// keys of its own may log in with a certificate.
func TestUserCertificates(t *testing.T) {
	trusted, other := ca{t, newSigner(t)}, ca{t, newSigner(t)}
	caFile := filepath.Join(t.TempDir(), "user_ca.pub")
	if err := os.WriteFile(caFile, []byte("# corp CA\n"+trusted.line()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	site, err := core.NewSite(&config.Site{Name: "t", SSH: config.SSH{TrustedUserCAKeys: caFile},
		Limits: config.Limits{MaxConnections: 50, MaxConnectionsPerIP: 50}, VFS: []config.VFS{{Name: "mem", Type: "memory"}},
		Users: []config.User{user("alice"), user("bob")}}, core.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = site.Shutdown(context.Background()) })
	key := newSigner(t).PublicKey()
	for _, tc := range []struct {
		name   string
		cert   *ssh.Certificate
		login  string
		ip     string
		reason string // "" = accepted; else what the log says
	}{
		{"valid", trusted.cert(key, nil), "alice", "192.0.2.1", ""},
		{"forever", trusted.cert(key, func(c *ssh.Certificate) { c.ValidBefore = ssh.CertTimeInfinity }), "alice", "192.0.2.1", ""},
		{"second principal", trusted.cert(key, func(c *ssh.Certificate) { c.ValidPrincipals = []string{"ops", "alice"} }), "alice", "192.0.2.1", ""},
		{"expired", trusted.cert(key, func(c *ssh.Certificate) { c.ValidBefore = uint64(time.Now().Add(-time.Minute).Unix()) }), "alice", "192.0.2.1", "cert has expired"},
		{"not yet valid", trusted.cert(key, func(c *ssh.Certificate) { c.ValidAfter = uint64(time.Now().Add(time.Hour).Unix()) }), "alice", "192.0.2.1", "cert is not yet valid"},
		{"wrong principal", trusted.cert(key, nil), "bob", "192.0.2.1", `principal \"bob\" not in the set of valid principals`},
		{"unknown user", trusted.cert(key, func(c *ssh.Certificate) { c.ValidPrincipals = []string{"mallory"} }), "mallory", "192.0.2.1", "login=mallory"},
		{"other CA", other.cert(key, nil), "alice", "192.0.2.1", "certificate not signed by an authority in ssh.trusted_user_ca_keys"},
		{"source-address match", trusted.cert(key, func(c *ssh.Certificate) {
			c.CriticalOptions = map[string]string{"source-address": "10.0.0.1,192.0.2.0/24"}
		}), "alice", "192.0.2.1", ""},
		{"source-address mismatch", trusted.cert(key, func(c *ssh.Certificate) { c.CriticalOptions = map[string]string{"source-address": "10.0.0.0/8"} }), "alice", "192.0.2.1", `source-address \"10.0.0.0/8\" does not allow 192.0.2.1`},
		{"force-command", trusted.cert(key, func(c *ssh.Certificate) { c.CriticalOptions = map[string]string{"force-command": "internal-sftp"} }), "alice", "192.0.2.1", `unsupported critical option \"force-command\"`},
		{"host certificate", trusted.cert(key, func(c *ssh.Certificate) { c.CertType = ssh.HostCert }), "alice", "192.0.2.1", "not a user certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs.Reset()
			err := loginKey(t, site, tc.ip, tc.login, tc.cert)
			switch {
			case tc.reason == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.reason != "" && err == nil:
				t.Fatal("accepted")
			case tc.reason != "" && !errors.Is(err, core.ErrAuth):
				t.Fatalf("refused with %v, want an authentication failure", err)
			case tc.reason != "" && !strings.Contains(logs.String(), tc.reason):
				t.Fatalf("the log does not say %q:\n%s", tc.reason, logs.String())
			}
		})
	}

	// The certificate's own key is not an authorized key, and a site without authorities takes
	// no certificates.
	if err := loginKey(t, site, "192.0.2.1", "alice", key); err == nil {
		t.Error("the certified key logged in as a plain key")
	}
	plain := testSite(t, []config.User{user("alice")}, nil)
	if err := loginKey(t, plain, "192.0.2.1", "alice", trusted.cert(key, nil)); err == nil {
		t.Error("a site without trusted_user_ca_keys accepted a certificate")
	}
}

// syncBuffer is a log destination that connection goroutines may write while a test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}

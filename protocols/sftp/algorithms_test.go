package sftp

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	wssh "github.com/wharf-project/wharf/third_party/ssh"

	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/core/coretest"
)

// algoRig is a server with host keys of every type and a user with client keys of every type,
// driven by OpenSSH's sftp in batch mode.
type algoRig struct {
	t        *testing.T
	sftp     string
	srv      *Server
	addr     string
	port     string
	work     string
	home     string
	known    string            // known_hosts with every host key
	keys     map[string]string // client key files by name (ed25519, ecdsa256, ..., rsa)
	openssh  map[string][]string
	env      []string
	hostKeys []string
}

// newAlgoRig starts a server whose ssh section mutate sets.
func newAlgoRig(t *testing.T, mutate func(*config.SSH)) *algoRig {
	t.Helper()
	r := &algoRig{t: t, sftp: coretest.NeedBinary(t, "sftp"), work: t.TempDir(), keys: map[string]string{}, openssh: map[string][]string{}}
	sshBin := coretest.NeedBinary(t, "ssh")
	keygen := coretest.NeedBinary(t, "ssh-keygen")
	for _, q := range []string{"kex", "cipher", "mac", "HostKeyAlgorithms", "PubkeyAcceptedAlgorithms"} {
		out, err := exec.Command(sshBin, "-Q", q).Output()
		if err != nil {
			t.Fatalf("ssh -Q %s: %v", q, err)
		}
		r.openssh[q] = strings.Fields(string(out))
	}
	gen := func(file string, args ...string) {
		t.Helper()
		if out, err := exec.Command(keygen, append([]string{"-q", "-N", "", "-C", "wharf-test", "-f", file}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen %v: %v\n%s", args, err, out)
		}
	}
	// Host keys: ed25519 and RSA from the shared state folder, ECDSA of each curve made here.
	state := sharedStateDir(t)
	r.hostKeys = []string{filepath.Join(state, ed25519KeyFile), filepath.Join(state, rsaKeyFile)}
	for _, bits := range []string{"256", "384", "521"} {
		f := filepath.Join(r.work, "host_ecdsa"+bits)
		gen(f, "-t", "ecdsa", "-b", bits)
		r.hostKeys = append(r.hostKeys, f)
	}
	var pubs []string
	for name, args := range map[string][]string{
		"ed25519": {"-t", "ed25519"}, "ecdsa256": {"-t", "ecdsa", "-b", "256"}, "ecdsa384": {"-t", "ecdsa", "-b", "384"},
		"ecdsa521": {"-t", "ecdsa", "-b", "521"}, "rsa": {"-t", "rsa", "-b", "2048"},
	} {
		f := filepath.Join(r.work, "id_"+name)
		gen(f, args...)
		pub, err := os.ReadFile(f + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		r.keys[name] = f
		pubs = append(pubs, strings.TrimSpace(string(pub)))
	}
	u := testUser("alice")
	u.PublicKeys = pubs
	cfg := testSiteConfig(t.TempDir(), u)
	cfg.SSH.HostKeys = r.hostKeys
	off := false
	cfg.Protector.Enabled = &off // the refusal tests fail many handshakes from 127.0.0.1
	if mutate != nil {
		mutate(&cfg.SSH)
	}
	r.srv, r.addr = startServer(t, newTestSite(t, cfg, nil))
	_, r.port, _ = net.SplitHostPort(r.addr)
	r.home = filepath.Join(filepath.Dir(filepath.Dir(cfg.VFS[0].Root)), "home", "alice")
	if err := os.MkdirAll(r.home, 0o755); err != nil {
		t.Fatal(err)
	}
	// Every host key the server presents, so that StrictHostKeyChecking=yes proves which one
	// signed.
	var kh strings.Builder
	for _, k := range r.srv.HostKeys() {
		fmt.Fprintf(&kh, "[127.0.0.1]:%s %s", r.port, wssh.MarshalAuthorizedKey(k))
	}
	r.known = filepath.Join(r.work, "known_hosts")
	if err := os.WriteFile(r.known, []byte(kh.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	clientHome := filepath.Join(r.work, "home")
	if err := os.MkdirAll(clientHome, 0o700); err != nil {
		t.Fatal(err)
	}
	r.env = []string{"HOME=" + clientHome, "PATH=" + os.Getenv("PATH"), "LANG=C"}
	putFile(t, filepath.Join(r.work, "a.bin"), randomBytes(t, 200_000))
	return r
}

// has reports whether the local OpenSSH implements name (ssh -Q kind).
func (r *algoRig) has(kind, name string) bool { return slices.Contains(r.openssh[kind], name) }

// sftpWith uploads and downloads a file with OpenSSH's sftp in batch mode, with the given
// client options and key.
func (r *algoRig) sftpWith(tag, key string, opts ...string) (string, error) {
	batch := filepath.Join(r.work, "batch-"+tag)
	remote := "up-" + tag + ".bin"
	putFile(r.t, batch, []byte(fmt.Sprintf("put a.bin %[1]s\nget %[1]s back-%[2]s.bin\n", remote, tag)))
	args := []string{"-F", "/dev/null", "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + r.known,
		"-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=10",
		"-i", r.keys[key], "-P", r.port, "-b", batch}
	args = append(append(args, opts...), "alice@127.0.0.1")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.sftp, args...)
	cmd.Env, cmd.Dir = r.env, r.work
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), err
	}
	sameFile(r.t, filepath.Join(r.work, "a.bin"), filepath.Join(r.home, remote))
	sameFile(r.t, filepath.Join(r.work, "a.bin"), filepath.Join(r.work, "back-"+tag+".bin"))
	return string(out), nil
}

// algoCase is one algorithm forced on the client.
type algoCase struct {
	kind   string // ssh -Q name
	name   string
	key    string   // client key to log in with
	opts   []string // client options forcing it
	legacy bool
}

// everyAlgorithm lists every algorithm the SSH library implements (legacy ones included),
// each with the OpenSSH options that force it.
func everyAlgorithm() []algoCase {
	sup, insecure := wssh.SupportedAlgorithms(), wssh.InsecureAlgorithms()
	var cases []algoCase
	add := func(kind string, names, legacyNames []string, opt func(string) (string, []string)) {
		for _, n := range slices.Concat(names, legacyNames) {
			key, opts := opt(n)
			cases = append(cases, algoCase{kind: kind, name: n, key: key, opts: opts, legacy: slices.Contains(legacyNames, n)})
		}
	}
	add("kex", append(sup.KeyExchanges, "curve25519-sha256@libssh.org"), insecure.KeyExchanges, func(n string) (string, []string) {
		return "ed25519", []string{"-o", "KexAlgorithms=" + n}
	})
	add("cipher", sup.Ciphers, insecure.Ciphers, func(n string) (string, []string) {
		return "ed25519", []string{"-o", "Ciphers=" + n}
	})
	macs := slices.DeleteFunc(slices.Clone(sup.MACs), func(m string) bool { return m == wssh.HMACSHA1 })
	add("mac", macs, append(insecure.MACs, wssh.HMACSHA1), func(n string) (string, []string) {
		// MACs apply to CTR ciphers only.
		return "ed25519", []string{"-o", "Ciphers=aes128-ctr", "-o", "MACs=" + n}
	})
	hostKeys := slices.DeleteFunc(slices.Clone(sup.HostKeys), func(a string) bool { return strings.Contains(a, "-cert-") })
	add("HostKeyAlgorithms", hostKeys, []string{wssh.KeyAlgoRSA}, func(n string) (string, []string) {
		return "ed25519", []string{"-o", "HostKeyAlgorithms=" + n}
	})
	add("PubkeyAcceptedAlgorithms", sup.PublicKeyAuths, insecure.PublicKeyAuths, func(n string) (string, []string) {
		key := map[string]string{wssh.KeyAlgoED25519: "ed25519", wssh.KeyAlgoECDSA256: "ecdsa256", wssh.KeyAlgoECDSA384: "ecdsa384",
			wssh.KeyAlgoECDSA521: "ecdsa521", wssh.KeyAlgoRSASHA256: "rsa", wssh.KeyAlgoRSASHA512: "rsa", wssh.KeyAlgoRSA: "rsa"}[n]
		return key, []string{"-o", "PubkeyAcceptedAlgorithms=" + n}
	})
	return cases
}

// TestOpenSSHForcesEveryAlgorithm is issue #23 item 11: with every algorithm enabled
// (allow_legacy), OpenSSH's sftp forcing any one of them uploads and downloads a file. An
// algorithm the local OpenSSH does not implement is tried with the Go client instead; only
// FIDO keys (sk-*), which need an authenticator, are not tried at all.
func TestOpenSSHForcesEveryAlgorithm(t *testing.T) {
	sup, insecure := wssh.SupportedAlgorithms(), wssh.InsecureAlgorithms()
	r := newAlgoRig(t, func(c *config.SSH) {
		c.Kex = slices.Concat(sup.KeyExchanges, insecure.KeyExchanges)
		c.Ciphers = slices.Concat(sup.Ciphers, insecure.Ciphers)
		c.MACs = slices.Concat(sup.MACs, insecure.MACs)
		c.HostKeyAlgorithms = append(defaultHostKeyAlgorithms(), wssh.KeyAlgoRSA)
		c.PublicKeyAlgorithms = slices.Concat(sup.PublicKeyAuths, insecure.PublicKeyAuths)
		c.AllowLegacy = true
	})
	for _, c := range everyAlgorithm() {
		t.Run(c.kind+"/"+c.name, func(t *testing.T) {
			if strings.HasPrefix(c.name, "sk-") {
				t.Skip("a FIDO key needs an authenticator")
			}
			if !r.has(c.kind, c.name) {
				if c.kind == "PubkeyAcceptedAlgorithms" || c.kind == "HostKeyAlgorithms" {
					t.Skipf("the local OpenSSH does not implement %s (and no key of that type can be made here)", c.name)
				}
				t.Logf("the local OpenSSH does not implement %s: trying the Go client", c.name)
				goClientForces(t, r, c)
				return
			}
			tag := strings.NewReplacer("@", "_", "/", "_").Replace(c.kind + "-" + c.name)
			if out, err := r.sftpWith(tag, c.key, c.opts...); err != nil {
				t.Fatalf("sftp %s: %v\n%s", strings.Join(c.opts, " "), err, out)
			}
		})
	}
}

// goClientForces logs in with x/crypto's client restricted to one key exchange, cipher or MAC
// and checks a file round trip.
func goClientForces(t *testing.T, r *algoRig, c algoCase) {
	t.Helper()
	cfg := &ssh.ClientConfig{User: "alice", Auth: []ssh.AuthMethod{sshPassword()}, HostKeyCallback: hostKeyCallback(r.srv), Timeout: 10 * time.Second}
	switch c.kind {
	case "kex":
		cfg.KeyExchanges = []string{c.name}
	case "cipher":
		cfg.Ciphers = []string{c.name}
	case "mac":
		cfg.Ciphers, cfg.MACs = []string{"aes128-ctr"}, []string{c.name}
	default:
		t.Fatalf("no Go client case for %s", c.kind)
	}
	sc, err := ssh.Dial("tcp", r.addr, cfg)
	if err != nil {
		t.Fatalf("Go client forcing %s: %v", c.name, err)
	}
	defer sc.Close()
	sess, err := sc.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	// A checksum command is a round trip of data in both directions.
	sess.Stdin = strings.NewReader("abc")
	out, err := sess.Output("md5sum")
	if err != nil || string(out) != "900150983cd24fb0d6963f7d28e17f72  -\n" {
		t.Fatalf("md5sum over %s: %q, %v", c.name, out, err)
	}
}

// TestDefaultAlgorithmsRefuseLegacy: without an ssh algorithm section the server offers
// today's modern set, so OpenSSH forcing a legacy algorithm (or one outside the default) fails
// to connect, while the default set works.
func TestDefaultAlgorithmsRefuseLegacy(t *testing.T) {
	r := newAlgoRig(t, nil)
	for _, c := range everyAlgorithm() {
		if !c.legacy || !r.has(c.kind, c.name) {
			continue
		}
		t.Run(c.kind+"/"+c.name, func(t *testing.T) {
			if out, err := r.sftpWith("legacy", c.key, c.opts...); err == nil {
				t.Fatalf("sftp %s connected to a default server:\n%s", strings.Join(c.opts, " "), out)
			}
		})
	}
	// Not legacy, but not in today's default either.
	for _, opt := range []string{"KexAlgorithms=ecdh-sha2-nistp256", "KexAlgorithms=diffie-hellman-group14-sha256"} {
		if out, err := r.sftpWith("nodefault", "ed25519", "-o", opt); err == nil {
			t.Errorf("sftp -o %s connected to a default server:\n%s", opt, out)
		}
	}
	if out, err := r.sftpWith("default", "ed25519"); err != nil {
		t.Fatalf("the default set: %v\n%s", err, out)
	}
}

// TestFIPSProfile: a server configured with only what a FIPS-mode client offers serves such
// a client (NIST curves, finite-field DH with SHA-2, AES, HMAC-SHA2, ECDSA and RSA-SHA2 host
// and user keys) and refuses one that asks for curve25519 or ChaCha20-Poly1305.
func TestFIPSProfile(t *testing.T) {
	r := newAlgoRig(t, func(c *config.SSH) {
		c.Kex = []string{"ecdh-sha2-nistp256", "ecdh-sha2-nistp384", "ecdh-sha2-nistp521", "diffie-hellman-group14-sha256", "diffie-hellman-group16-sha512"}
		c.Ciphers = []string{"aes256-gcm@openssh.com", "aes128-gcm@openssh.com", "aes256-ctr", "aes128-ctr"}
		c.MACs = []string{"hmac-sha2-256", "hmac-sha2-512"}
		c.HostKeyAlgorithms = []string{"ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "rsa-sha2-512", "rsa-sha2-256"}
		c.PublicKeyAlgorithms = []string{"ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "rsa-sha2-256", "rsa-sha2-512"}
	})
	// The server left its ed25519 key out.
	for _, k := range r.srv.HostKeys() {
		if k.Type() == wssh.KeyAlgoED25519 || k.Type() == wssh.KeyAlgoECDSA521 {
			t.Errorf("a %s host key is offered", k.Type())
		}
	}
	fips := []string{"-o", "KexAlgorithms=ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,diffie-hellman-group14-sha256,diffie-hellman-group16-sha512",
		"-o", "Ciphers=aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr,aes128-ctr", "-o", "MACs=hmac-sha2-256,hmac-sha2-512",
		"-o", "HostKeyAlgorithms=ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,rsa-sha2-512,rsa-sha2-256"}
	for _, key := range []string{"ecdsa256", "rsa"} {
		if out, err := r.sftpWith("fips-"+key, key, append(fips, "-o", "PubkeyAcceptedAlgorithms=ecdsa-sha2-nistp256,rsa-sha2-512,rsa-sha2-256")...); err != nil {
			t.Fatalf("a FIPS-mode client with an %s key: %v\n%s", key, err, out)
		}
	}
	for _, opts := range [][]string{
		{"-o", "KexAlgorithms=curve25519-sha256"},
		{"-o", "Ciphers=chacha20-poly1305@openssh.com"},
		{"-o", "HostKeyAlgorithms=ssh-ed25519"},
	} {
		if out, err := r.sftpWith("nonfips", "ecdsa256", opts...); err == nil {
			t.Errorf("sftp %v connected:\n%s", opts, out)
		}
	}
	if out, err := r.sftpWith("ed25519-user", "ed25519"); err == nil {
		t.Errorf("an ed25519 user key was accepted:\n%s", out)
	}
}

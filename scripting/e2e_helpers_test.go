package scripting_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"net"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jftp "github.com/jlaffaye/ftp"
	pkgsftp "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/core/coretest"
	"github.com/wharf-project/wharf/protocols/ftp"
	"github.com/wharf-project/wharf/protocols/sftp"
	"github.com/wharf-project/wharf/scripting"
)

// stack is a test site with every adapter listening on loopback: SSH (SFTP and SCP), FTP
// (with AUTH TLS) and implicit FTPS, plus what external clients need to log in as alice.
type stack struct {
	*env
	sshAddr, ftpAddr, ftpsAddr string
	key                        string   // alice's OpenSSH private key file
	work                       string   // the clients' folder
	cliEnv                     []string // a private HOME, so no user config or agent leaks in
}

// newStack builds an env like newEnv with alice (password "pw", and an ed25519 key for the
// OpenSSH clients) plus extra users, and starts all adapters for it.
func newStack(t *testing.T, scripts map[string]string, handlers []config.EventHandler, extra ...config.User) *stack {
	t.Helper()
	return buildStack(t, scripts, handlers, stackSetup{extra: extra})
}

// stackSetup is what a test changes in the stack newStack builds.
type stackSetup struct {
	extra   []config.User            // users besides alice
	mutate  func(*config.Site)       // changes the config before the site is built
	engine  func(*scripting.Options) // engine options (mail, HTTP transport, async pool)
	lang    string                   // the clients' LANG ("C" when empty)
	sshOnly bool                     // start only the SSH adapter
}

// buildStack builds the site for alice plus o.extra and starts its adapters on loopback.
func buildStack(t *testing.T, scripts map[string]string, handlers []config.EventHandler, o stackSetup) *stack {
	t.Helper()
	work := t.TempDir()
	key, authorized := newClientKey(t, filepath.Join(work, "id_ed25519"))
	users := append([]config.User{testUser("alice", func(u *config.User) { u.PublicKeys = []string{authorized} })}, o.extra...)
	cfg, root := newConfig(t, scripts, handlers, users...)
	cfg.Limits.IdleTimeout.Duration = 30 * time.Second
	cfg.Limits.LoginTimeout.Duration = 10 * time.Second
	cfg.SSH.HostKeys = []string{newHostKey(t, filepath.Join(work, "host_ed25519"))}
	if o.mutate != nil {
		o.mutate(cfg)
	}
	e := buildEnvOpts(t, cfg, root, o.engine)
	for _, u := range users {
		must(t, os.MkdirAll(filepath.Join(root, u.ID), 0o755))
	}
	s := &stack{env: e, key: key, work: work}
	home := filepath.Join(work, "home")
	must(t, os.MkdirAll(home, 0o700))
	lang := o.lang
	if lang == "" {
		lang = "C"
	}
	s.cliEnv = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "LANG=" + lang}

	ssrv, err := sftp.New(e.site, sftp.Options{})
	must(t, err)
	s.sshAddr = serveOn(t, ssrv.Serve, ssrv.Shutdown)
	if o.sshOnly {
		return s
	}
	fsrv, err := ftp.New(e.site, ftp.Options{StateDir: t.TempDir()})
	must(t, err)
	s.ftpAddr = serveOn(t, fsrv.Serve, fsrv.Shutdown)
	isrv, err := ftp.New(e.site, ftp.Options{StateDir: t.TempDir(), Implicit: true})
	must(t, err)
	s.ftpsAddr = serveOn(t, isrv.Serve, isrv.Shutdown)
	return s
}

// newClientKey writes an OpenSSH private key and returns its file and authorized_keys line.
func newClientKey(t *testing.T, file string) (string, string) {
	t.Helper()
	pub := writeKey(t, file)
	return file, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
}

// newHostKey writes a server host key and returns its file.
func newHostKey(t *testing.T, file string) string {
	t.Helper()
	writeKey(t, file)
	return file
}

// writeKey writes a new ed25519 private key in OpenSSH format and returns its public key.
func writeKey(tb testing.TB, file string) ssh.PublicKey {
	tb.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "wharf-test")
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
		tb.Fatal(err)
	}
	spub, err := ssh.NewPublicKey(pub)
	if err != nil {
		tb.Fatal(err)
	}
	return spub
}

// home is a user's folder on the host.
func (s *stack) home(user string) string { return filepath.Join(s.root, user) }

func (s *stack) sshPort() string { _, p, _ := net.SplitHostPort(s.sshAddr); return p }
func (s *stack) ftpPort() string { _, p, _ := net.SplitHostPort(s.ftpAddr); return p }

// dialSSH logs in over SSH with a password.
func (s *stack) dialSSH(t *testing.T, user, password string) *ssh.Client {
	t.Helper()
	c, err := ssh.Dial("tcp", s.sshAddr, &ssh.ClientConfig{User: user, Auth: []ssh.AuthMethod{ssh.Password(password)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second}) // a test server's fresh key
	must(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// sftpc opens an SFTP client (pkg/sftp) as user.
func (s *stack) sftpc(t *testing.T, user, password string) *sftpClient {
	t.Helper()
	sc := s.dialSSH(t, user, password)
	c, err := pkgsftp.NewClient(sc)
	must(t, err)
	return &sftpClient{ssh: sc, c: c}
}

// ftpMode is how a jlaffaye/ftp client reaches the server.
type ftpMode int

const (
	modeFTP   ftpMode = iota // plain
	modeFTPES                // AUTH TLS, PROT P
	modeFTPS                 // implicit TLS
)

func (m ftpMode) String() string { return [...]string{"FTP", "FTPES", "FTPS"}[m] }

// clientTLS caches sessions, so data connections resume the control connection's TLS session
// (the server requires it). ServerName keys the cache: without it Go keys sessions by
// host:port and every passive port would miss. The server's certificate is a fresh
// self-signed one, so it is not verified.
func clientTLS() *tls.Config {
	return &tls.Config{ServerName: "127.0.0.1", InsecureSkipVerify: true, //nolint:gosec // test server
		ClientSessionCache: tls.NewLRUClientSessionCache(16)}
}

// ftpc logs in with jlaffaye/ftp.
func (s *stack) ftpc(t *testing.T, m ftpMode, user, password string) *ftpClient {
	t.Helper()
	c, err := s.dialFTP(m, user, password)
	must(t, err)
	return &ftpClient{c: c}
}

func (s *stack) dialFTP(m ftpMode, user, password string) (*jftp.ServerConn, error) {
	opts := []jftp.DialOption{jftp.DialWithTimeout(10 * time.Second)}
	addr := s.ftpAddr
	switch m {
	case modeFTPES:
		opts = append(opts, jftp.DialWithExplicitTLS(clientTLS()))
	case modeFTPS:
		opts = append(opts, jftp.DialWithTLS(clientTLS()))
		addr = s.ftpsAddr
	}
	c, err := jftp.Dial(addr, opts...)
	if err != nil {
		return nil, err
	}
	if err := c.Login(user, password); err != nil {
		_ = c.Quit()
		return nil, err
	}
	return c, nil
}

// goClients are the in-process protocol clients: pkg/sftp and jlaffaye/ftp in each mode.
func (s *stack) goClients() []struct {
	name string
	dial func(t *testing.T) client
} {
	type gc = struct {
		name string
		dial func(t *testing.T) client
	}
	out := []gc{{"SFTP", func(t *testing.T) client { return s.sftpc(t, "alice", "pw") }}}
	for _, m := range []ftpMode{modeFTP, modeFTPES, modeFTPS} {
		out = append(out, gc{m.String(), func(t *testing.T) client { return s.ftpc(t, m, "alice", "pw") }})
	}
	return out
}

// isDenied reports whether err is the protocol's "permission denied" (pkg/sftp turns
// SSH_FX_PERMISSION_DENIED into os.ErrPermission).
func isDenied(err error) bool {
	if errors.Is(err, os.ErrPermission) {
		return true
	}
	var se *pkgsftp.StatusError
	if errors.As(err, &se) {
		return se.FxCode() == pkgsftp.ErrSSHFxPermissionDenied
	}
	var te *textproto.Error
	return errors.As(err, &te) && te.Code == 550
}

// isNotFound reports whether err is the protocol's "no such file" (pkg/sftp turns
// SSH_FX_NO_SUCH_FILE into os.ErrNotExist; FTP has only 550).
func isNotFound(err error) bool {
	if errors.Is(err, os.ErrNotExist) {
		return true
	}
	var se *pkgsftp.StatusError
	if errors.As(err, &se) {
		return se.FxCode() == pkgsftp.ErrSSHFxNoSuchFile
	}
	var te *textproto.Error
	return errors.As(err, &te) && te.Code == 550
}

// needPython returns /usr/bin/python3 once paramiko imports.
func needPython(t *testing.T) string {
	t.Helper()
	py := coretest.NeedBinary(t, "/usr/bin/python3")
	if out, err := exec.Command(py, "-c", "import paramiko").CombinedOutput(); err != nil {
		if os.Getenv("WHARF_E2E") == "1" {
			t.Fatalf("WHARF_E2E=1 but paramiko is not importable: %v\n%s", err, out)
		}
		t.Skip("python3-paramiko not installed")
	}
	return py
}

// sshOptions are the OpenSSH client options: alice's key, no host key checks, no config.
func (s *stack) sshOptions() []string {
	return []string{"-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=10",
		"-i", s.key}
}

// try runs a client in the work folder with a deadline and returns its combined output.
func (s *stack) try(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = s.cliEnv
	cmd.Dir = s.work
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// run is try that fails the test on error.
func (s *stack) run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := s.try(name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return out
}

// local is a file in the clients' folder, written with data unless data is nil.
func (s *stack) local(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(s.work, name)
	if data != nil {
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, data, 0o644))
	}
	return p
}

// scpArgs are the arguments of OpenSSH scp; legacy adds -O (the old SCP protocol).
func (s *stack) scpArgs(legacy bool, args ...string) []string {
	all := append(s.sshOptions(), "-P", s.sshPort())
	if legacy {
		all = append(all, "-O")
	}
	return append(all, args...)
}

// sftpBatch runs OpenSSH sftp with a batch of commands as alice.
func (s *stack) sftpBatch(t *testing.T, commands ...string) (string, error) {
	t.Helper()
	bin := coretest.NeedBinary(t, "sftp")
	batch := s.local(t, "batch.sftp", []byte(strings.Join(commands, "\n")+"\n"))
	return s.try(bin, append(s.sshOptions(), "-P", s.sshPort(), "-b", batch, "alice@127.0.0.1")...)
}

// records returns the log records whose message starts with prefix.
func (e *env) records(prefix string) []record {
	var out []record
	for _, r := range e.logs.find(prefix) {
		if strings.HasPrefix(r.Msg, prefix) {
			out = append(out, r)
		}
	}
	return out
}

// waitRecords polls until n records start with prefix and returns them.
func (e *env) waitRecords(t *testing.T, prefix string, n int) []record {
	t.Helper()
	coretest.Eventually(t, 5*time.Second, "log lines "+prefix, func() bool { return len(e.records(prefix)) >= n })
	return e.records(prefix)
}

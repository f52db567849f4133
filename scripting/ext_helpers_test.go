package scripting_test

import (
	"context"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	pkgsftp "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/internal/smtptest"
	"github.com/wharf-project/wharf/ops/mailq"
	"github.com/wharf-project/wharf/scripting"
)

// Helpers of the mail, HTTP and asynchronous handler tests.

// buildEnvOpts is buildEnv with engine options set by mut (mail, HTTP transport, async
// pool).
func buildEnvOpts(t *testing.T, cfg *config.Site, root string, mut func(*scripting.Options)) *env {
	t.Helper()
	e := &env{t: t, dir: cfg.ScriptsDir, root: root, cfg: cfg, logs: &logSink{}}
	opts := scripting.Options{Logger: e.logs.logger(), PoolSize: 4, Observe: func(a scripting.Action) {
		e.mu.Lock()
		e.acts = append(e.acts, a)
		e.mu.Unlock()
	}}
	if mut != nil {
		mut(&opts)
	}
	eng, err := scripting.New(cfg, opts)
	if err != nil {
		t.Fatalf("scripting.New: %v", err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	site, err := core.NewSite(cfg, core.Options{Logger: e.logs.logger(), Events: eng})
	if err != nil {
		t.Fatalf("core.NewSite: %v", err)
	}
	t.Cleanup(func() { _ = site.Shutdown(context.Background()) })
	e.site, e.engine = site, eng
	return e
}

// queueMailer hands scripts' mail to a mailq.Queue, as the server does.
type queueMailer struct{ q *mailq.Queue }

func (m queueMailer) Enqueue(site string, msg *scripting.Mail) (string, error) {
	return m.q.Enqueue(site, (*mailq.Message)(msg))
}

// mailSetup is a real SMTP server (STARTTLS, AUTH) and a mail queue that delivers to it.
type mailSetup struct {
	srv   *smtptest.Server
	queue *mailq.Queue
	relay *config.SMTP
}

func newMailSetup(t *testing.T) *mailSetup {
	t.Helper()
	srv := smtptest.Start(t, smtptest.Options{TLS: "starttls", Username: "wharf", Password: "relay-pw"})
	relay := &config.SMTP{Host: srv.Host, Port: srv.Port, TLS: "starttls", CAFile: srv.CAFile, Username: "wharf",
		Password: config.InlineSecret("relay-pw"), From: "wharf@example.com", MaxMessageSize: 1 << 20,
		Timeout: config.Duration{Duration: 10 * time.Second}, GiveUpAfter: config.Duration{Duration: time.Hour}}
	q, err := mailq.Open(mailq.Options{Dir: filepath.Join(t.TempDir(), "mail"), Relay: func(string) *config.SMTP { return relay },
		Logger: slog.New(slog.DiscardHandler), RetryMin: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	q.Start()
	t.Cleanup(func() { _ = q.Close(context.Background()) })
	return &mailSetup{srv: srv, queue: q, relay: relay}
}

// asyncCounts records what the engine reports about asynchronous runs.
type asyncCounts struct {
	mu      sync.Mutex
	runs    map[string]int
	failed  map[string]int
	dropped map[string]int
}

func newAsyncCounts() *asyncCounts {
	return &asyncCounts{runs: map[string]int{}, failed: map[string]int{}, dropped: map[string]int{}}
}

func (c *asyncCounts) AsyncRun(site, event string, d time.Duration, failed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.runs[event]++
	if failed {
		c.failed[event]++
	}
}

func (c *asyncCounts) AsyncDropped(site, event string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropped[event]++
}

func (c *asyncCounts) get(m map[string]int, ev string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return m[ev]
}

// transportTrusting returns an HTTP transport that trusts a test server's certificate.
func transportTrusting(c interface{ Client() *http.Client }) http.RoundTripper {
	return c.Client().Transport
}

// newSSHStack is newStack with engine options and only the SSH adapter: alice (password
// "pw" and a key for OpenSSH) plus extra users, the site's handlers, scripts.
func newSSHStack(t *testing.T, scripts map[string]string, handlers []config.EventHandler, mut func(*scripting.Options), extra ...config.User) *stack {
	t.Helper()
	return buildStack(t, scripts, handlers, stackSetup{extra: extra, engine: mut, sshOnly: true})
}

// pkgSFTP is a pkg/sftp client of the stack's SSH server.
func (s *stack) pkgSFTP(t *testing.T, user, password string) *sftpClient {
	t.Helper()
	sc, err := ssh.Dial("tcp", s.sshAddr, &ssh.ClientConfig{User: user, Auth: []ssh.AuthMethod{ssh.Password(password)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second}) // a test server's fresh key
	must(t, err)
	c, err := pkgsftp.NewClient(sc)
	must(t, err)
	t.Cleanup(func() { _ = c.Close(); _ = sc.Close() })
	return &sftpClient{ssh: sc, c: c}
}

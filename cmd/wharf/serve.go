package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/ops/admin"
	"github.com/wharf-project/wharf/ops/audit"
	"github.com/wharf-project/wharf/ops/logbuf"
	"github.com/wharf-project/wharf/ops/mailq"
	"github.com/wharf-project/wharf/ops/metrics"
	"github.com/wharf-project/wharf/protocols/ftp"
	"github.com/wharf-project/wharf/protocols/sftp"
	"github.com/wharf-project/wharf/scripting"
	"github.com/wharf-project/wharf/third_party/ssh"
)

// shutdownGrace is how long transfers in flight may run after SIGINT/SIGTERM before every
// session is ended.
const shutdownGrace = 30 * time.Second

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", "wharf serve [-c FILE] [-grace DURATION]", stderr)
	file := fs.String("c", "", "config file (default: the embedded default config)")
	grace := fs.Duration("grace", shutdownGrace, "how long transfers may finish at shutdown")
	pos, err := parseFlags(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("unexpected argument %q (the config file is given with -c FILE)", pos[0])
	}
	cfg, demoPassword, err := loadForServe(*file)
	if err != nil {
		return err
	}
	log, logOut, err := newLogger(cfg.Log, stderr)
	if err != nil {
		return err
	}
	defer logOut.Close()
	for _, w := range cfg.Warnings {
		log.Warn("config: " + w.String())
	}
	// SIGHUP is caught before the server exists so that a reload sent during start-up is
	// queued rather than killing the process (SIGHUP's default action).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	srv, err := newServer(cfg, log)
	if err != nil {
		return err
	}
	srv.source = sourceFor(*file, cfg)
	if err := srv.start(); err != nil {
		_ = srv.shutdown(context.Background(), 0)
		return err
	}
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	if cfg.Reload.WatchScripts {
		// The first fingerprint is taken before the banner announces the server, so that no
		// change made after it can be missed.
		go srv.watchScripts(wctx, cfg.Reload.WatchInterval.Duration, srv.scriptsFingerprint())
	}
	logOut.Flush() // the lines logged while starting come before the banner, not after it
	srv.printBanner(stdout, demoPassword)
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-hup:
			// A refused config is logged by reload and changes nothing: keep serving.
			_, _ = srv.reload(ctx, "SIGHUP")
		}
	}
	stopWatch()
	log.Info("shutting down", "grace", grace.String())
	sctx, cancel := context.WithTimeout(context.Background(), *grace+10*time.Second)
	defer cancel()
	return srv.shutdown(sctx, *grace)
}

// sourceFor returns how a reload reads the configuration again: the same file, or the
// embedded default with the demo user's password hash of the running server (so a reload
// does not change the password printed at start).
func sourceFor(file string, running *config.Config) func() (*config.Config, error) {
	if file != "" {
		return func() (*config.Config, error) { return config.Load(file) }
	}
	demoHash := ""
	for _, sc := range running.Sites {
		for _, u := range sc.Users {
			if u.ID == "demo" {
				demoHash = u.Password
			}
		}
	}
	dir := running.Dir
	return func() (*config.Config, error) {
		cfg, err := config.LoadDefault(dir)
		if err != nil {
			return nil, err
		}
		for i := range cfg.Sites {
			for j := range cfg.Sites[i].Users {
				if u := &cfg.Sites[i].Users[j]; u.ID == "demo" && u.Password == "" {
					u.Password = demoHash
				}
			}
		}
		return cfg, nil
	}
}

// loadForServe loads the config file, or the embedded default with the demo user's password
// from WHARF_DEMO_PASSWORD or the one kept in state_dir (generated on the first start),
// returned so that the banner can print it.
func loadForServe(file string) (*config.Config, string, error) {
	if file != "" {
		cfg, err := config.Load(file)
		return cfg, "", err
	}
	cwd, err := os.Getwd()
	if err != nil {
		return nil, "", err
	}
	cfg, err := config.LoadDefault(cwd)
	if err != nil {
		return nil, "", fmt.Errorf("embedded default config: %w", err)
	}
	pw := os.Getenv("WHARF_DEMO_PASSWORD")
	if pw == "" {
		if pw, err = demoPassword(cfg.StateDir); err != nil {
			return nil, "", err
		}
	}
	h, err := core.HashPassword(pw)
	if err != nil {
		return nil, "", err
	}
	for i := range cfg.Sites {
		for j := range cfg.Sites[i].Users {
			if cfg.Sites[i].Users[j].ID == "demo" && cfg.Sites[i].Users[j].Password == "" {
				cfg.Sites[i].Users[j].Password = h
			}
		}
	}
	return cfg, pw, nil
}

// demoPasswordFile in state_dir keeps the demo user's generated password, so that it stays
// the same across restarts of the quick start (clients and scripts that saved it go on
// working).
const demoPasswordFile = "demo-password"

// demoPassword returns the password kept in stateDir, generating it (0600) the first time.
func demoPassword(stateDir string) (string, error) {
	p := filepath.Join(stateDir, demoPasswordFile)
	for range 2 {
		b, err := os.ReadFile(p)
		if err == nil {
			if pw := strings.TrimSpace(string(b)); pw != "" {
				return pw, nil
			}
			return "", fmt.Errorf("demo password file %s is empty: remove it to generate a new password", p)
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("demo password: %w", err)
		}
		if err := os.MkdirAll(stateDir, 0o700); err != nil {
			return "", fmt.Errorf("state_dir: %w", err)
		}
		pw := rand.Text()[:16]
		// O_EXCL: two first starts at once agree on the password of whichever wrote it.
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("demo password: %w", err)
		}
		_, werr := f.WriteString(pw + "\n")
		if err := errors.Join(werr, f.Close()); err != nil {
			_ = os.Remove(p)
			return "", fmt.Errorf("demo password: %w", err)
		}
		return pw, nil
	}
	return "", fmt.Errorf("demo password: %s keeps changing", p)
}

func defaultConfig() []byte { return config.Default() }

// protocolServer is what every adapter provides (shaped like net/http.Server).
type protocolServer interface {
	Serve(l net.Listener) error
	Shutdown(ctx context.Context) error
}

// server is a running gateway: its sites, their listeners and the operations endpoint.
type server struct {
	// boot is the configuration the server started with: listeners, state_dir, metrics and
	// the other settings a reload keeps. It is never modified, so it is read without a lock.
	boot      *config.Config
	cfg       *config.Config // in force; replaced by a successful reload, under reloadMu
	log       *slog.Logger
	sites     []*core.Site
	listeners []*boundListener
	wg        sync.WaitGroup

	// dispatchers are the sites' event dispatchers as dispatcherFor built them (before the
	// metrics wrapper), by site name: a reload hands them the new site config.
	dispatchers map[string]core.Dispatcher
	metrics     *metrics.Metrics // nil without metrics.address
	audit       *audit.Log       // nil when audit.enabled is false
	ops         *admin.Server    // nil without metrics.address
	mail        *mailq.Queue     // scripts' SendMail spool
	relays      relays           // the sites' SMTP relays, for the spool
	opsLn       net.Listener
	tokenNew    bool // the admin token was generated at this start

	cluster *clusterNode // nil without the cluster: section

	// source reads the configuration again for a reload (nil: reload is not possible).
	source   func() (*config.Config, error)
	reloadMu sync.Mutex
}

type boundListener struct {
	site     *core.Site
	protocol string
	ln       net.Listener
	srv      protocolServer
}

// tlsReloader is implemented by the adapters whose TLS certificate can be replaced live.
type tlsReloader interface {
	PrepareTLSReload(cfg config.TLS) (apply func(), err error)
}

// scriptReloader is implemented by the scripting engine: it recompiles a site's scripts and
// swaps them in, keeping the old ones on error.
type scriptReloader interface {
	Reload(site *config.Site) error
}

func newServer(cfg *config.Config, log *slog.Logger) (*server, error) {
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("state_dir: %w", err)
	}
	s := &server{boot: cfg, cfg: cfg, log: log, dispatchers: map[string]core.Dispatcher{}}
	var observers multiObserver
	if cfg.Audit.IsEnabled() {
		a, err := audit.New(log, cfg.Audit.File, cfg.Log.Format, cfg.Log.FlushInterval.Duration)
		if err != nil {
			return nil, err
		}
		s.audit = a
		observers = append(observers, a)
	}
	if cfg.Metrics.Address != "" {
		s.metrics = metrics.New(metrics.Options{PerUser: cfg.Metrics.PerUser, Version: version, Sites: s.siteList})
		observers = append(observers, s.metrics)
	}
	var observer core.Observer
	if len(observers) > 0 {
		observer = observers
	}
	q, err := s.openMailQueue(cfg)
	if err != nil {
		return nil, err
	}
	s.mail = q
	built := false
	defer func() {
		if !built {
			_ = q.Close(context.Background())
		}
	}()
	var shared core.Cluster
	if cfg.Cluster != nil {
		// The store is opened before any listener: a node serves as part of the cluster
		// from its first connection.
		if err := s.openCluster(cfg); err != nil {
			return nil, err
		}
		defer func() {
			if !built {
				_ = s.cluster.store.Close(context.Background())
			}
		}()
		var count func(op string)
		if m := s.metrics; m != nil {
			count = m.ClusterStoreError
			m.WatchClusterStore(func() bool { up, _, _ := s.cluster.store.Health(); return up })
		}
		shared = s.cluster.coreCluster(count)
	}
	deps := scriptDeps{settings: cfg.Scripting, mail: queueMailer{q}}
	if s.metrics != nil {
		deps.async = s.metrics
	}
	for i := range cfg.Sites {
		sc := &cfg.Sites[i]
		var onScriptError func(core.EventName)
		if m := s.metrics; m != nil {
			name := sc.Name
			onScriptError = func(ev core.EventName) { m.ScriptError(name, string(ev)) }
		}
		events, err := dispatcherFor(sc, log, onScriptError, deps)
		if err != nil {
			return nil, err
		}
		if eng, ok := events.(*scripting.Engine); ok && s.metrics != nil {
			s.metrics.WatchAsyncQueue(sc.Name, eng.AsyncQueueDepth)
		}
		s.dispatchers[sc.Name] = events
		if s.metrics != nil {
			events = s.metrics.WrapDispatcher(sc.Name, events)
		}
		site, err := core.NewSite(sc, core.Options{Logger: log, Events: events, Observer: observer, StateDir: cfg.StateDir,
			Cluster: shared, RefuseWhenStoreDown: cfg.Cluster != nil && cfg.Cluster.OnStoreDown == config.StoreDownRefuse})
		if err != nil {
			return nil, err
		}
		s.sites = append(s.sites, site)
		for _, l := range sc.Listeners {
			var srv protocolServer
			switch l.Protocol {
			case "sftp":
				srv, err = sftp.New(site, sftp.Options{StateDir: cfg.StateDir, Logger: log})
			case "ftp":
				srv, err = ftp.New(site, ftp.Options{StateDir: cfg.StateDir, Logger: log})
			case "ftps":
				srv, err = ftp.New(site, ftp.Options{StateDir: cfg.StateDir, Logger: log, Implicit: true})
			default:
				err = fmt.Errorf("unknown protocol %q", l.Protocol)
			}
			if err != nil {
				return nil, fmt.Errorf("site %s, %s listener %s: %w", sc.Name, l.Protocol, l.Address, err)
			}
			s.listeners = append(s.listeners, &boundListener{site: site, protocol: l.Protocol, srv: srv})
		}
	}
	if s.cluster != nil {
		s.startCluster()
	}
	if cfg.Metrics.Address != "" {
		token := ""
		if cfg.Metrics.Admin != admin.ModeOff {
			tok, created, err := admin.LoadOrCreateToken(cfg.Metrics.AdminTokenFile)
			if err != nil {
				return nil, err
			}
			token, s.tokenNew = tok, created
		}
		opts := admin.Options{
			Metrics: s.metrics.Handler(), Sites: s.siteList, Mode: cfg.Metrics.Admin, Token: token, Logger: log,
			Reload: func(ctx context.Context) ([]string, error) { return s.reload(ctx, "admin API") },
		}
		if s.cluster != nil {
			opts.Cluster = s.cluster.adminView()
			opts.Degraded = s.cluster.health
		}
		s.ops = admin.New(opts)
	}
	built = true
	return s, nil
}

// siteList returns the sites (fixed for the server's life: reloads do not add or remove any).
func (s *server) siteList() []*core.Site { return s.sites }

// multiObserver hands every fact to each observer in turn.
type multiObserver []core.Observer

func (m multiObserver) Observe(f *core.Fact) {
	for _, o := range m {
		o.Observe(f)
	}
}

// start binds every listener (all or none) and starts serving.
func (s *server) start() error {
	i := 0
	for _, sc := range s.boot.Sites {
		for _, l := range sc.Listeners {
			ln, err := net.Listen("tcp", l.Address)
			if err != nil {
				return fmt.Errorf("site %s: listen %s (%s): %w", sc.Name, l.Address, l.Protocol, err)
			}
			if l.ProxyProtocol {
				ln = proxyListener(ln, l, s.log.With("site", sc.Name))
			}
			s.listeners[i].ln = ln
			i++
		}
	}
	if s.ops != nil {
		ln, err := net.Listen("tcp", s.boot.Metrics.Address)
		if err != nil {
			return fmt.Errorf("metrics: listen %s: %w", s.boot.Metrics.Address, err)
		}
		s.opsLn = ln
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := s.ops.Serve(ln); err != nil {
				s.log.Error("metrics listener stopped", "err", err)
			}
		}()
		s.log.Info("serving metrics and the admin API", "address", ln.Addr().String(), "admin", s.boot.Metrics.Admin)
		if err := writeAdminAddr(s.boot.StateDir, ln.Addr().String()); err != nil {
			s.log.Warn("cannot record the admin address for the CLI", "err", err)
		}
		if s.tokenNew {
			s.log.Info("admin token generated", "file", s.boot.Metrics.AdminTokenFile)
		}
	}
	for _, b := range s.listeners {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			err := b.srv.Serve(b.ln)
			if err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "closed") {
				s.log.Error("listener stopped", "site", b.site.Name(), "protocol", b.protocol, "err", err)
			}
		}()
		s.log.Info("listening", "site", b.site.Name(), "protocol", b.protocol, "address", b.ln.Addr().String())
	}
	return nil
}

// addr returns the bound address of the first listener of a protocol (tests use port 0).
func (s *server) addr(protocol string) string {
	for _, b := range s.listeners {
		if b.protocol == protocol && b.ln != nil {
			return b.ln.Addr().String()
		}
	}
	return ""
}

// shutdown stops accepting, lets transfers in flight run for up to grace, then ends every
// session (firing OnConnectionClose) and waits for the adapters.
func (s *server) shutdown(ctx context.Context, grace time.Duration) error {
	var errs []error
	if s.ops != nil {
		// A load balancer probing /healthz stops sending clients while transfers finish.
		s.ops.Draining()
	}
	for _, b := range s.listeners {
		if b.ln != nil {
			_ = b.ln.Close()
		}
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) && s.activeTransfers() > 0 {
		select {
		case <-ctx.Done():
			deadline = time.Now()
		case <-time.After(100 * time.Millisecond):
		}
	}
	for _, b := range s.listeners {
		if b.ln != nil {
			errs = append(errs, b.srv.Shutdown(ctx))
		}
	}
	for _, site := range s.sites {
		errs = append(errs, site.Shutdown(ctx))
	}
	// The sessions' OnConnectionClose handlers are queued by now.
	errs = append(errs, s.drainScripts(ctx, grace)...)
	if s.cluster != nil {
		// After the sessions ended (their rows are gone) and before waiting for the
		// goroutines a reload announced by the store may have started.
		if err := s.cluster.store.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("cluster: %w", err))
		}
	}
	if s.ops != nil && s.opsLn != nil {
		errs = append(errs, s.ops.Shutdown(ctx))
		_ = os.Remove(filepath.Join(s.boot.StateDir, adminAddrFile))
	}
	s.wg.Wait()
	if s.audit != nil {
		errs = append(errs, s.audit.Close())
	}
	return errors.Join(errs...)
}

// opsAddr returns the bound address of the metrics listener, "" without one.
func (s *server) opsAddr() string {
	if s.opsLn == nil {
		return ""
	}
	return s.opsLn.Addr().String()
}

func (s *server) activeTransfers() int64 {
	var n int64
	for _, site := range s.sites {
		n += site.ActiveTransfers()
	}
	return n
}

// hostKeyLister is implemented by the SSH adapter.
type hostKeyLister interface {
	HostKeys() []ssh.PublicKey
}

// certificateHolder is implemented by the FTP adapter.
type certificateHolder interface {
	Certificate() *tls.Certificate
}

// printBanner tells a person where the gateway listens, where data lives, the fingerprints
// to compare with what a client shows on its first connection and, for the embedded
// default, how to log in. It is written in one write, so that a program reading the output
// (a supervisor, a test) that sees its first line sees all of it.
func (s *server) printBanner(w io.Writer, demoPassword string) {
	var b bytes.Buffer
	s.writeBanner(&b, demoPassword)
	_, _ = w.Write(b.Bytes())
}

func (s *server) writeBanner(w io.Writer, demoPassword string) {
	fmt.Fprintf(w, "wharf %s is running.\n", version)
	for _, b := range s.listeners {
		fmt.Fprintf(w, "  %-5s %s (site %s)\n", strings.ToUpper(b.protocol), b.ln.Addr(), b.site.Name())
	}
	for _, sc := range s.boot.Sites {
		for _, v := range sc.VFS {
			switch v.Type {
			case "disk":
				fmt.Fprintf(w, "  data (%s): %s\n", v.Name, v.Root)
			case "s3":
				fmt.Fprintf(w, "  data (%s): s3://%s/%s\n", v.Name, v.Bucket, strings.TrimPrefix(v.Prefix, "/"))
			}
		}
	}
	fmt.Fprintf(w, "  state: %s\n", s.boot.StateDir)
	if a := s.opsAddr(); a != "" {
		fmt.Fprintf(w, "  metrics: http://%s/metrics\n", a)
	}
	certFiles := map[*core.Site]string{}
	seen := map[string]bool{}
	for _, b := range s.listeners {
		var lines []string
		if h, ok := b.srv.(hostKeyLister); ok {
			for _, k := range h.HostKeys() {
				lines = append(lines, fmt.Sprintf("  SSH host key (site %s): %s %s", b.site.Name(), ssh.FingerprintSHA256(k), k.Type()))
			}
		}
		if c, ok := b.srv.(certificateHolder); ok {
			if cert := c.Certificate(); cert != nil && len(cert.Certificate) > 0 {
				lines = append(lines, fmt.Sprintf("  TLS certificate (site %s): SHA256 %s", b.site.Name(), certFingerprint(cert.Certificate[0])))
				certFiles[b.site] = certFileOf(b.site.Config(), s.boot.StateDir)
			}
		}
		for _, l := range lines {
			if !seen[l] {
				seen[l] = true
				fmt.Fprintln(w, l)
			}
		}
	}
	if demoPassword == "" {
		return
	}
	fmt.Fprintf(w, "\nUser \"demo\", password: %s (kept in %s; WHARF_DEMO_PASSWORD overrides it)\n",
		demoPassword, filepath.Join(s.boot.StateDir, demoPasswordFile))
	for _, b := range s.listeners {
		for _, c := range clientCommands(b.protocol, b.ln.Addr().String(), "demo", certFiles[b.site]) {
			fmt.Fprintln(w, "  "+c)
		}
	}
	fmt.Fprintln(w, "Stop with Ctrl-C.")
}

// clientCommands are the commands printed for logging in to a listener at addr. The FTP
// ones trust the site's certificate file (the generated one is self-signed) rather than
// turning certificate checks off.
func clientCommands(protocol, addr, user, certFile string) []string {
	host, port, _ := net.SplitHostPort(addr)
	h := host
	if strings.Contains(host, ":") {
		h = "[" + host + "]"
	}
	switch protocol {
	case "sftp":
		return []string{fmt.Sprintf("sftp -P %s %s@%s", port, user, h)}
	case "ftp":
		if certFile == "" {
			return []string{fmt.Sprintf("lftp -u %s -p %s %s", user, port, host)}
		}
		return []string{fmt.Sprintf("lftp -u %s -e 'set ssl:ca-file %s' -p %s %s", user, shellQuote(certFile), port, host)}
	case "ftps":
		return []string{fmt.Sprintf("curl --cacert %s -u %s ftps://%s:%s/", shellQuote(certFile), user, h, port)}
	}
	return nil
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+:@,=", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// certFingerprint is the certificate's SHA-256 fingerprint as openssl prints it
// (`openssl x509 -noout -fingerprint -sha256`) and lftp shows it.
func certFingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	var b strings.Builder
	for i, c := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", c)
	}
	return b.String()
}

// certFileOf is the PEM file of a site's certificate: tls.cert, or the self-signed one the
// FTP adapter generates in state_dir.
func certFileOf(sc *config.Site, stateDir string) string {
	if sc.TLS.Cert != "" {
		return sc.TLS.Cert
	}
	return filepath.Join(stateDir, ftp.SelfSignedCertFile)
}

// newLogger builds the server log from log: level, format, file and flush_interval.
func newLogger(c config.Log, stderr io.Writer) (*slog.Logger, *logOutput, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.Level)); err != nil {
		lvl = slog.LevelInfo
	}
	out := &logOutput{closeOut: func() {}, stderr: stderr}
	var dst io.Writer = stderr
	if c.File != "" {
		if err := os.MkdirAll(filepath.Dir(c.File), 0o750); err != nil {
			return nil, nil, fmt.Errorf("log file: %w", err)
		}
		f, err := os.OpenFile(c.File, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
		if err != nil {
			return nil, nil, fmt.Errorf("log file: %w", err)
		}
		dst, out.closeOut = f, func() { _ = f.Close() }
	}
	out.w = logbuf.New(dst, c.FlushInterval.Duration)
	opts := &slog.HandlerOptions{Level: lvl, ReplaceAttr: oneTypePerKey}
	var h slog.Handler = slog.NewTextHandler(out.w, opts)
	if c.Format == "json" {
		h = slog.NewJSONHandler(out.w, opts)
	}
	return slog.New(logbuf.FlushOn(h, out.w, slog.LevelWarn)), out, nil
}

// oneTypePerKey writes addresses and durations as text on every line, so that a key of the
// JSON log has one type: libraries log a net.Addr, which JSON encodes as an object
// ({"IP":…,"Port":…}), where wharf logs "host:port"; and a time.Duration is a number of
// nanoseconds in JSON where wharf logs "1m30s".
func oneTypePerKey(_ []string, a slog.Attr) slog.Attr {
	switch a.Value.Kind() {
	case slog.KindDuration:
		return slog.String(a.Key, a.Value.Duration().String())
	case slog.KindAny:
		if addr, ok := a.Value.Any().(net.Addr); ok && addr != nil {
			return slog.String(a.Key, addr.String())
		}
	}
	return a
}

// logOutput is where the server log goes: lines are batched in front of stderr or the file.
type logOutput struct {
	w        *logbuf.Writer
	closeOut func()
	stderr   io.Writer
}

// Flush writes the lines logged so far.
func (o *logOutput) Flush() { _ = o.w.Flush() }

// Close writes what is still buffered and closes the log file.
func (o *logOutput) Close() {
	if err := o.w.Close(); err != nil {
		fmt.Fprintf(o.stderr, "wharf: writing the log: %v\n", err)
	}
	o.closeOut()
}

// adminAddrFile in state_dir holds the bound address of the metrics listener, so that the CLI
// finds a server whose metrics.address has port 0.
const adminAddrFile = "admin.addr"

func writeAdminAddr(stateDir, addr string) error {
	p := filepath.Join(stateDir, adminAddrFile)
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, []byte(addr+"\n"), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

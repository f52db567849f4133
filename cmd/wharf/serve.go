package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/protocols/ftp"
	"github.com/wharf-project/wharf/protocols/sftp"
)

// shutdownGrace is how long transfers in flight may run after SIGINT/SIGTERM before every
// session is ended.
const shutdownGrace = 30 * time.Second

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("c", "", "config file (default: the embedded default config)")
	grace := fs.Duration("grace", shutdownGrace, "how long transfers may finish at shutdown")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, demoPassword, err := loadForServe(*file)
	if err != nil {
		return err
	}
	log, closeLog, err := newLogger(cfg.Log, stderr)
	if err != nil {
		return err
	}
	defer closeLog()
	for _, w := range cfg.Warnings {
		log.Warn("config: " + w.String())
	}
	srv, err := newServer(cfg, log)
	if err != nil {
		return err
	}
	if err := srv.start(); err != nil {
		_ = srv.shutdown(context.Background(), 0)
		return err
	}
	srv.printBanner(stdout, demoPassword)
	<-ctx.Done()
	log.Info("shutting down", "grace", grace.String())
	sctx, cancel := context.WithTimeout(context.Background(), *grace+10*time.Second)
	defer cancel()
	return srv.shutdown(sctx, *grace)
}

// loadForServe loads the config file, or the embedded default with the demo user's password
// from WHARF_DEMO_PASSWORD or a generated one (returned so it can be printed once).
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
		pw = rand.Text()[:16]
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

func defaultConfig() []byte { return config.Default() }

// protocolServer is what every adapter provides (shaped like net/http.Server).
type protocolServer interface {
	Serve(l net.Listener) error
	Shutdown(ctx context.Context) error
}

// server is a running gateway: its sites and their listeners.
type server struct {
	cfg       *config.Config
	log       *slog.Logger
	sites     []*core.Site
	listeners []*boundListener
	wg        sync.WaitGroup
}

type boundListener struct {
	site     *core.Site
	protocol string
	ln       net.Listener
	srv      protocolServer
}

func newServer(cfg *config.Config, log *slog.Logger) (*server, error) {
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("state_dir: %w", err)
	}
	s := &server{cfg: cfg, log: log}
	for i := range cfg.Sites {
		sc := &cfg.Sites[i]
		events, err := dispatcherFor(sc, log)
		if err != nil {
			return nil, err
		}
		site, err := core.NewSite(sc, core.Options{Logger: log, Events: events})
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
	return s, nil
}

// start binds every listener (all or none) and starts serving.
func (s *server) start() error {
	i := 0
	for _, sc := range s.cfg.Sites {
		for _, l := range sc.Listeners {
			ln, err := net.Listen("tcp", l.Address)
			if err != nil {
				return fmt.Errorf("site %s: listen %s (%s): %w", sc.Name, l.Address, l.Protocol, err)
			}
			if l.ProxyProtocol {
				ln = &proxyproto.Listener{Listener: ln, ReadHeaderTimeout: 10 * time.Second}
			}
			s.listeners[i].ln = ln
			i++
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
	s.wg.Wait()
	return errors.Join(errs...)
}

func (s *server) activeTransfers() int64 {
	var n int64
	for _, site := range s.sites {
		n += site.ActiveTransfers()
	}
	return n
}

// printBanner tells a person where the gateway listens, where data lives and, for the
// embedded default, how to log in.
func (s *server) printBanner(w io.Writer, demoPassword string) {
	fmt.Fprintf(w, "wharf %s is running.\n", version)
	for _, b := range s.listeners {
		fmt.Fprintf(w, "  %-5s %s (site %s)\n", strings.ToUpper(b.protocol), b.ln.Addr(), b.site.Name())
	}
	for _, sc := range s.cfg.Sites {
		for _, v := range sc.VFS {
			if v.Type == "disk" {
				fmt.Fprintf(w, "  data (%s): %s\n", v.Name, v.Root)
			}
		}
	}
	fmt.Fprintf(w, "  state: %s\n", s.cfg.StateDir)
	if demoPassword == "" {
		return
	}
	fmt.Fprintf(w, "\nUser \"demo\", password: %s\n", demoPassword)
	for _, b := range s.listeners {
		host, port, _ := net.SplitHostPort(b.ln.Addr().String())
		switch b.protocol {
		case "sftp":
			fmt.Fprintf(w, "  sftp -P %s demo@%s\n", port, host)
		case "ftp":
			fmt.Fprintf(w, "  lftp -u demo -e 'set ssl:verify-certificate no' -p %s %s\n", port, host)
		}
	}
	fmt.Fprintln(w, "Stop with Ctrl-C.")
}

// newLogger builds the server log from log: level, format and file.
func newLogger(c config.Log, stderr io.Writer) (*slog.Logger, func(), error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.Level)); err != nil {
		lvl = slog.LevelInfo
	}
	w, closer := stderr, func() {}
	if c.File != "" {
		if err := os.MkdirAll(filepath.Dir(c.File), 0o750); err != nil {
			return nil, nil, fmt.Errorf("log file: %w", err)
		}
		f, err := os.OpenFile(c.File, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
		if err != nil {
			return nil, nil, fmt.Errorf("log file: %w", err)
		}
		w, closer = f, func() { _ = f.Close() }
	}
	opts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if c.Format == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(h), closer, nil
}

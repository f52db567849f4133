package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
)

// reload reads the configuration again and applies it to the running sites: users, event
// handlers and scripts, limits, protector lists, VFS definitions and TLS certificates change
// for new sessions and operations, while sessions and transfers in flight go on untouched.
// Everything is checked before anything changes, so a bad configuration is refused whole: its
// problems are logged and returned, and the old configuration stays in force.
//
// Sites are matched by name. Adding or removing sites or listeners, and the settings bound at
// start (log, state_dir, metrics, audit, cluster, ssh, ftp listener settings), need a restart: a
// reload logs that and keeps the running ones.
//
// notApplied lists those changes, for the caller of `wharf reload`.
func (s *server) reload(ctx context.Context, trigger string) (notApplied []string, err error) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if s.source == nil {
		return nil, errors.New("reload: this server has no configuration source")
	}
	s.log.Info("reloading the configuration", "trigger", trigger, "file", s.cfg.File)
	notApplied, err = s.reloadLocked(ctx)
	if s.metrics != nil {
		s.metrics.Reloaded(err)
	}
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			for _, p := range ce.Problems {
				s.log.Error("config reload refused: "+p.String(), "trigger", trigger)
			}
		}
		s.log.Error("config reload failed; the previous configuration stays in force", "trigger", trigger, "err", err)
		return nil, err
	}
	s.log.Info("configuration reloaded", "trigger", trigger)
	if s.cluster != nil {
		// What the node now runs, for `wharf cluster status` to compare.
		if h, err := configHash(s.cfg); err != nil {
			s.log.Warn("cluster: cannot compute the configuration hash", "err", err)
		} else {
			s.cluster.store.SetConfigHash(h)
		}
	}
	return notApplied, nil
}

func (s *server) reloadLocked(ctx context.Context) (notApplied []string, err error) {
	next, err := s.source()
	if err != nil {
		return nil, err
	}
	for _, w := range next.Warnings {
		s.log.Warn("config: " + w.String())
	}
	notApplied = s.restartOnly(next)
	// What a reload cannot change is kept at its running value, also in the site configs the
	// adapters read (so a changed ftp section is not half applied).
	merged := keepRestartOnly(s.cfg, next)

	// Check: build each matched site's users, compile its scripts and load its certificates
	// without touching the running ones.
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	type change struct {
		site    *core.Site
		sc      *config.Site
		scripts scriptReloader
		tls     []func()
	}
	var changes []change
	for _, site := range s.sites {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if siteByName(next, site.Name()) == nil {
			continue // removed from the file: it keeps running as it is
		}
		sc := siteByName(merged, site.Name())
		if _, err := core.NewSite(sc, core.Options{Logger: quiet}); err != nil {
			return nil, fmt.Errorf("site %s: %w", sc.Name, err)
		}
		ch := change{site: site, sc: sc}
		if r, ok := s.dispatchers[sc.Name].(scriptReloader); ok {
			// Compile into a throwaway dispatcher first: the engine's own Reload swaps at
			// once, and one site's scripts must not change when another's fail.
			trial, err := dispatcherFor(sc, quiet, nil, scriptDeps{})
			if err != nil {
				return nil, err
			}
			if c, ok := trial.(io.Closer); ok {
				_ = c.Close()
			}
			ch.scripts = r
		} else if len(sc.EventHandlers) > 0 || usersHaveHandlers(sc) {
			s.log.Warn("this build cannot reload event scripts; restart to apply handler changes", "site", sc.Name)
		}
		for _, b := range s.listeners {
			if b.site != site {
				continue
			}
			if r, ok := b.srv.(tlsReloader); ok {
				apply, err := r.PrepareTLSReload(sc.TLS)
				if err != nil {
					return nil, fmt.Errorf("site %s, %s listener: %w", sc.Name, b.protocol, err)
				}
				ch.tls = append(ch.tls, apply)
			}
		}
		changes = append(changes, ch)
	}

	// Apply. The checks above make failures here unlikely (a script edited in between);
	// one is reported, and the sites not yet changed keep their configuration.
	for _, ch := range changes {
		if ch.scripts != nil {
			if err := ch.scripts.Reload(ch.sc); err != nil {
				return nil, fmt.Errorf("site %s: event scripts: %w", ch.sc.Name, err)
			}
		}
		if err := ch.site.Reload(ch.sc); err != nil {
			return nil, fmt.Errorf("site %s: %w", ch.sc.Name, err)
		}
		for _, apply := range ch.tls {
			apply()
		}
	}
	if s.audit != nil {
		// A reload is when logrotate's postrotate asks for a fresh file.
		if err := s.audit.Reopen(); err != nil {
			s.log.Error("audit log: reopen failed", "err", err)
		}
	}
	s.cfg = merged
	s.relays.set(merged)
	return notApplied, nil
}

// restartOnly logs and returns the changes a reload cannot apply.
func (s *server) restartOnly(next *config.Config) (notApplied []string) {
	warn := func(what string) {
		s.log.Warn("config reload: "+what+" takes effect only after a restart; the running value is kept", "file", next.File)
		notApplied = append(notApplied, what)
	}
	if next.Log != s.cfg.Log {
		warn("log")
	}
	if next.StateDir != s.cfg.StateDir {
		warn("state_dir")
	}
	if next.Metrics != s.cfg.Metrics {
		warn("metrics")
	}
	if !reflect.DeepEqual(next.Audit, s.cfg.Audit) {
		warn("audit")
	}
	if next.Reload != s.cfg.Reload {
		warn("reload")
	}
	if !reflect.DeepEqual(next.Cluster, s.cfg.Cluster) {
		warn("cluster")
	}
	if a, b := next.Scripting, s.cfg.Scripting; a.AsyncWorkers != b.AsyncWorkers || a.AsyncQueue != b.AsyncQueue || a.MailSpool != b.MailSpool {
		warn("scripting.async_workers, async_queue and mail_spool")
	}
	for _, old := range s.cfg.Sites {
		sc := siteByName(next, old.Name)
		if sc == nil {
			warn(fmt.Sprintf("removing site %q", old.Name))
			continue
		}
		if !slices.EqualFunc(sc.Listeners, old.Listeners, config.Listener.Equal) {
			warn(fmt.Sprintf("changing the listeners of site %q", old.Name))
		}
		if !reflect.DeepEqual(sc.SSH, old.SSH) {
			warn(fmt.Sprintf("the ssh settings of site %q", old.Name))
		}
		if !reflect.DeepEqual(sc.FTP, old.FTP) {
			warn(fmt.Sprintf("the ftp settings of site %q", old.Name))
		}
	}
	for _, sc := range next.Sites {
		if siteByName(s.cfg, sc.Name) == nil {
			warn(fmt.Sprintf("adding site %q", sc.Name))
		}
	}
	return notApplied
}

// keepRestartOnly returns next with the parts that need a restart taken from running, so
// that the server's idea of its configuration matches what it serves.
func keepRestartOnly(running, next *config.Config) *config.Config {
	out := *next
	out.Log, out.StateDir, out.Metrics, out.Audit, out.Reload = running.Log, running.StateDir, running.Metrics, running.Audit, running.Reload
	out.Cluster = running.Cluster
	out.Sites = nil
	for _, old := range running.Sites {
		sc := siteByName(next, old.Name)
		if sc == nil {
			out.Sites = append(out.Sites, old)
			continue
		}
		c := *sc
		c.Listeners, c.SSH, c.FTP = old.Listeners, old.SSH, old.FTP
		out.Sites = append(out.Sites, c)
	}
	return &out
}

func siteByName(cfg *config.Config, name string) *config.Site {
	for i := range cfg.Sites {
		if cfg.Sites[i].Name == name {
			return &cfg.Sites[i]
		}
	}
	return nil
}

func usersHaveHandlers(sc *config.Site) bool {
	for _, u := range sc.Users {
		if len(u.EventHandlers) > 0 {
			return true
		}
	}
	return false
}

// watchScripts reloads when a file in one of the sites' scripts_dir folders is added,
// removed or changed. It polls (every interval) rather than using inotify: it works the same
// on every system and on network and container-mounted folders, where inotify events are
// often missing.
func (s *server) watchScripts(ctx context.Context, interval time.Duration, last string) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fp := s.scriptsFingerprint()
		if fp == last {
			continue
		}
		last = fp
		// A refused reload is logged; the next change is tried again.
		_, _ = s.reload(ctx, "script change")
	}
}

// scriptsFingerprint summarises the names, sizes and modification times of the files in the
// scripts folders of the configuration in force.
func (s *server) scriptsFingerprint() string {
	s.reloadMu.Lock()
	dirs := make([]string, 0, len(s.cfg.Sites))
	for _, sc := range s.cfg.Sites {
		if sc.ScriptsDir != "" && !slices.Contains(dirs, sc.ScriptsDir) {
			dirs = append(dirs, sc.ScriptsDir)
		}
	}
	s.reloadMu.Unlock()
	var b strings.Builder
	for _, dir := range dirs {
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			if fi, err := d.Info(); err == nil {
				fmt.Fprintf(&b, "%s\x00%d\x00%d\n", p, fi.Size(), fi.ModTime().UnixNano())
			}
			return nil
		})
	}
	if b.Len() == 0 {
		return ""
	}
	return b.String()
}

package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/scripting"
)

// cmdCheck validates a config, its scripts and the folders and files the server will write,
// and lists every problem; exit status 1 when there is any. A file with YAML problems still
// has its scripts compiled, so that one run reports both.
func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("check", "wharf check -c FILE", stderr)
	file := fs.String("c", "", "config file to check")
	pos, err := parseFlags(fs, args, stdout)
	if err != nil {
		if code := exitCode(err); code != 0 {
			fmt.Fprintf(stderr, "wharf check: %v\n", err)
			return code
		}
		return 0
	}
	if *file == "" && len(pos) == 1 {
		*file = pos[0]
	} else if *file == "" || len(pos) > 0 {
		fmt.Fprintln(stderr, "usage: wharf check -c FILE")
		return 2
	}
	var problems, warnings []string
	cfg, err := config.Load(*file)
	if err != nil {
		var ce *config.Error
		if !errors.As(err, &ce) {
			fmt.Fprintf(stderr, "wharf check: %v\n", err)
			return 1
		}
		for _, p := range ce.Problems {
			problems = append(problems, p.String())
		}
		for _, w := range ce.Warnings {
			warnings = append(warnings, w.String())
		}
		problems = append(problems, scriptsOfInvalidConfig(*file)...)
	} else {
		for _, w := range cfg.Warnings {
			warnings = append(warnings, w.String())
		}
		p, w := checkSites(cfg)
		problems, warnings = append(problems, p...), append(warnings, w...)
		problems = append(problems, unwritable(cfg)...)
		problems = append(problems, unreachableBuckets(cfg)...)
		problems = append(problems, usersWhoCannotLogIn(cfg)...)
	}
	for _, w := range warnings {
		fmt.Fprintln(stderr, "warning: "+w)
	}
	for _, p := range problems {
		fmt.Fprintln(stderr, p)
	}
	if len(problems) > 0 {
		fmt.Fprintf(stderr, "%d problem(s) found\n", len(problems))
		return 1
	}
	fmt.Fprintf(stdout, "%s: OK (%d site(s))\n", cfg.File, len(cfg.Sites))
	return 0
}

// checkSites compiles each site's scripts and builds the site as serve would.
func checkSites(cfg *config.Config) (problems, warnings []string) {
	quiet := slog.New(slog.DiscardHandler)
	for i := range cfg.Sites {
		sc := &cfg.Sites[i]
		events, err := dispatcherFor(sc, quiet, nil, scriptDeps{})
		if lines, ok := scriptProblems(err, cfg.Dir); ok {
			problems = append(problems, lines...)
			continue
		}
		if w, ok := events.(interface{ Warnings() []string }); ok {
			warnings = append(warnings, w.Warnings()...)
		}
		if c, ok := events.(io.Closer); ok {
			defer c.Close()
		}
		if err == nil {
			_, err = core.NewSite(sc, core.Options{Logger: quiet, Events: events})
		}
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: site %s: %v", cfg.File, sc.Name, err))
		}
	}
	return problems, warnings
}

// scriptsOfInvalidConfig compiles the scripts that a config with problems names, reading
// only sites[].scripts_dir and the event_handlers of sites and users. Handlers that the
// loader already reported (an unknown event, a missing file) are skipped.
func scriptsOfInvalidConfig(file string) []string {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	type handlers struct {
		EventHandlers []config.EventHandler `yaml:"event_handlers"`
	}
	var raw struct {
		Sites []struct {
			Name       string `yaml:"name"`
			ScriptsDir string `yaml:"scripts_dir"`
			handlers   `yaml:",inline"`
			Users      []struct {
				ID       string `yaml:"id"`
				handlers `yaml:",inline"`
			} `yaml:"users"`
		} `yaml:"sites"`
	}
	if err := yaml.Unmarshal(data, &raw); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil // a syntax error: the loader reported it, and nothing can be read
		}
	}
	dir, err := filepath.Abs(filepath.Dir(file))
	if err != nil {
		return nil
	}
	var out []string
	for i, s := range raw.Sites {
		sd := s.ScriptsDir
		if sd == "" {
			sd = "./scripts"
		}
		if !filepath.IsAbs(sd) {
			sd = filepath.Join(dir, sd)
		}
		usable := func(hs []config.EventHandler) []config.EventHandler {
			var keep []config.EventHandler
			for _, h := range hs {
				p := filepath.Join(sd, filepath.FromSlash(h.Script))
				if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && slices.Contains(config.Events, h.Event) {
					h.Path = p
					keep = append(keep, h)
				}
			}
			return keep
		}
		name := s.Name
		if name == "" {
			name = "sites[" + strconv.Itoa(i) + "]"
		}
		sc := &config.Site{Name: name, ScriptsDir: sd, EventHandlers: usable(s.EventHandlers)}
		for _, u := range s.Users {
			if hs := usable(u.EventHandlers); len(hs) > 0 {
				sc.Users = append(sc.Users, config.User{ID: u.ID, EventHandlers: hs})
			}
		}
		eng, err := scripting.New(sc, scripting.Options{Logger: slog.New(slog.DiscardHandler)})
		if lines, ok := scriptProblems(err, dir); ok {
			out = append(out, lines...)
		}
		if eng != nil {
			_ = eng.Close()
		}
	}
	return out
}

// unwritable lists the folders and files the server writes or reads at start that this
// user cannot: what `serve` would fail on (a state_dir under a read-only /etc, a log folder
// the service user does not own, a key it cannot read). It writes and removes a probe file.
func unwritable(cfg *config.Config) []string {
	var out []string
	bad := func(key, path string, err error) {
		out = append(out, fmt.Sprintf("%s: %s: %s is not usable by this user (uid %d): %v", cfg.File, key, path, os.Getuid(), err))
	}
	if err := probeDir(cfg.StateDir); err != nil {
		bad("state_dir", cfg.StateDir, err)
	}
	for key, f := range map[string]string{"log.file": cfg.Log.File, "audit.file": cfg.Audit.File} {
		if f == "" {
			continue
		}
		if err := probeFile(f); err != nil {
			bad(key, f, err)
		}
	}
	if cfg.Metrics.Address != "" && cfg.Metrics.Admin != "off" {
		if _, err := os.Stat(cfg.Metrics.AdminTokenFile); err == nil {
			if err := probeRead(cfg.Metrics.AdminTokenFile); err != nil {
				bad("metrics.admin_token_file", cfg.Metrics.AdminTokenFile, err)
			}
		} else if err := probeDir(filepath.Dir(cfg.Metrics.AdminTokenFile)); err != nil {
			bad("metrics.admin_token_file", cfg.Metrics.AdminTokenFile, err)
		}
	}
	for i, sc := range cfg.Sites {
		key := "sites[" + strconv.Itoa(i) + "]"
		for j, v := range sc.VFS {
			if v.Type != "disk" {
				continue
			}
			// Users' folders are made under the part of the root before {user}.
			root := v.Root
			if k := strings.Index(root, "{user}"); k >= 0 {
				root = filepath.Dir(root[:k+1])
			}
			if err := probeDir(root); err != nil {
				bad(key+".vfs["+strconv.Itoa(j)+"].root", root, err)
			}
		}
		for j, k := range sc.SSH.HostKeys {
			if err := probeRead(k); err != nil {
				bad(key+".ssh.host_keys["+strconv.Itoa(j)+"]", k, err)
			}
		}
		for name, f := range map[string]string{".tls.cert": sc.TLS.Cert, ".tls.key": sc.TLS.Key} {
			if f == "" {
				continue
			}
			if err := probeRead(f); err != nil {
				bad(key+name, f, err)
			}
		}
	}
	slices.Sort(out) // the maps above have no order
	return out
}

// probeDir checks that dir can be created (as MkdirAll would) and written in: it creates and
// removes a file in it, or a folder in its nearest existing parent.
func probeDir(dir string) error {
	p := dir
	for {
		fi, err := os.Stat(p)
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("%s is not a folder", p)
			}
			break
		}
		if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		parent := filepath.Dir(p)
		if parent == p {
			return err
		}
		p = parent
	}
	if p == dir {
		f, err := os.CreateTemp(dir, ".wharf-check-*")
		if err != nil {
			return err
		}
		_ = f.Close()
		return os.Remove(f.Name())
	}
	tmp, err := os.MkdirTemp(p, ".wharf-check-*")
	if err != nil {
		return fmt.Errorf("cannot create %s: %w", dir, err)
	}
	return os.Remove(tmp)
}

// probeFile checks that a log file can be opened for appending (or created).
func probeFile(name string) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0)
	if err == nil {
		return f.Close()
	}
	if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return probeDir(filepath.Dir(name))
}

func probeRead(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	return f.Close()
}

// authEvents are the events whose scripts may log a user in (AuthenticateUserFromScript).
var authEvents = []string{string(core.OnAuthRequest), string(core.OnAuthPassword), string(core.OnAuthPKI), string(core.OnAuthInteractive)}

// usersWhoCannotLogIn lists the users that have no credential at all and no script that may
// authenticate them. The embedded default's demo user is one in a file saved from `wharf
// config print-default` (serve gives it a password only when it runs the embedded copy): such
// a file would start and let nobody in, which is why check refuses it.
func usersWhoCannotLogIn(cfg *config.Config) []string {
	hasAuthScript := func(hs []config.EventHandler) bool {
		return slices.ContainsFunc(hs, func(h config.EventHandler) bool { return slices.Contains(authEvents, h.Event) })
	}
	var out []string
	for i, sc := range cfg.Sites {
		siteScripts := hasAuthScript(sc.EventHandlers)
		certificates := sc.SSH.TrustedUserCAKeys != "" // any user may log in with a certificate
		for j, u := range sc.Users {
			if u.ID == "*" || u.Password != "" || len(u.PublicKeys) > 0 || u.AuthorizedKeysFile != "" || u.TOTPSecret != "" ||
				certificates || siteScripts || hasAuthScript(u.EventHandlers) {
				continue
			}
			loc := cfg.File
			if u.Line > 0 {
				loc += ":" + strconv.Itoa(u.Line)
			}
			out = append(out, fmt.Sprintf("%s: sites[%d].users[%d]: user %q can never log in: it has no password, public_keys, "+
				"authorized_keys_file or totp_secret, the site trusts no certificate authority, and no OnAuth* script may authenticate it (set password: to the output of `wharf hash-password`)",
				loc, i, j, u.ID))
		}
	}
	return out
}

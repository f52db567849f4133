package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/ops/admin"
)

// adminFlags are the flags of the admin API clients: the config file tells where the
// endpoint listens and where the token is.
type adminFlags struct {
	file    string
	jsonOut bool
}

func (f *adminFlags) parse(name string, args []string, stderr io.Writer, withJSON bool) ([]string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.file, "c", f.file, "config file of the running server (default: the embedded default config)")
	if withJSON {
		fs.BoolVar(&f.jsonOut, "json", f.jsonOut, "print JSON")
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return fs.Args(), nil
}

// adminClient builds a client for the admin API of the server that runs config file; with
// needToken it also reads the admin token.
func adminClient(file string, needToken bool) (*admin.Client, error) {
	var cfg *config.Config
	var err error
	if file != "" {
		cfg, err = config.Load(file)
	} else {
		var cwd string
		if cwd, err = os.Getwd(); err == nil {
			cfg, err = config.LoadDefault(cwd)
		}
	}
	if err != nil {
		return nil, err
	}
	if cfg.Metrics.Address == "" {
		return nil, errors.New("metrics.address is not set in the config, so the server has no admin API " +
			"(to reload without it, send SIGHUP to the wharf process, e.g. systemctl reload wharf)")
	}
	addr := cfg.Metrics.Address
	if _, port, _ := net.SplitHostPort(addr); port == "0" {
		// A free port was picked at start; the server recorded which.
		b, err := os.ReadFile(filepath.Join(cfg.StateDir, adminAddrFile))
		if err != nil {
			return nil, fmt.Errorf("metrics.address has port 0 and the running server's address is unknown: %w", err)
		}
		addr = strings.TrimSpace(string(b))
	}
	base, err := admin.BaseURL(addr)
	if err != nil {
		return nil, err
	}
	c := &admin.Client{BaseURL: base}
	if !needToken {
		return c, nil
	}
	if cfg.Metrics.Admin == admin.ModeOff {
		return nil, errors.New("the admin API is off in the config (metrics.admin: off)")
	}
	c.Token, err = admin.ReadToken(cfg.Metrics.AdminTokenFile)
	if err != nil {
		return nil, fmt.Errorf("%w (is the server running with this config, and may you read its state_dir?)", err)
	}
	return c, nil
}

// cmdSessions lists the live sessions, or with "kick ID" ends one.
func cmdSessions(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f adminFlags
	rest, err := f.parse("sessions", args, stderr, true)
	if err != nil {
		return err
	}
	if len(rest) > 0 && rest[0] == "kick" {
		// Flags may come before or after "kick".
		if rest, err = f.parse("sessions kick", rest[1:], stderr, false); err != nil {
			return err
		}
		if len(rest) != 1 {
			return errors.New("usage: wharf sessions kick [-c FILE] ID")
		}
		c, err := adminClient(f.file, true)
		if err != nil {
			return err
		}
		if err := c.Kick(ctx, rest[0]); err != nil {
			if admin.IsNotFound(err) {
				return fmt.Errorf("no live session %s", rest[0])
			}
			return err
		}
		fmt.Fprintf(stdout, "session %s ended\n", rest[0])
		return nil
	}
	if len(rest) > 0 {
		return fmt.Errorf("unknown argument %q (usage: wharf sessions [-c FILE] [-json] | wharf sessions kick [-c FILE] ID)", rest[0])
	}
	c, err := adminClient(f.file, true)
	if err != nil {
		return err
	}
	list, err := c.Sessions(ctx)
	if err != nil {
		return err
	}
	if f.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(list)
	}
	printSessions(stdout, list, time.Now())
	return nil
}

// printSessions prints one line per session, like ps.
func printSessions(w io.Writer, list []admin.SessionInfo, now time.Time) {
	if len(list) == 0 {
		fmt.Fprintln(w, "no live sessions")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSITE\tPROTOCOL\tUSER\tREMOTE\tCLIENT\tAGE\tIDLE\tLAST COMMAND")
	for _, s := range list {
		user := s.User
		if !s.Authenticated {
			user = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Site, s.Protocol, user, s.RemoteIP,
			dash(truncateText(s.ClientVersion, 30)), age(now.Sub(s.Start)), age(now.Sub(s.LastActivity)),
			dash(truncateText(s.LastCommand, 40)))
	}
	_ = tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func truncateText(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return '?' // client-supplied text must not move the terminal
		}
		return r
	}, s)
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func age(d time.Duration) string {
	if d < time.Hour {
		return d.Round(time.Second).String()
	}
	return d.Round(time.Minute).String()
}

// cmdReload asks the running server to reload its configuration through the admin API and
// reports the problems when the new configuration is refused.
func cmdReload(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f adminFlags
	rest, err := f.parse("reload", args, stderr, false)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return errors.New("usage: wharf reload [-c FILE]")
	}
	c, err := adminClient(f.file, true)
	if err != nil {
		return err
	}
	if err := c.Reload(ctx); err != nil {
		return fmt.Errorf("the server refused the new configuration and keeps the old one: %w", err)
	}
	fmt.Fprintln(stdout, "configuration reloaded")
	return nil
}

// cmdHealth checks /healthz of the running server: exit 0 when it serves, 1 otherwise. It is
// the container health check (the final image has no shell, curl or wget).
func cmdHealth(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f adminFlags
	rest, err := f.parse("health", args, stderr, false)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return errors.New("usage: wharf health [-c FILE]")
	}
	c, err := adminClient(f.file, false)
	if err != nil {
		return err
	}
	if err := c.Health(ctx); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "ok")
	return nil
}

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
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/ops/admin"
)

// adminFlags are the flags of the admin API clients: where the endpoint listens and where
// the token is, from the config file (read leniently) or given directly.
type adminFlags struct {
	file      string
	address   string
	tokenFile string
	jsonOut   bool
}

// register adds -c, --admin-address, --token-file and, with withJSON, -json to fs.
func (f *adminFlags) register(fs *flag.FlagSet, withJSON bool) {
	fs.StringVar(&f.file, "c", "", "config file of the running server (default: the embedded default config)")
	fs.StringVar(&f.address, "admin-address", "", "host:port of the running server's metrics listener (instead of metrics.address)")
	fs.StringVar(&f.tokenFile, "token-file", "", "file holding the admin token (instead of metrics.admin_token_file)")
	if withJSON {
		fs.BoolVar(&f.jsonOut, "json", false, "print JSON")
	}
}

const adminFlagsUsage = "[-c FILE | --admin-address HOST:PORT --token-file FILE]"

// adminSettings are the parts of a config the admin CLI needs.
type adminSettings struct {
	stateDir  string
	address   string
	mode      string
	tokenFile string
}

// readAdminSettings reads metrics.address, metrics.admin, metrics.admin_token_file and
// state_dir from a config file ("" = the embedded default) without validating the rest of
// it: a typo elsewhere in a file being edited must not stop `wharf health` from checking a
// healthy server. Relative paths and defaults are resolved as the loader does.
func readAdminSettings(file string) (adminSettings, error) {
	data, dir := config.Default(), ""
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return adminSettings{}, fmt.Errorf("read config: %w", err)
		}
		data, dir = b, filepath.Dir(file)
	}
	if dir == "" {
		cwd, err := os.Getwd()
		if err != nil {
			return adminSettings{}, err
		}
		dir = cwd
	}
	var raw struct {
		StateDir string `yaml:"state_dir"`
		Metrics  struct {
			Address        string `yaml:"address"`
			Admin          string `yaml:"admin"`
			AdminTokenFile string `yaml:"admin_token_file"`
		} `yaml:"metrics"`
	}
	// Only these keys are decoded: unknown keys, and wrong values under other keys, are
	// not looked at. A type error in these keys leaves them empty (reported below).
	if err := yaml.Unmarshal(data, &raw); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return adminSettings{}, fmt.Errorf("%s: %w (--admin-address and --token-file reach the server without reading the file)",
				configName(file), err)
		}
	}
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	st := adminSettings{stateDir: abs(raw.StateDir), address: raw.Metrics.Address, mode: raw.Metrics.Admin, tokenFile: abs(raw.Metrics.AdminTokenFile)}
	if st.stateDir == "" {
		st.stateDir = abs("./state")
	}
	if st.mode == "" {
		st.mode = admin.ModeLocal
	}
	if st.tokenFile == "" {
		st.tokenFile = filepath.Join(st.stateDir, "admin.token")
	}
	return st, nil
}

func configName(file string) string {
	if file == "" {
		return config.DefaultFile
	}
	return file
}

// adminClient builds a client for the admin API of the running server; with needToken it
// also reads the admin token.
func adminClient(f adminFlags, needToken bool) (*admin.Client, error) {
	st, err := readAdminSettings(f.file)
	if err != nil && (f.address == "" || (needToken && f.tokenFile == "")) {
		return nil, err
	}
	addr := st.address
	if f.address != "" {
		addr = f.address
	}
	if addr == "" {
		return nil, fmt.Errorf("metrics.address is not set in %s, so the server has no admin API "+
			"(to reload without it, send SIGHUP to the wharf process, e.g. systemctl reload wharf)", configName(f.file))
	}
	if _, port, _ := net.SplitHostPort(addr); port == "0" {
		// A free port was picked at start; the server recorded which.
		b, err := os.ReadFile(filepath.Join(st.stateDir, adminAddrFile))
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
	tokenFile := st.tokenFile
	if f.tokenFile != "" {
		tokenFile = f.tokenFile
	} else if st.mode == admin.ModeOff {
		return nil, errors.New("the admin API is off in the config (metrics.admin: off)")
	}
	c.Token, err = admin.ReadToken(tokenFile)
	if err != nil {
		return nil, fmt.Errorf("%w (is the server running with this config, and may you read its state_dir?)", err)
	}
	return c, nil
}

// cmdSessions lists the live sessions, or with "kick ID" ends one.
func cmdSessions(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f adminFlags
	fs := newFlagSet("sessions", "wharf sessions "+adminFlagsUsage+" [-json]\n       wharf sessions kick ID "+adminFlagsUsage, stderr)
	f.register(fs, true)
	rest, err := parseFlags(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(rest) > 0 && rest[0] == "kick" {
		if len(rest) != 2 {
			return usageError("usage: wharf sessions kick ID %s", adminFlagsUsage)
		}
		c, err := adminClient(f, true)
		if err != nil {
			return err
		}
		res, err := c.Kick(ctx, rest[1])
		if err != nil {
			if admin.IsNotFound(err) {
				return fmt.Errorf("no live session %s", rest[1])
			}
			return err
		}
		if res.Node != "" {
			fmt.Fprintf(stdout, "session %s ended (node %s)\n", rest[1], res.Node)
			return nil
		}
		fmt.Fprintf(stdout, "session %s ended\n", rest[1])
		return nil
	}
	if len(rest) > 0 {
		return usageError("unknown argument %q (usage: wharf sessions %s [-json] | wharf sessions kick ID)", rest[0], adminFlagsUsage)
	}
	c, err := adminClient(f, true)
	if err != nil {
		return err
	}
	list, partial, err := c.SessionsPartial(ctx)
	if err != nil {
		return err
	}
	if partial != "" {
		fmt.Fprintf(stderr, "wharf sessions: warning: %s\n", partial)
	}
	if f.jsonOut {
		return printJSON(stdout, list)
	}
	printSessions(stdout, list, time.Now())
	return nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printSessions prints one line per session, like ps; in a cluster, with the node that
// serves it (another node's sessions show what the store records: no client, idle time or
// last command).
func printSessions(w io.Writer, list []admin.SessionInfo, now time.Time) {
	if len(list) == 0 {
		fmt.Fprintln(w, "no live sessions")
		return
	}
	withNode := slices.ContainsFunc(list, func(s admin.SessionInfo) bool { return s.Node != "" })
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if withNode {
		fmt.Fprint(tw, "NODE\t")
	}
	fmt.Fprintln(tw, "ID\tSITE\tPROTOCOL\tUSER\tREMOTE\tCLIENT\tAGE\tIDLE\tLAST COMMAND")
	for _, s := range list {
		user := s.User
		if !s.Authenticated {
			user = "-"
		}
		idle := "-"
		if !s.LastActivity.IsZero() {
			idle = age(now.Sub(s.LastActivity))
		}
		if withNode {
			fmt.Fprintf(tw, "%s\t", truncateText(s.Node, 40))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Site, s.Protocol, user, s.RemoteIP,
			dash(truncateText(s.ClientVersion, 30)), age(now.Sub(s.Start)), idle,
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

// cmdReload asks the running server to reload its configuration through the admin API. It
// exits 1 with the problems when the new configuration is refused, and 3 with the list of
// changes that need a restart when the rest was applied.
//
// With --cluster it asks every live node of the cluster to reload (each reloads its own
// file and logs the outcome) and lists the nodes asked.
func cmdReload(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f adminFlags
	fs := newFlagSet("reload", "wharf reload [--cluster] "+adminFlagsUsage, stderr)
	f.register(fs, false)
	all := fs.Bool("cluster", false, "reload every live node of the cluster, not only this one")
	rest, err := parseFlags(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return usageError("usage: wharf reload [--cluster] %s", adminFlagsUsage)
	}
	c, err := adminClient(f, true)
	if err != nil {
		return err
	}
	if *all {
		nodes, err := c.ReloadCluster(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "reload asked of %d node(s): %s\n", len(nodes), strings.Join(nodes, ", "))
		fmt.Fprintln(stdout, "each node reloads its own file; a refused configuration is in that node's log (wharf cluster status shows their config hashes)")
		return nil
	}
	notApplied, err := c.Reload(ctx)
	if err != nil {
		return fmt.Errorf("the server refused the new configuration and keeps the old one: %w", err)
	}
	if len(notApplied) > 0 {
		fmt.Fprintln(stdout, "configuration reloaded, except these changes, which need a restart (the running values are kept):")
		for _, what := range notApplied {
			fmt.Fprintln(stdout, "  - "+what)
		}
		return &exitError{code: 3, err: fmt.Errorf("%d change(s) not applied; restart wharf to apply them", len(notApplied))}
	}
	fmt.Fprintln(stdout, "configuration reloaded")
	return nil
}

// cmdHealth checks /healthz of the running server: exit 0 when it serves, 1 otherwise. It is
// the container health check (the final image has no shell, curl or wget).
func cmdHealth(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f adminFlags
	fs := newFlagSet("health", "wharf health [-c FILE | --admin-address HOST:PORT]", stderr)
	f.register(fs, false)
	rest, err := parseFlags(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return usageError("usage: wharf health [-c FILE | --admin-address HOST:PORT]")
	}
	c, err := adminClient(f, false)
	if err != nil {
		return err
	}
	detail, err := c.Health(ctx)
	if err != nil {
		return err
	}
	if detail != "" {
		// Serving, degraded: still healthy for a supervisor, but said.
		fmt.Fprintln(stdout, detail)
		return nil
	}
	fmt.Fprintln(stdout, "ok")
	return nil
}

package config

import (
	"encoding/base32"
	"encoding/base64"
	"fmt"
	"maps"
	"net"
	"net/mail"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/wharf-project/wharf/internal/authkeys"
)

// checker applies defaults and validates a decoded Config. It knows where every key was (from
// the decoder) so that each problem points at a line, and which keys were present, so that an
// absent key gets its default while a present one is validated as written.
type checker struct {
	file, dir string
	lines     map[string]int
	set       map[string]bool
	failed    map[string]bool
	problems  []Problem
	warnings  []Problem
	// listeners maps listen addresses to the key that first used them, across all sites.
	listeners map[string]string
}

func newChecker(d *decoder, dir string) *checker {
	return &checker{
		file: d.file, dir: dir,
		lines: d.lines, set: d.set, failed: d.failed,
		listeners: map[string]string{},
	}
}

// parent returns a key path one level up ("a.b[2]" -> "a.b", "a.b" -> "a", "a" -> ""),
// stepping over quoted map keys, which may contain dots and brackets.
func parent(key string) string {
	last := 0
	for i := 0; i < len(key); i++ {
		switch key[i] {
		case '.':
			last = i
		case '[':
			last = i
			j := i + 1
			if j < len(key) && key[j] == '"' {
				for j++; j < len(key) && key[j] != '"'; j++ {
					if key[j] == '\\' {
						j++
					}
				}
			}
			for j < len(key) && key[j] != ']' {
				j++
			}
			i = j
		}
	}
	return key[:last]
}

// line returns the line of key, or of its nearest ancestor present in the file (a missing key
// is reported where its parent is).
func (c *checker) line(key string) int {
	for k := key; k != ""; k = parent(k) {
		if l, ok := c.lines[k]; ok {
			return l
		}
	}
	return 0
}

// has reports whether key is present in the file with a non-null value.
func (c *checker) has(key string) bool { return c.set[key] }

// bad reports whether key or one of its ancestors could not be decoded; its value is then
// meaningless and already reported.
func (c *checker) bad(key string) bool {
	for k := key; ; k = parent(k) {
		if c.failed[k] {
			return true
		}
		if k == "" {
			return false
		}
	}
}

func (c *checker) errorf(key, format string, args ...any) {
	if c.bad(key) {
		return
	}
	c.problems = append(c.problems, Problem{File: c.file, Line: c.line(key), Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (c *checker) warnf(key, format string, args ...any) {
	c.warnings = append(c.warnings, Problem{File: c.file, Line: c.line(key), Key: key, Msg: fmt.Sprintf(format, args...)})
}

// abs makes a path from the config absolute against the config's folder.
func (c *checker) abs(p string) string {
	if p == "" {
		return ""
	}
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(c.dir, p)
}

// mustExist reports a problem unless p names an existing regular file. Files named in the
// config are checked at load so that a typo is reported at start with its line, not at the
// first connection.
func (c *checker) mustExist(key, p string) {
	fi, err := os.Stat(p)
	switch {
	case err != nil:
		c.errorf(key, "file not found: %s", p)
	case !fi.Mode().IsRegular():
		c.errorf(key, "not a regular file: %s", p)
	}
}

func (c *checker) oneOf(key, value string, allowed ...string) {
	if !slices.Contains(allowed, value) {
		c.errorf(key, "invalid value %q (allowed: %s)", truncate(value), strings.Join(allowed, ", "))
	}
}

func (c *checker) nonNegative(key string, v int64) {
	if v < 0 {
		c.errorf(key, "must be 0 or more, got %d", v)
	}
}

func (c *checker) positive(key string, d Duration) {
	if d.Duration <= 0 {
		c.errorf(key, "must be a positive duration, got %s", d.Duration)
	}
}

// defaultString sets *s to def when it is empty: an empty string never means anything else.
func defaultString(s *string, def string) {
	if *s == "" {
		*s = def
	}
}

// defaultDuration sets *d to def when key is absent; a present value is kept (and validated).
func (c *checker) defaultDuration(key string, d *Duration, def time.Duration) {
	if !c.has(key) {
		d.Duration = def
	}
}

func (c *checker) defaultInt(key string, v *int, def int) {
	if !c.has(key) {
		*v = def
	}
}

// defaultAtLeast is defaultInt, then a check that the value is at least lo.
func (c *checker) defaultAtLeast(key string, v *int, def, lo int) {
	c.defaultInt(key, v, def)
	if *v < lo {
		c.errorf(key, "must be at least %d, got %d", lo, *v)
	}
}

// defaultFromTo is defaultInt, then a check that the value is from lo to hi.
func (c *checker) defaultFromTo(key string, v *int, def, lo, hi int) {
	c.defaultInt(key, v, def)
	if *v < lo || *v > hi {
		c.errorf(key, "must be from %d to %d, got %d", lo, hi, *v)
	}
}

func boolPtr(b bool) *bool { return &b }

func (c *checker) check(cfg *Config) {
	defaultString(&cfg.Log.Level, "info")
	defaultString(&cfg.Log.Format, "text")
	c.oneOf("log.level", cfg.Log.Level, "debug", "info", "warn", "error")
	c.oneOf("log.format", cfg.Log.Format, "text", "json")
	cfg.Log.File = c.abs(cfg.Log.File)
	c.defaultDuration("log.flush_interval", &cfg.Log.FlushInterval, 100*time.Millisecond)
	if d := cfg.Log.FlushInterval.Duration; d < 0 {
		c.errorf("log.flush_interval", "must be 0 (each line at once) or a positive duration, got %s", d)
	}

	defaultString(&cfg.StateDir, "./state")
	cfg.StateDir = c.abs(cfg.StateDir)

	if cfg.Metrics.Address != "" && c.hostPort("metrics.address", cfg.Metrics.Address) {
		// A site listener on the same address would fail at start with a bind error.
		if _, port, _ := net.SplitHostPort(cfg.Metrics.Address); port != "0" {
			c.listeners[cfg.Metrics.Address] = "metrics.address"
		}
	}
	defaultString(&cfg.Metrics.Admin, "local")
	c.oneOf("metrics.admin", cfg.Metrics.Admin, "off", "local", "any")
	defaultString(&cfg.Metrics.AdminTokenFile, filepath.Join(cfg.StateDir, "admin.token"))
	cfg.Metrics.AdminTokenFile = c.abs(cfg.Metrics.AdminTokenFile)

	if cfg.Audit.Enabled == nil {
		cfg.Audit.Enabled = boolPtr(true)
	}
	cfg.Audit.File = c.abs(cfg.Audit.File)
	if cfg.Audit.File != "" && cfg.Audit.File == cfg.Log.File {
		// Two handles appending to one file interleave partial lines.
		c.errorf("audit.file", "audit.file must differ from log.file (leave it empty to audit into the server log)")
	}

	c.defaultDuration("reload.watch_interval", &cfg.Reload.WatchInterval, 2*time.Second)
	c.positive("reload.watch_interval", cfg.Reload.WatchInterval)

	if cfg.SMTP != nil {
		c.checkSMTP("smtp", cfg.SMTP)
	}
	c.checkScripting("scripting", &cfg.Scripting)
	if cfg.Cluster != nil {
		c.checkCluster("cluster", cfg.Cluster)
	}

	if len(cfg.Sites) == 0 {
		c.errorf("sites", "at least one site is required")
	}
	names := map[string]string{}
	for i := range cfg.Sites {
		key := "sites[" + strconv.Itoa(i) + "]"
		s := &cfg.Sites[i]
		switch first, dup := names[s.Name]; {
		case s.Name == "":
			c.errorf(key+".name", "a site name is required")
		case dup:
			c.errorf(key+".name", "duplicate site name %q (first at line %d)", truncate(s.Name), c.line(first))
		default:
			names[s.Name] = key + ".name"
		}
		c.checkSite(key, s)
		if s.SMTP != nil {
			c.checkSMTP(key+".smtp", s.SMTP)
		} else {
			s.SMTP = cfg.SMTP // shared: a config is not changed after loading
		}
	}
}

// hostPort checks a listen address: host:port with a numeric port (0 = any free port, for
// tests); an empty host listens on all interfaces.
func (c *checker) hostPort(key, addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		c.errorf(key, "invalid address %q: expected host:port such as 127.0.0.1:2022", truncate(addr))
		return false
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		c.errorf(key, "invalid port %q in address %q (0-65535)", truncate(port), truncate(addr))
		return false
	}
	return true
}

func (c *checker) checkSite(key string, s *Site) {
	// Listeners
	if len(s.Listeners) == 0 {
		c.errorf(key+".listeners", "a site needs at least one listener")
	}
	for i, l := range s.Listeners {
		lk := key + ".listeners[" + strconv.Itoa(i) + "]"
		if l.Protocol == "" {
			c.errorf(lk+".protocol", "a protocol is required (sftp, ftp or ftps)")
		} else {
			c.oneOf(lk+".protocol", l.Protocol, "sftp", "ftp", "ftps")
		}
		if len(l.ProxyProtocolFrom) > 0 && !l.ProxyProtocol {
			c.errorf(lk+".proxy_protocol_from", "only a listener with proxy_protocol: true takes PROXY headers; set it, or remove proxy_protocol_from")
		}
		if l.Address == "" {
			c.errorf(lk+".address", "an address is required (host:port)")
			continue
		}
		if !c.hostPort(lk+".address", l.Address) {
			continue
		}
		// Port 0 means "any free port", so several such listeners never collide.
		if _, port, _ := net.SplitHostPort(l.Address); port != "0" {
			if first, dup := c.listeners[l.Address]; dup {
				c.errorf(lk+".address", "address %s is already used (line %d)", l.Address, c.line(first))
			} else {
				c.listeners[l.Address] = lk + ".address"
			}
		}
	}

	// SSH
	for i := range s.SSH.HostKeys {
		hk := key + ".ssh.host_keys[" + strconv.Itoa(i) + "]"
		if s.SSH.HostKeys[i] == "" {
			c.errorf(hk, "empty host key file name")
			continue
		}
		s.SSH.HostKeys[i] = c.abs(s.SSH.HostKeys[i])
		c.mustExist(hk, s.SSH.HostKeys[i])
	}
	defaultString(&s.SSH.SoftwareID, "wharf")
	if !validSoftwareID(s.SSH.SoftwareID) {
		// RFC 4253 4.2: printable US-ASCII without whitespace or '-', at most 255 bytes in all.
		c.errorf(key+".ssh.software_id", "invalid software id %q: use printable ASCII without spaces or '-'", truncate(s.SSH.SoftwareID))
	}
	if s.SSH.SCP == nil {
		s.SSH.SCP = boolPtr(true)
	}
	c.defaultAtLeast(key+".ssh.max_sessions", &s.SSH.MaxSessions, 10, 1)
	c.checkSSHAlgorithms(key+".ssh", &s.SSH)
	if s.SSH.TrustedUserCAKeys != "" {
		s.SSH.TrustedUserCAKeys = c.abs(s.SSH.TrustedUserCAKeys)
		c.checkKeysFile(key+".ssh.trusted_user_ca_keys", s.SSH.TrustedUserCAKeys, true)
	}

	// FTP
	defaultString(&s.FTP.TLS, "optional")
	c.oneOf(key+".ftp.tls", s.FTP.TLS, "off", "optional", "required")
	defaultString(&s.FTP.TLSSessionReuse, "required")
	c.oneOf(key+".ftp.tls_session_reuse", s.FTP.TLSSessionReuse, "required", "optional")
	if !c.has(key + ".ftp.passive_ports") {
		s.FTP.PassivePorts = PortRange{Start: 50000, End: 50100}
	}
	if r := s.FTP.PassivePorts; r.Start < 1 || r.End > 65535 || r.Start > r.End {
		c.errorf(key+".ftp.passive_ports", "invalid port range %s: ports must be 1-65535 with start <= end", r)
	}
	if h := s.FTP.PublicHost; h != "" {
		if a, err := netip.ParseAddr(h); err != nil || !a.Is4() {
			// PASV replies can only carry an IPv4 address.
			c.errorf(key+".ftp.public_host", "public_host must be an IPv4 address, got %q", truncate(h))
		}
	}
	if strings.ContainsFunc(s.FTP.Banner, func(r rune) bool { return r != '\n' && unicode.IsControl(r) }) {
		// A CR or other control character could end the 220 reply early and inject lines.
		c.errorf(key+".ftp.banner", "the banner must not contain control characters other than newlines")
	}

	// TLS
	if (s.TLS.Cert == "") != (s.TLS.Key == "") {
		c.errorf(key+".tls", "set both cert and key, or neither (a self-signed certificate is then generated)")
	}
	if s.TLS.Cert != "" {
		s.TLS.Cert = c.abs(s.TLS.Cert)
		c.mustExist(key+".tls.cert", s.TLS.Cert)
	}
	if s.TLS.Key != "" {
		s.TLS.Key = c.abs(s.TLS.Key)
		c.mustExist(key+".tls.key", s.TLS.Key)
	}

	// Limits
	lk := key + ".limits"
	c.defaultInt(lk+".max_connections", &s.Limits.MaxConnections, 500)
	c.defaultInt(lk+".max_connections_per_ip", &s.Limits.MaxConnectionsPerIP, 64)
	c.defaultInt(lk+".max_sessions_per_user", &s.Limits.MaxSessionsPerUser, 0)
	c.defaultDuration(lk+".idle_timeout", &s.Limits.IdleTimeout, 15*time.Minute)
	c.defaultDuration(lk+".login_timeout", &s.Limits.LoginTimeout, 30*time.Second)
	c.nonNegative(lk+".max_connections", int64(s.Limits.MaxConnections))
	c.nonNegative(lk+".max_connections_per_ip", int64(s.Limits.MaxConnectionsPerIP))
	c.nonNegative(lk+".max_sessions_per_user", int64(s.Limits.MaxSessionsPerUser))
	c.positive(lk+".idle_timeout", s.Limits.IdleTimeout)
	c.positive(lk+".login_timeout", s.Limits.LoginTimeout)
	c.defaultInt(lk+".max_handles_per_session", &s.Limits.MaxHandlesPerSession, 512)
	c.nonNegative(lk+".max_handles_per_session", int64(s.Limits.MaxHandlesPerSession))
	c.defaultInt(lk+".max_unauthenticated", &s.Limits.MaxUnauthenticated, 100)
	c.defaultInt(lk+".max_unauthenticated_per_ip", &s.Limits.MaxUnauthenticatedPerIP, 32)
	c.nonNegative(lk+".max_unauthenticated", int64(s.Limits.MaxUnauthenticated))
	c.nonNegative(lk+".max_unauthenticated_per_ip", int64(s.Limits.MaxUnauthenticatedPerIP))

	// Protector
	pk := key + ".protector"
	p := &s.Protector
	if p.Enabled == nil {
		p.Enabled = boolPtr(true)
	}
	c.defaultDuration(pk+".window", &p.Window, 10*time.Minute)
	c.defaultInt(pk+".threshold", &p.Threshold, 10)
	c.defaultDuration(pk+".ban_for", &p.BanFor, 30*time.Minute)
	if !c.has(pk + ".safe") {
		p.Safe = []Prefix{{netip.MustParsePrefix("127.0.0.1/32")}}
	}
	c.positive(pk+".window", p.Window)
	c.positive(pk+".ban_for", p.BanFor)
	if *p.Enabled && p.Threshold < 1 {
		c.errorf(pk+".threshold", "must be at least 1 while the protector is enabled, got %d", p.Threshold)
	}
	c.defaultInt(pk+".ipv6_prefix", &p.IPv6Prefix, 64)
	if p.IPv6Prefix < 1 || p.IPv6Prefix > 128 {
		c.errorf(pk+".ipv6_prefix", "must be a prefix length from 1 to 128, got %d", p.IPv6Prefix)
	}
	c.defaultAtLeast(pk+".max_bans", &p.MaxBans, 100_000, 1)

	// VFS
	vfsNames := map[string]string{}
	for i := range s.VFS {
		vk := key + ".vfs[" + strconv.Itoa(i) + "]"
		v := &s.VFS[i]
		switch first, dup := vfsNames[v.Name]; {
		case v.Name == "":
			c.errorf(vk+".name", "a vfs name is required")
		case dup:
			c.errorf(vk+".name", "duplicate vfs name %q (first at line %d)", truncate(v.Name), c.line(first))
		default:
			vfsNames[v.Name] = vk + ".name"
		}
		switch v.Type {
		case "disk":
			if v.Root == "" {
				c.errorf(vk+".root", "a disk vfs needs a root folder")
				break
			}
			if rest := strings.ReplaceAll(v.Root, "{user}", ""); strings.ContainsAny(rest, "{}") {
				c.errorf(vk+".root", "unknown placeholder in %q: only {user} is supported", truncate(v.Root))
			}
			v.Root = c.abs(v.Root)
		case "memory":
			if v.Root != "" {
				c.errorf(vk+".root", "a memory vfs has no root; remove it")
			}
		case "s3":
			c.checkS3(vk, v)
		case "":
			c.errorf(vk+".type", "a vfs type is required (disk, memory or s3)")
		default:
			c.oneOf(vk+".type", v.Type, "disk", "memory", "s3")
		}
		if v.Type != "s3" {
			c.noS3Keys(vk, v.Type)
		}
		if v.AtomicUploads == nil {
			v.AtomicUploads = boolPtr(v.Type == "disk" || v.Type == "s3")
		}
		if v.AllowSymlinks && (v.Type == "memory" || v.Type == "s3") {
			c.errorf(vk+".allow_symlinks", "%s vfs has no symbolic links; remove allow_symlinks", map[string]string{"memory": "a memory", "s3": "an s3"}[v.Type])
		}
	}

	// Scripts: resolved before users, whose handlers use the site's folder too.
	defaultString(&s.ScriptsDir, "./scripts")
	s.ScriptsDir = c.abs(s.ScriptsDir)

	// Users
	userIDs := map[string]string{}
	for i := range s.Users {
		uk := key + ".users[" + strconv.Itoa(i) + "]"
		u := &s.Users[i]
		u.Line = c.line(uk)
		if err := ValidUserID(u.ID); err != nil {
			c.errorf(uk+".id", "%v", err)
		} else if first, dup := userIDs[u.ID]; dup {
			c.errorf(uk+".id", "duplicate user id %q (first at line %d)", u.ID, c.line(first))
		} else {
			userIDs[u.ID] = uk + ".id"
		}
		c.checkUser(uk, u, s, vfsNames)
	}

	c.checkHandlers(key+".event_handlers", s.EventHandlers, s.ScriptsDir)
	c.checkSiteScripting(key, s)
}

func validSoftwareID(s string) bool {
	if s == "" || len(s) > 200 {
		return false
	}
	for i := range len(s) {
		if s[i] <= ' ' || s[i] > '~' || s[i] == '-' {
			return false
		}
	}
	return true
}

// ValidUserID checks a user id. Ids are substituted for {user} in vfs roots, so anything that
// could escape or alias a folder (separators, "." and "..", control characters) is refused;
// "*" alone names the catch-all profile. The core can use this for script-authenticated ids.
func ValidUserID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("a user id is required")
	case id == "*":
		return nil
	case id == "." || id == "..":
		return fmt.Errorf("invalid user id %q", id)
	case strings.TrimSpace(id) != id:
		return fmt.Errorf("user id %q has leading or trailing spaces", truncate(id))
	case strings.ContainsAny(id, "/\\*"):
		return fmt.Errorf("user id %q must not contain '/', '\\' or '*' (\"*\" alone is the catch-all profile)", truncate(id))
	case strings.ContainsFunc(id, unicode.IsControl):
		return fmt.Errorf("user id %q contains control characters", truncate(id))
	}
	return nil
}

// checkUser validates one user; vfsNames maps the site's vfs names (to their keys).
func (c *checker) checkUser(key string, u *User, s *Site, vfsNames map[string]string) {
	c.checkPassword(key+".password", u.Password)

	for i, k := range u.PublicKeys {
		kk := key + ".public_keys[" + strconv.Itoa(i) + "]"
		// Options other than from= are refused: ignoring a command= or similar restriction
		// silently would grant more than the admin wrote.
		if _, err := authkeys.ParseLine(k); err != nil {
			c.errorf(kk, "%v (expected an authorized_keys line such as \"ssh-ed25519 AAAA... user@host\")", err)
		}
	}
	if u.AuthorizedKeysFile != "" {
		u.AuthorizedKeysFile = c.abs(u.AuthorizedKeysFile)
		c.checkKeysFile(key+".authorized_keys_file", u.AuthorizedKeysFile, false)
	}

	if u.TOTPSecret != "" && !validTOTPSecret(u.TOTPSecret) {
		c.errorf(key+".totp_secret", "totp_secret must be base32 (A-Z, 2-7)")
	}

	if u.Email != "" {
		if a, err := mail.ParseAddress(u.Email); err != nil || a.Address != u.Email {
			c.errorf(key+".email", "invalid email address %q", truncate(u.Email))
		}
	}

	defaultString(&u.Type, "normal")

	for i, m := range u.AuthMethods {
		mk := key + ".auth_methods[" + strconv.Itoa(i) + "]"
		steps := strings.Split(m, "+")
		for j, step := range steps {
			if !slices.Contains(AuthMethods, step) {
				c.errorf(mk, "invalid auth method %q (allowed: %s, or a chain such as \"publickey+password\")", truncate(step), strings.Join(AuthMethods, ", "))
				break
			}
			if slices.Contains(steps[:j], step) {
				c.errorf(mk, "method %q appears twice in chain %q", step, truncate(m))
				break
			}
		}
	}

	if !c.has(key + ".subsystems") {
		u.Subsystems = slices.Clone(Subsystems)
	} else if len(u.Subsystems) == 0 {
		c.errorf(key+".subsystems", "an empty list allows no protocol; omit the key to allow all")
	}
	seenSub := map[string]bool{}
	for i, sub := range u.Subsystems {
		sk := key + ".subsystems[" + strconv.Itoa(i) + "]"
		up := strings.ToUpper(sub)
		switch {
		case !slices.Contains(Subsystems, up):
			c.errorf(sk, "invalid subsystem %q (allowed: %s)", truncate(sub), strings.Join(Subsystems, ", "))
		case seenSub[up]:
			c.errorf(sk, "subsystem %s is listed twice", up)
		}
		seenSub[up] = true
		u.Subsystems[i] = up
	}

	if c.has(key + ".home") {
		c.checkMount(key+".home", &u.Home, s, vfsNames, []string{"all"})
	} else if len(u.Folders) == 0 {
		c.errorf(key, "user %q has neither a home nor folders: add home: {vfs: <name>}", truncate(u.ID))
	}
	for _, vp := range slices.Sorted(maps.Keys(u.Folders)) {
		fk := mapKey(key+".folders", vp)
		switch {
		case !strings.HasPrefix(vp, "/"):
			c.errorf(fk, "folder path must be absolute (start with /)")
		case vp == "/":
			c.errorf(fk, "\"/\" is the home; use home: instead")
		case path.Clean(vp) != vp:
			c.errorf(fk, "folder path must be clean; write %q", path.Clean(vp))
		}
		m := u.Folders[vp]
		c.checkMount(fk, &m, s, vfsNames, []string{"list", "download"})
		u.Folders[vp] = m
	}

	for i, h := range u.AllowFrom {
		if !h.IsValid() {
			c.errorf(key+".allow_from["+strconv.Itoa(i)+"]", "empty CIDR")
		}
	}
	c.nonNegative(key+".max_sessions", int64(u.MaxSessions))
	c.nonNegative(key+".bandwidth.upload", u.Bandwidth.Upload)
	c.nonNegative(key+".bandwidth.download", u.Bandwidth.Download)
	c.nonNegative(key+".quota.bytes", u.Quota.Bytes)
	c.nonNegative(key+".quota.files", u.Quota.Files)

	c.checkHandlers(key+".event_handlers", u.EventHandlers, s.ScriptsDir)
}

func (c *checker) checkMount(key string, m *Mount, s *Site, vfsNames map[string]string, defaultPerms []string) {
	if m.VFS == "" {
		c.errorf(key+".vfs", "a vfs name is required")
	} else if _, ok := vfsNames[m.VFS]; !ok {
		var names []string
		for _, v := range s.VFS {
			if v.Name != "" && len(names) < 20 {
				names = append(names, v.Name)
			}
		}
		msg := fmt.Sprintf("unknown vfs %q", truncate(m.VFS))
		if len(names) == 0 {
			msg += " (the site defines no vfs)"
		} else {
			msg += " (defined: " + strings.Join(names, ", ") + ")"
		}
		c.errorf(key+".vfs", "%s", msg)
	}
	if !c.has(key + ".permissions") {
		m.Permissions = slices.Clone(defaultPerms)
		return
	}
	if len(m.Permissions) == 0 {
		c.errorf(key+".permissions", "an empty list grants nothing; omit the key for the default %v", defaultPerms)
	}
	for i, p := range m.Permissions {
		if p != "all" && !slices.Contains(Permissions, p) {
			c.errorf(key+".permissions["+strconv.Itoa(i)+"]", "invalid permission %q (allowed: all, %s)", truncate(p), strings.Join(Permissions, ", "))
		}
	}
}

var (
	bcryptRE   = regexp.MustCompile(`^\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$`)
	argonParam = regexp.MustCompile(`^m=([0-9]{1,10}),t=([0-9]{1,10}),p=([0-9]{1,3})$`)
)

// checkPassword validates the password format. Messages never quote the value: it may be a
// real password typed in the wrong place, and config errors end up in logs.
func (c *checker) checkPassword(key, pw string) {
	switch {
	case pw == "":
	case strings.HasPrefix(pw, "plain:"):
		if pw == "plain:" {
			c.errorf(key, "empty plain-text password")
			return
		}
		c.warnf(key, "plain-text password; store a hash instead (wharf hash-password)")
	case strings.HasPrefix(pw, "$2"):
		if !bcryptRE.MatchString(pw) {
			c.errorf(key, "malformed bcrypt hash (expected $2a$, $2b$ or $2y$, a cost of 04-31 and 53 hash characters)")
		}
	case strings.HasPrefix(pw, "$argon2id$"):
		if err := checkArgon2id(pw); err != nil {
			c.errorf(key, "malformed argon2id hash: %v", err)
		}
	case strings.HasPrefix(pw, "$argon2"):
		c.errorf(key, "only argon2id hashes are supported (not argon2i or argon2d)")
	default:
		c.errorf(key, "password must be a bcrypt or argon2id hash (wharf hash-password), or \"plain:\" followed by the password")
	}
}

// checkArgon2id checks a PHC string: $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>,
// salt and hash in unpadded standard base64.
func checkArgon2id(s string) error {
	parts := strings.Split(s, "$")
	if len(parts) != 6 {
		return fmt.Errorf("expected $argon2id$v=19$m=...,t=...,p=...$salt$hash")
	}
	if parts[2] != "v=19" {
		return fmt.Errorf("unsupported version (only v=19)")
	}
	m := argonParam.FindStringSubmatch(parts[3])
	if m == nil {
		return fmt.Errorf("parameters must be m=<memory>,t=<time>,p=<threads>")
	}
	mem, _ := strconv.ParseUint(m[1], 10, 32)
	passes, _ := strconv.ParseUint(m[2], 10, 32)
	lanes, _ := strconv.ParseUint(m[3], 10, 8)
	if mem == 0 || passes == 0 || lanes == 0 || mem > 1<<22 || lanes > 255 {
		return fmt.Errorf("parameters out of range (m 1..4194304 KiB, t >= 1, p 1..255)")
	}
	if salt, err := base64.RawStdEncoding.DecodeString(parts[4]); err != nil || len(salt) < 8 {
		return fmt.Errorf("salt must be at least 8 bytes of unpadded base64")
	}
	if hash, err := base64.RawStdEncoding.DecodeString(parts[5]); err != nil || len(hash) < 4 {
		return fmt.Errorf("hash must be at least 4 bytes of unpadded base64")
	}
	return nil
}

// validTOTPSecret mirrors how github.com/pquerna/otp decodes secrets (trim, upper-case, pad,
// standard base32), so a secret accepted here is one the TOTP check can use.
func validTOTPSecret(s string) bool {
	s = strings.ToUpper(strings.TrimSpace(s))
	if n := len(s) % 8; n != 0 {
		s += strings.Repeat("=", 8-n)
	}
	b, err := base32.StdEncoding.DecodeString(s)
	return err == nil && len(b) > 0
}

func (c *checker) checkHandlers(key string, hs []EventHandler, scriptsDir string) {
	for i := range hs {
		hk := key + "[" + strconv.Itoa(i) + "]"
		h := &hs[i]
		h.Line = c.line(hk)
		switch {
		case h.Event == "":
			c.errorf(hk+".event", "an event name is required")
		case SyncplifyOnlyEvents[h.Event] != "":
			c.errorf(hk+".event", "%s is a Syncplify event that wharf does not implement; %s", h.Event, SyncplifyOnlyEvents[h.Event])
		case !slices.Contains(Events, h.Event):
			msg := fmt.Sprintf("unknown event %q", truncate(h.Event))
			if s := closest(h.Event, Events); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			}
			c.errorf(hk+".event", "%s", msg)
		}

		sk := hk + ".script"
		switch ext := strings.ToLower(path.Ext(h.Script)); {
		case h.Script == "":
			c.errorf(sk, "a script file name is required")
		case ext != ".lua" && ext != ".js":
			c.errorf(sk, "script %q must end in .lua or .js", truncate(h.Script))
		case !filepath.IsLocal(filepath.FromSlash(h.Script)):
			// Scripts are confined to scripts_dir so a config cannot point at arbitrary files.
			c.errorf(sk, "script %q must be a file name inside scripts_dir (%s)", truncate(h.Script), scriptsDir)
		default:
			h.Path = filepath.Join(scriptsDir, filepath.FromSlash(h.Script))
			fi, err := os.Stat(h.Path)
			switch {
			case err != nil:
				c.errorf(sk, "script not found: %s", h.Path)
			case !fi.Mode().IsRegular():
				c.errorf(sk, "script is not a regular file: %s", h.Path)
			}
		}

		c.defaultDuration(hk+".timeout", &h.Timeout, 5*time.Second)
		c.positive(hk+".timeout", h.Timeout)
		defaultString(&h.OnError, "block")
		c.oneOf(hk+".on_error", h.OnError, "block", "continue")
		if !c.has(hk + ".max_memory") {
			h.MaxMemory = DefaultMaxMemory
		} else if h.MaxMemory < MinMaxMemory {
			c.errorf(hk+".max_memory", "must be at least %s, got %s", MinMaxMemory, h.MaxMemory)
		}
		defaultString(&h.Mode, "sync")
		c.oneOf(hk+".mode", h.Mode, "sync", "async")
		if h.Mode == "async" && slices.Contains(Events, h.Event) && !slices.Contains(AsyncEvents, h.Event) {
			c.errorf(hk+".mode", "%s cannot be async: its operation waits for what the script decides (async is for %s)",
				h.Event, strings.Join(AsyncEvents, ", "))
		}
		defaultString(&h.OnFull, "drop")
		c.oneOf(hk+".on_full", h.OnFull, "drop", "wait")
		if c.has(hk+".on_full") && h.Mode != "async" {
			c.errorf(hk+".on_full", "on_full applies to async handlers only (add mode: async)")
		}
	}
}

// checkSMTP validates a mail relay and applies its defaults.
func (c *checker) checkSMTP(key string, m *SMTP) {
	if m.Host == "" {
		c.errorf(key+".host", "the relay's host name is required")
	} else if strings.ContainsAny(m.Host, " /:@\r\n") && net.ParseIP(m.Host) == nil {
		c.errorf(key+".host", "invalid host %q: a host name or IP address without port (use port:)", truncate(m.Host))
	}
	defaultString(&m.TLS, "starttls")
	c.oneOf(key+".tls", m.TLS, "starttls", "implicit", "none")
	if !c.has(key + ".port") {
		switch m.TLS {
		case "implicit":
			m.Port = 465
		case "none":
			m.Port = 25
		default:
			m.Port = 587
		}
	} else if m.Port < 1 || m.Port > 65535 {
		c.errorf(key+".port", "invalid port %d (1-65535)", m.Port)
	}
	if m.CAFile != "" {
		m.CAFile = c.abs(m.CAFile)
		c.mustExist(key+".ca_file", m.CAFile)
	}
	switch {
	case m.Password.IsSet() && m.Username == "":
		c.errorf(key+".password", "a password needs a username")
	case m.Username != "" && m.TLS == "none":
		// The relay would receive the password in clear, readable by anyone on the path.
		c.errorf(key+".username", "authenticating with tls: none would send the password in clear; use starttls or implicit")
	}
	if m.Password.IsSet() {
		if err := resolveSecret(&m.Password, c.dir); err != nil {
			c.errorf(key+".password", "%v", err)
		} else if m.Password.Inline() {
			c.warnf(key+".password", "password written in the config file; use {env: NAME} or {file: path}")
		}
	}
	if m.From != "" {
		if a, err := mail.ParseAddress(m.From); err != nil || a.Address == "" {
			c.errorf(key+".from", "invalid sender address %q", truncate(m.From))
		}
	}
	c.defaultDuration(key+".timeout", &m.Timeout, 60*time.Second)
	c.positive(key+".timeout", m.Timeout)
	c.defaultDuration(key+".give_up_after", &m.GiveUpAfter, 24*time.Hour)
	c.positive(key+".give_up_after", m.GiveUpAfter)
	if !c.has(key + ".max_message_size") {
		m.MaxMessageSize = 10 << 20
	} else if m.MaxMessageSize < 1<<10 {
		c.errorf(key+".max_message_size", "must be at least 1KiB, got %s", m.MaxMessageSize)
	}
}

// checkScripting applies the defaults of the scripting section.
func (c *checker) checkScripting(key string, s *Scripting) {
	c.defaultAtLeast(key+".async_workers", &s.AsyncWorkers, 4, 1)
	c.defaultAtLeast(key+".async_queue", &s.AsyncQueue, 1000, 1)
	if !c.has(key + ".mail_spool") {
		s.MailSpool = 256 << 20
	} else if s.MailSpool < 1<<20 {
		c.errorf(key+".mail_spool", "must be at least 1MiB, got %s", s.MailSpool)
	}
}

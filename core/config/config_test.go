package config

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// testDir is the folder the table configs are parsed against: it has scripts/log-session.lua
// and the key files of full.yaml.
const testDir = "../../testdata/config"

// head is a valid site; table cases append lines to it, starting at line 7.
const head = `sites:
  - name: main
    listeners:
      - {protocol: sftp, address: "127.0.0.1:0"}
    vfs:
      - {name: home, type: disk, root: ./data}
`

// user is a valid user entry for head (lines 7-10); cases append more user keys at line 11.
const user = `    users:
      - id: alice
        home:
          vfs: home
`

const testKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFukPeQ9jhX//KbEJH+2VJF2yI/45j9WoqWddeVBxiEp"

func mustParse(t *testing.T, data, dir string) *Config {
	t.Helper()
	cfg, err := Parse([]byte(data), "wharf.yaml", dir)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return cfg
}

func problemsOf(t *testing.T, err error) []Problem {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("want *Error, got %T: %v", err, err)
	}
	return e.Problems
}

func TestBrokenConfigs(t *testing.T) {
	tests := []struct {
		name      string
		yaml      string
		key       string
		line      int
		msg       string // substring of the message
		notInMsgs string // must not appear in any message (secrets)
	}{
		{"typo'd key", head + "    limitz: {}\n", "sites[0].limitz", 7, `unknown key; did you mean "limits"?`, ""},
		{"unknown key without suggestion", "zzzzzz: 1\n" + head, "zzzzzz", 1, "unknown key (valid keys: log, state_dir, sites, metrics, audit, reload, smtp, scripting, cluster)", ""},
		{"duplicate key", head + "    scripts_dir: a\n    scripts_dir: b\n", "sites[0].scripts_dir", 8, "duplicate key (first defined at line 7)", ""},
		{"wrong type int", head + "    limits: {max_connections: lots}\n", "sites[0].limits.max_connections", 7, `expected an integer, got "lots"`, ""},
		{"wrong type list", "sites:\n  - name: x\n    listeners: sftp\n", "sites[0].listeners", 3, `expected a list, got "sftp"`, ""},
		{"wrong type mapping", "log: [info]\n" + head, "log", 1, "expected a mapping, got a list", ""},
		{"wrong type bool", head + "    protector: {enabled: maybe}\n", "sites[0].protector.enabled", 7, `expected true or false, got "maybe"`, ""},
		{"no sites", "log: {level: info}\n", "sites", 0, "at least one site is required", ""},
		{"empty file", "", "sites", 0, "at least one site is required", ""},
		{"bad log level", "log: {level: verbose}\n" + head, "log.level", 1, `invalid value "verbose" (allowed: debug, info, warn, error)`, ""},
		{"bad log format", "log:\n  format: xml\n" + head, "log.format", 2, `invalid value "xml"`, ""},
		{"negative log flush interval", "log:\n  flush_interval: -1s\n" + head, "log.flush_interval", 2, "must be 0 (each line at once) or a positive duration, got -1s", ""},
		{"bad metrics address", "metrics: {address: localhost}\n" + head, "metrics.address", 1, `invalid address "localhost"`, ""},
		{"metrics address used by a listener", "metrics: {address: \"127.0.0.1:2022\"}\n" + strings.Replace(head, "127.0.0.1:0", "127.0.0.1:2022", 1), "sites[0].listeners[0].address", 5, "address 127.0.0.1:2022 is already used (line 1)", ""},
		{"bad admin mode", "metrics: {admin: public}\n" + head, "metrics.admin", 1, `invalid value "public" (allowed: off, local, any)`, ""},
		{"audit file is the log file", "log: {file: wharf.log}\naudit: {file: wharf.log}\n" + head, "audit.file", 2, "audit.file must differ from log.file", ""},
		{"audit enabled not a bool", "audit: {enabled: sometimes}\n" + head, "audit.enabled", 1, `expected true or false, got "sometimes"`, ""},
		{"zero watch interval", "reload: {watch_interval: 0s}\n" + head, "reload.watch_interval", 1, "must be a positive duration, got 0s", ""},
		{"unknown reload key", "reload: {watch_script: true}\n" + head, "reload.watch_script", 1, `did you mean "watch_scripts"?`, ""},
		{"duplicate site", head + "  - name: main\n    listeners: [{protocol: ftp, address: \"127.0.0.1:0\"}]\n", "sites[1].name", 7, `duplicate site name "main" (first at line 2)`, ""},
		{"site without name", "sites:\n  - listeners: [{protocol: ftp, address: \"127.0.0.1:0\"}]\n", "sites[0].name", 2, "a site name is required", ""},
		{"no listeners", "sites:\n  - name: x\n", "sites[0].listeners", 2, "at least one listener", ""},
		{"bad protocol", "sites:\n  - name: x\n    listeners:\n      - protocol: http\n        address: :80\n", "sites[0].listeners[0].protocol", 4, `invalid value "http" (allowed: sftp, ftp, ftps)`, ""},
		{"bad listen address", "sites:\n  - name: x\n    listeners:\n      - protocol: ftp\n        address: 127.0.0.1\n", "sites[0].listeners[0].address", 5, `invalid address "127.0.0.1"`, ""},
		{"bad listen port", "sites:\n  - name: x\n    listeners:\n      - protocol: ftp\n        address: 127.0.0.1:70000\n", "sites[0].listeners[0].address", 5, `invalid port "70000"`, ""},
		{"bad proxy_protocol_from", "sites:\n  - name: x\n    listeners:\n      - protocol: ftp\n        address: 127.0.0.1:0\n        proxy_protocol: true\n        proxy_protocol_from: [10.0.0.5, 10.0.0.0/40]\n", "sites[0].listeners[0].proxy_protocol_from[1]", 7, `invalid CIDR "10.0.0.0/40"`, ""},
		{"proxy_protocol_from without proxy_protocol", "sites:\n  - name: x\n    listeners:\n      - protocol: ftp\n        address: 127.0.0.1:0\n        proxy_protocol_from: [10.0.0.5]\n", "sites[0].listeners[0].proxy_protocol_from", 6, "only a listener with proxy_protocol: true takes PROXY headers", ""},
		{"duplicate listen address", "sites:\n  - name: x\n    listeners:\n      - {protocol: ftp, address: \":21\"}\n      - {protocol: ftps, address: \":21\"}\n", "sites[0].listeners[1].address", 5, "address :21 is already used (line 4)", ""},
		{"bad software id", head + "    ssh: {software_id: \"my server\"}\n", "sites[0].ssh.software_id", 7, `invalid software id "my server"`, ""},
		{"missing host key", head + "    ssh:\n      host_keys: [nope.key]\n", "sites[0].ssh.host_keys[0]", 8, "file not found: ", ""},
		{"no ssh sessions", head + "    ssh: {max_sessions: 0}\n", "sites[0].ssh.max_sessions", 7, "must be at least 1, got 0", ""},
		{"negative handle cap", head + "    limits: {max_handles_per_session: -1}\n", "sites[0].limits.max_handles_per_session", 7, "must be 0 or more, got -1", ""},
		{"bad ftp tls", head + "    ftp: {tls: yes}\n", "sites[0].ftp.tls", 7, `invalid value "yes" (allowed: off, optional, required)`, ""},
		{"bad session reuse", head + "    ftp: {tls_session_reuse: never}\n", "sites[0].ftp.tls_session_reuse", 7, `invalid value "never"`, ""},
		{"bad port range order", head + "    ftp:\n      passive_ports: 2000-1000\n", "sites[0].ftp.passive_ports", 8, "invalid port range 2000-1000", ""},
		{"bad port range bounds", head + "    ftp:\n      passive_ports: 0-10\n", "sites[0].ftp.passive_ports", 8, "invalid port range 0-10", ""},
		{"bad port range syntax", head + "    ftp:\n      passive_ports: 5000:6000\n", "sites[0].ftp.passive_ports", 8, `invalid port range "5000:6000"`, ""},
		{"ipv6 public host", head + "    ftp: {public_host: \"::1\"}\n", "sites[0].ftp.public_host", 7, "must be an IPv4 address", ""},
		{"banner with CR", head + "    ftp: {banner: \"hi\\r\\n230 ok\"}\n", "sites[0].ftp.banner", 7, "control characters", ""},
		{"cert without key", head + "    tls: {cert: keys/tls.crt}\n", "sites[0].tls", 7, "set both cert and key", ""},
		{"missing cert", head + "    tls: {cert: nope.crt, key: keys/tls.key}\n", "sites[0].tls.cert", 7, "file not found", ""},
		{"negative limit", head + "    limits: {max_connections_per_ip: -1}\n", "sites[0].limits.max_connections_per_ip", 7, "must be 0 or more, got -1", ""},
		{"bad duration", head + "    limits:\n      idle_timeout: 5\n", "sites[0].limits.idle_timeout", 8, `invalid duration "5"`, ""},
		{"syncplify-only event", head + "    event_handlers:\n      - {event: OnAuthRequestAllowed, script: log-session.lua}\n", "sites[0].event_handlers[0].event", 8, "OnAuthRequestAllowed is a Syncplify event that wharf does not implement; use OnAuthRequest", ""},
		{"plain secret value", head + "    secrets:\n      token: hunter2-very-secret\n", `sites[0].secrets["token"]`, 8, "cannot be written in the config", "hunter2"},
		{"secret list value", head + "    secrets:\n      token: [hunter2-very-secret]\n", `sites[0].secrets["token"]`, 8, "cannot be written in the config", "hunter2"},
		{"secret env and file", head + "    secrets:\n      token: {env: A, file: b}\n", `sites[0].secrets["token"]`, 8, "not both", ""},
		{"secret bad env name", head + "    secrets:\n      token: {env: \"A-B\"}\n", `sites[0].secrets["token"]`, 8, "invalid environment variable name", ""},
		{"secret unknown key", head + "    secrets:\n      token: {value: hunter2-very-secret}\n", `sites[0].secrets["token"]`, 8, `unknown key "value"`, "hunter2"},
		{"secret numeric env", head + "    secrets:\n      token: {env: 1234567}\n", `sites[0].secrets["token"]`, 8, "{env: NAME} or {file: path}", "1234567"},
		{"missing secret file", head + "    secrets:\n      token: {file: nope.txt}\n", `sites[0].secrets["token"].file`, 8, "file not found", ""},
		{"missing allowed root", head + "    scripting:\n      allowed_roots: [./nope]\n", "sites[0].scripting.allowed_roots[0]", 8, "folder not found", ""},
		{"allowed root is a file", head + "    scripting:\n      allowed_roots: [scripts/log-session.lua]\n", "sites[0].scripting.allowed_roots[0]", 8, "not a folder", ""},
		{"empty allowed root", head + "    scripting:\n      allowed_roots: [\"\"]\n", "sites[0].scripting.allowed_roots[0]", 8, "empty folder name", ""},
		{"bad size", head + "    event_handlers:\n      - {event: OnAuthSuccess, script: log-session.lua, max_memory: 64 megs}\n",
			"sites[0].event_handlers[0].max_memory", 8, `invalid size "64 megs"`, ""},
		{"small max_memory", head + "    event_handlers:\n      - event: OnAuthSuccess\n        script: log-session.lua\n        max_memory: 4096\n",
			"sites[0].event_handlers[0].max_memory", 10, "must be at least 1MiB, got 4KiB", ""},
		{"zero timeout", head + "    limits:\n      login_timeout: 0s\n", "sites[0].limits.login_timeout", 8, "must be a positive duration, got 0s", ""},
		{"threshold zero", head + "    protector: {threshold: 0}\n", "sites[0].protector.threshold", 7, "must be at least 1", ""},
		{"ipv6 prefix too long", head + "    protector: {ipv6_prefix: 129}\n", "sites[0].protector.ipv6_prefix", 7, "must be a prefix length from 1 to 128, got 129", ""},
		{"max bans zero", head + "    protector: {max_bans: 0}\n", "sites[0].protector.max_bans", 7, "must be at least 1, got 0", ""},
		{"negative pre-auth limit", head + "    limits: {max_unauthenticated: -1}\n", "sites[0].limits.max_unauthenticated", 7, "must be 0 or more, got -1", ""},
		{"bad health check CIDR", head + "    protector:\n      health_check_sources: [10.0.0.0/33]\n", "sites[0].protector.health_check_sources[0]", 8, `invalid CIDR "10.0.0.0/33"`, ""},
		{"bad protector CIDR", head + "    protector:\n      block: [300.1.1.1]\n", "sites[0].protector.block[0]", 8, `invalid CIDR "300.1.1.1"`, ""},
		{"duplicate vfs", head + "      - {name: home, type: memory}\n", "sites[0].vfs[1].name", 7, `duplicate vfs name "home" (first at line 6)`, ""},
		{"bad vfs type", head + "      - {name: nfs, type: nfs}\n", "sites[0].vfs[1].type", 7, `invalid value "nfs" (allowed: disk, memory, s3)`, ""},
		{"disk without root", head + "      - {name: d, type: disk}\n", "sites[0].vfs[1].root", 7, "a disk vfs needs a root", ""},
		{"memory with root", head + "      - {name: m, type: memory, root: /x}\n", "sites[0].vfs[1].root", 7, "a memory vfs has no root", ""},
		{"memory with symlinks", head + "      - {name: m, type: memory, allow_symlinks: true}\n", "sites[0].vfs[1].allow_symlinks", 7, "a memory vfs has no symbolic links", ""},
		{"unknown placeholder", head + "      - {name: d, type: disk, root: \"/x/{username}\"}\n", "sites[0].vfs[1].root", 7, "only {user} is supported", ""},
		{"missing user id", head + "    users:\n      - home: {vfs: home}\n", "sites[0].users[0].id", 8, "a user id is required", ""},
		{"bad user id", head + "    users:\n      - id: ../etc\n        home: {vfs: home}\n", "sites[0].users[0].id", 8, "must not contain '/'", ""},
		{"duplicate user", head + user + "      - id: alice\n        home: {vfs: home}\n", "sites[0].users[1].id", 11, `duplicate user id "alice" (first at line 8)`, ""},
		{"unknown vfs reference", head + user + "        folders:\n          /pub: {vfs: pub}\n", `sites[0].users[0].folders["/pub"].vfs`, 12, `unknown vfs "pub" (defined: home)`, ""},
		{"unknown home vfs", head + "    users:\n      - id: bob\n        home: {vfs: homes}\n", "sites[0].users[0].home.vfs", 9, `unknown vfs "homes"`, ""},
		{"home without vfs", head + "    users:\n      - id: bob\n        home: {permissions: [all]}\n", "sites[0].users[0].home.vfs", 9, "a vfs name is required", ""},
		{"no home no folders", head + "    users:\n      - id: bob\n        email: bob@example.com\n", "sites[0].users[0]", 8, `user "bob" has neither a home nor folders`, ""},
		{"relative folder", head + user + "        folders:\n          pub: {vfs: home}\n", `sites[0].users[0].folders["pub"]`, 12, "must be absolute", ""},
		{"root folder", head + user + "        folders:\n          /: {vfs: home}\n", `sites[0].users[0].folders["/"]`, 12, `"/" is the home`, ""},
		{"unclean folder", head + user + "        folders:\n          /a/../b/: {vfs: home}\n", `sites[0].users[0].folders["/a/../b/"]`, 12, `write "/b"`, ""},
		{"bad permission", head + "    users:\n      - id: bob\n        home: {vfs: home, permissions: [list, write]}\n", "sites[0].users[0].home.permissions[1]", 9, `invalid permission "write"`, ""},
		{"empty permissions", head + "    users:\n      - id: bob\n        home: {vfs: home, permissions: []}\n", "sites[0].users[0].home.permissions", 9, "an empty list grants nothing", ""},
		{"bad auth method", head + user + "        auth_methods: [password, otp]\n", "sites[0].users[0].auth_methods[1]", 11, `invalid auth method "otp"`, ""},
		{"bad auth chain", head + user + "        auth_methods: [\"publickey+pasword\"]\n", "sites[0].users[0].auth_methods[0]", 11, `invalid auth method "pasword"`, ""},
		{"repeated auth in chain", head + user + "        auth_methods: [\"password+password\"]\n", "sites[0].users[0].auth_methods[0]", 11, "appears twice", ""},
		{"bad public key", head + user + "        public_keys:\n          - ssh-ed25519 AAAAnotbase64!\n", "sites[0].users[0].public_keys[0]", 12, "invalid public key", ""},
		{"public key options", head + user + "        public_keys:\n          - 'command=\"ls\" " + testKey + "'\n", "sites[0].users[0].public_keys[0]", 12, `option "command" is not supported (only from= is)`, ""},
		{"public key from host name", head + user + "        public_keys:\n          - 'from=\"*.example.com\" " + testKey + "'\n", "sites[0].users[0].public_keys[0]", 12, "is a host name pattern", ""},
		{"authorized_keys_file missing", head + user + "        authorized_keys_file: keys/nope\n", "sites[0].users[0].authorized_keys_file", 11, "cannot read /", ""},
		{"authorized_keys_file bad option", head + user + "        authorized_keys_file: keys/authorized_keys_bad\n", "sites[0].users[0].authorized_keys_file", 11,
			`keys/authorized_keys_bad:3: option "command" is not supported (only from= is)`, ""},
		{"unknown kex", head + "    ssh:\n      kex: [curve25519-sha256, curve25519-sha265]\n", "sites[0].ssh.kex[1]", 8, `unknown or unsupported key exchange "curve25519-sha265"; did you mean "curve25519-sha256"?`, ""},
		{"legacy kex", head + "    ssh:\n      kex: [diffie-hellman-group1-sha1]\n", "sites[0].ssh.kex[0]", 8, `key exchange "diffie-hellman-group1-sha1" is legacy (a 1024-bit group`, ""},
		{"legacy cipher", head + "    ssh:\n      ciphers: [aes128-ctr, aes128-cbc]\n", "sites[0].ssh.ciphers[1]", 8, `cipher "aes128-cbc" is legacy (CBC mode`, ""},
		{"unsupported cipher", head + "    ssh:\n      ciphers: [aes256-cbc]\n", "sites[0].ssh.ciphers[0]", 8, `unknown or unsupported cipher "aes256-cbc"`, ""},
		{"legacy mac", head + "    ssh:\n      macs: [hmac-sha1]\n", "sites[0].ssh.macs[0]", 8, `MAC "hmac-sha1" is legacy (it uses SHA-1); set ssh.allow_legacy: true`, ""},
		{"legacy host key algorithm", head + "    ssh:\n      host_key_algorithms: [ssh-rsa]\n", "sites[0].ssh.host_key_algorithms[0]", 8, `host key algorithm "ssh-rsa" is legacy (its signatures use SHA-1)`, ""},
		{"host certificate algorithm", head + "    ssh:\n      host_key_algorithms: [ssh-ed25519-cert-v01@openssh.com]\n", "sites[0].ssh.host_key_algorithms[0]", 8, "wharf presents plain host keys", ""},
		{"legacy public key algorithm", head + "    ssh:\n      public_key_algorithms: [ssh-ed25519, ssh-rsa]\n", "sites[0].ssh.public_key_algorithms[1]", 8, `public key algorithm "ssh-rsa" is legacy`, ""},
		{"empty mac list", head + "    ssh:\n      macs: []\n", "sites[0].ssh.macs", 8, "an empty list offers nothing", ""},
		{"duplicate kex", head + "    ssh:\n      kex: [ecdh-sha2-nistp256, ecdh-sha2-nistp256]\n", "sites[0].ssh.kex[1]", 8, "is listed twice", ""},
		{"missing ca file", head + "    ssh:\n      trusted_user_ca_keys: keys/nope.pub\n", "sites[0].ssh.trusted_user_ca_keys", 8, "cannot read /", ""},
		{"ca file with a user's options", head + "    ssh:\n      trusted_user_ca_keys: keys/authorized_keys\n", "sites[0].ssh.trusted_user_ca_keys", 8,
			"keys/authorized_keys:4: options are not allowed in a certificate authority's key", ""},
		{"bad totp", head + user + "        totp_secret: not-base32!\n", "sites[0].users[0].totp_secret", 11, "must be base32", ""},
		{"bad email", head + user + "        email: alice at example\n", "sites[0].users[0].email", 11, "invalid email address", ""},
		{"bad subsystem", head + user + "        subsystems: [sftp, http]\n", "sites[0].users[0].subsystems[1]", 11, `invalid subsystem "http"`, ""},
		{"empty subsystems", head + user + "        subsystems: []\n", "sites[0].users[0].subsystems", 11, "allows no protocol", ""},
		{"negative quota", head + user + "        quota: {bytes: -5}\n", "sites[0].users[0].quota.bytes", 11, "must be 0 or more", ""},
		{"bad allow_from", head + user + "        allow_from: [10.0.0.0/8, 10.0.0.300/8]\n", "sites[0].users[0].allow_from[1]", 11, `invalid CIDR "10.0.0.300/8"`, ""},
		{"unhashed password", head + user + "        password: hunter2hunter2\n", "sites[0].users[0].password", 11, "must be a bcrypt or argon2id hash", "hunter2"},
		{"malformed bcrypt", head + user + "        password: $2a$10$hunter2\n", "sites[0].users[0].password", 11, "malformed bcrypt hash", "hunter2"},
		{"malformed argon2id", head + user + "        password: $argon2id$v=19$m=0,t=1,p=1$hunter2hunter2$hunter2hunter2\n", "sites[0].users[0].password", 11, "malformed argon2id hash: parameters out of range", "hunter2"},
		{"argon2i", head + user + "        password: $argon2i$v=19$m=16,t=1,p=1$c2FsdHNhbHQ$aGFzaA\n", "sites[0].users[0].password", 11, "only argon2id", ""},
		{"empty plain", head + user + "        password: \"plain:\"\n", "sites[0].users[0].password", 11, "empty plain-text password", ""},
		{"unknown event", head + "    event_handlers:\n      - {event: OnLogin, script: log-session.lua}\n", "sites[0].event_handlers[0].event", 8, `unknown event "OnLogin"`, ""},
		{"missing event", head + "    event_handlers:\n      - script: log-session.lua\n", "sites[0].event_handlers[0].event", 8, "an event name is required", ""},
		{"missing script", head + "    event_handlers:\n      - event: OnAuthSuccess\n        script: nope.lua\n", "sites[0].event_handlers[0].script", 9, "script not found: ", ""},
		{"no script", head + "    event_handlers:\n      - event: OnAuthSuccess\n", "sites[0].event_handlers[0].script", 8, "a script file name is required", ""},
		{"script extension", head + "    event_handlers:\n      - {event: OnAuthSuccess, script: run.sh}\n", "sites[0].event_handlers[0].script", 8, "must end in .lua or .js", ""},
		{"script outside scripts_dir", head + "    event_handlers:\n      - {event: OnAuthSuccess, script: ../scripts/log-session.lua}\n", "sites[0].event_handlers[0].script", 8, "must be a file name inside scripts_dir", ""},
		{"bad on_error", head + "    event_handlers:\n      - {event: OnAuthSuccess, script: log-session.lua, on_error: ignore}\n", "sites[0].event_handlers[0].on_error", 8, `invalid value "ignore" (allowed: block, continue)`, ""},
		{"bad handler timeout", head + "    event_handlers:\n      - {event: OnAuthSuccess, script: log-session.lua, timeout: -1s}\n", "sites[0].event_handlers[0].timeout", 8, "must be a positive duration", ""},
		{"user handler missing script", head + user + "        event_handlers:\n          - event: AfterFileUpload\n            script: scan.js\n", "sites[0].users[0].event_handlers[0].script", 13, "script not found", ""},
		{"unknown tag", head + "    scripts_dir: !custom x\n", "sites[0].scripts_dir", 7, "tagged !custom", ""},
		{"merge of a scalar", head + "    limits: {<<: 5}\n", "sites[0].limits", 7, "a merge key (<<) takes a mapping", ""},
		{"second document", head + "---\nlog: {}\n", "", 8, "a second YAML document", ""},
		{"tab indentation", "sites:\n  - name: x\n\tlisteners: []\n", "", 3, "tabs are not allowed for indentation", ""},
		{"unclosed bracket", "sites:\n  - name: [x\n", "", 2, "invalid YAML: did not find expected ',' or ']'", ""},
		{"bad indentation", "sites:\n  - name: x\n    listeners: []\n    vfs: []\n   users: []\n", "", 5, "invalid YAML: did not find expected '-' indicator", ""},
		{"tab after a long block", "log:\n  level: info\n  format: text\n\tfile: x\n", "", 4, "(tabs are not allowed for indentation; use spaces)", ""},
		{"unknown anchor", "log: {}\nsites: *nope\n", "", 2, "invalid YAML: unknown anchor 'nope' referenced", ""},
		{"invalid UTF-8", "log: {}\nsites: \xff\n", "", 2, "invalid YAML: ", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tt.yaml), "wharf.yaml", testDir)
			if err == nil {
				t.Fatalf("Parse succeeded, want a problem at %s (config: %+v)", tt.key, cfg)
			}
			ps := problemsOf(t, err)
			if len(ps) != 1 {
				t.Fatalf("want exactly 1 problem, got %d:\n%v", len(ps), err)
			}
			p := ps[0]
			if p.File != "wharf.yaml" || p.Key != tt.key || p.Line != tt.line || !strings.Contains(p.Msg, tt.msg) {
				t.Errorf("got %s\nwant wharf.yaml:%d: %s: …%s…", p, tt.line, tt.key, tt.msg)
			}
			want := "wharf.yaml:" + strconv.Itoa(tt.line) + ": "
			if tt.line == 0 {
				want = "wharf.yaml: "
			}
			if tt.key != "" {
				want += tt.key + ": "
			}
			if !strings.HasPrefix(err.Error(), want) {
				t.Errorf("Error() = %q, want prefix %q", err, want)
			}
			if tt.notInMsgs != "" && strings.Contains(err.Error(), tt.notInMsgs) {
				t.Errorf("message leaks %q: %v", tt.notInMsgs, err)
			}
		})
	}
}

func TestFourProblemsInOnePass(t *testing.T) {
	_, err := Load("../../testdata/bad-config.yaml")
	ps := problemsOf(t, err)
	want := []struct {
		line int
		key  string
		msg  string
	}{
		{13, "sites[0].limits.max_conections", `unknown key; did you mean "max_connections"?`},
		{22, "sites[0].users[1].allow_from[1]", `invalid CIDR "10.0.0.300/8"`},
		{27, "sites[0].event_handlers[1].event", `unknown event "OnAuthSucess"; did you mean "OnAuthSuccess"?`},
		{28, "sites[0].event_handlers[1].script", "script not found: "},
	}
	if len(ps) != len(want) {
		t.Fatalf("want %d problems, got %d:\n%v", len(want), len(ps), err)
	}
	for i, w := range want {
		p := ps[i]
		if p.Line != w.line || p.Key != w.key || !strings.HasPrefix(p.Msg, w.msg) || p.File != "../../testdata/bad-config.yaml" {
			t.Errorf("problem %d = %s, want line %d key %s msg %s", i, p, w.line, w.key, w.msg)
		}
	}
	if lines := strings.Split(err.Error(), "\n"); len(lines) != 4 {
		t.Errorf("Error() has %d lines, want one per problem:\n%v", len(lines), err)
	}
	if want := `../../testdata/bad-config.yaml:22: sites[0].users[1].allow_from[1]: invalid CIDR "10.0.0.300/8"`; ps[1].String() != want {
		t.Errorf("String() = %q, want %q", ps[1].String(), want)
	}
}

func TestManyProblemsAreAllReported(t *testing.T) {
	// Decode errors and validation errors mix, and each is reported once, in line order.
	data := head + user + `        password: "plain:s3cret-value"
        max_sessions: many
        bandwidth: {upload: -1}
    limits:
      idle_timeout: forever
      login_timeout: 0s
    protector:
      safe: [localhost]
`
	_, err := Parse([]byte(data), "wharf.yaml", testDir)
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("want *Error, got %v", err)
	}
	var got []string
	for _, p := range e.Problems {
		got = append(got, strconv.Itoa(p.Line)+" "+p.Key)
	}
	want := []string{
		"12 sites[0].users[0].max_sessions",
		"13 sites[0].users[0].bandwidth.upload",
		"15 sites[0].limits.idle_timeout",
		"16 sites[0].limits.login_timeout",
		"18 sites[0].protector.safe[0]",
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The warnings of a failed load are kept for the caller, without the password.
	if len(e.Warnings) != 1 || e.Warnings[0].Line != 11 || strings.Contains(err.Error()+e.Warnings[0].String(), "s3cret") {
		t.Errorf("warnings = %v", e.Warnings)
	}
}

func TestPlainPasswordWarning(t *testing.T) {
	cfg := mustParse(t, head+user+"        password: plain:hunter2\n", testDir)
	if len(cfg.Warnings) != 1 {
		t.Fatalf("want 1 warning, got %v", cfg.Warnings)
	}
	w := cfg.Warnings[0]
	if w.Key != "sites[0].users[0].password" || w.Line != 11 || !strings.Contains(w.Msg, "plain-text password") {
		t.Errorf("warning = %s", w)
	}
	if strings.Contains(w.String(), "hunter2") {
		t.Errorf("warning leaks the password: %s", w)
	}
	if got := cfg.Sites[0].Users[0].Password; got != "plain:hunter2" {
		t.Errorf("password = %q, want it kept for the core", got)
	}
}

func TestValidPasswords(t *testing.T) {
	for _, pw := range []string{
		"",
		"$2a$10$yxl1F7qlUojYo3WEOS5utuf5OANm/IwN8u.QR5k31bjMDwFq3F8Xi",
		"$2b$04$yxl1F7qlUojYo3WEOS5utuf5OANm/IwN8u.QR5k31bjMDwFq3F8Xi",
		"$2y$31$yxl1F7qlUojYo3WEOS5utuf5OANm/IwN8u.QR5k31bjMDwFq3F8Xi",
		"$argon2id$v=19$m=65536,t=3,p=4$MDEyMzQ1Njc4OWFiY2RlZg$s7HDvht1s+JaAdJ1qoLH/2c4KCL7V5DME2Cyd+d1XPI",
	} {
		cfg := mustParse(t, head+user+"        password: '"+pw+"'\n", testDir)
		if len(cfg.Warnings) != 0 {
			t.Errorf("%q: unexpected warnings %v", pw, cfg.Warnings)
		}
	}
}

func TestDefaultsApplied(t *testing.T) {
	data := `sites:
  - name: main
    listeners:
      - {protocol: sftp, address: "127.0.0.1:0"}
    vfs:
      - {name: home, type: disk, root: ./data}
      - {name: mem, type: memory}
    users:
      - id: alice
        home:
          vfs: home
    event_handlers:
      - {event: OnAuthSuccess, script: log-session.lua}
`
	cfg := mustParse(t, data, testDir)
	dir, _ := filepath.Abs(testDir)

	if cfg.Log != (Log{Level: "info", Format: "text", FlushInterval: Duration{100 * time.Millisecond}}) {
		t.Errorf("log = %+v", cfg.Log)
	}
	if cfg.StateDir != filepath.Join(dir, "state") || cfg.Metrics != (Metrics{Admin: "local", AdminTokenFile: filepath.Join(dir, "state", "admin.token")}) {
		t.Errorf("state_dir = %q, metrics = %+v", cfg.StateDir, cfg.Metrics)
	}
	if !cfg.Audit.IsEnabled() || cfg.Audit.Enabled == nil || cfg.Audit.File != "" {
		t.Errorf("audit = %+v", cfg.Audit)
	}
	if cfg.Reload != (Reload{WatchInterval: Duration{2 * time.Second}}) {
		t.Errorf("reload = %+v", cfg.Reload)
	}
	s := cfg.Sites[0]
	if s.SSH.SoftwareID != "wharf" || !s.SSH.SCPEnabled() || s.SSH.SCP == nil || len(s.SSH.HostKeys) != 0 || s.SSH.MaxSessions != 10 {
		t.Errorf("ssh = %+v", s.SSH)
	}
	if s.FTP != (FTP{TLS: "optional", TLSSessionReuse: "required", PassivePorts: PortRange{50000, 50100}}) {
		t.Errorf("ftp = %+v", s.FTP)
	}
	if s.TLS != (TLS{}) {
		t.Errorf("tls = %+v", s.TLS)
	}
	wantLimits := Limits{MaxConnections: 500, MaxConnectionsPerIP: 64, MaxSessionsPerUser: 0,
		IdleTimeout: Duration{15 * time.Minute}, LoginTimeout: Duration{30 * time.Second},
		MaxUnauthenticated: 100, MaxUnauthenticatedPerIP: 32, MaxHandlesPerSession: 512}
	if s.Limits != wantLimits {
		t.Errorf("limits = %+v, want %+v", s.Limits, wantLimits)
	}
	p := s.Protector
	if !p.IsEnabled() || p.Window.Duration != 10*time.Minute || p.Threshold != 10 || p.BanFor.Duration != 30*time.Minute ||
		len(p.Allow) != 0 || len(p.Block) != 0 || len(p.Safe) != 1 || p.Safe[0].Prefix != netip.MustParsePrefix("127.0.0.1/32") ||
		p.IPv6Prefix != 64 || p.MaxBans != 100_000 || len(p.HealthCheckSources) != 0 {
		t.Errorf("protector = %+v", p)
	}
	if !s.VFS[0].Atomic() || s.VFS[1].Atomic() || s.VFS[1].AtomicUploads == nil {
		t.Errorf("atomic uploads: disk %v, memory %v", s.VFS[0].Atomic(), s.VFS[1].Atomic())
	}
	if s.VFS[0].AllowSymlinks {
		t.Error("symbolic links are allowed by default")
	}
	if s.ScriptsDir != filepath.Join(dir, "scripts") {
		t.Errorf("scripts_dir = %q", s.ScriptsDir)
	}
	u := s.Users[0]
	if u.Type != "normal" || !slices.Equal(u.Subsystems, Subsystems) || u.AuthMethods != nil ||
		!slices.Equal(u.Home.Permissions, []string{"all"}) || u.Line != 9 {
		t.Errorf("user = %+v", u)
	}
	h := s.EventHandlers[0]
	if h.Timeout.Duration != 5*time.Second || h.OnError != "block" || h.Priority != 0 || h.MaxMemory != 64<<20 ||
		h.Path != filepath.Join(dir, "scripts", "log-session.lua") || h.Line != 13 {
		t.Errorf("handler = %+v", h)
	}

	// Folder permissions default to read-only.
	cfg = mustParse(t, head+"    users:\n      - id: x\n        folders:\n          /in: {vfs: home}\n", testDir)
	if got := cfg.Sites[0].Users[0].Folders["/in"].Permissions; !slices.Equal(got, []string{"list", "download"}) {
		t.Errorf("folder permissions = %v", got)
	}
}

func TestExplicitValuesOverrideDefaults(t *testing.T) {
	// Present keys are kept as written, even when they equal the zero value.
	cfg := mustParse(t, "log: {flush_interval: 0s}\n"+head+`    limits: {max_connections: 0, max_unauthenticated_per_ip: 0}
    protector: {enabled: false, threshold: 0, safe: []}
    ssh: {scp: false}
`, testDir)
	if cfg.Log.FlushInterval.Duration != 0 {
		t.Errorf("log.flush_interval: 0 became %s", cfg.Log.FlushInterval)
	}
	s := cfg.Sites[0]
	if s.Limits.MaxConnections != 0 || s.Limits.MaxUnauthenticatedPerIP != 0 || s.Limits.MaxConnectionsPerIP != 64 {
		t.Errorf("limits = %+v", s.Limits)
	}
	if s.Protector.IsEnabled() || s.Protector.Threshold != 0 || len(s.Protector.Safe) != 0 {
		t.Errorf("protector = %+v", s.Protector)
	}
	if s.SSH.SCPEnabled() {
		t.Error("scp: false ignored")
	}
	cfg = mustParse(t, head+"      - {name: links, type: disk, root: ./links, allow_symlinks: true}\n"+user, testDir)
	if v := cfg.Sites[0].VFS; v[0].AllowSymlinks || !v[1].AllowSymlinks {
		t.Errorf("allow_symlinks: %v", v)
	}
}

func TestRelativePaths(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "conf", "hooks"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"conf/hooks/a.lua", "conf/host.key"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data := `log: {file: logs/wharf.log}
state_dir: var/state
sites:
  - name: main
    listeners: [{protocol: sftp, address: "127.0.0.1:0"}]
    ssh: {host_keys: [host.key]}
    vfs:
      - {name: rel, type: disk, root: "data/{user}"}
      - {name: abs, type: disk, root: /srv/x/../data}
    scripts_dir: hooks
    event_handlers: [{event: OnNewConnection, script: a.lua}]
`
	file := filepath.Join(dir, "conf", "wharf.yaml")
	if err := os.WriteFile(file, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(dir, "conf")
	s := cfg.Sites[0]
	for _, c := range []struct{ name, got, want string }{
		{"Dir", cfg.Dir, base},
		{"File", cfg.File, file},
		{"log.file", cfg.Log.File, filepath.Join(base, "logs", "wharf.log")},
		{"state_dir", cfg.StateDir, filepath.Join(base, "var", "state")},
		{"host_keys", s.SSH.HostKeys[0], filepath.Join(base, "host.key")},
		{"vfs rel", s.VFS[0].Root, filepath.Join(base, "data", "{user}")},
		{"vfs abs", s.VFS[1].Root, "/srv/data"},
		{"scripts_dir", s.ScriptsDir, filepath.Join(base, "hooks")},
		{"script", s.EventHandlers[0].Path, filepath.Join(base, "hooks", "a.lua")},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}

	// Parse with a relative dir still yields absolute paths.
	cfg = mustParse(t, head, testDir)
	if !filepath.IsAbs(cfg.Dir) || !filepath.IsAbs(cfg.Sites[0].VFS[0].Root) || !filepath.IsAbs(cfg.StateDir) {
		t.Errorf("paths not absolute: dir %q root %q state %q", cfg.Dir, cfg.Sites[0].VFS[0].Root, cfg.StateDir)
	}

	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want a wrapped not-exist error", err)
	}
}

func TestEmbeddedDefault(t *testing.T) {
	base := t.TempDir()
	cfg, err := LoadDefault(base)
	if err != nil {
		t.Fatalf("LoadDefault: %v", err)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings: %v", cfg.Warnings)
	}
	if cfg.File != "(embedded default)" || cfg.Dir != base || cfg.StateDir != filepath.Join(base, "wharf-data", "state") {
		t.Errorf("file %q dir %q state %q", cfg.File, cfg.Dir, cfg.StateDir)
	}
	if len(cfg.Sites) != 1 {
		t.Fatalf("sites: %d", len(cfg.Sites))
	}
	s := cfg.Sites[0]
	want := []Listener{{Protocol: "sftp", Address: "127.0.0.1:2022"}, {Protocol: "ftp", Address: "127.0.0.1:2121"}, {Protocol: "ftps", Address: "127.0.0.1:9990"}}
	if s.Name != "default" || !slices.EqualFunc(s.Listeners, want, Listener.Equal) || s.FTP.TLS != "optional" {
		t.Errorf("site %q listeners %+v ftp.tls %q", s.Name, s.Listeners, s.FTP.TLS)
	}
	if len(s.VFS) != 1 || s.VFS[0].Name != "home" || s.VFS[0].Type != "disk" ||
		s.VFS[0].Root != filepath.Join(base, "wharf-data", "files", "{user}") {
		t.Errorf("vfs = %+v", s.VFS)
	}
	if len(s.Users) != 1 {
		t.Fatalf("users = %+v", s.Users)
	}
	u := s.Users[0]
	if u.ID != "demo" || u.Password != "" || len(u.PublicKeys) != 0 || u.Home.VFS != "home" ||
		!slices.Equal(u.Home.Permissions, []string{"all"}) {
		t.Errorf("demo user = %+v", u)
	}
	if !strings.Contains(string(Default()), "WHARF_DEMO_PASSWORD") {
		t.Error("the default should explain where the demo password comes from")
	}
	// Default returns a copy: changing it must not change the next load.
	d := Default()
	copy(d, "garbage")
	if _, err := LoadDefault(base); err != nil {
		t.Errorf("Default() is not a copy: %v", err)
	}
}

func TestFullExample(t *testing.T) {
	cfg, err := Load(filepath.Join(testDir, "full.yaml"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	dir, _ := filepath.Abs(testDir)
	at := func(p ...string) string { return filepath.Join(append([]string{dir}, p...)...) }
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings: %v", cfg.Warnings)
	}
	if cfg.Log != (Log{Level: "debug", Format: "json", File: at("logs", "wharf.log"), FlushInterval: Duration{0}}) {
		t.Errorf("log = %+v", cfg.Log)
	}
	if cfg.StateDir != at("state") || cfg.Metrics != (Metrics{Address: "127.0.0.1:9090", PerUser: true, Admin: "any", AdminTokenFile: at("secrets", "admin.token")}) {
		t.Errorf("state_dir %q metrics %+v", cfg.StateDir, cfg.Metrics)
	}
	if cfg.Audit.IsEnabled() || cfg.Audit.File != at("logs", "audit.log") {
		t.Errorf("audit = %+v", cfg.Audit)
	}
	if cfg.Reload != (Reload{WatchScripts: true, WatchInterval: Duration{5 * time.Second}}) {
		t.Errorf("reload = %+v", cfg.Reload)
	}
	if len(cfg.Sites) != 1 {
		t.Fatalf("sites: %d", len(cfg.Sites))
	}
	s := cfg.Sites[0]
	if s.Name != "main" {
		t.Errorf("name = %q", s.Name)
	}
	wantL := []Listener{
		{Protocol: "sftp", Address: "127.0.0.1:2022", ProxyProtocol: true, ProxyProtocolFrom: []Prefix{
			{netip.MustParsePrefix("10.0.0.7/32")}, {netip.MustParsePrefix("10.1.0.0/16")}}},
		{Protocol: "ftp", Address: "127.0.0.1:2121"},
		{Protocol: "ftps", Address: "127.0.0.1:2990"},
	}
	if !slices.EqualFunc(s.Listeners, wantL, Listener.Equal) {
		t.Errorf("listeners = %+v", s.Listeners)
	}
	if !slices.Equal(s.SSH.HostKeys, []string{at("keys", "host_ed25519")}) || s.SSH.SoftwareID != "wharf_1.0" || s.SSH.SCPEnabled() {
		t.Errorf("ssh = %+v", s.SSH)
	}
	wantFTP := FTP{TLS: "required", TLSSessionReuse: "optional", PassivePorts: PortRange{40000, 40009},
		PublicHost: "203.0.113.7", ActiveMode: true, Banner: "Welcome to wharf"}
	if s.FTP != wantFTP {
		t.Errorf("ftp = %+v", s.FTP)
	}
	if s.TLS != (TLS{Cert: at("keys", "tls.crt"), Key: at("keys", "tls.key")}) {
		t.Errorf("tls = %+v", s.TLS)
	}
	if s.Limits != (Limits{MaxConnections: 100, MaxConnectionsPerIP: 5, MaxSessionsPerUser: 3,
		IdleTimeout: Duration{5 * time.Minute}, LoginTimeout: Duration{10 * time.Second},
		MaxUnauthenticated: 100, MaxUnauthenticatedPerIP: 32, MaxHandlesPerSession: 512}) {
		t.Errorf("limits = %+v", s.Limits)
	}
	p := s.Protector
	prefixes := func(ps []Prefix) string {
		var out []string
		for _, p := range ps {
			out = append(out, p.String())
		}
		return strings.Join(out, " ")
	}
	if p.IsEnabled() || p.Window.Duration != time.Minute || p.Threshold != 3 || p.BanFor.Duration != time.Hour ||
		prefixes(p.Allow) != "10.0.0.0/8 2001:db8::/32" || prefixes(p.Safe) != "127.0.0.1/32 ::1/128" || prefixes(p.Block) != "192.0.2.66/32" {
		t.Errorf("protector = %+v", p)
	}
	f := false
	tr := true
	wantV := []VFS{
		{Name: "home", Type: "disk", Root: at("data", "{user}"), AtomicUploads: &f},
		{Name: "shared", Type: "disk", Root: "/srv/shared", AtomicUploads: &tr},
		{Name: "scratch", Type: "memory", AtomicUploads: &f},
	}
	if !slices.EqualFunc(s.VFS, wantV, func(a, b VFS) bool {
		return a.Name == b.Name && a.Type == b.Type && a.Root == b.Root && a.Atomic() == b.Atomic()
	}) {
		t.Errorf("vfs = %+v", s.VFS)
	}
	if v, ok := s.VFSByName("shared"); !ok || v.Root != "/srv/shared" {
		t.Errorf("VFSByName(shared) = %+v, %v", v, ok)
	}
	if _, ok := s.VFSByName("nope"); ok {
		t.Error("VFSByName(nope) found something")
	}
	if s.ScriptsDir != at("scripts") {
		t.Errorf("scripts_dir = %q", s.ScriptsDir)
	}
	wantSiteH := EventHandler{Event: "OnAuthSuccess", Script: "log-session.lua", Priority: 10, Timeout: Duration{5 * time.Second},
		OnError: "block", MaxMemory: 16 << 20, Mode: "sync", OnFull: "drop", Path: at("scripts", "log-session.lua"), Line: 104}
	if !slices.Equal(s.EventHandlers, []EventHandler{wantSiteH}) {
		t.Errorf("site handlers = %+v", s.EventHandlers)
	}
	if b, err := os.ReadFile(wantSiteH.Path); err != nil || strings.TrimSpace(string(b)) != `Log("hello")` {
		t.Errorf("log-session.lua = %q, %v", b, err)
	}

	if len(s.Users) != 3 {
		t.Fatalf("users: %d", len(s.Users))
	}
	a := s.Users[0]
	checks := []struct {
		name string
		ok   bool
	}{
		{"id", a.ID == "alice"},
		{"password", a.Password == "$2a$10$yxl1F7qlUojYo3WEOS5utuf5OANm/IwN8u.QR5k31bjMDwFq3F8Xi"},
		{"public_keys", slices.Equal(a.PublicKeys, []string{testKey + " alice@laptop"})},
		{"totp_secret", a.TOTPSecret == "JBSWY3DPEHPK3PXP"},
		{"email", a.Email == "alice@example.com"},
		{"type", a.Type == "finance"},
		{"description", a.Description == "Finance uploads"},
		{"auth_methods", slices.Equal(a.AuthMethods, []string{"publickey+password", "keyboard-interactive"})},
		{"subsystems", slices.Equal(a.Subsystems, []string{"SFTP", "FTPES"})},
		{"home", a.Home.VFS == "home" && slices.Equal(a.Home.Permissions, []string{"list", "download", "upload"})},
		{"home allows", a.Home.Allows("upload") && !a.Home.Allows("delete")},
		{"folders", len(a.Folders) == 2 &&
			a.Folders["/shared"].VFS == "shared" && slices.Equal(a.Folders["/shared"].Permissions, []string{"list", "download"}) &&
			a.Folders["/tmp/scratch"].VFS == "scratch" && a.Folders["/tmp/scratch"].Allows("chtimes")},
		{"allow_from", prefixes(a.AllowFrom) == "198.51.100.0/24 203.0.113.9/32"},
		{"max_sessions", a.MaxSessions == 2},
		{"bandwidth", a.Bandwidth == Bandwidth{Upload: 1024, Download: 2048}},
		{"quota", a.Quota == Quota{Bytes: 1 << 30, Files: 1000}},
		{"event_handlers", slices.Equal(a.EventHandlers, []EventHandler{{Event: "BeforeFileUpload", Script: "deny-exe.js", Priority: 1,
			Timeout: Duration{2 * time.Second}, OnError: "continue", MaxMemory: DefaultMaxMemory, Mode: "sync", OnFull: "drop", Path: at("scripts", "deny-exe.js"), Line: 90}})},
		{"line", a.Line == 66},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("alice: %s wrong: %+v", c.name, a)
		}
	}
	b := s.Users[1]
	if b.ID != "bob" || !strings.HasPrefix(b.Password, "$argon2id$") || b.Home.VFS != "home" || b.Line != 95 {
		t.Errorf("bob = %+v", b)
	}
	c := s.Users[2]
	if c.ID != "*" || c.Home.VFS != "" || c.Folders["/pub"].VFS != "shared" || c.Line != 98 {
		t.Errorf("catch-all = %+v", c)
	}
}

func TestAnchorsAndMergeKeys(t *testing.T) {
	data := head + `    users:
      - &base
        id: alice
        home: &h {vfs: home, permissions: [list]}
        quota: {bytes: 10}
      - <<: *base
        id: bob
      - id: carol
        home: *h
        folders:
          /a: *h
          /b: {<<: [*h], permissions: [all]}
`
	cfg := mustParse(t, data, testDir)
	us := cfg.Sites[0].Users
	if us[1].ID != "bob" || us[1].Home.VFS != "home" || us[1].Quota.Bytes != 10 {
		t.Errorf("merged user = %+v", us[1])
	}
	if !slices.Equal(us[2].Home.Permissions, []string{"list"}) || !slices.Equal(us[2].Folders["/b"].Permissions, []string{"all"}) {
		t.Errorf("aliases = %+v", us[2])
	}

	// A merged key does not count as a duplicate, but a typo inside a merge source is found.
	_, err := Parse([]byte(head+"    limits: &l {max_conections: 1}\n    protector: {<<: *l}\n"), "wharf.yaml", testDir)
	ps := problemsOf(t, err)
	if len(ps) != 2 || ps[0].Key != "sites[0].limits.max_conections" || ps[1].Key != "sites[0].protector.max_conections" {
		t.Errorf("problems = %v", err)
	}
}

func TestAliasBombIsBounded(t *testing.T) {
	// ~20 KB of YAML that would expand to 10^9 values (1000 sites of 1000 users of 1000 keys),
	// all well-typed so that only the expansion bound stops it.
	data := "sites:\n  - &s\n    name: x\n    listeners: [{protocol: ftp, address: ':0'}]\n    users:\n" +
		"      - &u {id: u, public_keys: [" + strings.Repeat("x, ", 999) + "x]}\n" +
		strings.Repeat("      - *u\n", 999) + strings.Repeat("  - *s\n", 999)
	// No wall-clock bound here (a loaded CI machine under -race is slow); without the
	// expansion bound this parse would not finish at all and the test binary would time out.
	_, err := Parse([]byte(data), "bomb.yaml", testDir)
	ps := problemsOf(t, err)
	if len(ps) != 1 || !strings.HasPrefix(ps[0].Msg, "document too large once aliases are expanded") || ps[0].File != "bomb.yaml" {
		t.Errorf("problems = %v", err)
	}

	// Cyclic merge: the anchor refers to itself.
	_, err = Parse([]byte("sites:\n  - &s\n    <<: *s\n    name: x\n"), "cycle.yaml", testDir)
	if ps := problemsOf(t, err); !strings.Contains(ps[0].Msg, "nested too deeply") {
		t.Errorf("cyclic merge: %v", err)
	}
}

func TestScalarTypes(t *testing.T) {
	tests := []struct {
		in      string
		into    func() (any, func() string)
		want    string
		wantErr string
	}{
		{"15m", durationOut, "15m0s", ""},
		{"1h30m", durationOut, "1h30m0s", ""},
		{"5", durationOut, "", `invalid duration "5"`},
		{"[1s]", durationOut, "", "expected a duration"},
		{"50000-50100", rangeOut, "50000-50100", ""},
		{"2121", rangeOut, "2121", ""},
		{"1-2-3", rangeOut, "", "invalid port range"},
		{"10.0.0.0/8", prefixOut, "10.0.0.0/8", ""},
		{"10.1.2.3/8", prefixOut, "10.0.0.0/8", ""},
		{"192.0.2.1", prefixOut, "192.0.2.1/32", ""},
		{"::1", prefixOut, "::1/128", ""},
		{"::ffff:192.0.2.1", prefixOut, "192.0.2.1/32", ""},
		{"::ffff:10.0.0.0/104", prefixOut, "10.0.0.0/8", ""},
		{"2001:db8::/32", prefixOut, "2001:db8::/32", ""},
		{"fe80::1%eth0", prefixOut, "", "invalid CIDR"},
		{"10.0.0.0/33", prefixOut, "", `invalid CIDR "10.0.0.0/33"`},
		{"{a: b}", prefixOut, "", "expected a CIDR"},
		{"67108864", sizeOut, "64MiB", ""},
		{"64MiB", sizeOut, "64MiB", ""},
		{"1.5 GiB", sizeOut, "1536MiB", ""},
		{"512KiB", sizeOut, "512KiB", ""},
		{"2MB", sizeOut, "2000000", ""},
		{"10kB", sizeOut, "10000", ""},
		{"1000", sizeOut, "1000", ""},
		{"100B", sizeOut, "100", ""},
		{"0.5B", sizeOut, "", "not a whole number of bytes"},
		{"-1MiB", sizeOut, "", `invalid size "-1MiB"`},
		{"1e6", sizeOut, "", `invalid size "1e6"`},
		{"64 megs", sizeOut, "", `invalid size "64 megs"`},
		{"MiB", sizeOut, "", `invalid size "MiB"`},
		{"[1]", sizeOut, "", "expected a size"},
	}
	for _, tt := range tests {
		v, str := tt.into()
		err := yaml.Unmarshal([]byte(tt.in), v)
		switch {
		case tt.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: err = %v, want %q", tt.in, err, tt.wantErr)
			}
		case err != nil:
			t.Errorf("%q: %v", tt.in, err)
		case str() != tt.want:
			t.Errorf("%q: got %s, want %s", tt.in, str(), tt.want)
		default:
			// Marshalling gives back the canonical form, which parses to the same value.
			out, err := yaml.Marshal(v)
			if err != nil || strings.TrimSpace(string(out)) != tt.want {
				t.Errorf("%q: Marshal = %q, %v", tt.in, out, err)
			}
		}
	}
}

func durationOut() (any, func() string) {
	var d Duration
	return &d, func() string { return d.String() }
}

func sizeOut() (any, func() string) {
	var b ByteSize
	return &b, func() string {
		if s := b.String(); !strings.HasSuffix(s, " bytes") {
			return s
		}
		return strconv.FormatInt(int64(b), 10)
	}
}

func rangeOut() (any, func() string) {
	var r PortRange
	return &r, func() string { return r.String() }
}

func prefixOut() (any, func() string) {
	var p Prefix
	return &p, func() string { return p.String() }
}

func TestProblemString(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{"wharf.yaml", 12, "sites[0].users[1].allow_from[0]", `invalid CIDR "10.0.0.300/8"`}, `wharf.yaml:12: sites[0].users[1].allow_from[0]: invalid CIDR "10.0.0.300/8"`},
		{Problem{"wharf.yaml", 0, "sites", "at least one site is required"}, "wharf.yaml: sites: at least one site is required"},
		{Problem{"wharf.yaml", 3, "", "invalid YAML: x"}, "wharf.yaml:3: invalid YAML: x"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
	if got := (&Error{}).Error(); got != "invalid configuration" {
		t.Errorf("empty Error() = %q", got)
	}
}

func TestValidUserID(t *testing.T) {
	for id, ok := range map[string]bool{
		"alice": true, "*": true, "1234": true, "j.doe@example.com": true, "Ünïcode": true,
		"": false, ".": false, "..": false, "a/b": false, `a\b`: false, "a*": false, " a": false, "a\x00b": false,
	} {
		if err := ValidUserID(id); (err == nil) != ok {
			t.Errorf("ValidUserID(%q) = %v, want ok=%v", id, err, ok)
		}
	}
}

func TestEventsMatchSpec(t *testing.T) {
	// Events must list scripting.md's table in order; checked against the spec when present.
	spec, err := os.ReadFile("/work/shared/spec/scripting.md")
	if err != nil {
		t.Skip("spec not available:", err)
	}
	var want []string
	for _, line := range strings.Split(string(spec), "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cell, _, _ := strings.Cut(strings.TrimPrefix(line, "| "), " |")
		for _, name := range strings.Split(cell, " / ") {
			name = strings.Trim(name, "`")
			if name != "" && (strings.HasPrefix(name, "On") || strings.HasPrefix(name, "Before") || strings.HasPrefix(name, "After")) {
				want = append(want, name)
			}
		}
	}
	if !slices.Equal(Events, want) {
		t.Errorf("Events = %v\nspec   = %v", Events, want)
	}
}

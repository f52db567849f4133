// Package config loads and validates wharf's YAML configuration (docs: shared spec config.md).
//
// Loading is strict and complete: unknown keys, duplicate keys, wrong types and invalid values
// are all errors, every one is reported (not just the first) with file, line and key path, and
// a config that loads is fully validated, so the rest of wharf can trust it. Absent keys get
// the documented defaults and relative paths are made absolute against the config file's
// folder, so nothing downstream depends on the process's working directory.
package config

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
)

// Config is a loaded, validated configuration.
type Config struct {
	Log      Log     `yaml:"log"`
	StateDir string  `yaml:"state_dir"` // absolute after loading
	Sites    []Site  `yaml:"sites"`
	Metrics  Metrics `yaml:"metrics"`
	Audit    Audit   `yaml:"audit"`
	Reload   Reload  `yaml:"reload"`
	// SMTP is the relay that scripts' SendMail uses, for the sites without their own.
	SMTP *SMTP `yaml:"smtp"`
	// Scripting holds the settings of event scripts shared by all sites.
	Scripting Scripting `yaml:"scripting"`
	// Cluster makes the process a node of a cluster (nil: a single node).
	Cluster *Cluster `yaml:"cluster"`

	File     string    `yaml:"-"` // the file it came from ("(embedded default)" for the default)
	Dir      string    `yaml:"-"` // absolute folder that relative paths were resolved against
	Warnings []Problem `yaml:"-"` // non-fatal findings, e.g. a "plain:" password
}

// Log configures the server log.
type Log struct {
	Level  string `yaml:"level"`  // debug | info | warn | error
	Format string `yaml:"format"` // text | json
	File   string `yaml:"file"`   // "" = stderr; absolute after loading otherwise
	// FlushInterval is how late a line may be written: lines are written in batches, so
	// that a request does not wait for a write(2). 0 writes each line at once. It also
	// applies to audit.file. Warnings and errors are written at once. Default 100ms.
	FlushInterval Duration `yaml:"flush_interval"`
}

// Metrics configures the HTTP listener that serves Prometheus metrics, the health check and
// the admin API (live sessions, kick, reload).
type Metrics struct {
	Address string `yaml:"address"` // "" = off, else host:port
	// PerUser adds a user label to the login, byte and operation series. Off by default:
	// every user then becomes a set of series, which a large user base cannot afford.
	PerUser bool `yaml:"per_user"`
	// Admin says who may call the admin API: off, local (loopback clients only; the default)
	// or any (every client that can reach the listener). A token is always required.
	Admin string `yaml:"admin"`
	// AdminTokenFile holds the admin token; absolute after loading. Default
	// <state_dir>/admin.token, generated (0600) on first start when missing.
	AdminTokenFile string `yaml:"admin_token_file"`
}

// Audit configures the audit log: one line per login, completed operation and session end.
type Audit struct {
	Enabled *bool  `yaml:"enabled"` // default true; set after loading
	File    string `yaml:"file"`    // "" = the server log; absolute after loading otherwise
}

// IsEnabled reports whether the audit log is written (default true).
func (a Audit) IsEnabled() bool { return a.Enabled == nil || *a.Enabled }

// Reload configures live reloading beyond SIGHUP and `wharf reload`.
type Reload struct {
	// WatchScripts reloads the configuration when a file in a site's scripts_dir changes.
	WatchScripts bool `yaml:"watch_scripts"`
	// WatchInterval is how often the script folders are scanned; default 2s.
	WatchInterval Duration `yaml:"watch_interval"`
}

// Site is one virtual site: listeners, users and storage served together.
type Site struct {
	Name          string         `yaml:"name"`
	Listeners     []Listener     `yaml:"listeners"`
	SSH           SSH            `yaml:"ssh"`
	FTP           FTP            `yaml:"ftp"`
	TLS           TLS            `yaml:"tls"`
	Limits        Limits         `yaml:"limits"`
	Protector     Protector      `yaml:"protector"`
	Names         Names          `yaml:"names"`
	VFS           []VFS          `yaml:"vfs"`
	Users         []User         `yaml:"users"`
	ScriptsDir    string         `yaml:"scripts_dir"` // absolute after loading
	EventHandlers []EventHandler `yaml:"event_handlers"`
	// SMTP is the relay of the site's SendMail; after loading, the top-level smtp when the
	// site has none (nil when neither is set).
	SMTP *SMTP `yaml:"smtp"`
	// Scripting bounds what event scripts may reach besides the sessions' files.
	Scripting SiteScripting `yaml:"scripting"`
	// Secrets are the values scripts read with GetSecret(name), by name.
	Secrets map[string]Secret `yaml:"secrets"`
}

// SiteScripting configures what the site's event scripts may reach on the host.
type SiteScripting struct {
	// AllowedRoots are the host folders scripts may open as a disk VFS (new VirtualFS(
	// VfsTypeDisk, root)) and whose files ImportFile, ExportFile, FileReadAsHex and DelFile
	// may use, each confined to the folder as users are to theirs. Default none; absolute
	// after loading.
	AllowedRoots []string `yaml:"allowed_roots"`
}

// VFSByName returns the site's vfs definition with the given name.
func (s *Site) VFSByName(name string) (VFS, bool) {
	i := slices.IndexFunc(s.VFS, func(v VFS) bool { return v.Name == name })
	if i < 0 {
		return VFS{}, false
	}
	return s.VFS[i], true
}

// Listener is one TCP listening socket.
type Listener struct {
	Protocol      string `yaml:"protocol"` // sftp | ftp | ftps
	Address       string `yaml:"address"`  // host:port; port 0 picks a free port (tests)
	ProxyProtocol bool   `yaml:"proxy_protocol"`
	// ProxyProtocolFrom lists the addresses allowed to send the PROXY header (the balancers);
	// a connection from anywhere else is closed before any byte. Empty: any address.
	ProxyProtocolFrom []Prefix `yaml:"proxy_protocol_from"`
}

// Equal reports whether two listeners are configured alike.
func (l Listener) Equal(o Listener) bool {
	return l.Protocol == o.Protocol && l.Address == o.Address && l.ProxyProtocol == o.ProxyProtocol &&
		slices.Equal(l.ProxyProtocolFrom, o.ProxyProtocolFrom)
}

// SSH configures the sftp listeners.
type SSH struct {
	HostKeys   []string `yaml:"host_keys"`   // absolute after loading; empty = generated into state_dir
	SoftwareID string   `yaml:"software_id"` // default "wharf"
	SCP        *bool    `yaml:"scp"`         // default true; set after loading
	// MaxSessions caps the session channels open at once on one connection (OpenSSH's
	// MaxSessions): each runs an SFTP subsystem or an SCP command. Default 10; at least 1.
	MaxSessions int `yaml:"max_sessions"`
	// The algorithms offered, in order of preference (OpenSSH's KexAlgorithms, Ciphers, MACs,
	// HostKeyAlgorithms and PubkeyAcceptedAlgorithms). Absent: wharf's defaults, which the
	// sftp adapter holds. Legacy algorithms (SHA-1, CBC, RC4, 1024-bit DH) need AllowLegacy.
	Kex                 []string `yaml:"kex"`
	Ciphers             []string `yaml:"ciphers"`
	MACs                []string `yaml:"macs"`
	HostKeyAlgorithms   []string `yaml:"host_key_algorithms"`
	PublicKeyAlgorithms []string `yaml:"public_key_algorithms"`
	AllowLegacy         bool     `yaml:"allow_legacy"`
	// TrustedUserCAKeys is a file of certificate authority keys (OpenSSH's TrustedUserCAKeys):
	// a user certificate signed by one of them, naming the user id as a principal, logs in.
	// Absolute after loading; "" = no certificates.
	TrustedUserCAKeys string `yaml:"trusted_user_ca_keys"`
}

// SCPEnabled reports whether the legacy SCP protocol is served (default true).
func (s SSH) SCPEnabled() bool { return s.SCP == nil || *s.SCP }

// FTP configures the ftp and ftps listeners.
type FTP struct {
	TLS             string    `yaml:"tls"`               // off | optional | required; default optional
	TLSSessionReuse string    `yaml:"tls_session_reuse"` // required | optional; default required
	PassivePorts    PortRange `yaml:"passive_ports"`     // default 50000-50100
	PublicHost      string    `yaml:"public_host"`       // "" or an IPv4 literal
	ActiveMode      bool      `yaml:"active_mode"`
	Banner          string    `yaml:"banner"`
}

// TLS names the certificate files; both empty means a self-signed certificate in state_dir.
type TLS struct {
	Cert string `yaml:"cert"` // absolute after loading when set
	Key  string `yaml:"key"`  // absolute after loading when set
}

// Limits bounds resource use per site. A count of 0 means unlimited.
type Limits struct {
	MaxConnections      int      `yaml:"max_connections"`        // default 500
	MaxConnectionsPerIP int      `yaml:"max_connections_per_ip"` // default 64
	MaxSessionsPerUser  int      `yaml:"max_sessions_per_user"`  // default 0 (unlimited)
	IdleTimeout         Duration `yaml:"idle_timeout"`           // default 15m
	LoginTimeout        Duration `yaml:"login_timeout"`          // default 30s
	// MaxHandlesPerSession caps the files and directories an SFTP session holds open at once
	// (OpenSSH's sftp-server: 512). Default 512; 0 = unlimited.
	MaxHandlesPerSession int `yaml:"max_handles_per_session"`
	// MaxUnauthenticated and MaxUnauthenticatedPerIP bound the connections that have not
	// logged in yet (OpenSSH's MaxStartups and PerSourceMaxStartups): a flood of
	// connections that never log in is refused while logged-in clients keep their room.
	MaxUnauthenticated      int `yaml:"max_unauthenticated"`        // default 100
	MaxUnauthenticatedPerIP int `yaml:"max_unauthenticated_per_ip"` // default 32
}

// Protector bans clients that collect too many strikes (failed logins and the like).
type Protector struct {
	Enabled   *bool    `yaml:"enabled"`   // default true; set after loading
	Window    Duration `yaml:"window"`    // default 10m
	Threshold int      `yaml:"threshold"` // default 10
	BanFor    Duration `yaml:"ban_for"`   // default 30m
	Allow     []Prefix `yaml:"allow"`     // non-empty = only these may connect
	Safe      []Prefix `yaml:"safe"`      // never banned; default [127.0.0.1/32] when absent
	Block     []Prefix `yaml:"block"`     // always refused
	// IPv6Prefix is the prefix length IPv6 clients are counted and banned by (default 64):
	// one host usually holds a whole /64, and rotating addresses in it must not help.
	IPv6Prefix int `yaml:"ipv6_prefix"`
	// MaxBans caps the ban table (default 100000); a new ban beyond it evicts the oldest.
	MaxBans int `yaml:"max_bans"`
	// HealthCheckSources are load balancers and monitors whose connections that close without
	// logging in (a TCP health check) are no strike.
	HealthCheckSources []Prefix `yaml:"health_check_sources"`
}

// IsEnabled reports whether the protector is on (default true).
func (p Protector) IsEnabled() bool { return p.Enabled == nil || *p.Enabled }

// Names are rules for the file names clients create.
type Names struct {
	// AllowControlChars lets clients create names with control characters (0x00–0x1F,
	// 0x7F). Off by default: FTP replies and listings and SCP headers are line-based, and a
	// name with CR or LF in it can forge protocol lines.
	AllowControlChars bool `yaml:"allow_control_chars"`
}

// VFS is a named storage backend that users mount.
type VFS struct {
	Name          string `yaml:"name"`
	Type          string `yaml:"type"`           // disk | memory | s3
	Root          string `yaml:"root"`           // disk only; may contain {user}; absolute after loading
	AtomicUploads *bool  `yaml:"atomic_uploads"` // default true for disk and s3, false for memory; set after loading
	// AllowSymlinks lets users create symbolic links (SFTP symlink). Off by default; links
	// already on disk are followed inside the root either way.
	AllowSymlinks bool `yaml:"allow_symlinks"`

	// S3 (type s3 only; see docs/storage.md).
	Bucket    string `yaml:"bucket"`
	Prefix    string `yaml:"prefix"`   // key prefix; may contain {user}
	Endpoint  string `yaml:"endpoint"` // "" = AWS
	Region    string `yaml:"region"`   // "" = the AWS configuration's, else us-east-1
	PathStyle bool   `yaml:"path_style"`
	// AccessKey and SecretKey: both or neither; neither = the default AWS credential chain.
	AccessKey           Secret   `yaml:"access_key"`
	SecretKey           Secret   `yaml:"secret_key"`
	StorageClass        string   `yaml:"storage_class"`
	SSE                 string   `yaml:"sse"` // "" | AES256 | aws:kms
	SSEKMSKeyID         string   `yaml:"sse_kms_key_id"`
	PartSize            ByteSize `yaml:"part_size"`              // default 8 MiB
	UploadConcurrency   int      `yaml:"upload_concurrency"`     // default 4
	MaxDirRenameObjects int      `yaml:"max_dir_rename_objects"` // default 1000
	// CleanupIncompleteUploadsAfter: at start, incomplete multipart uploads under the prefix
	// older than this are aborted; 0 = never. Default 24h.
	CleanupIncompleteUploadsAfter Duration `yaml:"cleanup_incomplete_uploads_after"`
}

// Atomic reports whether uploads are written under a temporary name and published on close.
func (v VFS) Atomic() bool {
	if v.AtomicUploads != nil {
		return *v.AtomicUploads
	}
	return v.Type == "disk" || v.Type == "s3"
}

// User is an account (or, with ID "*", the catch-all profile for script-authenticated users).
type User struct {
	ID          string   `yaml:"id"`
	Password    string   `yaml:"password"` // "", a bcrypt or argon2id hash, or "plain:..."
	PublicKeys  []string `yaml:"public_keys"`
	TOTPSecret  string   `yaml:"totp_secret"` // base32
	Email       string   `yaml:"email"`
	Type        string   `yaml:"type"` // default "normal"
	Description string   `yaml:"description"`
	// AuthMethods lists accepted methods, each a single method or a chain joined with "+"
	// ("publickey+password"). Left nil when absent: the default ("all that the user has
	// credentials for") depends on credentials the binary may inject after loading.
	AuthMethods []string         `yaml:"auth_methods"`
	Subsystems  []string         `yaml:"subsystems"` // upper-case after loading; default all five
	Home        Mount            `yaml:"home"`
	Folders     map[string]Mount `yaml:"folders"` // key: absolute, clean virtual path, not "/"
	AllowFrom   []Prefix         `yaml:"allow_from"`
	MaxSessions int              `yaml:"max_sessions"` // 0 = the site's max_sessions_per_user
	Bandwidth   Bandwidth        `yaml:"bandwidth"`
	Quota       Quota            `yaml:"quota"`
	// EventHandlers run before the site's handlers; scripts are in the site's scripts_dir.
	EventHandlers []EventHandler `yaml:"event_handlers"`
	// AuthorizedKeysFile is an OpenSSH authorized_keys file with more of the user's keys
	// (from= is the one option allowed); absolute after loading. It is read again when it
	// changes.
	AuthorizedKeysFile string `yaml:"authorized_keys_file"`

	Line int `yaml:"-"` // line of the user entry, for later messages
}

// Mount attaches a vfs at a virtual path with permissions.
type Mount struct {
	VFS         string   `yaml:"vfs"`
	Permissions []string `yaml:"permissions"` // names from Permissions, or "all"; defaulted after loading
}

// Allows reports whether the mount grants permission perm.
func (m Mount) Allows(perm string) bool {
	return slices.Contains(m.Permissions, "all") || slices.Contains(m.Permissions, perm)
}

// Bandwidth limits transfer rates in KiB/s; 0 = unlimited.
type Bandwidth struct {
	Upload   int64 `yaml:"upload"`
	Download int64 `yaml:"download"`
}

// Quota limits stored data; 0 = unlimited.
type Quota struct {
	Bytes int64 `yaml:"bytes"`
	Files int64 `yaml:"files"`
}

// EventHandler attaches a script to an event (docs: shared spec scripting.md).
type EventHandler struct {
	Event    string   `yaml:"event"`    // one of Events
	Script   string   `yaml:"script"`   // file in the site's scripts_dir, .lua or .js
	Priority int      `yaml:"priority"` // ascending
	Timeout  Duration `yaml:"timeout"`  // default 5s
	OnError  string   `yaml:"on_error"` // block (default) | continue
	// MaxMemory bounds what one run of the script holds (default DefaultMaxMemory).
	MaxMemory ByteSize `yaml:"max_memory"`
	// Mode is sync (default: the operation waits for the handler) or async (the handler
	// runs on the site's worker pool after the event; only for events that refuse nothing,
	// AsyncEvents).
	Mode string `yaml:"mode"`
	// OnFull says what an async handler's event does when the queue is full: drop (default:
	// the run is dropped, logged and counted) or wait (the event waits for room, up to the
	// handler's timeout).
	OnFull string `yaml:"on_full"`

	Path string `yaml:"-"` // absolute path of the script file
	Line int    `yaml:"-"` // line of the handler entry
}

// DefaultMaxMemory is event_handlers[].max_memory when the config does not set it, and
// MinMaxMemory the least it may be: a script's run needs some memory for its own values.
const (
	DefaultMaxMemory ByteSize = 64 << 20
	MinMaxMemory     ByteSize = 1 << 20
)

// Events are the event names of scripting.md, in the order of its table.
var Events = []string{
	"OnNewConnection",
	"BeforeSendSoftwareID",
	"OnAuthRequest",
	"OnAuthPassword",
	"OnAuthPKI",
	"OnAuthInteractiveSetQuestions",
	"OnAuthInteractive",
	"OnAuthFail",
	"OnAuthSuccess",
	"BeforeOpenSFTP",
	"BeforeOpenCmd",
	"OnDirList",
	"BeforeFileUpload",
	"AfterFileUpload",
	"BeforeFileDownload",
	"AfterFileDownload",
	"BeforeFileDelete",
	"AfterFileDelete",
	"BeforeFileRename",
	"AfterFileRename",
	"BeforeDirCreate",
	"AfterDirCreate",
	"BeforeDirDelete",
	"AfterDirDelete",
	"OnTransferError",
	"OnProtectorStrike",
	"OnBlocklistAdd",
	"OnBlocklistHit",
	"OnConnectionClose",
}

// AsyncEvents are the events whose handlers may be asynchronous (mode: async): those that
// come after their action or refuse nothing, so that nothing waits for what the script
// decides.
var AsyncEvents = []string{
	"OnAuthFail",
	"OnAuthSuccess",
	"AfterFileUpload",
	"AfterFileDownload",
	"AfterFileDelete",
	"AfterFileRename",
	"AfterDirCreate",
	"AfterDirDelete",
	"OnTransferError",
	"OnProtectorStrike",
	"OnBlocklistAdd",
	"OnBlocklistHit",
	"OnConnectionClose",
}

// SMTP is a mail relay (scripts' SendMail).
type SMTP struct {
	Host string `yaml:"host"`
	// Port defaults by TLS: 587 for starttls, 465 for implicit, 25 for none.
	Port int `yaml:"port"`
	// TLS is starttls (default: the connection must be upgraded), implicit (TLS from the
	// first byte) or none. The relay's certificate is verified against the system's roots,
	// or against CAFile when set.
	TLS      string `yaml:"tls"`
	CAFile   string `yaml:"ca_file"` // PEM; absolute after loading
	Username string `yaml:"username"`
	Password Secret `yaml:"password"`
	// From is the sender when a script passes an empty one.
	From string `yaml:"from"`
	// Timeout bounds one delivery attempt (connect, TLS, AUTH, transfer); default 60s.
	Timeout Duration `yaml:"timeout"`
	// GiveUpAfter is how long a message may wait in the spool, retried with backoff, before
	// it is dropped as undeliverable; default 24h.
	GiveUpAfter Duration `yaml:"give_up_after"`
	// MaxMessageSize bounds one message with its attachment; default 10MiB.
	MaxMessageSize ByteSize `yaml:"max_message_size"`
}

// Scripting holds script settings shared by all sites.
type Scripting struct {
	// AsyncWorkers is how many asynchronous handler runs a site runs at once; default 4.
	AsyncWorkers int `yaml:"async_workers"`
	// AsyncQueue is how many asynchronous runs may wait for a worker, per site; default 1000.
	AsyncQueue int `yaml:"async_queue"`
	// MailSpool bounds the bytes of the mail waiting in state_dir/mail; default 256MiB.
	MailSpool ByteSize `yaml:"mail_spool"`
}

// Permissions are the mount permission names; "all" grants every one of them.
var Permissions = []string{"list", "download", "upload", "overwrite", "delete", "rename", "mkdir", "rmdir", "chmod", "chtimes"}

// Subsystems are the protocol names a user may be allowed, as Session.GetProtocol reports them.
var Subsystems = []string{"SFTP", "SCP", "FTP", "FTPES", "FTPS"}

// AuthMethods are the authentication method names usable in auth_methods (and in chains).
var AuthMethods = []string{"password", "publickey", "keyboard-interactive"}

// DefaultFile is the File of the embedded default configuration.
const DefaultFile = "(embedded default)"

//go:embed default.yaml
var defaultYAML []byte

// Default returns the embedded default configuration (a copy: callers may modify it).
func Default() []byte { return slices.Clone(defaultYAML) }

// LoadDefault parses the embedded default configuration with relative paths resolved
// against baseDir (the current directory for `wharf serve` without -c).
func LoadDefault(baseDir string) (*Config, error) {
	return Parse(defaultYAML, DefaultFile, baseDir)
}

// Load reads and validates the configuration file at path. Relative paths inside it are
// relative to the file's folder. An invalid file yields an *Error listing every problem.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(data, path, filepath.Dir(path))
}

// Parse validates configuration data. file names it in messages; dir is the folder that
// relative paths are resolved against (made absolute if it is not). An invalid
// configuration yields an *Error listing every problem.
func Parse(data []byte, file, dir string) (*Config, error) {
	if file == "" {
		file = "(config)" // every problem must name a file
	}
	if dir == "" {
		dir = "."
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return nil, &Error{Problems: []Problem{{File: file, Msg: fmt.Sprintf("resolve config folder %q: %v", dir, err)}}}
	}
	cfg := &Config{File: file, Dir: absDir}

	root, syntax := parseDocument(data, file)
	if syntax != nil {
		return nil, &Error{Problems: []Problem{*syntax}}
	}
	d := newDecoder(file, len(data))
	if root != nil {
		d.decode(root, reflect.ValueOf(cfg).Elem(), "", 0)
	}
	if d.exhausted {
		return nil, &Error{Problems: d.problems}
	}
	c := newChecker(d, absDir)
	c.check(cfg)

	problems := append(d.problems, c.problems...)
	sortProblems(problems)
	sortProblems(c.warnings)
	if len(problems) > 0 {
		return nil, &Error{Problems: problems, Warnings: c.warnings}
	}
	cfg.Warnings = c.warnings
	return cfg, nil
}

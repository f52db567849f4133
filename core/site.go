package core

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/afero"

	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/vfs"
	"github.com/wharf-project/wharf/vfs/s3fs"
)

// Options configure a Site beyond its YAML.
type Options struct {
	Logger *slog.Logger // default: slog.Default()
	Events Dispatcher   // default: NopDispatcher
	Now    func() time.Time
	// Observer receives facts for metrics and the audit log (optional).
	Observer Observer
	// StateDir holds state that survives restarts (the protector's bans); "" keeps it in
	// memory only.
	StateDir string
	// Cluster shares bans, session limits and quotas with the other nodes of a cluster; nil
	// for a single node.
	Cluster Cluster
	// RefuseWhenStoreDown refuses new logins while the cluster store cannot be reached
	// (cluster.on_store_down: refuse); otherwise the site serves on local state meanwhile.
	RefuseWhenStoreDown bool
}

// Site is one virtual site of the config: its users, file systems, limits and event handlers,
// and the registry of its live sessions. Adapters get sessions from it.
type Site struct {
	name     string
	log      *slog.Logger
	events   Dispatcher
	observer Observer
	now      func() time.Time
	cfg      atomic.Pointer[siteConfig]

	mu       sync.Mutex
	sessions map[string]*Session
	perIP    map[netip.Addr]int
	perUser  map[string]int
	backends map[string]afero.Fs // by vfs name + resolved root
	partBufs *s3fs.PartBuffers   // the part buffers of every s3 backend's uploads
	// s3mu guards s3Clients: the connections to S3 stores, by s3ClientKey, shared by the
	// backends of every user prefix on the store
	s3mu      sync.Mutex
	s3Clients map[string]*s3fs.Client
	usage     map[string]*usage // quota usage by user id
	limits    map[string]*bandwidth
	prot      *protector
	cl        *clusterLink // nil: a single node
	closed    bool
	// connections that have not logged in yet, in all and by address (Session.preAuth);
	// guarded by mu
	unauth      int
	unauthPerIP map[netip.Addr]int

	uploads   inflight      // atomic uploads in flight, by backend and name
	transfers atomic.Int64  // open read and write handles
	hashSlots chan struct{} // bounds concurrent password-hash checks
	mem       memReleaser   // returns memory to the OS after argon2id checks
}

// acquireHashSlot waits for a turn to run a password-hash check. A check counts as in flight
// for the memory release from here (waiting included) until releaseHashSlot.
func (s *Site) acquireHashSlot(ctx context.Context) error {
	s.mem.begin()
	select {
	case s.hashSlots <- struct{}{}:
		return nil
	case <-ctx.Done():
		s.mem.end(false)
		return fmt.Errorf("waiting to check credentials: %w", ctx.Err())
	}
}

// releaseHashSlot ends a check; memoryHard tells whether it ran an argon2id hash, after which
// the freed memory is returned to the OS once no check has run for memReleaseQuiet.
func (s *Site) releaseHashSlot(memoryHard bool) {
	<-s.hashSlots
	s.mem.end(memoryHard)
}

// padHashes pads a failed attempt whose password check succeeded (a refusal for another
// reason) to the hashing work of any failed attempt, in a hash slot of its own.
func (s *Site) padHashes(ctx context.Context, w *hashWork, dummies []dummy) {
	if err := s.acquireHashSlot(ctx); err != nil {
		return
	}
	w.pad(dummies)
	s.releaseHashSlot(w.memoryHard)
}

// ActiveTransfers returns the number of uploads and downloads in progress.
func (s *Site) ActiveTransfers() int64 { return s.transfers.Load() }

// siteConfig is the part of a site that a reload replaces; sessions keep the user they
// authenticated with.
type siteConfig struct {
	raw      *config.Site
	users    map[string]*User
	catchAll *User
	dummies  []dummy // one hash of each class the users have, to pad failed checks (hashWork)
	vfs      map[string]config.VFS
	safe     []netip.Prefix
	allow    []netip.Prefix
	block    []netip.Prefix
	health   []netip.Prefix // protector.health_check_sources
	userCAs  *userCAs       // ssh.trusted_user_ca_keys; nil: no certificates
}

// NewSite builds a site from its configuration.
func NewSite(c *config.Site, opts Options) (*Site, error) {
	s := &Site{
		name: c.Name, log: opts.Logger, events: opts.Events, observer: opts.Observer, now: opts.Now,
		sessions: map[string]*Session{}, perIP: map[netip.Addr]int{}, perUser: map[string]int{}, unauthPerIP: map[netip.Addr]int{},
		backends: map[string]afero.Fs{}, partBufs: s3fs.NewPartBuffers(), s3Clients: map[string]*s3fs.Client{}, usage: map[string]*usage{}, limits: map[string]*bandwidth{},
		hashSlots: make(chan struct{}, runtime.GOMAXPROCS(0)),
		mem:       memReleaser{quiet: memReleaseQuiet, release: debug.FreeOSMemory},
		cl:        newClusterLink(opts.Cluster, opts.RefuseWhenStoreDown),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("site", c.Name)
	if s.events == nil {
		s.events = NopDispatcher{}
	}
	if s.now == nil {
		s.now = time.Now
	}
	stateFile := ""
	if opts.StateDir != "" {
		stateFile = filepath.Join(opts.StateDir, "bans-"+safeFileName(c.Name)+".json")
	}
	prot, err := newProtector(stateFile, c.Protector, s.now(), s.log)
	if err != nil {
		return nil, err
	}
	s.prot = prot
	if err := s.Reload(c); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload replaces users, file system definitions, limits and lists for new sessions and
// operations; live sessions keep their user and mounts.
func (s *Site) Reload(c *config.Site) error {
	sc := &siteConfig{raw: c, users: map[string]*User{}, vfs: map[string]config.VFS{},
		safe: prefixes(c.Protector.Safe), allow: prefixes(c.Protector.Allow), block: prefixes(c.Protector.Block),
		health: prefixes(c.Protector.HealthCheckSources)}
	for _, v := range c.VFS {
		sc.vfs[v.Name] = v
	}
	cas, err := loadUserCAs(c.SSH.TrustedUserCAKeys)
	if err != nil {
		return fmt.Errorf("site %q: %w", c.Name, err)
	}
	sc.userCAs = cas
	for i := range c.Users {
		u, err := newUser(&c.Users[i], cas != nil)
		if err != nil {
			return fmt.Errorf("site %q: %w", c.Name, err)
		}
		for _, m := range u.Mounts {
			if _, ok := sc.vfs[m.VFS]; !ok {
				return fmt.Errorf("site %q: user %q: unknown vfs %q", c.Name, u.ID, m.VFS)
			}
		}
		if u.catchAll {
			sc.catchAll = u
			continue
		}
		sc.users[u.ID] = u
	}
	hashes := make([]string, 0, len(c.Users))
	for i := range c.Users {
		hashes = append(hashes, c.Users[i].Password)
	}
	sc.dummies = dummiesFor(hashes)
	for _, v := range c.VFS {
		if v.Type != "s3" {
			continue
		}
		// The AWS configuration is loaded now rather than at the first login: a problem in
		// it shows at start, and no login pays for it (nothing is sent yet).
		if _, err := s.s3Client(v); err != nil {
			s.log.Error("cannot load the configuration of the s3 vfs; its users cannot log in", "vfs", v.Name, "err", err)
		}
	}
	s.cfg.Store(sc)
	s.prot.configure(c.Protector, s.now())
	return nil
}

// Name returns the site's name (Session.GetVirtualSite()).
func (s *Site) Name() string { return s.name }

// Config returns the site's current configuration (adapters read listeners, ssh, ftp, tls).
func (s *Site) Config() *config.Site { return s.cfg.Load().raw }

// Logger returns the site's logger.
func (s *Site) Logger() *slog.Logger { return s.log }

// Events returns the site's dispatcher.
func (s *Site) Events() Dispatcher { return s.events }

// LookupUser returns a configured user (not the catch-all profile).
func (s *Site) LookupUser(id string) (*User, bool) {
	u, ok := s.cfg.Load().users[id]
	return u, ok
}

// namedUser returns the user whose handlers run for a client that named name: the configured
// user, else the catch-all profile (nil without one, and for "").
func (s *Site) namedUser(name string) *User {
	if name == "" {
		return nil
	}
	sc := s.cfg.Load()
	if u, ok := sc.users[name]; ok {
		return u
	}
	return sc.catchAll
}

// ConnInfo describes an accepted connection.
type ConnInfo struct {
	Remote   net.Addr
	Local    net.Addr
	Protocol string // SFTP, FTP or FTPS at accept time
}

// Connect admits a new connection: block and allow lists, bans, connection limits and the
// OnNewConnection event. On success it returns a registered, unauthenticated session, which
// the adapter must Close when the connection ends.
func (s *Site) Connect(ctx context.Context, info ConnInfo) (*Session, error) {
	ip := addrIP(info.Remote)
	conn := &Conn{RemoteIP: ip.String(), Protocol: info.Protocol, Site: s.name, site: s}
	if info.Local != nil {
		conn.LocalAddr = info.Local.String()
	}
	if why := s.refusal(ip); why != "" {
		s.log.Info("connection refused", "ip", conn.RemoteIP, "protocol", info.Protocol, "reason", why)
		s.observe(&Fact{Kind: FactConnect, IP: conn.RemoteIP, Protocol: info.Protocol, Reason: why, Err: ErrRefused, By: ByProtector})
		if s.events.Handles(OnBlocklistHit, nil) {
			s.events.Fire(ctx, &Event{Name: OnBlocklistHit, Conn: conn})
		}
		return nil, fmt.Errorf("%s: %w", why, ErrRefused)
	}
	lim := s.Config().Limits
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return nil, s.refuse(conn, "server is shutting down", ErrRefused, ByShutdown)
	case lim.MaxConnections > 0 && len(s.sessions) >= lim.MaxConnections:
		s.mu.Unlock()
		return nil, s.refuse(conn, "server connection limit reached", ErrLimit, ByLimit)
	case lim.MaxConnectionsPerIP > 0 && s.perIP[ip] >= lim.MaxConnectionsPerIP:
		s.mu.Unlock()
		return nil, s.refuse(conn, "too many connections from your address", ErrLimit, ByLimit)
	// Connections that have not logged in are bounded apart (OpenSSH's MaxStartups and
	// PerSourceMaxStartups): a flood of them is refused, while logged-in clients keep
	// their room and one client may still hold many sessions.
	case lim.MaxUnauthenticated > 0 && s.unauth >= lim.MaxUnauthenticated:
		s.mu.Unlock()
		return nil, s.refuse(conn, "too many connections waiting to log in", ErrLimit, ByLimit)
	case lim.MaxUnauthenticatedPerIP > 0 && s.unauthPerIP[ip] >= lim.MaxUnauthenticatedPerIP:
		s.mu.Unlock()
		return nil, s.refuse(conn, "too many connections from your address waiting to log in", ErrLimit, ByLimit)
	}
	sess := newSession(s, conn, ip, info.Protocol)
	s.sessions[sess.id] = sess
	s.perIP[ip]++
	sess.preAuth = true
	s.unauth++
	s.unauthPerIP[ip]++
	s.mu.Unlock()

	if s.events.Handles(OnNewConnection, nil) {
		s.events.Fire(ctx, &Event{Name: OnNewConnection, Conn: conn})
		if conn.Rejected() {
			s.unregister(sess)
			return nil, s.refuse(conn, "rejected by script", ErrRefused, s.scriptsOf(OnNewConnection, nil))
		}
	}
	s.observe(&Fact{Kind: FactConnect, Session: sess})
	return sess, nil
}

func (s *Site) refuse(conn *Conn, why string, kind error, by string) error {
	s.log.Info("connection refused", "ip", conn.RemoteIP, "protocol", conn.Protocol, "reason", why)
	s.observe(&Fact{Kind: FactConnect, IP: conn.RemoteIP, Protocol: conn.Protocol, Reason: why, Err: kind, By: by})
	return fmt.Errorf("%s: %w", why, kind)
}

// SoftwareID fires BeforeSendSoftwareID and returns the identification (SSH) or greeting
// (FTP) to send: def unless a script changed it.
func (s *Site) SoftwareID(ctx context.Context, sess *Session, def string) string {
	if !s.events.Handles(BeforeSendSoftwareID, nil) {
		return def
	}
	s.events.Fire(ctx, &Event{Name: BeforeSendSoftwareID, Conn: sess.conn})
	return sess.conn.SoftwareID(def)
}

// refusal returns why ip may not connect, or "".
func (s *Site) refusal(ip netip.Addr) string {
	sc := s.cfg.Load()
	if containsIP(sc.block, ip) {
		return "address is on the block list"
	}
	if len(sc.allow) > 0 && !containsIP(sc.allow, ip) {
		return "address is not on the allow list"
	}
	// A safe address is never banned, also when it lies in a banned IPv6 prefix.
	if s.Banned(ip) && !containsIP(sc.safe, ip) {
		return "address is banned"
	}
	return ""
}

// healthCheck reports whether ip is a health-check source, whose connections that end
// without a login attempt are no strike.
func (s *Site) healthCheck(ip netip.Addr) bool { return containsIP(s.cfg.Load().health, ip) }

func (s *Site) shuttingDown() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Sessions returns the live sessions.
func (s *Site) Sessions() []*Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Session, 0, len(s.sessions))
	for _, x := range s.sessions {
		out = append(out, x)
	}
	return out
}

// Session returns a live session by id.
func (s *Site) Session(id string) (*Session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, ok := s.sessions[id]
	return x, ok
}

// Kick ends a live session (OnConnectionClose fires when its adapter closes it).
func (s *Site) Kick(id string) bool {
	x, ok := s.Session(id)
	if ok {
		x.Terminate(false)
	}
	return ok
}

// CountByIP returns the number of live connections from ip.
func (s *Site) CountByIP(ip netip.Addr) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.perIP[ip]
}

// CountByUser returns the number of live authenticated sessions of a user.
func (s *Site) CountByUser(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.perUser[id]
}

// Shutdown refuses new connections, cancels a pending memory release and ends every session,
// waiting until their adapters have closed them or ctx expires.
func (s *Site) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.mem.stop()
	defer s.prot.close() // after the sessions, whose ends may still strike
	for _, x := range s.Sessions() {
		x.Terminate(false)
	}
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		s.mu.Lock()
		n := len(s.sessions)
		s.mu.Unlock()
		if n == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d sessions still open: %w", n, ctx.Err())
		case <-t.C:
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for k, b := range s.backends {
		if c, ok := b.(interface{ Close() error }); ok {
			errs = append(errs, c.Close())
		}
		delete(s.backends, k)
	}
	return errors.Join(errs...)
}

// unregister removes a session from the registry. It returns what its end means for the
// cluster: the user it counted for there ("" for none) and whether it was the user's last
// session on this node.
func (s *Site) unregister(sess *Session) (clusterUser string, lastLocal bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sessions[sess.id]; !ok {
		return "", false
	}
	delete(s.sessions, sess.id)
	if s.perIP[sess.ip]--; s.perIP[sess.ip] <= 0 {
		delete(s.perIP, sess.ip)
	}
	s.loggedInLocked(sess)
	return s.uncountUserLocked(sess)
}

// uncountUserLocked stops counting sess for its user; see unregister. s.mu is held.
func (s *Site) uncountUserLocked(sess *Session) (clusterUser string, lastLocal bool) {
	if sess.countedUser == "" {
		return "", false
	}
	id := sess.countedUser
	if s.perUser[id]--; s.perUser[id] <= 0 {
		delete(s.perUser, id)
		lastLocal = true
	}
	sess.countedUser = ""
	if sess.clustered {
		sess.clustered = false
		clusterUser = id
	}
	return clusterUser, lastLocal
}

// claimUserSlot counts an authenticated session against the user's session limit: across
// the cluster when the site is part of one, else (and, with on_store_down: local, while the
// store does not answer) on this node.
func (s *Site) claimUserSlot(ctx context.Context, sess *Session, u *User) error {
	max := u.MaxSessions
	if max == 0 {
		max = s.Config().Limits.MaxSessionsPerUser
	}
	local := true
	if s.cl != nil {
		var err error
		if max == 0 {
			// Nothing about this login needs the cluster's answer (a quota's reservations
			// ask the store when they are made): its record only serves the listing and
			// kick, and is written with the next batch.
			err = s.note(s.cl.c.RecordSession(s.clusterSession(sess, u.ID)))
		} else {
			err = s.claimClusterSession(ctx, sess, u.ID, max)
		}
		switch {
		case err == nil:
			local = false
		case errors.Is(err, ErrLimit):
			return fmt.Errorf("user %s already has %d sessions in the cluster: %w", u.ID, max, ErrLimit)
		case s.cl.refuse:
			return fmt.Errorf("%w: %w", ErrStoreDown, ErrLimit)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if local && max > 0 && s.perUser[u.ID] >= max {
		return fmt.Errorf("user %s already has %d sessions: %w", u.ID, max, ErrLimit)
	}
	s.perUser[u.ID]++
	sess.countedUser = u.ID
	// The session's record is ended with it: one claimed now, or one the store's resync
	// after an outage writes from ClusterSessions.
	sess.clustered = s.cl != nil
	sess.limited = max > 0
	s.loggedInLocked(sess)
	return nil
}

// loggedInLocked stops counting sess as a connection waiting to log in (it logged in or
// ended). s.mu is held.
func (s *Site) loggedInLocked(sess *Session) {
	if !sess.preAuth {
		return
	}
	sess.preAuth = false
	s.unauth--
	if s.unauthPerIP[sess.ip]--; s.unauthPerIP[sess.ip] <= 0 {
		delete(s.unauthPerIP, sess.ip)
	}
}

// s3OpenTimeout bounds opening an s3 vfs at a user's first login.
const s3OpenTimeout = 60 * time.Second

// backend returns the (shared, cached) backend for a vfs definition and user.
func (s *Site) backend(def config.VFS, userID string) (afero.Fs, error) {
	if strings.Contains(def.Root, "{user}") || strings.Contains(def.Prefix, "{user}") {
		// Defence in depth: ids are validated at load and at script authentication.
		if err := config.ValidUserID(userID); err != nil || userID == "*" {
			return nil, fmt.Errorf("vfs %q: user id not usable in a path: %w", def.Name, ErrDenied)
		}
	}
	root := strings.ReplaceAll(def.Root, "{user}", userID)
	prefix := strings.ReplaceAll(def.Prefix, "{user}", userID)
	key := def.Name + "\x00" + def.Type + "\x00" + root + "\x00" + prefix
	if def.Type == "s3" {
		// A reload that changes the store, the keys or the tuning opens a new backend.
		key += fmt.Sprintf("\x00%s\x00%s\x00%s\x00%s\x00%s\x00%d\x00%d\x00%d\x00%d",
			s3ClientKey(def), def.Bucket, def.StorageClass, def.SSE, def.SSEKMSKeyID, def.PartSize,
			def.UploadConcurrency, def.MaxDirRenameObjects, def.CleanupIncompleteUploadsAfter.Duration)
		return s.s3Backend(def, key, prefix)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.backends[key]; ok {
		return b, nil
	}
	var b afero.Fs
	switch def.Type {
	case "memory":
		b = vfs.NewMemory()
	case "disk", "":
		d, err := vfs.NewDisk(root)
		if err != nil {
			return nil, fmt.Errorf("vfs %q: %w", def.Name, err)
		}
		b = d
	default:
		return nil, fmt.Errorf("vfs %q: unknown type %q", def.Name, def.Type)
	}
	s.backends[key] = b
	return b, nil
}

// s3Backend opens an s3 vfs for one prefix, once: a HEAD of the bucket and the cleanup of the
// incomplete uploads a crash left there. That talks to the network, so it runs outside the
// site lock; of two logins that open it at once, the second one's copy is closed.
func (s *Site) s3Backend(def config.VFS, key, prefix string) (afero.Fs, error) {
	s.mu.Lock()
	b, ok := s.backends[key]
	s.mu.Unlock()
	if ok {
		return b, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), s3OpenTimeout)
	defer cancel()
	cl, err := s.s3Client(def)
	var d *s3fs.FS
	if err == nil {
		d, err = s3fs.New(ctx, s3fs.Options{Bucket: def.Bucket, Prefix: prefix, StorageClass: def.StorageClass,
			SSE: def.SSE, SSEKMSKeyID: def.SSEKMSKeyID, PartSize: int64(def.PartSize),
			UploadConcurrency: def.UploadConcurrency, MaxDirRenameObjects: def.MaxDirRenameObjects,
			CleanupAfter: def.CleanupIncompleteUploadsAfter.Duration, Logger: s.log.With("vfs", def.Name),
			Buffers: s.partBufs, Client: cl})
	}
	if err != nil {
		// The cause names the endpoint and the bucket: for the log, not for clients.
		s.log.Error("cannot open the s3 vfs", "vfs", def.Name, "err", err)
		return nil, fmt.Errorf("vfs %q: object storage unavailable: %w", def.Name, ErrFailure)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.backends[key]; ok {
		_ = d.Close()
		return b, nil
	}
	s.backends[key] = d
	return d, nil
}

// s3ClientKey names the store and credentials of an s3 vfs: the vfs with the same key share
// a client. The secret key enters as its hash.
func s3ClientKey(def config.VFS) string {
	secret := sha256.Sum256([]byte(def.SecretKey.Value()))
	return fmt.Sprintf("%s\x00%s\x00%t\x00%s\x00%x", def.Endpoint, def.Region, def.PathStyle, def.AccessKey.Value(), secret)
}

// s3Client returns the site's client for the store and credentials of an s3 vfs, made once.
func (s *Site) s3Client(def config.VFS) (*s3fs.Client, error) {
	key := s3ClientKey(def)
	s.s3mu.Lock()
	defer s.s3mu.Unlock()
	if c, ok := s.s3Clients[key]; ok {
		return c, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), s3OpenTimeout)
	defer cancel()
	c, err := s3fs.NewClient(ctx, s3fs.ClientOptions{Endpoint: def.Endpoint, Region: def.Region,
		PathStyle: def.PathStyle, AccessKey: def.AccessKey.Value(), SecretKey: def.SecretKey.Value()})
	if err != nil {
		return nil, err
	}
	s.s3Clients[key] = c
	return c, nil
}

// mountTable opens the user's mounts.
func (s *Site) mountTable(u *User) (*vfs.Table, map[*vfs.Mount]mountPolicy, error) {
	sc := s.cfg.Load()
	mounts := make([]*vfs.Mount, 0, len(u.Mounts))
	pol := make(map[*vfs.Mount]mountPolicy, len(u.Mounts))
	for _, ms := range u.Mounts {
		def := sc.vfs[ms.VFS]
		b, err := s.backend(def, u.ID)
		if err != nil {
			return nil, nil, err
		}
		m := &vfs.Mount{Path: ms.Path, Name: ms.VFS, FS: b}
		mounts = append(mounts, m)
		pol[m] = mountPolicy{perms: ms.Perms, atomic: def.Atomic(), symlinks: def.AllowSymlinks}
	}
	t, err := vfs.NewTable(mounts...)
	if err != nil {
		return nil, nil, err
	}
	return t, pol, nil
}

type mountPolicy struct {
	perms    Perm
	atomic   bool
	symlinks bool // vfs[].allow_symlinks: users may create symbolic links
}

// safeFileName keeps letters, digits, '-', '_' and '.' of a site name for a file name.
func safeFileName(name string) string {
	out := []rune{}
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			out = append(out, r)
		default:
			out = append(out, '_')
		}
	}
	return string(out)
}

func addrIP(a net.Addr) netip.Addr {
	if a == nil {
		return netip.Addr{}
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap()
	}
	if ip, err := netip.ParseAddr(a.String()); err == nil {
		return ip.Unmap()
	}
	return netip.Addr{}
}

func containsIP(ps []netip.Prefix, ip netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

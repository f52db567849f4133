// Package admin serves wharf's HTTP operations endpoint: Prometheus metrics, the health check
// and a small token-protected admin API to list and end live sessions and to reload the
// configuration. `wharf sessions` and `wharf reload` are its clients (see Client).
//
//	GET  /metrics                      Prometheus exposition (no token)
//	GET  /healthz                      200 "ok" while serving (a "degraded: …" line instead
//	                                   while the cluster store is unreachable), 503 while
//	                                   shutting down (no token)
//	GET  /admin/sessions               live sessions of every site, JSON; in a cluster, the
//	                                   logged-in sessions of every live node too
//	GET  /admin/sessions/{id}          one session (of this node)
//	POST /admin/sessions/{id}/kick     end a session (OnConnectionClose fires); in a cluster,
//	                                   on the node that serves it
//	POST /admin/reload                 reload the configuration; 200 with the changes that
//	                                   need a restart (not_applied), or 422 with the errors;
//	                                   ?cluster=1 asks every live node of the cluster
//	GET  /admin/bans                   the protector's bans in force, JSON
//	POST /admin/bans                   ban an address: {"addr", "for", "reason", "site"}
//	DELETE /admin/bans?addr=A          lift a ban (addr=all: every ban); &site=, &reason=
//
// Admin requests need "Authorization: Bearer <token>"; in mode "local" they are also refused
// unless they come from a loopback address.
package admin

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/netutil"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/internal/accept"
)

// Admin modes (metrics.admin).
const (
	ModeOff   = "off"
	ModeLocal = "local"
	ModeAny   = "any"
)

// Options configure a Server.
type Options struct {
	Metrics http.Handler // serves /metrics; nil = 404
	// Sites returns the live sites (session listing and kicking).
	Sites func() []*core.Site
	// Reload reloads the configuration. notApplied lists the changes it kept at their running
	// value (they need a restart); err is a refused configuration. Both reach the caller.
	Reload func(ctx context.Context) (notApplied []string, err error)
	Mode   string // off | local | any
	Token  string // required for /admin/ unless Mode is off
	Logger *slog.Logger
	// Limits bound what clients of the endpoint can hold; zero fields take the defaults.
	Limits Limits
	// Cluster is the view of the other nodes when the server is one node of a cluster; nil
	// for a single node.
	Cluster Cluster
	// Degraded returns why the server serves in a degraded way ("" when it does not), for
	// /healthz's detail. nil: never degraded.
	Degraded func() string
}

// Cluster is what the admin API needs of the cluster store: the other nodes' sessions,
// kicking a session wherever it is, and reloading every node.
type Cluster interface {
	// NodeID names this node.
	NodeID() string
	// Sessions lists the logged-in sessions of every live node, this one's included.
	Sessions(ctx context.Context) ([]core.ClusterSession, error)
	// Kick asks the node that serves a session to end it; found is false when no live
	// node has it.
	Kick(ctx context.Context, id string) (node string, found bool, err error)
	// ReloadAll asks every live node (this one included) to reload, and returns the nodes
	// asked.
	ReloadAll(ctx context.Context) ([]string, error)
}

// Limits bound the endpoint's connections, so that clients that connect and stay idle (or
// send slowly) cannot hold the process's file descriptors.
type Limits struct {
	// MaxConns is how many connections are served at once (default 64). Further ones wait,
	// unaccepted, in the kernel's listen queue until one ends.
	MaxConns int
	// ReadHeaderTimeout bounds the wait for a request's headers, also on a new connection
	// that sends nothing (default 5s).
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request (default 30s).
	ReadTimeout time.Duration
	// WriteTimeout bounds handling a request and writing its response (default 60s: a
	// reload compiles every script).
	WriteTimeout time.Duration
	// IdleTimeout closes a kept-alive connection with no request for this long (default 30s).
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's headers (default 16 KiB).
	MaxHeaderBytes int
}

// Defaults of Limits' zero fields.
const (
	defaultMaxConns          = 64
	defaultReadHeaderTimeout = 5 * time.Second
	defaultReadTimeout       = 30 * time.Second
	defaultWriteTimeout      = 60 * time.Second
	defaultIdleTimeout       = 30 * time.Second
	defaultMaxHeaderBytes    = 16 << 10
)

func (l Limits) withDefaults() Limits {
	if l.MaxConns <= 0 {
		l.MaxConns = defaultMaxConns
	}
	if l.ReadHeaderTimeout <= 0 {
		l.ReadHeaderTimeout = defaultReadHeaderTimeout
	}
	if l.ReadTimeout <= 0 {
		l.ReadTimeout = defaultReadTimeout
	}
	if l.WriteTimeout <= 0 {
		l.WriteTimeout = defaultWriteTimeout
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = defaultIdleTimeout
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = defaultMaxHeaderBytes
	}
	return l
}

// Server is the operations HTTP server.
type Server struct {
	opts      Options
	http      *http.Server
	acceptLog *accept.Reporter
	draining  atomic.Bool
}

// New builds the server. Its handler is also available as Handler for tests.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	opts.Limits = opts.Limits.withDefaults()
	s := &Server{opts: opts, acceptLog: accept.NewReporter(opts.Logger.With("component", "admin"), 0)}
	s.http = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: opts.Limits.ReadHeaderTimeout,
		ReadTimeout:       opts.Limits.ReadTimeout,
		WriteTimeout:      opts.Limits.WriteTimeout,
		IdleTimeout:       opts.Limits.IdleTimeout,
		MaxHeaderBytes:    opts.Limits.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
	}
	return s
}

// Handler returns the endpoint's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	if s.opts.Metrics != nil {
		mux.Handle("GET /metrics", s.opts.Metrics)
	}
	mux.HandleFunc("GET /healthz", s.healthz)
	if s.opts.Mode != ModeOff {
		mux.Handle("GET /admin/sessions", s.guard(s.listSessions))
		mux.Handle("GET /admin/sessions/{id}", s.guard(s.getSession))
		mux.Handle("POST /admin/sessions/{id}/kick", s.guard(s.kick))
		mux.Handle("POST /admin/reload", s.guard(s.reload))
		mux.Handle("GET /admin/bans", s.guard(s.listBans))
		mux.Handle("POST /admin/bans", s.guard(s.addBan))
		mux.Handle("DELETE /admin/bans", s.guard(s.removeBans))
	}
	return mux
}

// Serve serves on l until Shutdown, at most Limits.MaxConns connections at once. A failed
// accept (out of file descriptors, ...) is retried after a wait, never the end of serving.
func (s *Server) Serve(l net.Listener) error {
	err := s.http.Serve(netutil.LimitListener(accept.Wrap(l, s.acceptLog), s.opts.Limits.MaxConns))
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Draining makes /healthz answer 503 so that a load balancer stops sending clients while
// the gateway shuts down.
func (s *Server) Draining() { s.draining.Store(true) }

// Shutdown stops the server, waiting for requests in flight until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error { return s.http.Shutdown(ctx) }

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if s.draining.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "shutting down")
		return
	}
	if s.opts.Degraded != nil {
		if d := s.opts.Degraded(); d != "" {
			// Still 200: the node serves (as cluster.on_store_down says); a balancer must
			// not take every node out because the database is away.
			fmt.Fprintln(w, d)
			return
		}
	}
	fmt.Fprintln(w, "ok")
}

// guard enforces the admin mode and the token.
func (s *Server) guard(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.opts.Mode == ModeLocal && !fromLoopback(r) {
			s.opts.Logger.Warn("admin request refused: not from a loopback address", "remote", r.RemoteAddr, "path", r.URL.Path)
			writeError(w, http.StatusForbidden, "the admin API only accepts loopback clients (metrics.admin: local)")
			return
		}
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || s.opts.Token == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(s.opts.Token)) != 1 {
			// Never log the presented token: it may be a real one with a typo.
			s.opts.Logger.Warn("admin request refused: missing or wrong token", "remote", r.RemoteAddr, "path", r.URL.Path)
			w.Header().Set("WWW-Authenticate", `Bearer realm="wharf admin"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong admin token")
			return
		}
		h(w, r)
	})
}

func fromLoopback(r *http.Request) bool {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	return err == nil && ap.Addr().Unmap().IsLoopback()
}

// SessionInfo is a live session as the admin API reports it: the fields of the scripts'
// Session object.
type SessionInfo struct {
	ID              string     `json:"id"`
	Node            string     `json:"node,omitempty"` // in a cluster: the node that serves it
	Site            string     `json:"site"`
	User            string     `json:"user"` // "" before login
	Authenticated   bool       `json:"authenticated"`
	Protocol        string     `json:"protocol"`
	RemoteIP        string     `json:"remote_ip"`
	LocalAddr       string     `json:"local_addr,omitempty"`
	ClientVersion   string     `json:"client_version,omitempty"`
	Start           time.Time  `json:"start"`
	LastActivity    time.Time  `json:"last_activity"`
	LastCommand     string     `json:"last_command,omitempty"`
	LastCommandTime *time.Time `json:"last_command_time,omitempty"`
	LastError       string     `json:"last_error,omitempty"`
	LastErrorTime   *time.Time `json:"last_error_time,omitempty"`
	CustomData      []string   `json:"custom_data,omitempty"`
	RelPath         string     `json:"rel_path,omitempty"`
	AbsPath         string     `json:"abs_path,omitempty"`
	RelTargetPath   string     `json:"rel_target_path,omitempty"`
	AbsTargetPath   string     `json:"abs_target_path,omitempty"`
}

// Info describes a live session.
func Info(s *core.Session) SessionInfo {
	in := SessionInfo{
		ID: s.ID(), Site: s.VirtualSite(), User: s.UserID(), Authenticated: s.User() != nil,
		Protocol: s.Protocol(), RemoteIP: s.RemoteAddress(), LocalAddr: s.Conn().LocalAddr,
		ClientVersion: s.ClientVersion(), Start: s.StartTime(), LastActivity: s.LastActivity(),
		LastCommand: s.LastCommand(), LastError: s.LastError(), CustomData: s.AllCustomData(),
		RelPath: s.RelPath(), AbsPath: s.AbsPath(), RelTargetPath: s.RelTargetPath(), AbsTargetPath: s.AbsTargetPath(),
	}
	if t, ok := s.LastCommandTime(); ok {
		in.LastCommandTime = &t
	}
	if t, ok := s.LastErrorTime(); ok {
		in.LastErrorTime = &t
	}
	return in
}

func (s *Server) sessions() []*core.Session {
	var out []*core.Session
	if s.opts.Sites == nil {
		return nil
	}
	for _, site := range s.opts.Sites() {
		out = append(out, site.Sessions()...)
	}
	return out
}

func (s *Server) find(id string) (*core.Session, bool) {
	if s.opts.Sites == nil {
		return nil, false
	}
	for _, site := range s.opts.Sites() {
		if x, ok := site.Session(id); ok {
			return x, true
		}
	}
	return nil, false
}

// PartialHeader, on a session listing, says why the other nodes' sessions are missing from
// it (the cluster store did not answer).
const PartialHeader = "Wharf-Partial"

func (s *Server) listSessions(w http.ResponseWriter, r *http.Request) {
	list := []SessionInfo{}
	local := map[string]bool{}
	for _, x := range s.sessions() {
		in := Info(x)
		if s.opts.Cluster != nil {
			in.Node = s.opts.Cluster.NodeID()
		}
		local[in.ID] = true
		list = append(list, in)
	}
	if c := s.opts.Cluster; c != nil {
		others, err := c.Sessions(r.Context())
		if err != nil {
			// This node's sessions are still worth showing; the caller is told what is missing.
			s.opts.Logger.Warn("admin API: the other nodes' sessions cannot be listed", "err", err)
			w.Header().Set(PartialHeader, "only this node's sessions: the cluster store did not answer")
		}
		for _, o := range others {
			if local[o.ID] || o.Node == c.NodeID() {
				continue // this node's own rows: the live session says more
			}
			list = append(list, SessionInfo{ID: o.ID, Node: o.Node, Site: o.Site, User: o.User, Authenticated: true,
				Protocol: o.Protocol, RemoteIP: o.RemoteIP, Start: o.Start})
		}
	}
	// Session ids are ULIDs: sorting by id is sorting by start time.
	sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) getSession(w http.ResponseWriter, r *http.Request) {
	x, ok := s.find(r.PathValue("id"))
	if !ok {
		writeError(w, http.StatusNotFound, "no live session with that id")
		return
	}
	writeJSON(w, http.StatusOK, Info(x))
}

func (s *Server) kick(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if s.opts.Sites != nil {
		for _, site := range s.opts.Sites() {
			if site.Kick(id) {
				s.opts.Logger.Info("session kicked by the admin API", "session", id, "site", site.Name(), "remote", r.RemoteAddr)
				res := KickResult{Kicked: id}
				if s.opts.Cluster != nil {
					res.Node = s.opts.Cluster.NodeID()
				}
				writeJSON(w, http.StatusOK, res)
				return
			}
		}
	}
	if c := s.opts.Cluster; c != nil {
		node, found, err := c.Kick(r.Context(), id)
		if err != nil {
			s.opts.Logger.Warn("admin API: kick through the cluster store failed", "session", id, "err", err)
			writeError(w, http.StatusServiceUnavailable, "the session is not on this node and the cluster store did not answer: "+err.Error())
			return
		}
		if found {
			s.opts.Logger.Info("session kick sent to its node by the admin API", "session", id, "node", node, "remote", r.RemoteAddr)
			writeJSON(w, http.StatusOK, KickResult{Kicked: id, Node: node})
			return
		}
		writeError(w, http.StatusNotFound, "no live node has a session with that id")
		return
	}
	writeError(w, http.StatusNotFound, "no live session with that id")
}

// KickResult is the answer to a kick.
type KickResult struct {
	Kicked string `json:"kicked"`
	// Node is the node that serves (served) the session, in a cluster. A session of another
	// node ends when that node hears the request, moments later.
	Node string `json:"node,omitempty"`
}

func (s *Server) reload(w http.ResponseWriter, r *http.Request) {
	if s.opts.Reload == nil {
		writeError(w, http.StatusNotImplemented, "reload is not available")
		return
	}
	if r.URL.Query().Get("cluster") == "1" {
		s.reloadCluster(w, r)
		return
	}
	s.opts.Logger.Info("reload requested by the admin API", "remote", r.RemoteAddr)
	notApplied, err := s.opts.Reload(r.Context())
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, ReloadResult{Reloaded: "ok", NotApplied: notApplied})
}

// reloadCluster asks every live node to reload. Each node reloads its own file and logs
// the outcome; the answer lists the nodes asked.
func (s *Server) reloadCluster(w http.ResponseWriter, r *http.Request) {
	c := s.opts.Cluster
	if c == nil {
		writeError(w, http.StatusBadRequest, "this server is not a node of a cluster (no cluster: section)")
		return
	}
	s.opts.Logger.Info("cluster reload requested by the admin API", "remote", r.RemoteAddr)
	nodes, err := c.ReloadAll(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "the cluster store did not answer: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, ReloadResult{Reloaded: "asked", Nodes: nodes})
}

// ReloadResult is the answer to a successful reload.
type ReloadResult struct {
	Reloaded string `json:"reloaded"` // "ok"; "asked" for a cluster reload
	// NotApplied lists the changes the reload kept at their running value because they
	// need a restart (listeners, sites, the ssh and ftp sections, log, metrics...).
	NotApplied []string `json:"not_applied,omitempty"`
	// Nodes are the nodes asked to reload (?cluster=1).
	Nodes []string `json:"nodes,omitempty"`
}

// BanInfo is a ban in force, as the admin API reports it.
type BanInfo struct {
	Site        string    `json:"site"`
	Addr        string    `json:"addr"` // an address, or an IPv6 prefix
	Until       time.Time `json:"until"`
	Offences    int       `json:"offences"`
	LastOffence time.Time `json:"last_offence"`
}

func banInfo(b core.BanInfo) BanInfo {
	return BanInfo{Site: b.Site, Addr: b.Addr, Until: b.Until, Offences: b.Offences, LastOffence: b.LastOffence}
}

// BanRequest asks for a ban (POST /admin/bans).
type BanRequest struct {
	Addr   string `json:"addr"`
	For    string `json:"for"`    // a Go duration: "1h", "30m"
	Reason string `json:"reason"` // for the log and the audit log
	Site   string `json:"site"`   // "" = every site
}

// sitesNamed returns the site called name, or every site for "".
func (s *Server) sitesNamed(name string) ([]*core.Site, bool) {
	if s.opts.Sites == nil {
		return nil, name == ""
	}
	all := s.opts.Sites()
	if name == "" {
		return all, true
	}
	for _, site := range all {
		if site.Name() == name {
			return []*core.Site{site}, true
		}
	}
	return nil, false
}

// operator names the admin API's caller in the log and the audit log.
func operator(r *http.Request) string {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return "admin@" + ap.Addr().Unmap().String()
	}
	return "admin@" + r.RemoteAddr
}

func (s *Server) listBans(w http.ResponseWriter, _ *http.Request) {
	list := []BanInfo{}
	sites, _ := s.sitesNamed("")
	for _, site := range sites {
		for _, b := range site.Bans() {
			list = append(list, banInfo(b))
		}
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) addBan(w http.ResponseWriter, r *http.Request) {
	var req BanRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "bad request body: "+err.Error())
		return
	}
	d, err := time.ParseDuration(req.For)
	if err != nil || d <= 0 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("for: %q is not a positive duration such as 30m or 24h", req.For))
		return
	}
	sites, ok := s.sitesNamed(req.Site)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no site %q", req.Site))
		return
	}
	by := operator(r)
	added := []BanInfo{}
	for _, site := range sites {
		b, err := site.AddBan(r.Context(), req.Addr, d, by, req.Reason)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("site %s: %v", site.Name(), err))
			return
		}
		added = append(added, banInfo(b))
	}
	writeJSON(w, http.StatusOK, added)
}

func (s *Server) removeBans(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	addr := q.Get("addr")
	if addr == "" {
		writeError(w, http.StatusBadRequest, "addr is required (an address, an IPv6 prefix, or all)")
		return
	}
	sites, ok := s.sitesNamed(q.Get("site"))
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no site %q", q.Get("site")))
		return
	}
	by := operator(r)
	lifted := []BanInfo{}
	for _, site := range sites {
		list, err := site.RemoveBans(r.Context(), addr, by, q.Get("reason"))
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("site %s: %v", site.Name(), err))
			return
		}
		for _, b := range list {
			lifted = append(lifted, banInfo(b))
		}
	}
	writeJSON(w, http.StatusOK, lifted)
}

type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorBody{Error: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// LoadOrCreateToken reads the admin token from file, or generates one there (mode 0600, in a
// folder created 0700) when the file does not exist. created tells whether it was generated.
func LoadOrCreateToken(file string) (token string, created bool, err error) {
	b, err := os.ReadFile(file)
	if err == nil {
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return "", false, fmt.Errorf("admin token file %s is empty", file)
		}
		return tok, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", false, fmt.Errorf("admin token: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return "", false, fmt.Errorf("admin token: %w", err)
	}
	tok := rand.Text() + rand.Text() // 52 base32 characters, 260 bits
	// O_EXCL: if another process created it meanwhile, use theirs rather than overwrite it.
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return LoadOrCreateToken(file)
	}
	if err != nil {
		return "", false, fmt.Errorf("admin token: %w", err)
	}
	_, werr := f.WriteString(tok + "\n")
	if err := errors.Join(werr, f.Close()); err != nil {
		_ = os.Remove(file)
		return "", false, fmt.Errorf("admin token: %w", err)
	}
	return tok, true, nil
}

// ReadToken reads an existing admin token file (for the CLI).
func ReadToken(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("read admin token: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("admin token file %s is empty", file)
	}
	return tok, nil
}

package core

import (
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/wharf-project/wharf/core/config"
)

// Observer receives a record of everything a site does: connections, logins, operations,
// session ends, strikes and bans. Metrics and the audit log implement it. Observe is called
// synchronously on the session's goroutine, so implementations must be fast and never block.
type Observer interface {
	Observe(f *Fact)
}

// FactKind says what a Fact records.
type FactKind int

const (
	FactConnect    FactKind = iota // a connection was accepted (Err nil) or refused (Err says why)
	FactLogin                      // an authentication attempt ended: Method, Err (nil = success)
	FactOperation                  // a file operation ended: Op, Path, Target, Bytes, Duration, Err
	FactSessionEnd                 // a session ended: Duration is its length
	FactStrike                     // the protector counted a strike: Reason
	FactBan                        // an address was banned: IP (address or prefix), By, Reason, Until, Duration
	FactUnban                      // a ban was lifted: IP (address or prefix), By, Reason
)

// Operation names in facts (FactOperation's Op).
const (
	OpList     = "list"
	OpStat     = "stat"
	OpDownload = "download"
	OpUpload   = "upload"
	OpMkdir    = "mkdir"
	OpRmdir    = "rmdir"
	OpRemove   = "remove"
	OpRename   = "rename"
	OpSetStat  = "setstat"
	OpStatFS   = "statfs"
	OpSymlink  = "symlink"
	OpLink     = "link"
	OpReadlink = "readlink"
	OpHash     = "hash"
)

// Fact is one record. Session is nil for connection-level facts without a session.
type Fact struct {
	Kind     FactKind
	Time     time.Time
	Site     string
	Session  *Session
	Protocol string
	IP       string
	User     string
	Op       string
	Path     string
	Target   string
	Bytes    int64
	Duration time.Duration
	Method   string
	Reason   string
	Err      error
	// By is who banned or lifted a ban (FactBan, FactUnban: "protector", "admin@<ip>",
	// "script"), or what refused a connection (FactConnect: "protector", "limit",
	// "script:<file>", "shutdown"). For logins and operations RefusedBy(Err) says it.
	By    string
	Until time.Time // FactBan: when the ban ends
	// Actor is who performed an operation: "" for the client, "script" for an event
	// script acting through a ScriptFS.
	Actor string
}

// RefusedBy names what refused the connection, login or operation, "" when it was not
// refused (it succeeded, or failed for another reason).
func (f *Fact) RefusedBy() string {
	if f.By != "" && f.Kind != FactBan && f.Kind != FactUnban {
		return f.By
	}
	return RefusedBy(f.Err)
}

// Result is the short outcome of a fact for labels and logs: "ok" or the error kind's name.
func (f *Fact) Result() string {
	if f.Err == nil {
		return "ok"
	}
	k := Kind(f.Err)
	if k == nil {
		k = ErrFailure
	}
	return strings.ReplaceAll(k.Error(), " ", "_")
}

// observe sends a fact to the site's observer, filling the session's fields.
func (s *Site) observe(f *Fact) {
	if s.observer == nil {
		return
	}
	if f.Time.IsZero() {
		f.Time = s.now()
	}
	f.Site = s.name
	if sess := f.Session; sess != nil {
		f.Protocol = sess.Protocol()
		if f.IP == "" {
			f.IP = sess.conn.RemoteIP
		}
		if f.User == "" {
			f.User = sess.UserID()
		}
	}
	s.observer.Observe(f)
}

// observeOp records the end of an operation; start is when it began.
func (s *Session) observeOp(op, p, target string, start time.Time, bytes int64, err *error) {
	var e error
	if err != nil {
		e = *err
	}
	if errors.Is(e, ErrClosed) {
		return
	}
	s.site.observe(&Fact{Kind: FactOperation, Session: s, Op: op, Path: p, Target: target, Bytes: bytes,
		Duration: s.site.now().Sub(start), Err: e})
}

// observeOpen records a failed open; a successful one is recorded when its handle closes.
func (s *Session) observeOpen(op, p string, start time.Time, err *error) {
	if *err != nil {
		s.observeOp(op, p, "", start, 0, err)
	}
}

// scriptsOf names the scripts attached to event name for user u (nil: the site's only), as
// refused_by says it: "script:<file>", several joined by ",".
func (s *Site) scriptsOf(name EventName, u *User) string {
	var files []string
	add := func(hs []config.EventHandler) {
		for _, h := range hs {
			if h.Event == string(name) && !slices.Contains(files, h.Script) {
				files = append(files, h.Script)
			}
		}
	}
	if u != nil {
		add(u.Handlers)
	}
	add(s.Config().EventHandlers)
	if len(files) == 0 {
		return ByScript
	}
	return ByScript + ":" + strings.Join(files, ",")
}

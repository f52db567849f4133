package core

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/netip"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/wharf-project/wharf/vfs"
)

// Session is one client connection of a site. It holds every field the scripts' Session
// object exposes and runs every operation through the pipeline of architecture.md.
// All methods are safe for concurrent use.
type Session struct {
	id    string
	site  *Site
	conn  *Conn
	ip    netip.Addr
	start time.Time

	lastActivity atomic.Int64 // unix nanoseconds; data transfers update it without the lock
	closed       atomic.Bool
	// judged is set once the connection tried to log in or was struck for something
	// specific, so Close does not also count it as a connection that never tried.
	judged  atomic.Bool
	ctx     context.Context
	cancel  context.CancelFunc
	eventMu sync.Mutex // one event at a time per session: scripts see a consistent session

	mu          sync.Mutex
	user        *User
	countedUser string
	clustered   bool // counted in the cluster's sessions (guarded by site.mu, not mu)
	// limited: the user had a session limit when this session logged in, so its record's end
	// frees a slot that a login may be waiting for (guarded by site.mu, not mu)
	limited       bool
	preAuth       bool // counted as waiting to log in (guarded by site.mu, not mu)
	protocol      string
	clientVersion string
	lastCmd       string
	lastCmdTime   time.Time
	lastErr       string
	lastErrTime   time.Time
	custom        []string
	relPath       string
	absPath       string
	relTarget     string
	absTarget     string
	hidden        []hiddenEntry
	blockNext     bool
	blockBy       []string // the scripts that called BlockOperation since the last takeBlock
	lastBlockBy   []string // those of the block takeBlock consumed last
	scriptAuth    bool
	closer        func()
	log           *slog.Logger

	// authentication state
	authName      string   // the user name being authenticated
	authRequested string   // the name OnAuthRequest last fired for
	authSteps     []string // methods completed so far in a multi-step chain
	questions     []Question
	totpUsed      map[string]bool
	answered      []AnsweredQuestion // keyboard-interactive answers checked, oldest first

	// after authentication
	table  *vfs.Table
	policy map[*vfs.Mount]mountPolicy
	quota  *usage
	bw     *bandwidth
}

// Question is a keyboard-interactive prompt.
type Question struct {
	Pos    int
	Prompt string
	Echo   bool
	kind   questionKind
	answer string
	seq    int
}

type questionKind int

const (
	questionLiteral questionKind = iota
	questionPassword
	questionTOTP
)

func newSession(site *Site, conn *Conn, ip netip.Addr, protocol string) *Session {
	now := site.now()
	s := &Session{
		id: newSessionID(now), site: site, conn: conn, ip: ip, start: now, protocol: protocol,
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.lastActivity.Store(now.UnixNano())
	return s
}

// newSessionID returns a time-ordered id with 80 bits from the system's CSPRNG: unique across
// restarts and not guessable from another session's id.
func newSessionID(now time.Time) string {
	return ulid.MustNew(ulid.Timestamp(now), rand.Reader).String()
}

// ID returns the session id.
func (s *Session) ID() string { return s.id }

// Site returns the session's site.
func (s *Session) Site() *Site { return s.site }

// Conn returns the connection description.
func (s *Session) Conn() *Conn { return s.conn }

// Context is cancelled when the session ends.
func (s *Session) Context() context.Context { return s.ctx }

// User returns the authenticated user, nil before authentication.
func (s *Session) User() *User {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.user
}

// NamedUser returns the user this session's events are about, whose own event handlers run
// before the site's: the authenticated user; before that, from the first authentication
// request on, the configured user the client named, or the site's catch-all profile ("*")
// for a name that is not configured; nil before any name and for an unknown name on a site
// without a catch-all. Unlike User it does not mean the client is that user.
func (s *Session) NamedUser() *User {
	s.mu.Lock()
	u, name := s.user, s.authName
	s.mu.Unlock()
	if u != nil {
		return u
	}
	return s.site.namedUser(name)
}

// UserID returns the authenticated user's id, "" before authentication.
func (s *Session) UserID() string {
	if u := s.User(); u != nil {
		return u.ID
	}
	return ""
}

// VirtualSite returns the site's name.
func (s *Session) VirtualSite() string { return s.site.name }

// RemoteIP returns the client's address.
func (s *Session) RemoteIP() netip.Addr { return s.ip }

// RemoteAddress returns the client IP without port.
func (s *Session) RemoteAddress() string { return s.conn.RemoteIP }

// ClientVersion returns the SSH identification or FTP CLNT argument.
func (s *Session) ClientVersion() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clientVersion
}

// SetClientVersion records the client's software identification.
func (s *Session) SetClientVersion(v string) {
	s.mu.Lock()
	s.clientVersion = v
	s.mu.Unlock()
}

// Protocol returns SFTP, SCP, FTP, FTPES or FTPS.
func (s *Session) Protocol() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.protocol
}

// SetProtocol changes the protocol (FTP becomes FTPES after AUTH TLS; an SSH session becomes
// SCP when it runs scp).
func (s *Session) SetProtocol(p string) {
	s.mu.Lock()
	s.protocol = p
	s.log = nil
	s.mu.Unlock()
}

// StartTime returns when the connection was accepted.
func (s *Session) StartTime() time.Time { return s.start }

// LastActivity returns the time of the last command or data transfer.
func (s *Session) LastActivity() time.Time { return time.Unix(0, s.lastActivity.Load()) }

// Touch records activity (adapters call it for protocol traffic that is not an operation).
func (s *Session) Touch() { s.lastActivity.Store(s.site.now().UnixNano()) }

// BlockOperation refuses the operation of the gate event being handled, or else the next one.
func (s *Session) BlockOperation() { s.BlockOperationBy("") }

// BlockOperationBy is BlockOperation naming the script that refused, for the audit log's
// refused_by ("" when it cannot be told).
func (s *Session) BlockOperationBy(script string) {
	s.mu.Lock()
	s.blockNext = true
	if script != "" && !slices.Contains(s.blockBy, script) {
		s.blockBy = append(s.blockBy, script)
	}
	s.mu.Unlock()
}

// takeBlock consumes a block; the scripts that made it are kept for scriptRefusal.
func (s *Session) takeBlock() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.blockNext
	s.blockNext = false
	s.lastBlockBy, s.blockBy = s.blockBy, nil
	return b
}

// AddCustomData appends to the session's custom data.
func (s *Session) AddCustomData(v string) {
	s.mu.Lock()
	s.custom = append(s.custom, v)
	s.mu.Unlock()
}

// CustomData returns item idx (0-based), "" when out of range.
func (s *Session) CustomData(idx int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if idx < 0 || idx >= len(s.custom) {
		return ""
	}
	return s.custom[idx]
}

// AllCustomData returns a copy of the custom data.
func (s *Session) AllCustomData() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.custom...)
}

// AddQuestion adds a keyboard-interactive prompt whose reply must equal answer.
func (s *Session) AddQuestion(pos int, prompt, answer string, echo bool) {
	s.addQuestion(Question{Pos: pos, Prompt: prompt, Echo: echo, kind: questionLiteral, answer: answer})
}

// AddQuestionPassword adds a prompt whose reply must be the user's password.
func (s *Session) AddQuestionPassword(pos int, prompt string) {
	s.addQuestion(Question{Pos: pos, Prompt: prompt, kind: questionPassword})
}

// AddQuestionTOTP adds a prompt whose reply must be the user's current TOTP code.
func (s *Session) AddQuestionTOTP(pos int, prompt string) {
	s.addQuestion(Question{Pos: pos, Prompt: prompt, kind: questionTOTP})
}

func (s *Session) addQuestion(q Question) {
	if len(q.Prompt) > maxScriptText || len(q.answer) > maxScriptText {
		s.Logger().Warn("AddQuestion: question ignored, longer than the limit", "limit", maxScriptText)
		return
	}
	s.mu.Lock()
	full := len(s.questions) >= maxQuestions
	if !full {
		q.seq = len(s.questions)
		s.questions = append(s.questions, q)
		sort.SliceStable(s.questions, func(i, j int) bool { return s.questions[i].Pos < s.questions[j].Pos })
	}
	s.mu.Unlock()
	if full {
		s.Logger().Warn("AddQuestion: question ignored, too many questions", "limit", maxQuestions)
	}
}

// AuthenticateFromScript accepts the authentication attempt being handled.
func (s *Session) AuthenticateFromScript() {
	s.mu.Lock()
	s.scriptAuth = true
	s.mu.Unlock()
}

func (s *Session) takeScriptAuth() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.scriptAuth
	s.scriptAuth = false
	return v
}

// RelPath returns the virtual path of the current or last operation.
func (s *Session) RelPath() string { s.mu.Lock(); defer s.mu.Unlock(); return s.relPath }

// AbsPath returns the backend location of the current or last operation's object.
func (s *Session) AbsPath() string { s.mu.Lock(); defer s.mu.Unlock(); return s.absPath }

// RelTargetPath returns the rename target's virtual path.
func (s *Session) RelTargetPath() string { s.mu.Lock(); defer s.mu.Unlock(); return s.relTarget }

// AbsTargetPath returns the rename target's backend location.
func (s *Session) AbsTargetPath() string { s.mu.Lock(); defer s.mu.Unlock(); return s.absTarget }

// RemoveFromListDir hides entries matching pattern (path.Match syntax) in the directory being
// listed, for the listing and for the rest of the session: under every path that leads to
// them (hidden.go).
func (s *Session) RemoveFromListDir(pattern string) {
	if _, err := path.Match(pattern, ""); err != nil {
		return
	}
	if len(pattern) > maxScriptText {
		s.Logger().Warn("RemoveFromListDir: pattern ignored, longer than the limit", "limit", maxScriptText)
		return
	}
	s.mu.Lock()
	dir := s.relPath
	// Scripts hide the same pattern at every listing: one entry is enough, and the list is
	// scanned for every operation.
	for _, h := range s.hidden {
		if h.dir == dir && h.pattern == pattern {
			s.mu.Unlock()
			return
		}
	}
	full := len(s.hidden) >= maxHiddenEntries
	s.mu.Unlock()
	if full {
		s.Logger().Warn("RemoveFromListDir: pattern ignored, the session hides too many", "limit", maxHiddenEntries)
		return
	}
	h := s.hiddenEntryFor(dir, pattern)
	s.mu.Lock()
	s.hidden = append(s.hidden, h)
	s.mu.Unlock()
}

// Bounds on what scripts make a session keep: their runs have a memory budget, but what they
// hand to the session outlives them.
const (
	maxHiddenEntries = 1024 // RemoveFromListDir patterns per session
	maxQuestions     = 64   // keyboard-interactive prompts per round
	maxScriptText    = 4096 // bytes of one pattern, prompt or expected answer
)

// LastCommand returns the last protocol command as text.
func (s *Session) LastCommand() string { s.mu.Lock(); defer s.mu.Unlock(); return s.lastCmd }

// LastCommandTime returns when the last command arrived; ok is false if none did.
func (s *Session) LastCommandTime() (t time.Time, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastCmdTime, !s.lastCmdTime.IsZero()
}

// LastError returns the last error reported to the client.
func (s *Session) LastError() string { s.mu.Lock(); defer s.mu.Unlock(); return s.lastErr }

// LastErrorTime returns when the last error happened; ok is false if none did.
func (s *Session) LastErrorTime() (t time.Time, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErrTime, !s.lastErrTime.IsZero()
}

// RecordCommand records a protocol command that is not a file operation (FTP "CWD /x",
// "PASS ****"). Operations record their own command.
func (s *Session) RecordCommand(cmd string) {
	now := s.site.now()
	s.mu.Lock()
	s.lastCmd, s.lastCmdTime = cmd, now
	s.mu.Unlock()
	s.lastActivity.Store(now.UnixNano())
}

// RecordError records an error reported to the client.
func (s *Session) RecordError(err error) {
	if err == nil {
		return
	}
	s.mu.Lock()
	s.lastErr, s.lastErrTime = err.Error(), s.site.now()
	s.mu.Unlock()
}

// SetCloser registers the function that ends the connection (used by Terminate and Kick).
func (s *Session) SetCloser(f func()) {
	s.mu.Lock()
	s.closer = f
	s.mu.Unlock()
}

// Terminate ends the session at once; with ban, the client's address is also banned for the
// protector's ban_for.
func (s *Session) Terminate(ban bool) {
	if ban {
		s.site.banBy(context.Background(), s.ip, s.site.Config().Protector.BanFor.Duration, s, ByScript,
			"a script ended the session with a ban")
	}
	s.cancel()
	s.mu.Lock()
	f := s.closer
	s.mu.Unlock()
	if f != nil {
		go f()
	}
}

// Closed reports whether the session has ended.
func (s *Session) Closed() bool { return s.closed.Load() }

// Close ends the session: it fires OnConnectionClose once and leaves the registry. Adapters
// call it when the connection is gone.
func (s *Session) Close() {
	if s.closed.Swap(true) {
		return
	}
	s.cancel()
	s.fire(context.Background(), OnConnectionClose, "", "")
	clusterUser, lastLocal := s.site.unregister(s)
	s.site.endClusterSession(s, clusterUser, lastLocal)
	d := s.site.now().Sub(s.start)
	s.Logger().Info("session closed", "duration", d.Round(time.Millisecond).String())
	s.site.observe(&Fact{Kind: FactSessionEnd, Session: s, Duration: d})
	if s.User() == nil && !s.judged.Load() && !s.site.shuttingDown() && !s.site.healthCheck(s.ip) {
		// Scanners connect and leave without trying to log in (a failed login struck already);
		// so do load balancers' health checks, which are not counted.
		s.site.Strike(context.Background(), s.ip, "connection closed without authenticating", s)
	}
}

// Logger returns a logger carrying site, session id, protocol, IP and, once authenticated,
// the user. Before that a record names the user it is about itself ("user" for a configured
// user, "login" for the name a client sent), so no record carries a key twice.
func (s *Session) Logger() *slog.Logger {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.log == nil {
		if s.user != nil {
			s.log = s.site.log.With("session", s.id, "protocol", s.protocol, "ip", s.conn.RemoteIP, "user", s.user.ID)
		} else {
			s.log = s.site.log.With("session", s.id, "protocol", s.protocol, "ip", s.conn.RemoteIP)
		}
	}
	return s.log
}

// fire runs an event's handlers with the session, serialised per session.
func (s *Session) fire(ctx context.Context, name EventName, rel, target string) {
	if !s.site.events.Handles(name, s.NamedUser()) {
		return
	}
	s.eventMu.Lock()
	defer s.eventMu.Unlock()
	s.site.events.Fire(ctx, &Event{Name: name, Session: s, Conn: s.conn, RelPath: rel, RelTargetPath: target})
}

// scriptRefusal is the cause of an action refused by the handlers of event name: the scripts
// that called BlockOperation when they are known, else every script attached to the event.
func (s *Session) scriptRefusal(name EventName) error {
	return refusal(s.refusingScripts(name), "blocked by "+string(name)+" script")
}

// refusingScripts names who refused the last blocked action of event name (refused_by).
func (s *Session) refusingScripts(name EventName) string {
	s.mu.Lock()
	by := s.lastBlockBy
	s.mu.Unlock()
	if len(by) > 0 {
		return ByScript + ":" + strings.Join(by, ",")
	}
	return s.site.scriptsOf(name, s.NamedUser())
}

// gate fires a gate event and reports whether a script blocked the action.
func (s *Session) gate(ctx context.Context, name EventName, rel, target string) bool {
	return s.gateThen(ctx, name, rel, target, nil)
}

// gateThen is gate for an event whose operation completes after the event (Event.Then).
func (s *Session) gateThen(ctx context.Context, name EventName, rel, target string, then func(func(bool))) bool {
	return s.gateEvent(ctx, &Event{Name: name, Session: s, Conn: s.conn, RelPath: rel, RelTargetPath: target, Then: then})
}

// gateEvent fires a gate event built by the caller (AfterFileUpload carries its upload and
// its Then).
func (s *Session) gateEvent(ctx context.Context, ev *Event) bool {
	name := ev.Name
	if !s.site.events.Handles(name, s.NamedUser()) {
		return false
	}
	s.eventMu.Lock()
	defer s.eventMu.Unlock()
	s.site.events.Fire(ctx, ev)
	blocked := s.takeBlock()
	if blocked && !name.IsAuth() {
		// Authentication refusals strike as failed logins; this is an operation a script refused.
		s.site.Strike(ctx, s.ip, "operation refused by script ("+string(name)+")", s)
	}
	return blocked
}

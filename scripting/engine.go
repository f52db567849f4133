package scripting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
)

// DefaultTimeout bounds a handler run when its config sets no timeout (config loading sets
// the same default; configs built in code may leave it zero).
const DefaultTimeout = 5 * time.Second

// Options configure an Engine.
type Options struct {
	Logger *slog.Logger // default: slog.Default()
	// PoolSize bounds the number of Lua states, i.e. of handler runs in parallel across the
	// site's sessions; further events wait for a free state. Default: 2×GOMAXPROCS.
	PoolSize int
	// Observe, when set, is called synchronously with every decision a script makes, after the
	// decision was applied. `wharf script run` uses it to report what a script did; a server
	// does not need it.
	Observe func(Action)

	// AsyncWorkers and AsyncQueue size the site's pool of asynchronous handlers
	// (scripting.async_workers and async_queue); defaults DefaultAsyncWorkers and
	// DefaultAsyncQueue. AsyncMetrics, when set, receives their figures.
	AsyncWorkers, AsyncQueue int
	AsyncMetrics             AsyncMetrics
	// Mail queues what scripts send with SendMail; nil: SendMail refuses every message.
	Mail Mailer
	// AllowedRoots are host folders (scripting.allowed_roots) whose files scripts may
	// attach to mail, besides the files of the session's own disk folders.
	AllowedRoots []string
	// HTTPTransport carries HttpCli's requests; nil: a transport of its own that verifies
	// certificates against the system's roots (tests pass one that trusts their server).
	HTTPTransport http.RoundTripper
}

// Action is a decision a script made (or a failed run, Name "error"), as seen by
// Options.Observe.
type Action struct {
	Event  core.EventName
	Script string // the handler's script, as configured
	// Name is the call that made the decision: "BlockOperation", "Reject", "SetSoftwareID",
	// "AuthenticateUserFromScript", "AddQuestion", "AddQuestionPassword", "AddQuestionTOTP",
	// "AddCustomData", "RemoveFromListDir", "Terminate", "Exit", or "error" for a failed or
	// timed out run (then Detail is the error and Blocked tells whether it refused the gate).
	Name    string
	Detail  string
	Blocked bool
}

// Engine runs a site's event scripts; it implements core.Dispatcher.
type Engine struct {
	site    string
	log     *slog.Logger
	observe func(Action)
	set     atomic.Pointer[handlerSet]
	pool    *pool
	// classes are host classes installed in every state besides wharf's own (tests); set
	// before the first event.
	classes []*hostClass
	async   *asyncPool
	mail    Mailer
	roots   []string
	http    *http.Client
}

var _ core.Dispatcher = (*Engine)(nil)

// New compiles every script that the site's and its users' event_handlers reference. An
// error lists every script that could not be loaded, each with its file and line (a
// *LoadError).
func New(site *config.Site, opts Options) (*Engine, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.PoolSize <= 0 {
		opts.PoolSize = 2 * runtime.GOMAXPROCS(0)
	}
	set, err := compileSite(site)
	if err != nil {
		return nil, err
	}
	e := &Engine{site: site.Name, log: opts.Logger.With("site", site.Name), observe: opts.Observe,
		mail: opts.Mail, roots: opts.AllowedRoots, http: newHTTPClient(opts.HTTPTransport)}
	e.set.Store(set)
	for _, w := range set.warnings {
		e.log.Warn("event scripts: " + w)
	}
	e.pool = newPool(opts.PoolSize, e.newVM)
	e.async = newAsyncPool(e, opts.AsyncWorkers, opts.AsyncQueue, opts.AsyncMetrics)
	return e, nil
}

// Reload compiles the site's scripts again and, if all of them load, swaps them in at once:
// runs in progress finish with the scripts they started with, later events use the new
// ones. On error the engine keeps its current scripts.
func (e *Engine) Reload(site *config.Site) error {
	set, err := compileSite(site)
	if err != nil {
		return err
	}
	e.set.Store(set)
	for _, w := range set.warnings {
		e.log.Warn("event scripts: " + w)
	}
	e.log.Info("event scripts reloaded", "handlers", set.count)
	return nil
}

// Warnings lists the problems of the current load that do not stop it, for `wharf check`:
// secrets that cannot be read.
func (e *Engine) Warnings() []string { return slices.Clone(e.set.Load().warnings) }

// Close releases the Lua states. Runs in progress finish; later events are refused like a
// failing script (gate events with on_error block are refused). Asynchronous runs still
// queued are dropped (logged and counted); Drain first to let them run.
func (e *Engine) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = e.async.drain(ctx)
	e.pool.close()
	return nil
}

// Drain stops queueing asynchronous runs and waits until those queued have run, or ctx is
// done; then the ones still queued are dropped, logged and counted, and the error says how
// many. The server calls it at shutdown, after the sessions ended (their OnConnectionClose
// handlers are queued by then), within the shutdown grace.
func (e *Engine) Drain(ctx context.Context) error { return e.async.drain(ctx) }

// AsyncQueueDepth is the number of asynchronous runs waiting for a worker.
func (e *Engine) AsyncQueueDepth() int { return e.async.depth() }

// Handles implements core.Dispatcher. The core calls it for every operation, so it is a few
// map lookups. user is the one the event names (core.Session.NamedUser).
func (e *Engine) Handles(name core.EventName, user *core.User) bool {
	set := e.set.Load()
	if len(set.site[name]) > 0 {
		return true
	}
	if user == nil || len(user.Handlers) == 0 {
		return false
	}
	return len(set.forUser(user, e.log)[name]) > 0
}

// Fire implements core.Dispatcher: it runs the handlers of the user the event names, then
// the site's, each list in ascending priority, on one pooled Lua state. The user is the
// session's NamedUser: during authentication the user the client named (whose handlers may
// add questions or refuse), although Session.GetUser() stays nil until the login succeeds.
func (e *Engine) Fire(ctx context.Context, ev *core.Event) {
	set := e.set.Load()
	var hs []*handler
	if ev.Session != nil {
		if u := ev.Session.NamedUser(); u != nil && len(u.Handlers) > 0 {
			hs = set.forUser(u, e.log)[ev.Name]
		}
	}
	if site := set.site[ev.Name]; len(site) > 0 {
		if len(hs) == 0 {
			hs = site
		} else {
			hs = append(slices.Clip(hs), site...)
		}
	}
	hs, async := splitAsync(hs)
	if len(async) > 0 {
		// After the synchronous handlers, whose effects (custom data) the snapshot includes.
		defer e.submitAsync(ctx, ev, async)
	}
	if len(hs) == 0 {
		return
	}
	// Waiting for a state is bounded like the runs themselves: a saturated pool must not hold
	// an operation forever.
	v, ok, err := e.pool.tryGet() // the usual case: no timer needed
	if !ok {
		wait := hs[0].timeout
		for _, h := range hs[1:] {
			wait = max(wait, h.timeout)
		}
		wctx, cancel := context.WithTimeout(ctx, wait)
		v, err = e.pool.get(wctx)
		cancel()
	}
	if err != nil {
		for _, h := range hs {
			e.failed(ev, h, fmt.Errorf("no Lua state available: %w", err), false)
		}
		return
	}
	var term *bool
	for _, h := range hs {
		if term = v.run(ctx, ev, h); term != nil {
			break // the session is ending: later handlers have nothing left to act on
		}
	}
	e.pool.put(v)
	// Terminate takes effect after the state is back in the pool: banning fires
	// OnBlocklistAdd, which needs a state of its own.
	if term != nil {
		if ev.Session != nil {
			ev.Session.Terminate(*term)
		} else if ev.Conn != nil {
			ev.Conn.Reject()
		}
	}
}

// failed logs a failed or timed out run and applies on_error for gate events.
func (e *Engine) failed(ev *core.Event, h *handler, err error, timedOut bool) {
	err = errors.New(e.redact(err.Error()))
	block := h.block && ev.Name.IsGate()
	lg := e.logger(ev)
	msg := "event script failed"
	if timedOut {
		msg = "event script timed out"
	}
	attrs := []any{"event", string(ev.Name), "script", h.script, "file", h.file, "err", err.Error()}
	if line := errorLine(err.Error(), h.script); line > 0 {
		attrs = append(attrs, "line", line)
	}
	if timedOut {
		attrs = append(attrs, "timeout", h.timeout.String())
	}
	if block {
		attrs = append(attrs, "on_error", "block")
		if ev.Session != nil {
			ev.Session.BlockOperationBy(h.script)
		} else if ev.Conn != nil {
			ev.Conn.Reject()
		}
	}
	lg.Error(msg, attrs...)
	e.notify(Action{Event: ev.Name, Script: h.script, Name: "error", Detail: err.Error(), Blocked: block})
}

func (e *Engine) notify(a Action) {
	if e.observe != nil {
		e.observe(a)
	}
}

// logger returns the logger for an event: the session's (site, session id, user, protocol,
// IP) or, before a session exists, the site's with the client IP.
func (e *Engine) logger(ev *core.Event) *slog.Logger {
	if ev.Session != nil {
		return ev.Session.Logger()
	}
	if ev.Conn != nil {
		return e.log.With("ip", ev.Conn.RemoteIP)
	}
	return e.log
}

// errorLine finds the line in a Lua error message ("deny.lua:3: attempt to call …").
func errorLine(msg, script string) int {
	i := strings.Index(msg, script+":")
	if i < 0 {
		return 0
	}
	rest := msg[i+len(script)+1:]
	j := strings.IndexByte(rest, ':')
	if j <= 0 {
		return 0
	}
	n, err := strconv.Atoi(rest[:j])
	if err != nil {
		return 0
	}
	return n
}

// errClosed is returned by the pool after Close.
var errClosed = errors.New("scripting engine is closed")

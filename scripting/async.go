package scripting

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/wharf-project/wharf/core"
)

// Asynchronous handlers (event_handlers[].mode: async). The event's synchronous handlers
// run first, as always; the asynchronous ones are then queued with a snapshot of the
// session and run on the site's worker pool, on Lua states of their own, so that a slow
// script (a mail, a web hook) neither holds the client nor takes the states that gate events
// need. Only events that refuse nothing can have them (config.AsyncEvents).

// Default size of the pool (config: scripting.async_workers, scripting.async_queue).
const (
	DefaultAsyncWorkers = 4
	DefaultAsyncQueue   = 1000
)

// AsyncMetrics receives the figures of asynchronous handlers (ops/metrics implements it).
type AsyncMetrics interface {
	// AsyncRun reports one handler run: how long it ran and whether it failed or timed out.
	AsyncRun(site, event string, d time.Duration, failed bool)
	// AsyncDropped reports a run that was not made: the queue was full, or the server was
	// shutting down.
	AsyncDropped(site, event string)
}

// snapshot is the session as it was when the event fired, for an asynchronous run: the
// session goes on (or ends) meanwhile, and the script must see the event's values.
type snapshot struct {
	userID, protocol, clientVersion string
	relPath, absPath                string
	relTarget, absTarget            string
	lastCmd, lastErr                string
	lastCmdTime, lastErrTime        time.Time
	hasCmdTime, hasErrTime          bool
	lastActivity                    time.Time
	custom                          []string
}

func takeSnapshot(s *core.Session) *snapshot {
	if s == nil {
		return nil
	}
	sn := &snapshot{userID: s.UserID(), protocol: s.Protocol(), clientVersion: s.ClientVersion(),
		relPath: s.RelPath(), absPath: s.AbsPath(), relTarget: s.RelTargetPath(), absTarget: s.AbsTargetPath(),
		lastCmd: s.LastCommand(), lastErr: s.LastError(), lastActivity: s.LastActivity(), custom: s.AllCustomData()}
	sn.lastCmdTime, sn.hasCmdTime = s.LastCommandTime()
	sn.lastErrTime, sn.hasErrTime = s.LastErrorTime()
	return sn
}

// asyncTask is one event's asynchronous handlers.
type asyncTask struct {
	ev   *core.Event // a copy; Session is the live session
	snap *snapshot
	hs   []*handler
	wait time.Duration // on_full: wait, the longest timeout of the handlers that wait
}

// asyncPool is a site's queue and workers.
type asyncPool struct {
	e       *Engine
	workers int
	queue   chan *asyncTask
	vms     *pool // states of their own: asynchronous runs never take a gate event's state
	metrics AsyncMetrics

	start   sync.Once
	mu      sync.Mutex
	closed  bool
	tasks   sync.WaitGroup // queued or running
	running sync.WaitGroup // workers
	stop    chan struct{}  // closed when the workers must stop taking tasks
}

func newAsyncPool(e *Engine, workers, queue int, m AsyncMetrics) *asyncPool {
	if workers <= 0 {
		workers = DefaultAsyncWorkers
	}
	if queue <= 0 {
		queue = DefaultAsyncQueue
	}
	return &asyncPool{e: e, workers: workers, queue: make(chan *asyncTask, queue),
		vms: newPool(workers, e.newVM), metrics: m, stop: make(chan struct{})}
}

// depth is the number of runs waiting for a worker.
func (p *asyncPool) depth() int { return len(p.queue) }

// submit queues the asynchronous handlers of an event, whose synchronous handlers have
// run. With on_full: wait it waits for room up to the handlers' timeout; otherwise, or
// after that, a full queue drops the run (logged and counted).
func (p *asyncPool) submit(ctx context.Context, t *asyncTask) {
	p.start.Do(func() {
		for range p.workers {
			p.running.Add(1)
			go p.work()
		}
	})
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.drop(t, "the server is shutting down")
		return
	}
	p.tasks.Add(1)
	p.mu.Unlock()
	select {
	case p.queue <- t:
		return
	default:
	}
	if t.wait > 0 {
		timer := time.NewTimer(t.wait)
		defer timer.Stop()
		select {
		case p.queue <- t:
			return
		case <-timer.C:
		case <-ctx.Done():
		case <-p.stop:
		}
	}
	p.tasks.Done()
	p.drop(t, "the queue is full (scripting.async_queue: "+strconv.Itoa(cap(p.queue))+")")
}

func (p *asyncPool) drop(t *asyncTask, why string) {
	scripts := make([]string, len(t.hs))
	for i, h := range t.hs {
		scripts[i] = h.script
	}
	p.e.logger(t.ev).Warn("asynchronous event handler dropped: "+why, "event", string(t.ev.Name),
		"script", strings.Join(scripts, ","))
	if p.metrics != nil {
		p.metrics.AsyncDropped(p.e.site, string(t.ev.Name))
	}
}

func (p *asyncPool) work() {
	defer p.running.Done()
	for {
		select {
		case <-p.stop:
			return
		case t := <-p.queue:
			select {
			case <-p.stop: // both were ready: the drain's deadline wins
				p.drop(t, "the shutdown grace ran out")
				p.tasks.Done()
				return
			default:
			}
			p.run(t)
			p.tasks.Done()
		}
	}
}

// run runs a task's handlers on one state, in priority order, like Fire.
func (p *asyncPool) run(t *asyncTask) {
	e := p.e
	wait := t.hs[0].timeout
	for _, h := range t.hs[1:] {
		wait = max(wait, h.timeout)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	v, err := p.vms.get(ctx)
	cancel()
	if err != nil {
		for _, h := range t.hs {
			e.failed(t.ev, h, fmt.Errorf("no Lua state available: %w", err), false)
			if p.metrics != nil {
				p.metrics.AsyncRun(e.site, string(t.ev.Name), 0, true)
			}
		}
		return
	}
	v.async, v.snap = true, t.snap
	var term *bool
	for _, h := range t.hs {
		start := time.Now()
		v.runFailed = false
		term = v.run(context.Background(), t.ev, h)
		if p.metrics != nil {
			p.metrics.AsyncRun(e.site, string(t.ev.Name), time.Since(start), v.runFailed)
		}
		if term != nil {
			break
		}
	}
	v.async, v.snap = false, nil
	p.vms.put(v)
	if term != nil {
		if t.ev.Session != nil {
			t.ev.Session.Terminate(*term)
		} else if *term && t.ev.Conn != nil {
			// No session (OnBlocklistHit): the address is refused already.
			e.log.Warn("Terminate has no session to end in an asynchronous handler", "event", string(t.ev.Name))
		}
	}
}

// drain stops taking new runs and waits for the queued and running ones until ctx is done;
// what is still queued then is dropped, logged and counted. Runs in progress end within
// their timeouts.
func (p *asyncPool) drain(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	done := make(chan struct{})
	go func() { p.tasks.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		close(p.stop)
		n := 0
		for {
			select {
			case t := <-p.queue:
				p.drop(t, "the shutdown grace ran out")
				p.tasks.Done()
				n++
				continue
			default:
			}
			break
		}
		if n > 0 {
			err = fmt.Errorf("%d asynchronous handler runs dropped: %w", n, ctx.Err())
		}
	}
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	p.running.Wait()
	p.vms.close()
	return err
}

// submitAsync queues hs, the asynchronous handlers of ev, once its operation is complete.
func (e *Engine) submitAsync(ctx context.Context, ev *core.Event, hs []*handler) {
	ec := *ev
	ec.Then = nil
	t := &asyncTask{ev: &ec, snap: takeSnapshot(ev.Session), hs: hs}
	for _, h := range hs {
		if h.waitFull {
			t.wait = max(t.wait, h.timeout)
		}
	}
	if ev.Then == nil {
		e.async.submit(ctx, t)
		return
	}
	// An atomic upload's AfterFileUpload: the handlers run once the data is published, and
	// not at all when it was discarded.
	ev.Then(func(ok bool) {
		if ok {
			e.async.submit(ctx, t)
		}
	})
}

// splitAsync returns the synchronous and the asynchronous handlers of hs, without
// allocating when there are no asynchronous ones.
func splitAsync(hs []*handler) (syncs, asyncs []*handler) {
	n := 0
	for _, h := range hs {
		if h.async {
			n++
		}
	}
	if n == 0 {
		return hs, nil
	}
	syncs = make([]*handler, 0, len(hs)-n)
	asyncs = make([]*handler, 0, n)
	for _, h := range hs {
		if h.async {
			asyncs = append(asyncs, h)
		} else {
			syncs = append(syncs, h)
		}
	}
	return syncs, asyncs
}

// asyncSessionMethods replace Session members in asynchronous runs: what the session was
// when the event fired (the snapshot), not what it is now. The other members act on the
// live session: AddCustomData appends to it too, Terminate ends it if it is still open, and
// the getters of fixed values (GetID, GetUser, …) read it.
var asyncSessionMethods = map[string]classMethod{
	"GetUserID":        snapString(func(s *snapshot) string { return s.userID }),
	"GetProtocol":      snapString(func(s *snapshot) string { return s.protocol }),
	"GetClientVersion": snapString(func(s *snapshot) string { return s.clientVersion }),
	"GetRelPath":       snapString(func(s *snapshot) string { return s.relPath }),
	"GetAbsPath":       snapString(func(s *snapshot) string { return s.absPath }),
	"GetRelTargetPath": snapString(func(s *snapshot) string { return s.relTarget }),
	"GetAbsTargetPath": snapString(func(s *snapshot) string { return s.absTarget }),
	"GetLastCommand":   snapString(func(s *snapshot) string { return s.lastCmd }),
	"GetLastError":     snapString(func(s *snapshot) string { return s.lastErr }),
	"GetLastActivity": func(v *vm, L *lua.LState, _ *instance, _ int) int {
		L.Push(v.newDate(v.snap.lastActivity))
		return 1
	},
	"GetLastCommandTime": func(v *vm, L *lua.LState, _ *instance, _ int) int {
		return v.pushTime(L, v.snap.lastCmdTime, v.snap.hasCmdTime)
	},
	"GetLastErrorTime": func(v *vm, L *lua.LState, _ *instance, _ int) int {
		return v.pushTime(L, v.snap.lastErrTime, v.snap.hasErrTime)
	},
	"GetCustomData": func(v *vm, L *lua.LState, _ *instance, a int) int {
		n := L.CheckNumber(a)
		idx := int(n)
		if float64(idx) != float64(n) || idx < 0 || idx >= len(v.snap.custom) {
			L.Push(lua.LString(""))
		} else {
			L.Push(lua.LString(v.snap.custom[idx]))
		}
		return 1
	},
	"GetAllCustomData": func(v *vm, L *lua.LState, _ *instance, _ int) int {
		t := L.CreateTable(len(v.snap.custom), 0)
		for _, s := range v.snap.custom {
			t.Append(lua.LString(s))
		}
		L.Push(t)
		return 1
	},
	"AddCustomData": func(v *vm, L *lua.LState, _ *instance, a int) int {
		s := L.CheckString(a)
		L.ChargeMemory(stringOverhead + int64(len(s)))
		v.snap.custom = append(v.snap.custom, s)
		v.ev.Session.AddCustomData(s)
		v.notify("AddCustomData", s)
		return 0
	},
	"BlockOperation": func(v *vm, L *lua.LState, _ *instance, _ int) int {
		v.warn(L, "BlockOperation", "an asynchronous handler runs after the operation (use mode: sync to refuse)")
		return 0
	},
}

// asyncConnMethods replace Conn members in asynchronous runs: the connection was accepted
// or refused before the run.
var asyncConnMethods = map[string]classMethod{
	"Reject": func(v *vm, L *lua.LState, _ *instance, _ int) int {
		v.warn(L, "Conn.Reject", "an asynchronous handler runs after the connection was decided")
		return 0
	},
	"SetSoftwareID": func(v *vm, L *lua.LState, _ *instance, _ int) int {
		v.warn(L, "Conn.SetSoftwareID", "an asynchronous handler runs after the identification was sent")
		return 0
	},
}

func snapString(get func(*snapshot) string) classMethod {
	return func(v *vm, L *lua.LState, _ *instance, _ int) int {
		L.Push(lua.LString(get(v.snap)))
		return 1
	}
}

func (v *vm) pushTime(L *lua.LState, t time.Time, ok bool) int {
	if ok {
		L.Push(v.newDate(t))
	} else {
		L.Push(lua.LNil)
	}
	return 1
}

// withOverrides returns ms with the members of over replaced.
func withOverrides(ms, over map[string]classMethod) map[string]classMethod {
	out := make(map[string]classMethod, len(ms)+len(over))
	for k, m := range ms {
		out[k] = m
	}
	for k, m := range over {
		out[k] = m
	}
	return out
}

// asyncMeta is the index in vm.metaAsync of a run's environment metatable.
func asyncMeta(session, conn bool) int {
	i := 0
	if session {
		i |= 1
	}
	if conn {
		i |= 2
	}
	return i
}

package scripting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/scripting/jscompat"
)

// Limits of a Lua state. The call stack bounds recursion; the registry (the value stack)
// bounds how many values one call can push (unpack, string.byte over a long string).
const (
	callStackSize   = 200
	registrySize    = 1024
	registryMaxSize = 256 * 1024
	registryGrow    = 64
)

// baseFunctions are the functions of Lua's base library that scripts keep. Left out, because
// they reach the host or get around the read-only base: dofile, loadfile, load, loadstring,
// require, module, getfenv, setfenv, collectgarbage, newproxy, print, rawset, rawget,
// rawequal, getmetatable, _printregs.
var baseFunctions = []string{"assert", "error", "ipairs", "next", "pairs", "pcall", "select",
	"setmetatable", "tonumber", "tostring", "type", "unpack", "xpcall", "_VERSION"}

// vm is a pooled Lua state with the objects that do not change between runs. Everything a
// run can see is reached through the run's fresh environment table, whose reads fall back to
// base: base and every table reachable from it are read-only, so a run cannot leave anything
// behind for the next one.
type vm struct {
	e      *Engine
	L      *lua.LState
	broken bool // a Go panic went through the state: do not reuse it

	// Metatables of run environments: reads fall back to a read-only base. There is one base
	// per combination of the per-event objects, so that a run's environment starts empty and
	// costs one small table.
	metaSession     *lua.LTable // Session
	metaConn        *lua.LTable // Conn (no session yet)
	metaSessionConn *lua.LTable // Session and Conn (OnBlocklistAdd)
	metaNone        *lua.LTable // neither
	env             *lua.LTable // the run's environment, for _G
	sessUD          *lua.LUserData
	userUD          *lua.LUserData
	logProxy        *lua.LTable
	connUD          *lua.LUserData
	dates           *classState // Date

	// Each run is bounded by its timeout through the state's context, which the VM checks
	// before every instruction. The context and its timer are reused across runs (a fresh
	// context.WithTimeout per run was a sixth of the cost of a small script); the context is
	// replaced only after a run that cancelled it. The timer is not reset and stopped around
	// every run: resetting a timer can wake the runtime's network poller (a system call), a
	// noticeable part of a small script's run. A pending timer is left to fire; expire then
	// checks the run in progress, if any, and re-arms for its deadline.
	ctx       context.Context
	cancel    context.CancelFunc
	timer     *time.Timer
	tmu       sync.Mutex
	armed     bool      // a run is in progress
	cancelled bool      // ctx was cancelled (a run timed out); cheaper to test than ctx.Err
	pending   bool      // the timer is set to fire at fireAt
	fireAt    time.Time // when the pending timer fires
	deadline  time.Time // the deadline of the run in progress

	// chunks holds each handler's main chunk, made once per state: see chunk.
	chunks map[*handler]*lua.LFunction
	// idleEnv is the environment of the chunks between runs, so that none keeps the last
	// run's globals alive.
	idleEnv *lua.LTable
	// baseline is what a run reaches that is not its own (measureShared): the part of
	// the memory measure that does not count against the run's budget.
	baseline int64
	overFn   func(*lua.LState, int64, int64) int64 // overBudget, made once

	// The run in progress; the methods of the objects above act on it.
	ev         *core.Event
	h          *handler
	ended      bool  // Exit() or Terminate() was called: the run's end is not an error
	term       *bool // Terminate(ban) was called
	subsystems *lua.LTable

	classes   map[*hostClass]*classState // the host classes installed in the state (class.go)
	lib       scriptLib                  // the Syncplify library's objects (lib.go)
	runFailed bool                       // the run failed or timed out

	// Asynchronous runs (async.go): the session as it was when the event fired, and the
	// objects whose members read it.
	async       bool
	snap        *snapshot
	sessAsyncUD *lua.LUserData
	connAsyncUD *lua.LUserData
	metaAsync   [4]*lua.LTable // by asyncMeta

	// The run's extensions (mail.go, http.go).
	ext     extState
	httpRes *classState // HttpRes, made by HttpCli's verbs
}

// newVM builds a sandboxed state: the safe libraries and wharf's globals in a read-only base.
func (e *Engine) newVM() *vm {
	L := lua.NewState(lua.Options{SkipOpenLibs: true, CallStackSize: callStackSize,
		RegistrySize: registrySize, RegistryMaxSize: registryMaxSize, RegistryGrowStep: registryGrow})
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{{lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}, {lua.StringLibName, lua.OpenString},
		{lua.MathLibName, lua.OpenMath}, {lua.OsLibName, lua.OpenOs}} {
		L.Push(L.NewFunction(lib.open))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	v := &vm{e: e, L: L}
	v.ctx, v.cancel = context.WithCancel(context.Background())
	v.timer = time.AfterFunc(time.Hour, v.expire)
	v.timer.Stop()
	g := L.G.Global
	base := L.CreateTable(0, 40)
	for _, n := range baseFunctions {
		base.RawSetString(n, g.RawGetString(n))
	}
	base.RawSetString("_G", v.globalsProxy())

	// The string library is also every string's metatable __index ("x"):rep(…), so the
	// amplifiers are replaced in the library table itself, not only in the proxy.
	str := g.RawGetString(lua.StringLibName).(*lua.LTable)
	capStringLib(L, str)
	tab := g.RawGetString(lua.TabLibName).(*lua.LTable)
	capTableLib(L, tab)
	osLib := g.RawGetString(lua.OsLibName).(*lua.LTable)
	safeOS := L.CreateTable(0, 3)
	safeOS.RawSetString("time", osLib.RawGetString("time"))
	safeOS.RawSetString("clock", osLib.RawGetString("clock"))
	safeOS.RawSetString("date", cappedDate(L, osLib.RawGetString("date").(*lua.LFunction)))
	base.RawSetString(lua.StringLibName, v.readOnly(str, "string"))
	base.RawSetString(lua.TabLibName, v.readOnly(tab, "table"))
	base.RawSetString(lua.MathLibName, v.readOnly(g.RawGetString(lua.MathLibName).(*lua.LTable), "math"))
	base.RawSetString(lua.OsLibName, v.readOnly(safeOS, "os"))

	v.installGlobals(base)
	for _, c := range e.classes {
		v.defineClass(base, c)
	}
	v.installMail(base)
	v.installHTTP(base)
	// The runtime of translated JavaScript scripts: it keeps references to the full globals
	// (rawget, getmetatable), so it is built before the sandbox is in place, from the capped
	// string library, and handed to scripts read-only.
	// Regular expression searches stop at the deadline of the run in progress (set by arm, on
	// this state's goroutine).
	rt, err := jscompat.Open(L, jscompat.Options{Deadline: func() time.Time { return v.deadline }})
	if err == nil {
		base.RawSetString(jscompat.RuntimeGlobal, rt)
	} else {
		e.log.Error("cannot build the JavaScript runtime; .js handlers will fail", "err", err.Error())
	}
	v.installLib(base, rt)
	v.sessUD = v.singleton(base, sessionClass, nil)
	v.connUD = v.singleton(base, connClass, nil)
	v.sessAsyncUD = v.singleton(base, asyncSessionClass, nil)
	v.connAsyncUD = v.singleton(base, asyncConnClass, nil)
	v.userUD = v.singleton(base, userClass, nil)

	v.metaSession = v.envMetatable(base, map[string]lua.LValue{"Session": v.sessUD})
	v.metaConn = v.envMetatable(base, map[string]lua.LValue{"Conn": v.connUD})
	v.metaSessionConn = v.envMetatable(base, map[string]lua.LValue{"Session": v.sessUD, "Conn": v.connUD})
	v.metaNone = v.envMetatable(base, nil)
	v.metaAsync = [4]*lua.LTable{v.metaNone,
		v.envMetatable(base, map[string]lua.LValue{"Session": v.sessAsyncUD}),
		v.envMetatable(base, map[string]lua.LValue{"Conn": v.connAsyncUD}),
		v.envMetatable(base, map[string]lua.LValue{"Session": v.sessAsyncUD, "Conn": v.connAsyncUD})}

	// Everything built so far is shared by every run of the state: make it read-only, so
	// that no run can leave anything in it for the next (the proxies' __newindex stops
	// assignments; this also stops the table library, rawset and setmetatable, which write
	// without metamethods).
	for _, root := range []lua.LValue{L.G.Registry, L.G.Global, base, v.metaSession, v.metaConn, v.metaSessionConn,
		v.metaNone, v.sessUD, v.connUD, v.userUD, v.metaAsync[1], v.metaAsync[2], v.metaAsync[3],
		v.sessAsyncUD, v.connAsyncUD} {
		setReadOnly(root, map[lua.LValue]bool{})
	}
	v.idleEnv = L.CreateTable(0, 0)
	v.idleEnv.SetReadOnly(true)
	v.baseline = v.measureShared()
	v.overFn = v.overBudget
	return v
}

// setReadOnly marks every table reachable from lv read-only: through tables' keys, values
// and metatables, functions' environments and upvalues, and userdata's metatables and
// environments.
func setReadOnly(lv lua.LValue, seen map[lua.LValue]bool) {
	switch x := lv.(type) {
	case *lua.LTable:
		if seen[x] {
			return
		}
		seen[x] = true
		x.SetReadOnly(true)
		setReadOnly(x.Metatable, seen)
		x.ForEach(func(k, val lua.LValue) {
			setReadOnly(k, seen)
			setReadOnly(val, seen)
		})
	case *lua.LFunction:
		if seen[x] {
			return
		}
		seen[x] = true
		if x.Env != nil {
			setReadOnly(x.Env, seen)
		}
		for _, uv := range x.Upvalues {
			if uv != nil {
				setReadOnly(uv.Value(), seen)
			}
		}
	case *lua.LUserData:
		if seen[x] {
			return
		}
		seen[x] = true
		setReadOnly(x.Metatable, seen)
		if x.Env != nil {
			setReadOnly(x.Env, seen)
		}
	}
}

// envMetatable returns a metatable whose reads fall back to a copy of base plus extra.
func (v *vm) envMetatable(base *lua.LTable, extra map[string]lua.LValue) *lua.LTable {
	b := v.L.CreateTable(0, 48)
	base.ForEach(func(k, val lua.LValue) { b.RawSet(k, val) })
	for k, val := range extra {
		b.RawSetString(k, val)
	}
	mt := v.L.CreateTable(0, 2)
	mt.RawSetString("__index", b)
	mt.RawSetString("__metatable", lua.LString("locked"))
	return mt
}

// globalsProxy is _G: it reads and writes the environment of the run in progress, so that
// _G works without storing it in each run's environment.
func (v *vm) globalsProxy() *lua.LTable {
	L := v.L
	proxy := L.CreateTable(0, 0)
	mt := L.CreateTable(0, 3)
	mt.RawSetString("__index", L.NewFunction(func(L *lua.LState) int {
		L.Push(L.GetTable(v.env, L.Get(2)))
		return 1
	}))
	mt.RawSetString("__newindex", L.NewFunction(func(L *lua.LState) int {
		L.SetTable(v.env, L.Get(2), L.Get(3))
		return 0
	}))
	mt.RawSetString("__metatable", lua.LString("locked"))
	proxy.Metatable = mt
	return proxy
}

// readOnly returns an empty proxy whose reads go to t and whose writes raise an error, so a
// script cannot change a table that later runs share.
func (v *vm) readOnly(t *lua.LTable, name string) *lua.LTable {
	proxy := v.L.CreateTable(0, 0)
	mt := v.L.CreateTable(0, 3)
	mt.RawSetString("__index", t)
	mt.RawSetString("__newindex", v.L.NewFunction(func(L *lua.LState) int {
		L.RaiseError("%s is read-only", name)
		return 0
	}))
	mt.RawSetString("__metatable", lua.LString("locked"))
	proxy.Metatable = mt
	return proxy
}

// run runs one handler for ev and reports whether it asked to end the session (Terminate),
// with the ban flag.
func (v *vm) run(ctx context.Context, ev *core.Event, h *handler) *bool {
	L := v.L
	v.ev, v.h, v.ended, v.term, v.subsystems = ev, h, false, nil, nil
	defer func() {
		v.endLib()
		v.ev, v.h, v.subsystems, v.env = nil, nil, nil, nil
		v.user().Value = nil
		v.ext.reset()
	}()
	if err := ctx.Err(); err != nil {
		v.runFailed = true
		v.e.failed(ev, h, fmt.Errorf("not run: %w", err), false)
		return nil
	}

	env := L.CreateTable(0, 0)
	withConn := ev.Conn != nil && (ev.Session == nil || ev.Name == core.OnBlocklistAdd || ev.Name == core.OnBlocklistHit)
	switch {
	case v.async:
		env.Metatable = v.metaAsync[asyncMeta(ev.Session != nil, withConn)]
	case ev.Session != nil && withConn:
		env.Metatable = v.metaSessionConn
	case ev.Session != nil:
		env.Metatable = v.metaSession
	case withConn:
		env.Metatable = v.metaConn
	default:
		env.Metatable = v.metaNone
	}
	v.env = env
	// The main chunk's function is reused: it has no upvalues, and a script cannot keep a
	// reference to it (no debug library, no getfenv), so only its environment changes.
	fn := v.chunk(h)
	fn.Env = env

	v.arm(h.timeout)
	L.SetContext(v.ctx)
	v.startMeter(h)
	L.Push(fn)
	err := L.PCall(0, 0, nil)
	v.stopMeter()
	L.RemoveContext()
	v.tmu.Lock()
	v.armed = false
	v.tmu.Unlock()
	L.SetTop(0)
	fn.Env = v.idleEnv
	if err == nil || v.ended {
		return v.term
	}
	var ae *lua.ApiError
	if errors.As(err, &ae) && ae.Type == lua.ApiErrorPanic {
		v.broken = true
	}
	msg, timedOut := errorText(L, err), v.ctx.Err() != nil
	if timedOut {
		// The VM reports the cancelled context; say what happened instead.
		msg = strings.Replace(msg, context.Canceled.Error(), "timed out after "+h.timeout.String(), 1)
	}
	v.runFailed = true
	v.e.failed(ev, h, errors.New(msg), timedOut)
	return nil
}

// close releases the state.
func (v *vm) close() {
	v.timer.Stop()
	v.tmu.Lock()
	v.cancel()
	v.tmu.Unlock()
	v.L.Close()
}

// arm starts the clock of a run: it gets a fresh context if the last one was cancelled, and
// the timer is set only when it would otherwise fire too late (or not at all).
func (v *vm) arm(timeout time.Duration) {
	now := time.Now()
	v.tmu.Lock()
	defer v.tmu.Unlock()
	if v.cancelled {
		v.ctx, v.cancel = context.WithCancel(context.Background())
		v.cancelled = false
	}
	v.armed, v.deadline = true, now.Add(timeout)
	if !v.pending || v.fireAt.After(v.deadline) {
		v.pending, v.fireAt = true, v.deadline
		v.timer.Reset(timeout)
	}
}

// cancelLocked stops the run in progress; the next run gets a fresh context. v.tmu is held.
func (v *vm) cancelLocked() {
	v.cancel()
	v.cancelled = true
}

// expire stops the run in progress when its deadline has passed. A timer that fires for an
// earlier run finds a later deadline and re-arms for it; with no run in progress it stays
// unset until the next run.
func (v *vm) expire() {
	v.tmu.Lock()
	defer v.tmu.Unlock()
	v.pending = false
	if !v.armed {
		return
	}
	now := time.Now()
	if !now.Before(v.deadline) {
		v.cancelLocked()
		return
	}
	v.pending, v.fireAt = true, v.deadline
	v.timer.Reset(v.deadline.Sub(now))
}

// errorText is the message of a Lua error without the traceback. An error value with a
// __tostring (an uncaught JavaScript exception) is shown through it.
func errorText(L *lua.LState, err error) string {
	var ae *lua.ApiError
	if errors.As(err, &ae) && ae.Object != nil {
		if t, ok := ae.Object.(*lua.LTable); ok {
			if f, ok := L.GetMetaField(t, "__tostring").(*lua.LFunction); ok {
				if L.CallByParam(lua.P{Fn: f, NRet: 1, Protect: true}, t) == nil {
					msg := L.Get(-1)
					L.Pop(1)
					if s, ok := msg.(lua.LString); ok {
						return string(s)
					}
				}
			}
		}
		return ae.Object.String()
	}
	return err.Error()
}

// end stops the run cleanly (Exit, Terminate). Cancelling the run's context makes the VM
// raise an error before its next instruction, so a pcall around Exit() cannot keep the
// script going.
func (v *vm) end(L *lua.LState) int {
	v.ended = true
	v.tmu.Lock()
	v.cancelLocked()
	v.tmu.Unlock()
	L.RaiseError("script ended")
	return 0
}

// notify reports a decision to Options.Observe.
func (v *vm) notify(name, detail string) {
	if v.e.observe != nil {
		v.e.observe(Action{Event: v.ev.Name, Script: v.h.script, Name: name, Detail: detail})
	}
}

// warn logs a call that has no effect where it was made.
func (v *vm) warn(L *lua.LState, call, why string) {
	v.e.logger(v.ev).Warn(fmt.Sprintf("%s has no effect: %s", call, why),
		"event", string(v.ev.Name), "script", v.h.script, "at", L.Where(1))
}

// log writes a script's log line, tagged with the event and script (the session's logger
// adds site, session id, user, protocol and IP).
func (v *vm) log(L *lua.LState, level slog.Level, first int) {
	ctx := context.Background()
	lh := v.e.logger(v.ev).Handler()
	if !lh.Enabled(ctx, level) {
		return
	}
	// The record is built here rather than through Logger.Log, which records the caller's
	// program counter (a stack walk): the source of a script's line is the script, and the
	// event and script attributes already say which. They are the record's own attributes,
	// not the logger's, so that handlers can select script lines (wharf script run does).
	r := slog.NewRecord(time.Now(), level, v.e.redact(joinArgs(L, first)), 0)
	r.AddAttrs(slog.String("event", string(v.ev.Name)), slog.String("script", v.h.script))
	_ = lh.Handle(ctx, r)
}

// maxChunks bounds a state's chunk cache, which is emptied when full (chunks of an earlier
// load stay in it until then).
const maxChunks = 64

// chunk returns the state's function for h's main chunk.
func (v *vm) chunk(h *handler) *lua.LFunction {
	if fn, ok := v.chunks[h]; ok {
		return fn
	}
	if v.chunks == nil || len(v.chunks) >= maxChunks {
		v.chunks = make(map[*handler]*lua.LFunction)
	}
	fn := v.L.NewFunctionFromProto(h.proto)
	v.chunks[h] = fn
	return fn
}

// maxLogLine bounds one log line a script writes.
const maxLogLine = 64 << 10

func joinArgs(L *lua.LState, first int) string {
	top := L.GetTop()
	if top == first {
		if s, ok := L.Get(first).(lua.LString); ok && len(s) <= maxLogLine {
			return string(s)
		}
	}
	var b []byte
	for i := first; i <= top; i++ {
		if i > first {
			b = append(b, ' ')
		}
		b = append(b, L.ToStringMeta(L.Get(i)).String()...)
		if len(b) > maxLogLine {
			return string(b[:maxLogLine]) + "…"
		}
	}
	return string(b)
}

// user is the instance of the state's User object.
func (v *vm) user() *instance { return v.userUD.Value.(*instance) }

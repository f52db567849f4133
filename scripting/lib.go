package scripting

import (
	"context"
	"fmt"
	"math"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
)

// scriptLib is the state of the Syncplify library objects of a Lua state: the classes and
// metatables of the objects a run may make many of (VFS objects, their results, directory
// items), and what the run in progress opened.
type scriptLib struct {
	vfs, result          *classState // VirtualFS and VfsResult (vfs.go)
	itemMeta, answerMeta *lua.LTable
	jsArrayMeta          lua.LValue // the JS runtime's array metatable

	// The run in progress.
	current *lua.LUserData   // GetCurrentVFS(), made on first call
	opened  []*core.ScriptFS // VirtualFS objects to close when the run ends
}

// installLib adds the globals of the Syncplify library (VFS access, secrets, Sleep) to the
// base environment. rt is the JavaScript runtime (nil if it could not be built).
func (v *vm) installLib(base *lua.LTable, rt lua.LValue) {
	L := v.L
	v.lib.vfs = v.defineClass(base, vfsClass)
	v.lib.result = v.defineClass(base, resultClass)
	v.lib.itemMeta = lockedMeta(L, "DirListItem")
	v.lib.answerMeta = lockedMeta(L, "AnsweredQuestion")
	keepShared(L, base, v.lib.itemMeta)
	keepShared(L, base, v.lib.answerMeta)
	if t, ok := rt.(*lua.LTable); ok {
		// The runtime makes its arrays with R.A; one made here gives their metatable.
		if mk, ok := L.GetField(t, "A").(*lua.LFunction); ok {
			if L.CallByParam(lua.P{Fn: mk, NRet: 1, Protect: true}, L.CreateTable(1, 0), lua.LNumber(0)) == nil {
				if arr, ok := L.Get(-1).(*lua.LTable); ok {
					v.lib.jsArrayMeta = arr.Metatable
				}
				L.Pop(1)
			}
		}
	}
	fn := func(name string, f lua.LGFunction) { base.RawSetString(name, L.NewFunction(f)) }
	for name, val := range vfsConstants {
		base.RawSetString(name, val)
	}
	fn("GetCurrentVFS", func(L *lua.LState) int {
		L.Push(v.currentVFS())
		return 1
	})
	fn("FileReadAsHex", v.fileReadAsHex)
	fn("DelFile", v.delFile)
	fn("GetSecret", v.getSecret)
	fn("Sleep", v.sleep)
}

// endLib releases what the run opened.
func (v *vm) endLib() {
	for _, f := range v.lib.opened {
		_ = f.Close()
	}
	v.lib.opened, v.lib.current = nil, nil
}

// lockedMeta is the metatable of read-only tables a run makes (directory items).
func lockedMeta(L *lua.LState, name string) *lua.LTable {
	mt := L.CreateTable(0, 2)
	mt.RawSetString("__metatable", lua.LString("locked"))
	mt.RawSetString("__tostring", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LString(name))
		return 1
	}))
	return mt
}

// ctx is the context of the run in progress: it ends at the handler's timeout.
func (v *vm) runCtx() context.Context {
	v.tmu.Lock()
	defer v.tmu.Unlock()
	return v.ctx
}

// reserveMemory charges n bytes that the run is about to hold to its budget, or returns an
// error if they would take it past the budget. Unlike the meter's own check, it does not
// raise: a Go function calls it before it makes something large, and raises once it has
// cleaned up.
func (v *vm) reserveMemory(n int64) error {
	L := v.L
	if v.h == nil {
		return nil
	}
	if L.MemoryCharged()+n > v.h.memory {
		held := max(L.ReachableMemory()-v.baseline, 0) + v.sessionBytes()
		if held+n > v.h.memory {
			return fmt.Errorf("memory budget exceeded (max_memory %s)", config.ByteSize(v.h.memory))
		}
	}
	L.ChargeMemory(n)
	return nil
}

// optInt64 reads an optional integer argument (nil, or a number; NaN and fractions are
// refused).
func optInt64(L *lua.LState, n int, def int64) int64 {
	lv := L.Get(n)
	if lv == lua.LNil {
		return def
	}
	f := float64(L.CheckNumber(n))
	if math.IsNaN(f) || math.IsInf(f, 0) || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		L.ArgError(n, "an integer expected")
	}
	return int64(f)
}

// sleep is Sleep(ms): it pauses the run, at most until its timeout, which then ends it as
// any timeout does.
func (v *vm) sleep(L *lua.LState) int {
	ms := float64(L.OptNumber(1, 0))
	if math.IsNaN(ms) || ms <= 0 {
		return 0
	}
	// A run never outlives its timeout; a day bounds the arithmetic.
	d := time.Duration(math.Min(ms, 24*3600*1000) * float64(time.Millisecond))
	ctx := v.runCtx()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		// The VM raises the timeout before the next instruction.
	}
	return 0
}

// exit is Exit(code): it ends the run cleanly; a non-zero code is logged, as Syncplify does.
func (v *vm) exit(L *lua.LState) int {
	code := 0
	if lv := L.Get(1); lv != lua.LNil {
		if n, ok := lv.(lua.LNumber); ok {
			code = int(n)
		} else if s, ok := lv.(lua.LString); ok {
			if f, err := parseNumberText(string(s)); err == nil {
				code = int(f)
			}
		}
	}
	if code != 0 {
		v.e.logger(v.ev).Warn(fmt.Sprintf("event script exited with code %d", code),
			"event", string(v.ev.Name), "script", v.h.script, "exit_code", code)
		v.notify("Exit", fmt.Sprintf("code=%d", code))
	} else {
		v.notify("Exit", "")
	}
	return v.end(L)
}

func parseNumberText(s string) (float64, error) {
	var f float64
	_, err := fmt.Sscan(s, &f)
	return f, err
}

// answeredQuestions is Session.GetAnsweredQuestions(): the keyboard-interactive answers of
// the session, oldest first, each a read-only table {Pos, Question, OK}.
func answeredQuestions(v *vm, L *lua.LState, _ *instance, _ int) int {
	qs := v.ev.Session.AnsweredQuestions()
	t := L.CreateTable(len(qs), 0)
	for _, q := range qs {
		item := L.CreateTable(0, 3)
		item.RawSetString("Pos", lua.LNumber(q.Pos))
		item.RawSetString("Question", lua.LString(q.Question))
		item.RawSetString("OK", lua.LBool(q.OK))
		item.Metatable = v.lib.answerMeta
		item.SetReadOnly(true)
		t.Append(item)
	}
	L.Push(t)
	return 1
}

// warnLib logs a library call that failed without failing the run (FileReadAsHex, DelFile).
func (v *vm) warnLib(L *lua.LState, call string, err error) {
	v.e.logger(v.ev).Warn(call+" failed: "+v.e.redact(err.Error()),
		"event", string(v.ev.Name), "script", v.h.script, "at", L.Where(1))
}

package scripting

import (
	lua "github.com/yuin/gopher-lua"

	"github.com/wharf-project/wharf/core/config"
)

// A run's memory budget (event_handlers[].max_memory). The VM charges what a run makes to a
// meter (gopher-lua patch 2, third_party/gopher-lua/WHARF.md); when the charges pass the
// budget, overBudget measures what the run really holds and refuses the allocation if that
// would take it past the budget, or else lets the run go on from what it holds. So the
// budget bounds live memory, not the run's total allocation, at an amortised cost of one
// measure per budget's worth of allocation.

// stringOverhead is what a Go string costs besides its bytes (the size gopher-lua counts).
const stringOverhead = 16

// startMeter puts the run of h under its budget. The session's custom data counts from the
// start: it is memory that scripts made and that outlives their runs.
func (v *vm) startMeter(h *handler) {
	v.L.SetMemoryMeter(v.sessionBytes(), h.memory, v.overFn)
}

// stopMeter removes the meter between runs.
func (v *vm) stopMeter() { v.L.SetMemoryMeter(0, 0, nil) }

// overBudget is the meter's function: n bytes are about to be made.
func (v *vm) overBudget(L *lua.LState, _, n int64) int64 {
	held := max(L.ReachableMemory()-v.baseline, 0) + v.sessionBytes()
	if held+n > v.h.memory {
		L.RaiseError("memory budget exceeded (max_memory %s)", config.ByteSize(v.h.memory))
	}
	return held + n
}

// measureShared measures what a run reaches besides its own values: the state's globals
// and registry, and what its environment's metatable and the objects lead to. They are put
// on the stack for the measure, so that it sees them as it will during a run.
func (v *vm) measureShared() int64 {
	L := v.L
	shared := L.CreateTable(16, 0)
	for _, o := range []lua.LValue{v.metaSession, v.metaConn, v.metaSessionConn, v.metaNone, v.sessUD,
		v.connUD, v.userUD, v.idleEnv, v.metaAsync[1], v.metaAsync[2], v.metaAsync[3], v.sessAsyncUD, v.connAsyncUD} {
		shared.Append(o)
	}
	L.Push(shared)
	n := L.ReachableMemory()
	L.Pop(1)
	return n
}

// sessionBytes is the size of the session's custom data.
func (v *vm) sessionBytes() int64 {
	if v.ev == nil || v.ev.Session == nil {
		return 0
	}
	var items []string
	if v.snap != nil {
		items = v.snap.custom // an asynchronous run's copy
	} else {
		items = v.ev.Session.AllCustomData()
	}
	var n int64
	for _, s := range items {
		n += stringOverhead + int64(len(s))
	}
	return n
}

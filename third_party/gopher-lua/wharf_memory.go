package lua

// The memory meter (wharf). gopher-lua has no allocation hook and Go none per goroutine, so a
// host could not bound the memory a script builds. The VM now charges what it makes to a
// count (strings made by concatenation, strings that Go functions return, tables and the
// keys stored into them, closures, userdata); when the count passes a limit it calls the
// host, which can measure what the state really holds (ReachableMemory) and either raise an
// error or let the script go on with a new count. The charges are estimates that err on the
// large side; the measure is the truth, so garbage and overwritten values cost nothing.

import (
	"math"
	"sync/atomic"
	"unsafe"
)

// Sizes charged and measured, in bytes: estimates of what the Go values take on a 64-bit
// machine, allocation overhead included.
const (
	memString   = 16  // a string's header, besides its bytes
	memNumber   = 8   // a number stored in an interface (gopher-lua boxes them in blocks)
	memTable    = 112 // an LTable without contents
	memSlot     = 16  // an element of a table's array part or key list (an interface)
	memEntry    = 64  // an entry of a table's hash part (a Go map: key, value, control, load)
	memIndex    = 48  // an entry of k2i, the position of a key in the key list (a Go map)
	memKey      = memEntry + memIndex + memSlot
	memFunction = 80  // an LFunction
	memUpvalue  = 56  // an Upvalue and the pointer to it
	memUserData = 64  // an LUserData (its Go value is not counted)
	memShared   = 128 // strings at least this long are counted once however often they are referenced
)

// SetMemoryMeter installs a memory meter on the state, or removes it (over nil). The count
// starts at used; every charge adds to it, and when it passes limit, over is called with the
// count and the size n of the charge that passed it (the value is not made yet when the
// charge comes from the VM or from a Go function that charges before allocating). over
// returns the new count, typically what ReachableMemory measures plus n, and may raise a Lua
// error (LState.RaiseError) instead, which refuses the allocation. Until the count passes
// limit again, over is not called: a meter costs an addition and a comparison per charge.
func (ls *LState) SetMemoryMeter(used, limit int64, over func(L *LState, used, n int64) int64) {
	if over == nil || limit <= 0 {
		ls.memUsed, ls.memLimit, ls.memOver = 0, math.MaxInt64, nil
		return
	}
	ls.memUsed, ls.memLimit, ls.memOver = used, limit, over
}

// ChargeMemory adds n bytes to the memory meter's count. Go functions that make a large value
// call it before they make it, so that the meter can refuse it.
func (ls *LState) ChargeMemory(n int64) {
	ls.memUsed += n
	if ls.memUsed > ls.memLimit {
		ls.memOverflow(n)
	}
}

// MemoryCharged returns the memory meter's count.
func (ls *LState) MemoryCharged() int64 { return ls.memUsed }

func (ls *LState) memOverflow(n int64) {
	if ls.memOver != nil {
		ls.memUsed = ls.memOver(ls, ls.memUsed, n)
	}
}

// chargeResults charges the strings a Go function returned: the function made them, or
// returns a string that already exists (then the charge only brings the next measure
// earlier). They exist and are on the stack, so the host's measure counts them: it is told
// that nothing more is about to be made.
func (ls *LState) chargeResults(n int) {
	top := ls.reg.Top()
	var size int64
	for _, v := range ls.reg.array[top-n : top] {
		if s, ok := v.(LString); ok {
			size += memString + int64(len(s))
		}
	}
	if size > 0 {
		ls.memUsed += size
		if ls.memUsed > ls.memLimit {
			ls.memOverflow(0)
		}
	}
}

func tableMemory(acap, hcap int) int64 {
	return memTable + int64(max(acap, 0))*memSlot + int64(max(hcap, 0))*memEntry
}

// sliceGrowth is what a full slice of n interfaces is about to allocate (Go doubles a
// short slice and grows a long one by a quarter, and copies it: the old one is garbage
// once the new one exists).
func sliceGrowth(n int) int64 {
	if n < 256 {
		return int64(max(2*n, 8)) * memSlot
	}
	return int64(n+(n+3*256)/4) * memSlot
}

// newKeyMemory is the charge for storing a new key into tb: its slot or entry, what the
// array part or key list allocates when it is full, and the nils an array part is padded
// with up to a far index (t[6e7] = 1 on an empty table fills sixty million slots).
func newKeyMemory(tb *LTable, key LValue) int64 {
	if n, ok := key.(LNumber); ok && isArrayKey(n) {
		i, l, c := int(n), len(tb.array), cap(tb.array)
		switch {
		case i <= l:
			return memSlot + memNumber
		case i == l+1 && l < c:
			return memSlot + memNumber
		case i == l+1:
			return memSlot + memNumber + sliceGrowth(c)
		default:
			return memNumber + sliceGrowth(i)
		}
	}
	return hashKeyMemory(tb)
}

// hashKeyMemory is the charge for storing a new key into tb's hash part.
func hashKeyMemory(tb *LTable) int64 {
	n := int64(memKey)
	if len(tb.keys) == cap(tb.keys) {
		n += sliceGrowth(cap(tb.keys))
	}
	return n
}

// ReachableMemory estimates the bytes held by the values reachable from the state: its
// globals, registry, environment and value stack (the slots in use, and the values of all
// of it: slots above the top may still hold values that the garbage collector cannot free),
// the functions on the call stack, and
// everything reachable from these through tables (keys, values and metatables, including
// keys deleted but still remembered for next()), functions (environments and upvalues) and
// userdata (metatables and environments). A string of at least 128 bytes is counted once
// however often it is referenced; compiled code and the Go values of userdata are not
// counted. The walk takes time proportional to the number of values reachable.
func (ls *LState) ReachableMemory() int64 {
	w := memWalker{walk: walks.Add(1), strs: map[*byte]struct{}{}}
	if w.walk == 0 { // 0 is what nothing walked carries
		w.walk = walks.Add(1)
	}
	w.push(ls.G.Registry)
	w.push(ls.G.Global)
	if ls.Env != nil {
		w.push(ls.Env)
	}
	for _, mt := range ls.G.builtinMts {
		w.push(mt)
	}
	// The slots in use: the stack's capacity is the high-water mark of every run so far,
	// bounded by Options.RegistryMaxSize rather than by any one run.
	w.total += int64(ls.reg.Top()) * memSlot
	for _, v := range ls.reg.array {
		if v != nil {
			w.push(v)
		}
	}
	for i := 0; i < ls.stack.Sp(); i++ {
		if f := ls.stack.At(i); f != nil && f.Fn != nil {
			w.push(f.Fn)
		}
	}
	w.run()
	return w.total
}

// walks numbers the walks: a table, function, userdata or upvalue that a walk counted
// carries its number, so that no walk counts it twice (and no walk needs a set of them).
var walks atomic.Uint32

type memWalker struct {
	walk  uint32
	strs  map[*byte]struct{} // long strings, by their bytes
	total int64
	todo  []LValue
}

// push counts a string at once and queues anything that holds other values.
func (w *memWalker) push(v LValue) {
	switch x := v.(type) {
	case LString:
		w.str(string(x))
	case LNumber:
		w.total += memNumber
	case *LTable, *LFunction, *LUserData:
		w.todo = append(w.todo, v)
	}
}

func (w *memWalker) str(s string) {
	if len(s) >= memShared {
		p := unsafe.StringData(s)
		if _, ok := w.strs[p]; ok {
			return
		}
		w.strs[p] = struct{}{}
	}
	w.total += memString + int64(len(s))
}

// run walks the queue until it is empty (a queue rather than recursion: a chain of nested
// tables can be as long as memory allows).
func (w *memWalker) run() {
	for len(w.todo) > 0 {
		v := w.todo[len(w.todo)-1]
		w.todo = w.todo[:len(w.todo)-1]
		switch x := v.(type) {
		case *LTable:
			if x.walked == w.walk {
				continue
			}
			x.walked = w.walk
			w.total += memTable + int64(cap(x.array))*memSlot + int64(cap(x.keys))*memSlot +
				int64(len(x.strdict)+len(x.dict))*memEntry + int64(len(x.k2i))*memIndex
			w.push(x.Metatable)
			for _, e := range x.array {
				w.push(e)
			}
			for _, k := range x.keys { // every key of strdict and dict, and deleted ones
				w.push(k)
			}
			for _, e := range x.strdict {
				w.push(e)
			}
			for _, e := range x.dict {
				w.push(e)
			}
		case *LFunction:
			if x.walked == w.walk {
				continue
			}
			x.walked = w.walk
			w.total += memFunction + int64(len(x.Upvalues))*8
			if x.Env != nil {
				w.push(x.Env)
			}
			for _, uv := range x.Upvalues {
				if uv != nil && uv.walked != w.walk {
					uv.walked = w.walk
					w.total += memUpvalue - 8
					w.push(uv.Value())
				}
			}
		case *LUserData:
			if x.walked == w.walk || x == loopdetection { // require's marker is shared by all states
				continue
			}
			x.walked = w.walk
			w.total += memUserData
			w.push(x.Metatable)
			if x.Env != nil {
				w.push(x.Env)
			}
		}
	}
}

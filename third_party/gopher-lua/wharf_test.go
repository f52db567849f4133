package lua

// Tests of wharf's changes (see WHARF.md).

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// runLua runs src in a fresh state prepared by setup and returns the error text, "" if none.
func runLua(t *testing.T, setup func(L *LState), src string) string {
	t.Helper()
	L := NewState()
	defer L.Close()
	if setup != nil {
		setup(L)
	}
	if err := L.DoString(src); err != nil {
		return err.Error()
	}
	return ""
}

func TestReadOnlyTable(t *testing.T) {
	setup := func(L *LState) {
		ro := L.NewTable()
		ro.RawSetInt(1, LString("one"))
		ro.RawSetString("k", LString("v"))
		ro.SetReadOnly(true)
		ro.RawSetString("go", LTrue) // Go code is not checked
		L.SetGlobal("ro", ro)

		// A read-only proxy whose writes go to a __newindex function keeps working.
		store := L.NewTable()
		proxy := L.NewTable()
		mt := L.NewTable()
		mt.RawSetString("__newindex", store)
		mt.RawSetString("__index", store)
		proxy.Metatable = mt
		proxy.SetReadOnly(true)
		L.SetGlobal("proxy", proxy)
		L.SetGlobal("store", store)
	}
	for _, src := range []string{
		"ro[1] = 'x'", "ro.k = 'x'", "ro.new = 'x'", "ro[2] = 'x'", "ro[{}] = 1",
		"rawset(ro, 'new', 1)", "setmetatable(ro, {})",
		"table.insert(ro, 'x')", "table.insert(ro, 1, 'x')", "table.remove(ro)", "table.remove(ro, 1)", "table.sort(ro)",
		"local t = setmetatable({}, {__newindex = ro}); t.x = 1",
	} {
		if err := runLua(t, setup, src); !strings.Contains(err, "attempt to modify a read-only table") {
			t.Errorf("%s: error %q, want a read-only error", src, err)
		}
	}
	if err := runLua(t, setup, `
		assert(ro[1] == 'one' and ro.k == 'v' and ro.go == true and #ro == 1)
		for k, v in pairs(ro) do assert(k ~= nil) end
		assert(table.concat(ro, ',') == 'one')
		proxy.x = 1
		assert(store.x == 1 and proxy.x == 1 and rawget(proxy, 'x') == nil)
		local t = {}
		table.insert(t, 1); t.y = 2; rawset(t, 'z', 3); setmetatable(t, {})
	`); err != "" {
		t.Errorf("reads and writes elsewhere: %s", err)
	}
}

// budgetMeter installs a meter that refuses what would take the state past budget bytes
// above what it holds now, and counts its calls.
func budgetMeter(L *LState, budget int64, calls *int) {
	base := L.ReachableMemory()
	L.SetMemoryMeter(0, budget, func(L *LState, used, n int64) int64 {
		*calls++
		held := L.ReachableMemory() - base
		if held+n > budget {
			L.RaiseError("memory budget exceeded")
		}
		return held + n
	})
}

func TestMemoryMeter(t *testing.T) {
	const budget = 4 << 20
	for _, c := range []struct{ name, src string }{
		{"concatenation", "local s = 'x' for i = 1, 40 do s = s .. s end"},
		{"go function results", "local t = {} for i = 1, 100 do t[i] = big(i) end"},
		{"array", "local t = {} for i = 1, 1e8 do t[i] = i end"},
		{"table constructors", "local t = {} for i = 1, 1e8 do t[i] = {i, i, i} end"},
		{"table.insert", "local t = {} for i = 1, 1e8 do table.insert(t, i) end"},
		{"string keys", "local t = {} for i = 1, 1e8 do t['k' .. i] = true end"},
		{"deleted keys", "local t = {} for i = 1, 1e8 do t['k' .. i] = true; t['k' .. i] = nil end"},
		{"closures", "local t = {} for i = 1, 1e8 do t[i] = function() return i end end"},
		{"varargs", "local function f(...) return {...} end local t = {} for i = 1, 1e8 do t[i] = f(1, 2, 3, 4, 5, 6, 7, 8) end"},
		{"go tables", "local t = {} for i = 1, 1e8 do t[i] = gotable() end"},
		{"far index", "local t = {} t[6e7] = 1"},
		{"table.insert at a far index", "local t = {} table.insert(t, 6e7, 1)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			calls := 0
			err := runLua(t, func(L *LState) {
				L.SetGlobal("big", L.NewFunction(func(L *LState) int {
					L.Push(LString(strings.Repeat("b", 1<<20-10) + fmt.Sprintf("%10d", L.CheckInt(1))))
					return 1
				}))
				L.SetGlobal("gotable", L.NewFunction(func(L *LState) int {
					L.Push(L.CreateTable(4, 0))
					return 1
				}))
				budgetMeter(L, budget, &calls)
			}, c.src)
			if !strings.Contains(err, "memory budget exceeded") {
				t.Fatalf("error %q, want the budget exceeded", err)
			}
			if calls == 0 {
				t.Fatal("the meter was never called")
			}
		})
	}

	// What is garbage does not count: building and dropping many big strings passes.
	calls := 0
	if err := runLua(t, func(L *LState) { budgetMeter(L, budget, &calls) }, `
		for i = 1, 200 do local s = string.rep('x', 100000) .. i .. string.rep('y', 100000) end
		local t = {}
		for i = 1, 1000 do t[i] = 'v' .. i end
	`); err != "" || calls == 0 {
		t.Errorf("error %q, %d meter calls; want no error, calls", err, calls)
	}
	// No meter: no calls, no limit.
	L := NewState()
	defer L.Close()
	if err := L.DoString("local s = 'x' for i = 1, 22 do s = s .. s end"); err != nil || L.MemoryCharged() < 4<<20 {
		t.Errorf("without a meter: %v, %d charged", err, L.MemoryCharged())
	}
}

func TestReachableMemory(t *testing.T) {
	L := NewState()
	defer L.Close()
	base := L.ReachableMemory()
	measure := func(src string) int64 {
		t.Helper()
		if err := L.DoString(src); err != nil {
			t.Fatal(err)
		}
		return L.ReachableMemory() - base
	}
	const mib = 1 << 20
	if n := measure("a = string.rep('a', 1048576)"); n < mib || n > mib+4096 {
		t.Errorf("one 1 MiB string: %d bytes", n)
	}
	if n := measure("b = a; c = {a, a, x = a}"); n < mib || n > mib+4096 {
		t.Errorf("the same string referenced four times: %d bytes", n)
	}
	if n := measure("d = string.rep('d', 1048576)"); n < 2*mib || n > 2*mib+4096 {
		t.Errorf("two 1 MiB strings: %d bytes", n)
	}
	if n := measure("a, b, c, d = nil; local t = {} for i = 1, 10000 do t[i] = {} end; e = t"); n < 10000*memTable || n > 20000*memTable {
		t.Errorf("10000 tables: %d bytes", n)
	}
	// Values reachable only through upvalues, metatables and the environment of a function.
	if n := measure(`e = nil
		local up = string.rep('u', 1048576)
		f = function() return up end
		g = setmetatable({}, {__index = {string.rep('m', 1048576)}})
	`); n < 2*mib || n > 2*mib+4096 {
		t.Errorf("an upvalue and a metatable's contents: %d bytes", n)
	}
}

func TestUnpackAndByteBounded(t *testing.T) {
	run := func(src string) string {
		L := NewState(Options{RegistrySize: 1024, RegistryMaxSize: 1 << 16})
		defer L.Close()
		if err := L.DoString(src); err != nil {
			return err.Error()
		}
		return ""
	}
	if err := run("assert(select('#', unpack({}, 1, 8000)) == 8000)"); err != "" {
		t.Error(err)
	}
	for _, src := range []string{"unpack({}, 1, 8001)", "unpack({}, 1, 3e8)", "unpack({}, -2^31, 2^31)"} {
		if err := run(src); !strings.Contains(err, "too many results to unpack") {
			t.Errorf("%s: %q", src, err)
		}
	}
	if err := run("assert(select('#', string.rep('a', 8000):byte(1, -1)) == 8000)"); err != "" {
		t.Error(err)
	}
	if err := run("string.rep('a', 8001):byte(1, -1)"); !strings.Contains(err, "string slice too long") {
		t.Errorf("byte: %q", err)
	}
}

func TestLongCallsStopAtTheDeadline(t *testing.T) {
	for _, src := range []string{
		"string.find(string.rep('a', 40), string.rep('a?', 40) .. string.rep('a', 40))",
		"string.match(string.rep('a', 20000), '.-.-.-b')",
		"for m in string.gmatch(string.rep('a', 5000), '.-.-b') do end",
		"string.gsub(string.rep('a', 20000), '.-.-.-b', '')",
		"local t = {} for i = 1, 2000000 do t[i] = (i * 7919) % 1000003 end; for i = 1, 100 do table.sort(t); table.sort(t, function(a, b) return a > b end) end",
	} {
		L := NewState()
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		L.SetContext(ctx)
		start := time.Now()
		err := L.DoString(src)
		took := time.Since(start)
		cancel()
		L.Close()
		if err == nil || !strings.Contains(err.Error(), "context deadline exceeded") {
			t.Errorf("%s: %v, want the deadline", src, err)
		}
		if took > 2*time.Second {
			t.Errorf("%s: took %v with a 200ms deadline", src, took)
		}
	}
}

func TestGmatchFindsLazily(t *testing.T) {
	L := NewState()
	defer L.Close()
	L.SetGlobal("s", LString(strings.Repeat("a", 4<<20)))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := L.DoString(`
		local n = 0
		for c in s:gmatch('.') do n = n + 1; if n == 3 then break end end
		assert(n == 3)
		local words = {}
		for w, d in ('one1 two2 three3'):gmatch('(%a+)(%d)') do words[#words + 1] = w .. d end
		assert(table.concat(words, ',') == 'one1,two2,three3')
		local e = {}
		for x in ('abc'):gmatch('') do e[#e + 1] = x end
		assert(#e == 4)
		local a = {}
		for x in ('aaa'):gmatch('^a') do a[#a + 1] = x end
		assert(#a == 1)
	`); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Errorf("three matches of a 4 MiB string allocated %d bytes", n)
	}
}

func TestShortSubstringsDoNotPin(t *testing.T) {
	L := NewState()
	defer L.Close()
	long := strings.Repeat("x", 1000) + "needle" + strings.Repeat("1", 1000)
	L.SetGlobal("long", LString(long))
	if err := L.DoString(`
		a = long:sub(1001, 1006)
		b = long:match('n%a+')
		c = select(3, long:find('(n%a+)'))
		d = long:sub(2, -2)
		for w in long:gmatch('n%a+') do e = w end
		short = ('abcdef'):sub(2, 3)
	`); err != nil {
		t.Fatal(err)
	}
	inLong := func(s string) bool {
		p, q := uintptr(unsafe.Pointer(unsafe.StringData(s))), uintptr(unsafe.Pointer(unsafe.StringData(long)))
		return p >= q && p < q+uintptr(len(long))
	}
	for _, name := range []string{"a", "b", "c", "e"} {
		s := L.GetGlobal(name).String()
		if s != "needle" || inLong(s) {
			t.Errorf("%s = %q, shares the long string: %v", name, s, inLong(s))
		}
	}
	if d := L.GetGlobal("d").String(); len(d) != len(long)-2 || !inLong(d) {
		t.Errorf("a long part is not copied (len %d, shares %v)", len(d), inLong(d))
	}
	if s := L.GetGlobal("short").String(); s != "bc" {
		t.Errorf("short = %q", s)
	}
}

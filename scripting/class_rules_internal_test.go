package scripting

import (
	"testing"

	lua "github.com/yuin/gopher-lua"
)

// gaugeClass is a host class with nothing settable, whose method raises an error through
// instance.raise and keeps a Lua value in the instance (a label, set by its constructor).
var gaugeClass = &hostClass{name: "Gauge",
	construct: func(_ *vm, L *lua.LState, a int) any { return new(float64) },
	init:      func(L *lua.LState, self *instance) { self.keep(L, 1, lua.LString("g")) },
	keeps:     1,
	methods: map[string]classMethod{
		"Set": func(_ *vm, L *lua.LState, self *instance, a int) int {
			n, ok := L.Get(a).(lua.LNumber)
			if !ok || n < 0 {
				self.raise(L, "Set", "expected a number from 0, got %s", L.Get(a).Type().String())
			}
			*self.Value.(*float64) = float64(n)
			L.Push(self.ud)
			return 1
		},
		"Get": func(_ *vm, L *lua.LState, self *instance, _ int) int {
			L.Push(lua.LNumber(*self.Value.(*float64)))
			return 1
		},
		"Label": func(_ *vm, L *lua.LState, self *instance, _ int) int {
			L.Push(self.kept(1))
			return 1
		},
	}}

// A method read from one instance and called on another of its class is refused, naming the
// class and the method; another class's instance is an argument like any other.
func TestHostClassWrongReceiver(t *testing.T) {
	got := runWithClasses(t, []*hostClass{counterClass, counterSnap, gaugeClass}, [2]string{"c.lua", `
local a, b = Counter(1), Counter(2)
local ok, err = pcall(a.Add, b, 1) Log(ok, err)
ok, err = pcall(function() return a.Value(b) end) Log(ok, err)
local g, h = Gauge(), Gauge()
ok, err = pcall(function() return g.Set(h, 1) end) Log(ok, err)
Log(a.Value(), b.Value(), pcall(a.Add, Gauge()))
Log(a:Add(1):Value(), a.Add(1).Value())
`}, [2]string{"c.js", `
var a = new Counter(1), b = new Counter(2);
var add = a.Add;
try { add(b, 1); } catch (e) { Log(e.message); }
Log(add(1).Value(), b.Value());
`})
	wantLines(t, got,
		"false c.lua:3: Counter.Add: called on another Counter than the one it was read from",
		"false c.lua:4: Counter.Value: called on another Counter than the one it was read from",
		"false c.lua:6: Gauge.Set: called on another Gauge than the one it was read from",
		"1 2 false c.lua:7: bad argument #1 to (anonymous) (number expected, got userdata)",
		"2 3",
		"Counter.Add: called on another Counter than the one it was read from",
		"2 2")
}

// Reading a name a class does not have gives nil (JS null, as any nil a host object gives),
// so a script can test for it; calling it fails, in JS naming it; setting it is refused
// naming the class and the key.
func TestHostClassUnknownMember(t *testing.T) {
	got := runWithClasses(t, []*hostClass{counterClass, counterSnap, gaugeClass}, [2]string{"c.lua", `
local c, g = Counter(1), Gauge()
Log(c.Nope == nil, g.Nope == nil, c[1] == nil, g[true] == nil)
local ok = pcall(function() c.Nope() end) Log(ok)
ok = pcall(function() g:Nope() end) Log(ok)
local err
ok, err = pcall(function() c.Nope = 1 end) Log(ok, err)
ok, err = pcall(function() g.Nope = 1 end) Log(ok, err)
ok, err = pcall(function() g.Set = 1 end) Log(ok, err)
ok, err = pcall(function() c.Add = 1 end) Log(ok, err)
`}, [2]string{"c.js", `
var c = new Counter(1);
Log(c.Nope === undefined, typeof c.Nope);
try { c.Nope(1); } catch (e) { Log(e.name + ': ' + e.message); }
try { c.Nope = 1; } catch (e) { Log(e.message); }
try { new Gauge().Nope = 1; } catch (e) { Log(e.message); }
`})
	wantLines(t, got,
		"true true true true",
		"false",
		"false",
		"false c.lua:7: Counter has no field Nope",
		"false c.lua:8: Gauge is read-only: cannot set Nope",
		"false c.lua:9: Gauge is read-only: cannot set Set",
		"false c.lua:10: Counter.Add is read-only",
		"false object", // a host object's nil is JS null
		"TypeError: Nope is not a function",
		"Counter has no field Nope",
		"Gauge is read-only: cannot set Nope")
}

// A method's errors name the class and the method, however it was called; fields are set
// through the class's setter, which may refuse a value; what an instance keeps is its own.
func TestHostClassErrorsAndFields(t *testing.T) {
	got := runWithClasses(t, []*hostClass{counterClass, counterSnap, gaugeClass}, [2]string{"c.lua", `
local g = Gauge()
Log(g.Set(2).Get(), g:Set(3):Get(), g.Label(), Gauge.new():Label())
local ok, err = pcall(function() g.Set(-1) end) Log(ok, err)
ok, err = pcall(function() g:Set('x') end) Log(ok, err)
local c = Counter(0)
c.Step = 2 c.Add(1)
ok, err = pcall(function() c.Step = {} end) Log(ok, err, c.Step, c.Value())
c.Step = nil Log(c.Step)
`}, [2]string{"c.js", `
var g = new Gauge();
try { g.Set('x'); } catch (e) { Log(e.message); }
var c = new Counter(0);
c.Step = 5; c.Add(2);
Log(c.Step, c.Value());
`})
	wantLines(t, got,
		"2 3 g g",
		"false c.lua:4: Gauge.Set: expected a number from 0, got number",
		"false c.lua:5: Gauge.Set: expected a number from 0, got string",
		"false c.lua:8: Counter.Step: a number, not table 2 2",
		"1",
		"Gauge.Set: expected a number from 0, got string",
		"5 10")
}

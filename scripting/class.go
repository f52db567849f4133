package scripting

import (
	lua "github.com/yuin/gopher-lua"

	"github.com/wharf-project/wharf/scripting/jscompat"
)

// Host classes are the objects scripts construct (Syncplify's `new HttpCli()`, `new
// VirtualFS(…)`) and the objects wharf's calls return (an HTTP response, a VFS result).
//
// The convention, for Lua and JavaScript alike:
//
//   - A constructible class is a global X: a read-only table that is callable. X(a, b),
//     X.new(a, b) and X:new(a, b) in Lua, and new X(a, b) in JavaScript, construct an
//     instance. Its metatable's __new (jscompat.ConstructorField) is the constructor; that is
//     how the JS runtime tells a class from other globals ("X is not a constructor").
//   - An instance is a userdata. Its methods can be called with or without self (o:M(x),
//     o.M(x), and in JS o.M(x)); a method that returns the instance makes fluent chains
//     (new HttpCli().Url(u).Header(k, v).Get()). Its fields are read as o.F and, when the
//     class allows it, set as o.F = v; setting any other key is an error, naming it.
//   - A method's nil result is JS null, and a Lua sequence it returns is a JS array, as for
//     wharf's other objects.
//
// A class is described by a hostClass and installed once per Lua state, with the state's
// other globals, by defineClass (in installGlobals, or for tests through Engine.classes).
// Instances are values of the run that made them; nothing of them outlives it.

// hostClass describes a class of host objects.
type hostClass struct {
	name string
	// construct makes a new instance's value from the constructor's arguments, which start
	// at index a (it raises a Lua error for bad arguments). Nil for classes that only
	// wharf's calls make (newInstance): they get no global.
	construct func(v *vm, L *lua.LState, a int) any
	methods   map[string]classMethod
	fields    map[string]classField
}

// classMethod is a method of an instance; its arguments start at index a, whichever way it
// was called. It pushes its results and returns their number, like an LGFunction.
type classMethod func(v *vm, L *lua.LState, self *instance, a int) int

// classField is a field of an instance. set is nil for a read-only field.
type classField struct {
	get func(v *vm, L *lua.LState, self *instance) lua.LValue
	set func(v *vm, L *lua.LState, self *instance, val lua.LValue)
}

// instance is the value of an instance's userdata.
type instance struct {
	class *hostClass
	ud    *lua.LUserData
	Value any // what construct returned, or what newInstance was given
	// bound holds the instance's methods, made on first use: a method bound to its
	// instance serves o.M(x) as well as o:M(x).
	bound map[string]*lua.LFunction
}

// classState is a class as installed in a state: the metatable of its instances.
type classState struct {
	class *hostClass
	meta  *lua.LTable
}

// defineClass installs c in a state being built: the metatable of its instances and, when
// it can be constructed, its global in base. Everything it makes is reachable from base, so
// it becomes read-only with the rest of it, and counts in the state's baseline memory.
func (v *vm) defineClass(base *lua.LTable, c *hostClass) {
	L := v.L
	cs := &classState{class: c, meta: v.instanceMeta(c)}
	if v.classes == nil {
		v.classes = map[*hostClass]*classState{}
	}
	v.classes[c] = cs
	// The metatable is kept under a key no script can name, so that it is reachable from
	// base even for classes without a global.
	base.RawSet(L.CreateTable(0, 0), cs.meta)
	if c.construct == nil {
		return
	}
	methods := L.CreateTable(0, 1)
	global := v.readOnly(methods, c.name)
	methods.RawSetString("new", L.NewFunction(func(L *lua.LState) int { // X.new(…) or X:new(…)
		a := 1
		if L.GetTop() >= 1 && L.Get(1) == lua.LValue(global) {
			a = 2
		}
		L.Push(v.newInstance(c, c.construct(v, L, a)))
		return 1
	}))
	mt := global.Metatable.(*lua.LTable)
	mt.RawSetString("__call", L.NewFunction(func(L *lua.LState) int { // X(…): argument 1 is X
		L.Push(v.newInstance(c, c.construct(v, L, 2)))
		return 1
	}))
	mt.RawSetString(jscompat.ConstructorField, L.NewFunction(func(L *lua.LState) int { // new X(…) in JS
		L.Push(v.newInstance(c, c.construct(v, L, 1)))
		return 1
	}))
	mt.RawSetString("__tostring", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LString(c.name))
		return 1
	}))
	base.RawSetString(c.name, global)
}

// instanceMeta builds the metatable of c's instances.
func (v *vm) instanceMeta(c *hostClass) *lua.LTable {
	L := v.L
	mt := L.CreateTable(0, 5)
	mt.RawSetString("__index", L.NewFunction(func(L *lua.LState) int {
		self, ok := toInstance(L.Get(1), c)
		key, isStr := L.Get(2).(lua.LString)
		if !ok || !isStr {
			L.Push(lua.LNil)
			return 1
		}
		if f, ok := c.fields[string(key)]; ok && f.get != nil {
			L.Push(f.get(v, L, self))
			return 1
		}
		L.Push(self.method(v, string(key)))
		return 1
	}))
	mt.RawSetString("__newindex", L.NewFunction(func(L *lua.LState) int {
		self, ok := toInstance(L.Get(1), c)
		key := L.ToStringMeta(L.Get(2)).String()
		if !ok {
			L.RaiseError("%s: not an instance", c.name)
		}
		f, known := c.fields[key]
		switch {
		case known && f.set != nil:
			f.set(v, L, self, L.Get(3))
		case known:
			L.RaiseError("%s.%s is read-only", c.name, key)
		default:
			L.RaiseError("%s has no field %s", c.name, key)
		}
		return 0
	}))
	mt.RawSetString("__tostring", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LString(c.name))
		return 1
	}))
	mt.RawSetString("__metatable", lua.LString("locked"))
	return mt
}

// newInstance makes an instance of c (installed in this state by defineClass) holding value.
func (v *vm) newInstance(c *hostClass, value any) *lua.LUserData {
	cs, ok := v.classes[c]
	if !ok {
		panic("scripting: class " + c.name + " is not installed in this state")
	}
	ud := v.L.NewUserData()
	ud.Value = &instance{class: c, ud: ud, Value: value}
	ud.Metatable = cs.meta
	return ud
}

// toInstance returns the instance of a userdata of class c.
func toInstance(lv lua.LValue, c *hostClass) (*instance, bool) {
	ud, ok := lv.(*lua.LUserData)
	if !ok {
		return nil, false
	}
	in, ok := ud.Value.(*instance)
	if !ok || in.class != c {
		return nil, false
	}
	return in, true
}

// method returns the instance's method name bound to it, or nil.
func (in *instance) method(v *vm, name string) lua.LValue {
	if f, ok := in.bound[name]; ok {
		return f
	}
	m, ok := in.class.methods[name]
	if !ok {
		return lua.LNil
	}
	f := v.L.NewFunction(func(L *lua.LState) int {
		a := 1
		if L.GetTop() >= 1 && L.Get(1) == lua.LValue(in.ud) {
			a = 2 // o:M(…)
		}
		return m(v, L, in, a)
	})
	if in.bound == nil {
		in.bound = make(map[string]*lua.LFunction, 2)
	}
	in.bound[name] = f
	return f
}

// isNullish reports whether a script passed nothing: nil (Lua nil, JS undefined) or JS null.
func isNullish(lv lua.LValue) bool {
	switch x := lv.(type) {
	case *lua.LNilType:
		return true
	case *lua.LTable:
		if mt, ok := x.Metatable.(*lua.LTable); ok {
			return mt.RawGetString("__metatable") == lua.LString("null")
		}
	}
	return false
}

package scripting

import (
	"fmt"
	"slices"

	lua "github.com/yuin/gopher-lua"

	"github.com/wharf-project/wharf/scripting/jscompat"
)

// Host classes are the objects scripts construct (Syncplify's `new HttpCli()`, `new
// VirtualFS(…)`) and the objects wharf's calls return (an HTTP response, a VFS result).
// Every host object is declared this way, with a hostClass.
//
// The convention, for Lua and JavaScript alike:
//
//   - A constructible class is a global X: a read-only table that is callable. X(a, b),
//     X.new(a, b) and X:new(a, b) in Lua, and new X(a, b) in JavaScript, construct an
//     instance. Its metatable's __new (jscompat.ConstructorField) is the constructor; that is
//     how the JS runtime tells a class from other globals ("X is not a constructor").
//   - An instance is a userdata. Its methods can be called with or without self (o:M(x),
//     o.M(x), and in JS o.M(x)); a method that returns the instance makes fluent chains
//     (new HttpCli().Url(u).Header(k, v).Get()). A method read from one instance and called
//     on another of its class (a.M(b), where b is not an argument M takes) is refused,
//     naming the class and the method.
//   - Its fields are read as o.F and, when the class allows it, set as o.F = v. Setting
//     anything else is an error naming the class and the key: "X.F is read-only", "X has no
//     field K", or, for a class none of whose fields can be set, "X is read-only: cannot set
//     K". Reading a name the class does not have gives nil (JS null), so scripts can
//     test for a member.
//   - Errors a method raises name the class and the method ("HttpCli.Timeout: …", see
//     instance.raise).
//   - A method's nil result is JS null, and a Lua sequence it returns is a JS array, as for
//     wharf's other objects.
//
// A class is described by a hostClass and installed once per Lua state, with the state's
// other globals, by defineClass (in installLib, installHTTP, or for tests through
// Engine.classes), or by singleton for the objects a state has one of. Instances are values of the run that made them; nothing of them outlives
// it.
//
// What an instance holds as Lua values is in its userdata's environment table, where the
// memory measure (LState.ReachableMemory, which does not look into Go values) counts it for
// as long as the script keeps the instance: what the class's code keeps there (instance.keep,
// in the first slots of the array part: a VFS result's data, an HTTP request's URL and body)
// and its methods bound to it (made on first use, in the next slots, in name order). The
// table is made on first use. An instance's Go value holds only Go state of a bounded size.

// hostClass describes a class of host objects.
type hostClass struct {
	name string
	// construct makes a new instance's value from the constructor's arguments, which start
	// at index a (it raises a Lua error for bad arguments). Nil for classes that only
	// wharf's calls make (newInstance): they get no global.
	construct func(v *vm, L *lua.LState, a int) any
	// init, when set, runs on each new instance before it is handed to the script (it keeps
	// the instance's initial Lua values).
	init func(L *lua.LState, self *instance)
	// keeps is how many Lua values an instance keeps (instance.keep: slots 1 to keeps).
	keeps   int
	methods map[string]classMethod
	fields  map[string]classField
	// str, when set, is an instance's tostring (by default, the class's name).
	str func(self *instance) string
	// meta are more metamethods of instances (Date's comparisons and arithmetic).
	meta map[string]lua.LGFunction
	// statics are functions of the class's global besides new (Date.now).
	statics map[string]lua.LGFunction
}

// classMethod is a method of an instance; its arguments start at index a, whichever way it
// was called (2 when called as o:M(…), self first; 1 as o.M(…)). It pushes its results and
// returns their number, like an LGFunction.
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
	slots int // the size of the array part of its table: what it keeps, then its methods
	Value any // what construct returned, or what newInstance was given
}

// keep stores a Lua value the instance holds in slot (1 to its class's keeps), where the
// memory measure sees it. Slots, not names: a table's first named key costs a map.
func (in *instance) keep(L *lua.LState, slot int, val lua.LValue) {
	if slot < 1 || slot > in.class.keeps {
		panic(fmt.Sprintf("scripting: class %s keeps %d values, not slot %d", in.class.name, in.class.keeps, slot))
	}
	in.env(L).RawSetInt(slot, val)
}

// kept returns what keep stored in slot, or nil.
func (in *instance) kept(slot int) lua.LValue {
	if in.ud.Env == nil {
		return lua.LNil
	}
	return in.ud.Env.RawGetInt(slot)
}

// env returns the instance's table, made on first use: many instances (the dates of a
// directory listing) never need one.
func (in *instance) env(L *lua.LState) *lua.LTable {
	if in.ud.Env == nil {
		in.ud.Env = L.CreateTable(in.slots, 0)
	}
	return in.ud.Env
}

// raise raises a script error naming the class and the method: "Class.method: …".
func (in *instance) raise(L *lua.LState, method, format string, args ...any) {
	L.RaiseError("%s.%s: %s", in.class.name, method, fmt.Sprintf(format, args...))
}

// member is a method or a field of a class installed in a state.
type member struct {
	name   string
	method classMethod // nil for a field
	slot   int         // a method's slot in its instances' tables, after what they keep
	field  classField
}

// classState is a class as installed in a state.
type classState struct {
	class    *hostClass
	meta     *lua.LTable // the metatable of its instances
	members  map[string]*member
	slots    int  // the size of the array part of its instances' tables
	settable bool // some field can be set
}

// defineClass installs c in a state being built: the metatable of its instances and, when
// it can be constructed, its global in base. Everything it makes is reachable from base, so
// it becomes read-only with the rest of it, and counts in the state's baseline memory.
func (v *vm) defineClass(base *lua.LTable, c *hostClass) *classState {
	L := v.L
	cs := &classState{class: c, members: make(map[string]*member, len(c.methods)+len(c.fields))}
	names := make([]string, 0, len(c.methods))
	for name := range c.methods {
		names = append(names, name)
	}
	slices.Sort(names) // the same slots in every state
	for i, name := range names {
		cs.members[name] = &member{name: name, method: c.methods[name], slot: c.keeps + i + 1}
	}
	cs.slots = c.keeps + len(names)
	for name, f := range c.fields {
		if _, dup := cs.members[name]; dup {
			panic(fmt.Sprintf("scripting: class %s: %s is both a method and a field", c.name, name))
		}
		cs.members[name] = &member{name: name, field: f}
		cs.settable = cs.settable || f.set != nil
	}
	cs.meta = v.instanceMeta(cs)
	if v.classes == nil {
		v.classes = map[*hostClass]*classState{}
	}
	v.classes[c] = cs
	// The metatable is kept under a key no script can name, so that it is reachable from
	// base even for classes without a global.
	keepShared(L, base, cs.meta)
	if c.construct == nil {
		return cs
	}
	methods := L.CreateTable(0, 1+len(c.statics))
	for name, f := range c.statics {
		methods.RawSetString(name, L.NewFunction(f))
	}
	global := v.readOnly(methods, c.name)
	methods.RawSetString("new", L.NewFunction(func(L *lua.LState) int { // X.new(…) or X:new(…)
		a := 1
		if L.GetTop() >= 1 && L.Get(1) == lua.LValue(global) {
			a = 2
		}
		L.Push(cs.newInstance(L, c.construct(v, L, a)))
		return 1
	}))
	mt := global.Metatable.(*lua.LTable)
	mt.RawSetString("__call", L.NewFunction(func(L *lua.LState) int { // X(…): argument 1 is X
		L.Push(cs.newInstance(L, c.construct(v, L, 2)))
		return 1
	}))
	mt.RawSetString(jscompat.ConstructorField, L.NewFunction(func(L *lua.LState) int { // new X(…) in JS
		L.Push(cs.newInstance(L, c.construct(v, L, 1)))
		return 1
	}))
	mt.RawSetString("__tostring", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LString(c.name))
		return 1
	}))
	base.RawSetString(c.name, global)
	return cs
}

// keepShared makes lv reachable from base under a key no script can name, so that it
// becomes read-only with base and counts in the state's baseline memory.
func keepShared(L *lua.LState, base *lua.LTable, lv lua.LValue) {
	base.RawSet(L.CreateTable(0, 0), lv)
}

// instanceMeta builds the metatable of a class's instances.
func (v *vm) instanceMeta(cs *classState) *lua.LTable {
	L, c := v.L, cs.class
	mt := L.CreateTable(0, 5)
	mt.RawSetString("__index", L.NewFunction(func(L *lua.LState) int {
		key, _ := L.Get(2).(lua.LString)
		m := cs.members[string(key)]
		self, ok := toInstance(L.Get(1), c)
		switch {
		case m == nil || !ok:
			L.Push(lua.LNil)
		case m.method != nil:
			L.Push(cs.bound(v, L, self, m))
		case m.field.get != nil:
			L.Push(m.field.get(v, L, self))
		default:
			L.Push(lua.LNil)
		}
		return 1
	}))
	mt.RawSetString("__newindex", L.NewFunction(func(L *lua.LState) int {
		self, ok := toInstance(L.Get(1), c)
		key := L.ToStringMeta(L.Get(2)).String()
		if !ok {
			L.RaiseError("%s: not an instance", c.name)
		}
		m := cs.members[key]
		switch {
		case !cs.settable:
			L.RaiseError("%s is read-only: cannot set %s", c.name, key)
		case m != nil && m.method == nil && m.field.set != nil:
			m.field.set(v, L, self, L.Get(3))
		case m != nil:
			L.RaiseError("%s.%s is read-only", c.name, key)
		default:
			L.RaiseError("%s has no field %s", c.name, key)
		}
		return 0
	}))
	mt.RawSetString("__tostring", L.NewFunction(func(L *lua.LState) int {
		if self, ok := toInstance(L.Get(1), c); ok && c.str != nil {
			L.Push(lua.LString(c.str(self)))
			return 1
		}
		L.Push(lua.LString(c.name))
		return 1
	}))
	for name, f := range c.meta {
		mt.RawSetString(name, L.NewFunction(f))
	}
	mt.RawSetString("__metatable", lua.LString("locked"))
	return mt
}

// singleton installs c, which has no constructor, with the one instance of it the state
// has (Session, Conn, User: objects that act on the run in progress), holding value.
// The instance's methods are bound at once, while the state is built, so that they are
// shared and read-only with the rest of it; when c has no fields, its instances' metatable
// reads them from a table, with no Go call.
func (v *vm) singleton(base *lua.LTable, c *hostClass, value any) *lua.LUserData {
	L := v.L
	cs := v.defineClass(base, c)
	ud := cs.newInstance(L, value)
	self := ud.Value.(*instance)
	methods := L.CreateTable(0, cs.slots)
	for name, m := range cs.members {
		if m.method != nil {
			methods.RawSetString(name, cs.bound(v, L, self, m))
		}
	}
	if len(c.fields) == 0 {
		cs.meta.RawSetString("__index", methods)
	}
	return ud
}

// bound returns method m bound to self: made on first use and kept in the instance's table,
// it serves o.M(x) as well as o:M(x), and refuses another instance of the class as self.
func (cs *classState) bound(v *vm, L *lua.LState, self *instance, m *member) lua.LValue {
	t := self.env(L)
	if f := t.RawGetInt(m.slot); f != lua.LNil {
		return f
	}
	ud, method, meta := lua.LValue(self.ud), m.method, cs.meta
	f := L.NewFunction(func(L *lua.LState) int {
		a := 1
		if L.GetTop() >= 1 {
			switch first := L.Get(1); {
			case first == ud:
				a = 2 // o:M(…)
			case isInstanceOf(first, meta):
				self.raise(L, m.name, "called on another %s than the one it was read from", cs.class.name)
			}
		}
		return method(v, L, self, a)
	})
	t.RawSetInt(m.slot, f)
	return f
}

// isInstanceOf reports whether lv is an instance of the class whose metatable is meta.
func isInstanceOf(lv lua.LValue, meta *lua.LTable) bool {
	ud, ok := lv.(*lua.LUserData)
	return ok && ud.Metatable == lua.LValue(meta)
}

// newInstance makes an instance of c (installed in this state by defineClass) holding value.
func (v *vm) newInstance(c *hostClass, value any) *lua.LUserData {
	cs, ok := v.classes[c]
	if !ok {
		panic("scripting: class " + c.name + " is not installed in this state")
	}
	return cs.newInstance(v.L, value)
}

// newInstance makes an instance of the class holding value.
func (cs *classState) newInstance(L *lua.LState, value any) *lua.LUserData {
	ud := L.NewUserData()
	ud.Env = nil // NewUserData gives it the running function's environment: not the instance's own
	in := &instance{class: cs.class, ud: ud, slots: cs.slots, Value: value}
	ud.Value = in
	ud.Metatable = cs.meta
	if cs.class.init != nil {
		cs.class.init(L, in)
	}
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

// instanceValue returns the value of lv, an instance whose value is a T. Unlike
// toInstance, it names no class: a class's own methods can use it without an initialization
// cycle.
func instanceValue[T any](lv lua.LValue) (T, bool) {
	var zero T
	ud, ok := lv.(*lua.LUserData)
	if !ok {
		return zero, false
	}
	in, ok := ud.Value.(*instance)
	if !ok {
		return zero, false
	}
	val, ok := in.Value.(T)
	return val, ok
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

package scripting

import (
	"log/slog"
	"path"

	lua "github.com/yuin/gopher-lua"

	"github.com/wharf-project/wharf/core"
)

// userClass is the User object. A state has one (Session.GetUser() points it at the
// session's user; a run serves one session); its value is the *core.User, nil between runs.
var userClass = &hostClass{name: "User",
	str: func(self *instance) string {
		if u, ok := self.Value.(*core.User); ok {
			return "User(" + u.ID + ")"
		}
		return "User"
	},
	methods: map[string]classMethod{
		"GetID": func(_ *vm, L *lua.LState, self *instance, _ int) int {
			if u, ok := self.Value.(*core.User); ok {
				L.Push(lua.LString(u.ID))
				return 1
			}
			L.Push(lua.LNil)
			return 1
		},
	},
	fields: map[string]classField{
		"EMail":       userField(func(u *core.User) string { return u.Email }),
		"Type":        userField(func(u *core.User) string { return u.Type }),
		"Description": userField(func(u *core.User) string { return u.Description }),
		"Subsystems": {get: func(v *vm, L *lua.LState, self *instance) lua.LValue {
			u, ok := self.Value.(*core.User)
			if !ok {
				return lua.LNil
			}
			if v.subsystems == nil { // made once per run
				v.subsystems = L.CreateTable(len(u.Subsystems), 0)
				for _, s := range u.Subsystems {
					v.subsystems.Append(lua.LString(s))
				}
			}
			return v.subsystems
		}},
	}}

// userField is a read-only string field of User.
func userField(get func(*core.User) string) classField {
	return classField{get: func(_ *vm, _ *lua.LState, self *instance) lua.LValue {
		if u, ok := self.Value.(*core.User); ok {
			return lua.LString(get(u))
		}
		return lua.LNil
	}}
}

// installGlobals adds wharf's globals to the base environment.
func (v *vm) installGlobals(base *lua.LTable) {
	L := v.L
	fn := func(name string, f lua.LGFunction) { base.RawSetString(name, L.NewFunction(f)) }
	fn("EventHandler", func(L *lua.LState) int {
		L.Push(lua.LString(v.ev.Name))
		return 1
	})
	fn("CtxRelPath", func(L *lua.LState) int {
		L.Push(lua.LString(v.ev.RelPath))
		return 1
	})
	fn("CtxRelTargetPath", func(L *lua.LState) int {
		L.Push(lua.LString(v.ev.RelTargetPath))
		return 1
	})
	fn("ExtractExt", func(L *lua.LState) int {
		// A short extension of a long string is a copy (see cut).
		s := L.CheckString(1)
		L.Push(cut(s, len(s)-len(path.Ext(s)), len(s)))
		return 1
	})
	fn("Exit", v.exit)
	fn("Terminate", func(L *lua.LState) int {
		ban := lua.LVAsBool(L.Get(1))
		v.term = &ban
		if ban {
			v.notify("Terminate", "addToBlockList=true")
		} else {
			v.notify("Terminate", "addToBlockList=false")
		}
		return v.end(L)
	})

	// Log(msg) logs at info; Log.Debug/Info/Warn/Error(msg) at their level.
	levels := L.CreateTable(0, 4)
	v.logProxy = v.readOnly(levels, "Log")
	for name, level := range map[string]slog.Level{"Debug": slog.LevelDebug, "Info": slog.LevelInfo, "Warn": slog.LevelWarn, "Error": slog.LevelError} {
		levels.RawSetString(name, L.NewFunction(func(L *lua.LState) int {
			first := 1
			if L.GetTop() >= 1 && L.Get(1) == lua.LValue(v.logProxy) {
				first = 2 // Log:Info(msg)
			}
			v.log(L, level, first)
			return 0
		}))
	}
	v.logProxy.Metatable.(*lua.LTable).RawSetString("__call", L.NewFunction(func(L *lua.LState) int {
		v.log(L, slog.LevelInfo, 2) // argument 1 is Log itself
		return 0
	}))
	base.RawSetString("Log", v.logProxy)

	v.dates = v.defineClass(base, dateClass)
}

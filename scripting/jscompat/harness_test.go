package jscompat

import (
	"path"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// stubState is a Lua state with the runtime and the stubs the differential tests use in
// place of wharf's objects: Log writes to out, Session answers fixed values.
func stubState(t testing.TB, out *strings.Builder) *lua.LState {
	t.Helper()
	return stubStateWith(t, out, Options{})
}

// stubStateWith is stubState with runtime options.
func stubStateWith(t testing.TB, out *strings.Builder, opts Options) *lua.LState {
	t.Helper()
	L := lua.NewState(lua.Options{SkipOpenLibs: true, CallStackSize: 200})
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{{lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}, {lua.StringLibName, lua.OpenString},
		{lua.MathLibName, lua.OpenMath}} {
		L.Push(L.NewFunction(lib.open))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	rt, err := Open(L, opts)
	if err != nil {
		t.Fatal(err)
	}
	// The engine hands the runtime to scripts read-only (every table reachable from it, so
	// that no run can change what the next one sees); the programs run against it the same
	// way. The globals stay writable: here they are the scripts' own.
	setReadOnly(rt, map[lua.LValue]bool{L.G.Global: true})
	L.SetGlobal(RuntimeGlobal, rt)
	logf := func(L *lua.LState, first int) int {
		var parts []string
		for i := first; i <= L.GetTop(); i++ {
			parts = append(parts, L.ToStringMeta(L.Get(i)).String())
		}
		out.WriteString(strings.Join(parts, " ") + "\n")
		return 0
	}
	log := L.NewTable()
	for _, lvl := range []string{"Debug", "Info", "Warn", "Error"} {
		log.RawSetString(lvl, L.NewFunction(func(L *lua.LState) int { return logf(L, 1) }))
	}
	L.SetMetatable(log, L.SetFuncs(L.NewTable(), map[string]lua.LGFunction{"__call": func(L *lua.LState) int { return logf(L, 2) }}))
	L.SetGlobal("Log", log)

	sess := L.NewUserData()
	methods := L.SetFuncs(L.NewTable(), map[string]lua.LGFunction{
		"GetID":          func(L *lua.LState) int { L.Push(lua.LString("sess-42")); return 1 },
		"GetUserID":      func(L *lua.LState) int { L.Push(lua.LString("alice")); return 1 },
		"GetProtocol":    func(L *lua.LState) int { L.Push(lua.LString("SFTP")); return 1 },
		"GetRelPath":     func(L *lua.LState) int { L.Push(lua.LString("/in/report.PDF")); return 1 },
		"GetUser":        func(L *lua.LState) int { L.Push(lua.LNil); return 1 },
		"BlockOperation": func(L *lua.LState) int { out.WriteString("[blocked]\n"); return 0 },
		"GetAllCustomData": func(L *lua.LState) int {
			tb := L.NewTable()
			tb.Append(lua.LString("a"))
			tb.Append(lua.LString("b"))
			L.Push(tb)
			return 1
		},
		"GetCustomData": func(L *lua.LState) int {
			items := []string{"a", "b"}
			i := int(L.CheckNumber(L.GetTop()))
			if i >= 0 && i < len(items) {
				L.Push(lua.LString(items[i]))
			} else {
				L.Push(lua.LString(""))
			}
			return 1
		},
	})
	L.SetMetatable(sess, L.SetFuncs(L.NewTable(), map[string]lua.LGFunction{}))
	sess.Metatable.(*lua.LTable).RawSetString("__index", methods)
	L.SetGlobal("Session", sess)
	L.SetGlobal("ExtractExt", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LString(path.Ext(L.CheckString(1))))
		return 1
	}))
	L.SetGlobal("Date", stubDate(L))
	L.SetGlobal("Greeter", stubGreeter(L))
	L.SetGlobal("CtxRelPath", L.NewFunction(func(L *lua.LState) int { L.Push(lua.LString("/in/report.PDF")); return 1 }))
	return L
}

// setReadOnly marks every table reachable from lv read-only, as the engine does.
func setReadOnly(lv lua.LValue, seen map[lua.LValue]bool) {
	if seen[lv] {
		return
	}
	switch x := lv.(type) {
	case *lua.LTable:
		seen[x] = true
		x.SetReadOnly(true)
		setReadOnly(x.Metatable, seen)
		x.ForEach(func(k, v lua.LValue) { setReadOnly(k, seen); setReadOnly(v, seen) })
	case *lua.LFunction:
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
		seen[x] = true
		setReadOnly(x.Metatable, seen)
	}
}

// runJS translates and runs src in a stub state and returns what it logged, and the error
// of the run (uncaught exceptions print like node's last line).
func runJS(t testing.TB, src, name string) (string, string, error) {
	t.Helper()
	code, err := Translate([]byte(src), name)
	if err != nil {
		return "", "", err
	}
	var out strings.Builder
	L := stubState(t, &out)
	defer L.Close()
	fn, err := L.Load(strings.NewReader(code), name)
	if err != nil {
		t.Fatalf("generated Lua does not compile: %v\n%s", err, numbered(code))
	}
	L.Push(fn)
	if err := L.PCall(0, 0, nil); err != nil {
		msg := err.Error()
		if ae, ok := err.(*lua.ApiError); ok && ae.Object != nil {
			msg = L.ToStringMeta(ae.Object).String()
		}
		return out.String(), code, &runError{msg}
	}
	return out.String(), code, nil
}

type runError struct{ msg string }

func (e *runError) Error() string { return e.msg }

func numbered(code string) string {
	var b strings.Builder
	for i, l := range strings.Split(code, "\n") {
		b.WriteString(strings.Repeat(" ", 4-len(itoa(i+1))) + itoa(i+1) + "  " + l + "\n")
	}
	return b.String()
}

func itoa(i int) string {
	s := ""
	for {
		s = string(rune('0'+i%10)) + s
		i /= 10
		if i == 0 {
			return s
		}
	}
}

// stubDate is a small stand-in for wharf's Date: Date(), Date(ms), Date.now(), getTime,
// valueOf, toISOString, toUTCString, the toLocale… methods (with wharf's formatting) and
// subtraction.
func stubDate(L *lua.LState) *lua.LTable {
	mt := L.NewTable()
	newDate := func(L *lua.LState, t time.Time) *lua.LUserData {
		ud := L.NewUserData()
		ud.Value = t
		ud.Metatable = mt
		return ud
	}
	ms := func(lv lua.LValue) float64 {
		if ud, ok := lv.(*lua.LUserData); ok {
			return float64(ud.Value.(time.Time).UnixMilli())
		}
		return float64(lv.(lua.LNumber))
	}
	mt.RawSetString("__index", L.NewFunction(func(L *lua.LState) int {
		t := L.CheckUserData(1).Value.(time.Time)
		switch L.CheckString(2) {
		case "getTime", "valueOf":
			L.Push(L.NewFunction(func(L *lua.LState) int { L.Push(lua.LNumber(t.UnixMilli())); return 1 }))
		case "toUTCString":
			L.Push(L.NewFunction(func(L *lua.LState) int { L.Push(lua.LString(DateUTCString(t))); return 1 }))
		case "toLocaleString", "toLocaleDateString", "toLocaleTimeString":
			// Node runs with TZ=UTC: local time is UTC.
			parts := map[string]int{"toLocaleString": LocaleBoth, "toLocaleDateString": LocaleDate, "toLocaleTimeString": LocaleTime}[L.CheckString(2)]
			L.Push(L.NewFunction(func(L *lua.LState) int { L.Push(lua.LString(DateLocaleString(t.UTC(), parts))); return 1 }))
		case "toISOString":
			L.Push(L.NewFunction(func(L *lua.LState) int {
				L.Push(lua.LString(t.UTC().Format("2006-01-02T15:04:05.000Z07:00")))
				return 1
			}))
		default:
			L.Push(lua.LNil)
		}
		return 1
	}))
	mt.RawSetString("__sub", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LNumber(ms(L.Get(1)) - ms(L.Get(2))))
		return 1
	}))
	date := L.NewTable()
	date.RawSetString("now", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LNumber(time.Now().UnixMilli()))
		return 1
	}))
	L.SetMetatable(date, L.SetFuncs(L.NewTable(), map[string]lua.LGFunction{"__call": func(L *lua.LState) int {
		if n, ok := L.Get(2).(lua.LNumber); ok {
			L.Push(newDate(L, time.UnixMilli(int64(n))))
		} else {
			L.Push(newDate(L, time.Now()))
		}
		return 1
	}}))
	return date
}

// greeter is an instance of the stub host class Greeter.
type greeter struct {
	name, punct string
	count       int
}

// stubGreeter is a host class shaped as wharf's engine installs them (scripting/class.go): a
// callable global whose metatable's __new constructs an instance, with a fluent method
// (Name), a method (Greet), a settable field (Punct) and a read-only one (Count). nodePrelude
// defines the same class in JavaScript.
func stubGreeter(L *lua.LState) *lua.LTable {
	imt := L.NewTable()
	newInstance := func(L *lua.LState, a int) int {
		ud := L.NewUserData()
		ud.Value = &greeter{name: L.CheckString(a), punct: "!"}
		ud.Metatable = imt
		L.Push(ud)
		return 1
	}
	imt.RawSetString("__index", L.NewFunction(func(L *lua.LState) int {
		ud := L.CheckUserData(1)
		g := ud.Value.(*greeter)
		switch L.CheckString(2) {
		case "Name":
			L.Push(L.NewFunction(func(L *lua.LState) int { g.name = L.CheckString(1); L.Push(ud); return 1 }))
		case "Greet":
			L.Push(L.NewFunction(func(L *lua.LState) int {
				g.count++
				L.Push(lua.LString("Hello, " + g.name + g.punct))
				return 1
			}))
		case "Punct":
			L.Push(lua.LString(g.punct))
		case "Count":
			L.Push(lua.LNumber(g.count))
		default:
			L.Push(lua.LNil)
		}
		return 1
	}))
	imt.RawSetString("__newindex", L.NewFunction(func(L *lua.LState) int {
		g := L.CheckUserData(1).Value.(*greeter)
		if L.CheckString(2) != "Punct" {
			L.RaiseError("Greeter has no field %s", L.CheckString(2))
		}
		g.punct = L.CheckString(3)
		return 0
	}))
	class := L.NewTable()
	class.RawSetString("new", L.NewFunction(func(L *lua.LState) int { return newInstance(L, 1) }))
	L.SetMetatable(class, L.SetFuncs(L.NewTable(), map[string]lua.LGFunction{
		"__call":         func(L *lua.LState) int { return newInstance(L, 2) },
		ConstructorField: func(L *lua.LState) int { return newInstance(L, 1) },
	}))
	return class
}

package scripting

import (
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/wharf-project/wharf/scripting/jscompat"
)

// isoLayout is JavaScript's Date.prototype.toISOString format.
const isoLayout = "2006-01-02T15:04:05.000Z07:00"

// date is the value of a Date object. Its methods are closures bound to the object, made on
// first use and cached, so d.getTime() (no self) works as well as d:getTime().
type date struct {
	t   time.Time
	fns [len(dateMethods)]*lua.LFunction
}

// dateMethods are the JS-shaped methods of Date; fields read local time, like JavaScript's.
// A method has get, or call when it takes arguments (from index a, whether it was called with
// self or not).
var dateMethods = [...]struct {
	name string
	get  func(t time.Time) lua.LValue
	call func(L *lua.LState, t time.Time, a int) lua.LValue
}{
	{"getTime", func(t time.Time) lua.LValue { return lua.LNumber(t.UnixMilli()) }, nil},
	{"valueOf", func(t time.Time) lua.LValue { return lua.LNumber(t.UnixMilli()) }, nil},
	{"toISOString", func(t time.Time) lua.LValue { return lua.LString(isoString(t)) }, nil},
	{"toString", func(t time.Time) lua.LValue { return lua.LString(isoString(t)) }, nil},
	{"getFullYear", func(t time.Time) lua.LValue { return lua.LNumber(t.Local().Year()) }, nil},
	{"getMonth", func(t time.Time) lua.LValue { return lua.LNumber(t.Local().Month() - 1) }, nil},
	{"getDate", func(t time.Time) lua.LValue { return lua.LNumber(t.Local().Day()) }, nil},
	{"getDay", func(t time.Time) lua.LValue { return lua.LNumber(t.Local().Weekday()) }, nil},
	{"getHours", func(t time.Time) lua.LValue { return lua.LNumber(t.Local().Hour()) }, nil},
	{"getMinutes", func(t time.Time) lua.LValue { return lua.LNumber(t.Local().Minute()) }, nil},
	{"getSeconds", func(t time.Time) lua.LValue { return lua.LNumber(t.Local().Second()) }, nil},
	{"getMilliseconds", func(t time.Time) lua.LValue { return lua.LNumber(t.Nanosecond() / 1e6) }, nil},
	{"toUTCString", func(t time.Time) lua.LValue { return lua.LString(jscompat.DateUTCString(t)) }, nil},
	{"toGMTString", func(t time.Time) lua.LValue { return lua.LString(jscompat.DateUTCString(t)) }, nil},
	{"toLocaleString", nil, localeMethod(jscompat.LocaleBoth)},
	{"toLocaleDateString", nil, localeMethod(jscompat.LocaleDate)},
	{"toLocaleTimeString", nil, localeMethod(jscompat.LocaleTime)},
}

// localeMethod is toLocaleString(locale, options) and its date and time variants: always in
// en-US (the locale argument is not read), in local time or in options.timeZone.
func localeMethod(parts int) func(L *lua.LState, t time.Time, a int) lua.LValue {
	return func(L *lua.LState, t time.Time, a int) lua.LValue {
		loc := time.Local
		if opts, ok := L.Get(a + 1).(*lua.LTable); ok {
			if tz, ok := opts.RawGetString("timeZone").(lua.LString); ok {
				if strings.EqualFold(string(tz), "UTC") || strings.EqualFold(string(tz), "GMT") {
					loc = time.UTC
				} else if l, err := time.LoadLocation(string(tz)); err == nil && tz != "" && tz != "Local" {
					loc = l
				} else {
					L.RaiseError("RangeError: Invalid time zone specified: %s", string(tz))
				}
			}
		}
		return lua.LString(jscompat.DateLocaleString(t.In(loc), parts))
	}
}

func isoString(t time.Time) string { return t.UTC().Format(isoLayout) }

func (v *vm) newDate(t time.Time) *lua.LUserData {
	ud := v.L.NewUserData()
	ud.Value = &date{t: t}
	ud.Metatable = v.dateMeta
	return ud
}

// toDate returns the date of a Date object; ok is false for any other value.
func toDate(lv lua.LValue) (*date, bool) {
	ud, ok := lv.(*lua.LUserData)
	if !ok {
		return nil, false
	}
	d, ok := ud.Value.(*date)
	return d, ok
}

// dateMillis returns the milliseconds of a Date or a number operand (d - 1000, d - Date.now()).
func dateMillis(L *lua.LState, lv lua.LValue) float64 {
	if d, ok := toDate(lv); ok {
		return float64(d.t.UnixMilli())
	}
	if n, ok := lv.(lua.LNumber); ok {
		return float64(n)
	}
	L.RaiseError("attempt to perform arithmetic on a Date and a %s", lv.Type().String())
	return 0
}

func (v *vm) newDateMeta() *lua.LTable {
	L := v.L
	mt := L.CreateTable(0, 10)
	index := make(map[string]int, len(dateMethods))
	for i, m := range dateMethods {
		index[m.name] = i
	}
	mt.RawSetString("__index", L.NewFunction(func(L *lua.LState) int {
		ud := L.CheckUserData(1)
		d, ok := ud.Value.(*date)
		i, known := index[L.CheckString(2)]
		if !ok || !known {
			L.Push(lua.LNil)
			return 1
		}
		if d.fns[i] == nil {
			m := &dateMethods[i]
			d.fns[i] = L.NewFunction(func(L *lua.LState) int {
				if m.call != nil {
					a := 1
					if L.GetTop() >= 1 && L.Get(1) == lua.LValue(ud) {
						a = 2 // d:toLocaleString(…)
					}
					L.Push(m.call(L, d.t, a))
					return 1
				}
				L.Push(m.get(d.t))
				return 1
			})
		}
		L.Push(d.fns[i])
		return 1
	}))
	mt.RawSetString("__newindex", L.NewFunction(func(L *lua.LState) int {
		L.RaiseError("Date is read-only")
		return 0
	}))
	mt.RawSetString("__tostring", L.NewFunction(func(L *lua.LState) int {
		d, _ := toDate(L.Get(1))
		L.Push(lua.LString(isoString(d.t)))
		return 1
	}))
	mt.RawSetString("__concat", L.NewFunction(func(L *lua.LState) int {
		s := func(lv lua.LValue) string {
			if d, ok := toDate(lv); ok {
				return isoString(d.t)
			}
			return L.ToStringMeta(lv).String()
		}
		L.Push(lua.LString(s(L.Get(1)) + s(L.Get(2))))
		return 1
	}))
	mt.RawSetString("__eq", L.NewFunction(func(L *lua.LState) int {
		a, ok1 := toDate(L.Get(1))
		b, ok2 := toDate(L.Get(2))
		L.Push(lua.LBool(ok1 && ok2 && a.t.Equal(b.t)))
		return 1
	}))
	mt.RawSetString("__lt", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LBool(dateMillis(L, L.Get(1)) < dateMillis(L, L.Get(2))))
		return 1
	}))
	mt.RawSetString("__le", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LBool(dateMillis(L, L.Get(1)) <= dateMillis(L, L.Get(2))))
		return 1
	}))
	mt.RawSetString("__sub", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LNumber(dateMillis(L, L.Get(1)) - dateMillis(L, L.Get(2))))
		return 1
	}))
	mt.RawSetString("__metatable", lua.LString("locked"))
	return mt
}

// dateConstructor implements Date(), Date(ms) and Date(isoString); argument 1 is Date itself.
func (v *vm) dateConstructor(L *lua.LState) int {
	switch a := L.Get(2).(type) {
	case *lua.LNilType:
		L.Push(v.newDate(time.Now()))
	case lua.LNumber:
		L.Push(v.newDate(time.UnixMilli(int64(a))))
	case lua.LString:
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
			if t, err := time.Parse(layout, string(a)); err == nil {
				L.Push(v.newDate(t))
				return 1
			}
		}
		L.ArgError(1, "not a date: "+string(a))
	case *lua.LUserData:
		d, ok := toDate(a)
		if !ok {
			L.ArgError(1, "not a date")
		}
		L.Push(v.newDate(d.t))
	default:
		L.ArgError(1, "expected nothing, milliseconds or an ISO-8601 string")
	}
	return 1
}

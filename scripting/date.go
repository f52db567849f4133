package scripting

import (
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/wharf-project/wharf/scripting/jscompat"
)

// isoLayout is JavaScript's Date.prototype.toISOString format.
const isoLayout = "2006-01-02T15:04:05.000Z07:00"

// date is the value of a Date object, a host class (class.go).
type date struct {
	t time.Time
}

// dateClass is Date: Date() is now, Date(ms) and Date("2024-05-01T10:00:00Z") build a date
// (new Date(…) in JavaScript), Date.now() is the current time in milliseconds, as in
// JavaScript. Dates compare, subtract and concatenate as JavaScript's do.
var dateClass = &hostClass{name: "Date",
	construct: dateConstructor,
	statics: map[string]lua.LGFunction{"now": func(L *lua.LState) int {
		L.Push(lua.LNumber(time.Now().UnixMilli()))
		return 1
	}},
	methods: dateClassMethods(),
	str:     func(self *instance) string { return isoString(self.Value.(*date).t) },
	meta: map[string]lua.LGFunction{
		"__concat": func(L *lua.LState) int {
			s := func(lv lua.LValue) string {
				if d, ok := toDate(lv); ok {
					return isoString(d.t)
				}
				return L.ToStringMeta(lv).String()
			}
			L.Push(lua.LString(s(L.Get(1)) + s(L.Get(2))))
			return 1
		},
		"__eq": func(L *lua.LState) int {
			a, ok1 := toDate(L.Get(1))
			b, ok2 := toDate(L.Get(2))
			L.Push(lua.LBool(ok1 && ok2 && a.t.Equal(b.t)))
			return 1
		},
		"__lt": func(L *lua.LState) int {
			L.Push(lua.LBool(dateMillis(L, L.Get(1)) < dateMillis(L, L.Get(2))))
			return 1
		},
		"__le": func(L *lua.LState) int {
			L.Push(lua.LBool(dateMillis(L, L.Get(1)) <= dateMillis(L, L.Get(2))))
			return 1
		},
		"__sub": func(L *lua.LState) int {
			L.Push(lua.LNumber(dateMillis(L, L.Get(1)) - dateMillis(L, L.Get(2))))
			return 1
		},
	},
}

// dateClassMethods are dateMethods as the class's methods.
func dateClassMethods() map[string]classMethod {
	ms := make(map[string]classMethod, len(dateMethods))
	for _, m := range dateMethods {
		if m.call != nil {
			ms[m.name] = func(_ *vm, L *lua.LState, self *instance, a int) int {
				L.Push(m.call(L, self.Value.(*date).t, a))
				return 1
			}
		} else {
			ms[m.name] = func(_ *vm, L *lua.LState, self *instance, _ int) int {
				L.Push(m.get(self.Value.(*date).t))
				return 1
			}
		}
	}
	return ms
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
	return v.dates.newInstance(v.L, &date{t: t})
}

// toDate returns the date of a Date object; ok is false for any other value.
func toDate(lv lua.LValue) (*date, bool) { return instanceValue[*date](lv) }

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

// dateConstructor implements Date(), Date(ms), Date(isoString) and Date(date); the date is
// argument a, and errors call it argument 1, however Date was called.
func dateConstructor(_ *vm, L *lua.LState, a int) any {
	switch x := L.Get(a).(type) {
	case *lua.LNilType:
		return &date{t: time.Now()}
	case lua.LNumber:
		return &date{t: time.UnixMilli(int64(x))}
	case lua.LString:
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
			if t, err := time.Parse(layout, string(x)); err == nil {
				return &date{t: t}
			}
		}
		L.ArgError(1, "not a date: "+string(x))
	case *lua.LUserData:
		d, ok := toDate(x)
		if !ok {
			L.ArgError(1, "not a date")
		}
		return &date{t: d.t}
	default:
		L.ArgError(1, "expected nothing, milliseconds or an ISO-8601 string")
	}
	return nil
}

package scripting

import (
	"strconv"
	"strings"
	"unsafe"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/pm"
)

// maxString bounds the result of one call of a library function that makes a string
// (string.rep, format, gsub, upper, lower, reverse, table.concat). The run's memory budget
// refuses what would take the run past it, but a single Go call makes its result before the
// budget sees it, and the run's timeout cannot stop a single Go call.
const maxString = 1 << 20

// maxDateFormat bounds os.date's format: each directive can expand about twentyfold.
const maxDateFormat = 256

// capStringLib replaces the string functions that can make a long string with bounded ones
// and removes string.dump.
func capStringLib(L *lua.LState, str *lua.LTable) {
	str.RawSetString("rep", L.NewFunction(strRep))
	str.RawSetString("gsub", L.NewFunction(strGsub))
	format := str.RawGetString("format").(*lua.LFunction).GFunction
	str.RawSetString("format", L.NewFunction(func(L *lua.LState) int {
		f := L.CheckString(1)
		checkFormat(L, f)
		if formatBound(L, f) > maxString {
			L.RaiseError("string.format: result longer than %d bytes", maxString)
		}
		return format(L)
	}))
	for _, name := range []string{"upper", "lower", "reverse"} {
		fn := str.RawGetString(name).(*lua.LFunction).GFunction
		str.RawSetString(name, L.NewFunction(func(L *lua.LState) int {
			if len(L.CheckString(1)) > maxString {
				L.RaiseError("string.%s: result longer than %d bytes", name, maxString)
			}
			return fn(L)
		}))
	}
	str.RawSetString("dump", lua.LNil)
}

// capTableLib replaces table.concat with one whose result is bounded.
func capTableLib(L *lua.LState, tab *lua.LTable) {
	tab.RawSetString("concat", L.NewFunction(tableConcat))
}

// tableConcat is table.concat (with gopher-lua's reading of the bounds: i and j are clamped
// to the table's length) that measures its result before making it, and that does not
// push the elements on the Lua stack as gopher-lua's does (a long table overflowed it).
func tableConcat(L *lua.LState) int {
	t := L.CheckTable(1)
	sep := L.OptString(2, "")
	n := t.Len()
	i, j := L.OptInt(3, 1), L.OptInt(4, n)
	if L.GetTop() == 3 && (i > n || i < 1) {
		L.Push(lua.LString(""))
		return 1
	}
	i, j = max(min(i, n), 1), min(j, n)
	if i > j {
		L.Push(lua.LString(""))
		return 1
	}
	size := 0
	for k := i; k <= j; k++ {
		switch v := t.RawGetInt(k).(type) {
		case lua.LString:
			size += len(v)
		case lua.LNumber:
			size += len(v.String())
		default:
			L.RaiseError("invalid value (%s) at index %d in table for concat", v.Type().String(), k)
		}
		if k < j {
			size += len(sep)
		}
		if size > maxString {
			L.RaiseError("table.concat: result longer than %d bytes", maxString)
		}
	}
	var b strings.Builder
	b.Grow(size)
	for k := i; k <= j; k++ {
		b.WriteString(lua.LVAsString(t.RawGetInt(k)))
		if k < j {
			b.WriteString(sep)
		}
	}
	L.Push(lua.LString(b.String()))
	return 1
}

// formatBound is at least the length of string.format's result, from the format (already
// checked by checkFormat: widths and precisions of at most two digits) and the arguments
// that gopher-lua formats with Go's fmt.
func formatBound(L *lua.LState, f string) int {
	n, arg := len(f), 2
	for i := 0; i < len(f); i++ {
		if f[i] != '%' {
			continue
		}
		i++
		if i < len(f) && f[i] == '%' {
			continue
		}
		for i < len(f) && strings.IndexByte("-+ #0123456789.", f[i]) >= 0 {
			i++
		}
		if i >= len(f) {
			break
		}
		const pad = 100 // a width of at most 99
		switch v := L.Get(arg); f[i] {
		case 's':
			n += pad + len(v.String())
		case 'q': // Go's quoting: at most \xNN for a byte
			n += pad + 2 + 4*len(v.String())
		default: // a number: %99.99f of 1e308 is about 410 bytes
			n += 512
		}
		arg++
	}
	return n
}

// cappedDate bounds os.date's format string.
func cappedDate(L *lua.LState, date *lua.LFunction) *lua.LFunction {
	return L.NewFunction(func(L *lua.LState) int {
		if L.GetTop() >= 1 && len(L.CheckString(1)) > maxDateFormat {
			L.RaiseError("os.date: format longer than %d bytes", maxDateFormat)
		}
		return date.GFunction(L)
	})
}

func strRep(L *lua.LState) int {
	s := L.CheckString(1)
	n := L.CheckInt(2)
	if n <= 0 || s == "" {
		L.Push(lua.LString(""))
		return 1
	}
	if n > maxString/len(s) {
		L.RaiseError("string.rep: result longer than %d bytes", maxString)
	}
	L.Push(lua.LString(strings.Repeat(s, n)))
	return 1
}

// checkFormat refuses what Lua 5.1 refuses (more than two digits of width or precision, which
// would otherwise let "%999999999d" allocate a huge string) and unknown conversions.
func checkFormat(L *lua.LState, f string) {
	for i := 0; i < len(f); i++ {
		if f[i] != '%' {
			continue
		}
		i++
		if i < len(f) && f[i] == '%' {
			continue
		}
		start := i
		for i < len(f) && strings.IndexByte("-+ #0", f[i]) >= 0 {
			i++
		}
		if i-start > 5 {
			L.RaiseError("invalid format (repeated flags)")
		}
		digits := func() {
			d := 0
			for i < len(f) && f[i] >= '0' && f[i] <= '9' {
				i++
				d++
			}
			if d > 2 {
				L.RaiseError("invalid format (width or precision too long)")
			}
		}
		digits()
		if i < len(f) && f[i] == '.' {
			i++
			digits()
		}
		if i >= len(f) || strings.IndexByte("cdiouxXeEfgGqs", f[i]) < 0 {
			conv := "end of format"
			if i < len(f) {
				conv = "'%" + string(f[i]) + "'"
			}
			L.RaiseError("invalid option %s to 'format'", conv)
		}
	}
}

// gsubBatch is how many matches strGsub asks the matcher for at a time, so that it can stop
// early (result too long, run cancelled) without first collecting every match.
const gsubBatch = 256

// strGsub is string.gsub with a bounded, linear-time result (gopher-lua's own rebuilds the
// whole string for every match) that honours the run's context between matches.
func strGsub(L *lua.LState) int {
	str := L.CheckString(1)
	pat := L.CheckString(2)
	L.CheckTypes(3, lua.LTString, lua.LTTable, lua.LTFunction)
	repl := L.Get(3)
	limit := L.OptInt(4, -1)
	src := unsafe.Slice(unsafe.StringData(str), len(str)) // read only
	p, err := pm.Compile(pat)
	if err != nil {
		L.RaiseError("%s", err.Error())
	}
	anchored := p.Anchored()

	var b strings.Builder
	last, n, off := 0, 0, 0
	for off <= len(src) && (limit < 0 || n < limit) {
		want := gsubBatch
		if limit >= 0 {
			want = min(want, limit-n)
		}
		mds, err := p.FindContext(L.Context(), src, off, want)
		if err != nil {
			L.RaiseError("%s", err.Error())
		}
		for _, m := range mds {
			if ctx := L.Context(); ctx != nil && ctx.Err() != nil {
				L.RaiseError("%s", ctx.Err().Error())
			}
			start, end := m.Capture(0), m.Capture(1)
			b.WriteString(str[last:start])
			r, ok := gsubReplacement(L, str, m, repl)
			if !ok {
				r = str[start:end]
			}
			if b.Len()+len(r) > maxString {
				L.RaiseError("string.gsub: result longer than %d bytes", maxString)
			}
			b.WriteString(r)
			last = end
			n++
		}
		if len(mds) < want || anchored {
			break
		}
		m := mds[len(mds)-1]
		off = max(m.Capture(0)+1, m.Capture(1)) // as pm.Find steps past a match
	}
	if b.Len()+len(str)-last > maxString {
		L.RaiseError("string.gsub: result longer than %d bytes", maxString)
	}
	b.WriteString(str[last:])
	L.Push(lua.LString(b.String()))
	L.Push(lua.LNumber(n))
	return 2
}

// gsubReplacement returns the replacement of one match; ok is false when the match is kept
// (a table or function gave nil or false).
func gsubReplacement(L *lua.LState, str string, m *pm.MatchData, repl lua.LValue) (string, bool) {
	switch r := repl.(type) {
	case lua.LString:
		return expandRepl(L, str, m, string(r)), true
	case *lua.LTable:
		return replValue(L, L.GetTable(r, captureValue(L, str, m, 1)))
	case *lua.LFunction:
		ncap := m.CaptureLength()/2 - 1
		L.Push(r)
		if ncap == 0 {
			L.Push(captureValue(L, str, m, 1))
			ncap = 1
		} else {
			for i := 1; i <= ncap; i++ {
				L.Push(captureValue(L, str, m, i))
			}
		}
		L.Call(ncap, 1)
		v := L.Get(-1)
		L.Pop(1)
		return replValue(L, v)
	}
	return "", false
}

func replValue(L *lua.LState, v lua.LValue) (string, bool) {
	switch v := v.(type) {
	case *lua.LNilType:
		return "", false
	case lua.LBool:
		if !bool(v) {
			return "", false
		}
	case lua.LString:
		return string(v), true
	case lua.LNumber:
		return v.String(), true
	}
	L.RaiseError("invalid replacement value (a %s)", v.Type().String())
	return "", false
}

// captureValue returns capture i (1-based; the whole match when the pattern has none).
func captureValue(L *lua.LState, str string, m *pm.MatchData, i int) lua.LValue {
	ncap := m.CaptureLength()/2 - 1
	if ncap == 0 && i == 1 {
		return cut(str, m.Capture(0), m.Capture(1))
	}
	if i < 1 || i > ncap {
		L.RaiseError("invalid capture index")
	}
	if m.IsPosCapture(2 * i) {
		return lua.LNumber(m.Capture(2 * i)) // pm stores positions 1-based
	}
	return cut(str, m.Capture(2*i), m.Capture(2*i+1))
}

// cut returns str[i:j], copied when it is less than half of a string longer than 64 bytes:
// a Go substring keeps its whole source alive, which the run's memory budget, counting
// string lengths, would not see (as gopher-lua's string.sub does, patch 3).
func cut(str string, i, j int) lua.LString {
	s := str[i:j]
	if len(str) > 64 && 2*len(s) < len(str) {
		s = strings.Clone(s)
	}
	return lua.LString(s)
}

// expandRepl expands %0-%9 and %% in a replacement string.
func expandRepl(L *lua.LState, str string, m *pm.MatchData, repl string) string {
	if strings.IndexByte(repl, '%') < 0 {
		return repl
	}
	var b strings.Builder
	for i := 0; i < len(repl); i++ {
		c := repl[i]
		if c != '%' || i+1 == len(repl) {
			b.WriteByte(c)
			continue
		}
		i++
		c = repl[i]
		switch {
		case c == '0':
			b.WriteString(str[m.Capture(0):m.Capture(1)])
		case c >= '1' && c <= '9':
			switch v := captureValue(L, str, m, int(c-'0')).(type) {
			case lua.LString:
				b.WriteString(string(v))
			case lua.LNumber:
				b.WriteString(strconv.Itoa(int(v)))
			}
		default:
			b.WriteByte(c)
		}
		if b.Len() > maxString {
			L.RaiseError("string.gsub: result longer than %d bytes", maxString)
		}
	}
	return b.String()
}

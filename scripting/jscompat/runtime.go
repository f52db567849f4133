package jscompat

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"
)

//go:embed runtime.lua
var runtimeSource string

// RuntimeGlobal is the global through which translated code reaches the runtime.
const RuntimeGlobal = "__jsrt"

// runtimeProto is the compiled runtime; a prototype is immutable and shared by every state.
var runtimeProto = sync.OnceValues(func() (*lua.FunctionProto, error) {
	chunk, err := parse.Parse(strings.NewReader(runtimeSource), "jsruntime")
	if err != nil {
		return nil, err
	}
	return lua.Compile(chunk, "jsruntime")
})

// Options configure the runtime of a state.
type Options struct {
	// Deadline returns the end of the run in progress (zero: none). A regular expression
	// search stops there; without a deadline each search is bounded by DefaultMatchTimeout.
	Deadline func() time.Time
}

// Open builds the JS runtime in L and returns it (a read-only table). It must run with L's
// full globals (before a sandbox hides rawget, getmetatable and the like) and after the
// string library was capped, since the runtime keeps references to both. Call it once per
// state and expose the result as RuntimeGlobal.
func Open(L *lua.LState, opts Options) (lua.LValue, error) {
	proto, err := runtimeProto()
	if err != nil {
		return nil, fmt.Errorf("jscompat runtime: %w", err)
	}
	fn := L.NewFunctionFromProto(proto)
	L.Push(fn)
	L.Push(goHelpers(L, opts))
	if err := L.PCall(1, 2, nil); err != nil {
		return nil, fmt.Errorf("jscompat runtime: %w", err)
	}
	raw, rt := L.Get(-2), L.Get(-1)
	L.Pop(2)
	helpers, ok := raw.(*lua.LTable)
	if !ok {
		return nil, errors.New("jscompat runtime: no table")
	}
	// use("a", "b") returns the helpers a and b: a chunk's header gets all of its helpers in
	// one call instead of one read of the read-only runtime each.
	helpers.RawSetString("use", L.NewFunction(func(L *lua.LState) int {
		n := L.GetTop()
		for i := 1; i <= n; i++ {
			L.Push(helpers.RawGetString(L.CheckString(i)))
		}
		return n
	}))
	return rt, nil
}

func goHelpers(L *lua.LState, opts Options) *lua.LTable {
	t := L.NewTable()
	(&regexps{deadline: opts.Deadline}).open(L, t)
	num := func(name string, f func(float64) lua.LValue) {
		t.RawSetString(name, L.NewFunction(func(L *lua.LState) int {
			L.Push(f(float64(L.CheckNumber(1))))
			return 1
		}))
	}
	num2 := func(name string, f func(a, b float64) float64) {
		t.RawSetString(name, L.NewFunction(func(L *lua.LState) int {
			L.Push(lua.LNumber(f(float64(L.CheckNumber(1)), float64(L.CheckNumber(2)))))
			return 1
		}))
	}
	num("numstr", func(f float64) lua.LValue { return lua.LString(NumberToString(f)) })
	t.RawSetString("tonum", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LNumber(StringToNumber(L.CheckString(1))))
		return 1
	}))
	num2("band", func(a, b float64) float64 { return float64(toInt32(a) & toInt32(b)) })
	num2("bor", func(a, b float64) float64 { return float64(toInt32(a) | toInt32(b)) })
	num2("bxor", func(a, b float64) float64 { return float64(toInt32(a) ^ toInt32(b)) })
	num2("shl", func(a, b float64) float64 { return float64(toInt32(a) << (toUint32(b) & 31)) })
	num2("shr", func(a, b float64) float64 { return float64(toInt32(a) >> (toUint32(b) & 31)) })
	num2("ushr", func(a, b float64) float64 { return float64(toUint32(a) >> (toUint32(b) & 31)) })
	num("bnot", func(f float64) lua.LValue { return lua.LNumber(^toInt32(f)) })
	num("fromCode", func(f float64) lua.LValue {
		c := toUint32(f) & 0xffff
		if c < 0x80 {
			return lua.LString([]byte{byte(c)})
		}
		return lua.LString(string(rune(c)))
	})
	t.RawSetString("radix", L.NewFunction(func(L *lua.LState) int {
		f, r := float64(L.CheckNumber(1)), int(L.CheckNumber(2))
		if r < 2 || r > 36 {
			L.RaiseError("RangeError: toString() radix must be between 2 and 36")
		}
		if f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			L.Push(lua.LString(NumberToString(f))) // fractions in other radixes: not supported, print decimal
			return 1
		}
		L.Push(lua.LString(strconv.FormatInt(int64(f), r)))
		return 1
	}))
	t.RawSetString("fixed", L.NewFunction(func(L *lua.LState) int {
		f, d := float64(L.CheckNumber(1)), int(L.CheckNumber(2))
		if d < 0 || d > 100 {
			L.RaiseError("RangeError: toFixed() digits argument must be between 0 and 100")
		}
		if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) >= 1e21 {
			L.Push(lua.LString(NumberToString(f)))
			return 1
		}
		L.Push(lua.LString(toFixed(f, d)))
		return 1
	}))
	t.RawSetString("parseInt", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LNumber(parseInt(L.CheckString(1), int(L.CheckNumber(2)))))
		return 1
	}))
	t.RawSetString("parseFloat", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LNumber(parseFloat(L.CheckString(1))))
		return 1
	}))
	t.RawSetString("quote", L.NewFunction(func(L *lua.LState) int {
		q, ok := quoteJSON(L.CheckString(1), maxResult)
		if !ok {
			L.RaiseError("JSON.stringify: result longer than %d bytes", maxResult)
		}
		L.Push(lua.LString(q))
		return 1
	}))
	t.RawSetString("jsonParse", L.NewFunction(jsonParse))
	// fast(str, ArrMT, null) returns Go versions of the hottest helpers (str and host):
	// every Lua instruction costs a context check, so a Go function is cheaper than the same
	// work in Lua. str is the Lua ToString, for values other than primitives.
	t.RawSetString("fast", L.NewFunction(func(L *lua.LState) int {
		slow, arrMT, null := L.CheckFunction(1), L.CheckTable(2), L.Get(3)
		toStr := func(L *lua.LState, v lua.LValue) string {
			switch x := v.(type) {
			case lua.LString:
				return string(x)
			case lua.LNumber:
				return NumberToString(float64(x))
			case lua.LBool:
				if x {
					return "true"
				}
				return "false"
			case *lua.LNilType:
				return "undefined"
			}
			L.Push(slow)
			L.Push(v)
			L.Call(1, 1)
			s := L.Get(-1)
			L.Pop(1)
			return lua.LVAsString(s)
		}
		L.Push(L.NewFunction(func(L *lua.LState) int {
			if v, ok := L.Get(1).(lua.LString); ok {
				L.Push(v) // no new string value
				return 1
			}
			L.Push(lua.LString(toStr(L, L.Get(1))))
			return 1
		}))
		L.Push(L.NewFunction(func(L *lua.LState) int { // host: nil is null, a Lua list an array
			switch v := L.Get(1).(type) {
			case *lua.LNilType:
				L.Push(null)
			case *lua.LTable:
				if v.Metatable != lua.LNil {
					L.Push(v)
					break
				}
				// An array: the length at 1, element i at i+2 (runtime.lua's newarr).
				n := v.Len()
				a := L.CreateTable(n+1, 0)
				a.RawSetInt(1, lua.LNumber(n))
				for i := 1; i <= n; i++ {
					a.RawSetInt(i+1, v.RawGetInt(i))
				}
				a.Metatable = arrMT
				L.Push(a)
			default:
				L.Push(v)
			}
			return 1
		}))
		return 2
	}))
	// fastget(get, ArrMT, ObjMT) returns a Go property read for arrays and objects (and
	// strings' length) that falls back to the Lua get for everything else: Lua's type()
	// allocates, and reads are the most frequent helper call.
	t.RawSetString("fastget", L.NewFunction(func(L *lua.LState) int {
		slow, arrMT, objMT := L.CheckFunction(1), L.CheckTable(2), L.CheckTable(3)
		L.Push(L.NewFunction(func(L *lua.LState) int {
			o, k := L.Get(1), L.Get(2)
			switch x := o.(type) {
			case *lua.LTable:
				switch x.Metatable {
				case arrMT:
					if n, ok := k.(lua.LNumber); ok {
						if n >= 0 {
							L.Push(x.RawGet(n + 2)) // element i at i+2 (newarr)
						} else {
							L.Push(lua.LNil)
						}
						return 1
					}
					if k == lua.LString("length") {
						L.Push(x.RawGetInt(1))
						return 1
					}
				case objMT:
					if s, ok := k.(lua.LString); ok {
						L.Push(x.RawGetString(string(s)))
						return 1
					}
				}
			case lua.LString:
				if k == lua.LString("length") {
					L.Push(lua.LNumber(len(x)))
					return 1
				}
			}
			L.Push(slow)
			L.Push(o)
			L.Push(k)
			L.Call(2, 1)
			return 1
		}))
		return 1
	}))
	// callable looks past a protected metatable, which getmetatable cannot.
	t.RawSetString("callable", L.NewFunction(func(L *lua.LState) int {
		var mt lua.LValue
		switch v := L.Get(1).(type) {
		case *lua.LTable:
			mt = v.Metatable
		case *lua.LUserData:
			mt = v.Metatable
		}
		t, ok := mt.(*lua.LTable)
		L.Push(lua.LBool(ok && t.RawGetString("__call") != lua.LNil))
		return 1
	}))
	// ctor returns the constructor of a host class: the __new of its metatable (see the
	// convention in scripting/class.go), or nil.
	t.RawSetString("ctor", L.NewFunction(func(L *lua.LState) int {
		var mt lua.LValue
		switch v := L.Get(1).(type) {
		case *lua.LTable:
			mt = v.Metatable
		case *lua.LUserData:
			mt = v.Metatable
		}
		if t, ok := mt.(*lua.LTable); ok {
			if f, ok := t.RawGetString(ConstructorField).(*lua.LFunction); ok {
				L.Push(f)
				return 1
			}
		}
		L.Push(lua.LNil)
		return 1
	}))
	return t
}

// ConstructorField marks a host class: a global whose metatable has a function under this
// key is one, and `new X(a, b)` in a JS script calls that function with a and b.
const ConstructorField = "__new"

// NumberToString is JavaScript's Number::toString(10): the shortest decimal that reads back
// as f, in fixed notation from 1e-7 up to 1e21 and exponential notation outside.
func NumberToString(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case f == 0:
		return "0"
	}
	if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		return strconv.FormatFloat(f, 'f', 0, 64)
	}
	sign := ""
	if f < 0 {
		sign, f = "-", -f
	}
	e := strconv.FormatFloat(f, 'e', -1, 64) // d.ddde±x
	mant, exp, _ := strings.Cut(e, "e")
	digits := strings.Replace(mant, ".", "", 1)
	x, _ := strconv.Atoi(exp)
	n := x + 1 // the position of the decimal point relative to the digits
	k := len(digits)
	switch {
	case k <= n && n <= 21:
		return sign + digits + strings.Repeat("0", n-k)
	case 0 < n && n <= 21:
		return sign + digits[:n] + "." + digits[n:]
	case -6 < n && n <= 0:
		return sign + "0." + strings.Repeat("0", -n) + digits
	}
	es := "+"
	if n-1 < 0 {
		es = "-"
	}
	m := digits[:1]
	if k > 1 {
		m += "." + digits[1:]
	}
	return sign + m + "e" + es + strconv.Itoa(abs(n-1))
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// toFixed formats like Number.prototype.toFixed: ties round away from zero on the exact
// binary value, which strconv's correctly rounded formatting gives except on exact ties.
func toFixed(f float64, d int) string {
	s := strconv.FormatFloat(f, 'f', d, 64)
	exact := strconv.FormatFloat(f, 'f', -1, 64)
	if i := strings.IndexByte(exact, '.'); i >= 0 && len(exact)-i-1 == d+1 && exact[len(exact)-1] == '5' {
		// An exact tie: JS picks the larger magnitude.
		p := math.Pow(10, float64(d))
		r := math.Floor(math.Abs(f)*p+0.5) / p
		if f < 0 {
			r = -r
		}
		s = strconv.FormatFloat(r, 'f', d, 64)
	}
	if s == "-0" || strings.HasPrefix(s, "-0.") && strings.Trim(s[3:], "0") == "" {
		s = s[1:]
	}
	return s
}

// jsSpace is JavaScript's WhiteSpace and LineTerminator, which Number() and parseInt trim.
func jsSpace(r rune) bool {
	switch r {
	case '\t', '\n', '\v', '\f', '\r', ' ', 0xa0, 0x1680, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000, 0xfeff:
		return true
	}
	return r >= 0x2000 && r <= 0x200a
}

// parseRadixNumber reads a number written with a JS radix prefix ("0x1F", "0o17", "0b101");
// ok is false when s has no such prefix. A digit outside the base gives NaN.
func parseRadixNumber(s string) (v float64, ok bool) {
	if len(s) <= 2 || s[0] != '0' {
		return 0, false
	}
	base := 0
	switch s[1] {
	case 'x', 'X':
		base = 16
	case 'o', 'O':
		base = 8
	case 'b', 'B':
		base = 2
	default:
		return 0, false
	}
	for _, c := range s[2:] {
		d := digitVal(c)
		if d < 0 || d >= base {
			return math.NaN(), true
		}
		v = v*float64(base) + float64(d)
	}
	return v, true
}

// StringToNumber is JavaScript's ToNumber applied to a string.
func StringToNumber(s string) float64 {
	s = strings.TrimFunc(s, jsSpace)
	if s == "" {
		return 0
	}
	if v, ok := parseRadixNumber(s); ok {
		return v
	}
	switch s {
	case "Infinity", "+Infinity":
		return math.Inf(1)
	case "-Infinity":
		return math.Inf(-1)
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
			return math.NaN()
		}
	}
	if strings.HasSuffix(s, ".") {
		s += "0"
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && ne.Err == strconv.ErrRange {
			return f
		}
		return math.NaN()
	}
	return f
}

func digitVal(c rune) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'z':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'Z':
		return int(c-'A') + 10
	}
	return -1
}

func parseInt(s string, radix int) float64 {
	s = strings.TrimLeftFunc(s, jsSpace)
	sign := 1.0
	if s != "" && (s[0] == '+' || s[0] == '-') {
		if s[0] == '-' {
			sign = -1
		}
		s = s[1:]
	}
	strip := true
	if radix != 0 {
		if radix < 2 || radix > 36 {
			return math.NaN()
		}
		strip = radix == 16
	} else {
		radix = 10
	}
	if strip && len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		s, radix = s[2:], 16
	}
	v, n := 0.0, 0
	for _, c := range s {
		d := digitVal(c)
		if d < 0 || d >= radix {
			break
		}
		v = v*float64(radix) + float64(d)
		n++
	}
	if n == 0 {
		return math.NaN()
	}
	return sign * v
}

func parseFloat(s string) float64 {
	s = strings.TrimLeftFunc(s, jsSpace)
	for _, inf := range []string{"Infinity", "+Infinity", "-Infinity"} {
		if strings.HasPrefix(s, inf) {
			if inf[0] == '-' {
				return math.Inf(-1)
			}
			return math.Inf(1)
		}
	}
	// The longest prefix that is a decimal literal.
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
		digits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			digits++
		}
	}
	if digits == 0 {
		return math.NaN()
	}
	end := i
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		j := i + 1
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		k := j
		for k < len(s) && s[k] >= '0' && s[k] <= '9' {
			k++
		}
		if k > j {
			end = k
		}
	}
	num := strings.TrimSuffix(s[:end], ".")
	if strings.HasSuffix(num, ".") || num == "+" || num == "-" {
		num += "0"
	}
	f, err := strconv.ParseFloat(strings.Replace(num, ".e", ".0e", 1), 64)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && ne.Err == strconv.ErrRange {
			return f
		}
		return math.NaN()
	}
	return f
}

func toUint32(f float64) uint32 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return uint32(int64(math.Mod(math.Trunc(f), 4294967296)))
}

func toInt32(f float64) int32 { return int32(toUint32(f)) }

// maxResult bounds what one call of a helper makes (the engine's bound on one library
// call's result): a JSON text to parse, a quoted string.
const maxResult = 1 << 20

// maxJSONDepth bounds the nesting of a JSON text to parse (each level is a Go call).
const maxJSONDepth = 512

// quoteJSON is JSON.stringify of a string; ok is false when the result would be longer than
// limit bytes.
func quoteJSON(s string, limit int) (string, bool) {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); {
		if b.Len() > limit {
			return "", false
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r < 0x20 || r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\u%04x`, s[i])
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	b.WriteByte('"')
	if b.Len() > limit {
		return "", false
	}
	return b.String(), true
}

// jsonParse(text, newarr, newobj, null) builds JS values from JSON; on bad input it returns
// nil and the error message. The text is at most maxResult bytes and maxJSONDepth levels
// deep. What it builds is charged to the run's memory meter as it goes, and every array and
// object being filled stays on the Lua stack until it is done, so that the run's memory
// budget, which measures what is reachable, sees all of it.
func jsonParse(L *lua.LState) int {
	text := L.CheckString(1)
	newArr, newObj := L.CheckFunction(2), L.CheckFunction(3)
	null := L.Get(4)
	if len(text) > maxResult {
		L.RaiseError("JSON.parse: text longer than %d bytes", maxResult)
	}
	const entry = 48 // a table slot or entry, about
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	str := func(s string) lua.LString {
		L.ChargeMemory(16 + int64(len(s)))
		return lua.LString(s)
	}
	// done hands a filled container to newarr or newobj, which return it ready, and takes
	// it (and its keys) off the stack.
	done := func(fn *lua.LFunction, a, b lua.LValue, pushed int) (lua.LValue, error) {
		err := L.CallByParam(lua.P{Fn: fn, NRet: 1, Protect: true}, a, b)
		if err != nil {
			return nil, err
		}
		r := L.Get(-1)
		L.Pop(1 + pushed)
		return r, nil
	}
	var value func(depth int) (lua.LValue, error)
	value = func(depth int) (lua.LValue, error) {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		if d, ok := tok.(json.Delim); ok && depth >= maxJSONDepth && (d == '[' || d == '{') {
			return nil, fmt.Errorf("nesting deeper than %d levels", maxJSONDepth)
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '[':
				t := L.CreateTable(2, 0)
				L.Push(t)
				t.RawSetInt(1, lua.LNumber(0)) // the length, set by newarr
				n := 0
				for dec.More() {
					x, err := value(depth + 1)
					if err != nil {
						return nil, err
					}
					t.RawSetInt(n+2, x) // x is reachable before anything more is charged
					L.ChargeMemory(entry)
					n++
				}
				if _, err := dec.Token(); err != nil {
					return nil, err
				}
				return done(newArr, t, lua.LNumber(n), 1)
			case '{':
				keys, t := L.CreateTable(4, 0), L.CreateTable(0, 4)
				L.Push(keys)
				L.Push(t)
				seen := map[string]bool{}
				for dec.More() {
					kt, err := dec.Token()
					if err != nil {
						return nil, err
					}
					k, _ := kt.(string)
					x, err := value(depth + 1)
					if err != nil {
						return nil, err
					}
					t.RawSetString(k, x) // x is reachable before anything more is charged
					if !seen[k] {
						seen[k] = true
						keys.Append(str(k))
					}
					L.ChargeMemory(3 * entry)
				}
				if _, err := dec.Token(); err != nil {
					return nil, err
				}
				return done(newObj, keys, t, 2)
			}
		case string:
			return str(v), nil
		case json.Number:
			f, err := strconv.ParseFloat(string(v), 64)
			if err != nil {
				return nil, err
			}
			return lua.LNumber(f), nil
		case bool:
			return lua.LBool(v), nil
		case nil:
			return null, nil
		}
		return nil, errors.New("unexpected token")
	}
	top := L.GetTop()
	v, err := value(0)
	L.SetTop(top) // containers left by an error
	if err == nil {
		if _, err2 := dec.Token(); err2 != io.EOF {
			err = errors.New("unexpected non-whitespace character after JSON")
		}
	}
	if err != nil {
		L.Push(lua.LNil)
		L.Push(lua.LString(err.Error()))
		return 2
	}
	L.Push(v)
	return 1
}

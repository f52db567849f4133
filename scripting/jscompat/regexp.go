package jscompat

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dlclark/regexp2/v2"
	lua "github.com/yuin/gopher-lua"
)

// Regular expressions have JavaScript's semantics through regexp2's ECMAScript mode, not Lua
// patterns. Strings are byte strings in wharf, so positions (lastIndex, a match's index, the
// offset given to a replacement function) count bytes, like every other string index; a
// pattern matches characters (UTF-8 sequences), so `.` takes a whole character and a match
// never starts or ends inside one.

// maxPattern bounds the source of a regular expression: it is compiled in one Go call,
// which the run's timeout cannot stop.
const maxPattern = 32 << 10

// maxCachedRegexps bounds a state's cache of compiled regular expressions; the cache is
// emptied when full. Patterns longer than maxCachedPattern are not kept.
const (
	maxCachedRegexps = 64
	maxCachedPattern = 1 << 10
)

// DefaultMatchTimeout bounds one regular expression search when the state has no deadline
// (Options.Deadline is nil).
const DefaultMatchTimeout = 5 * time.Second

// entryMemory is what a table slot costs, about (jsonParse charges the same).
const entryMemory = 48

// compiledRegexp is a compiled regular expression with its JavaScript flags. It is
// immutable, shared by the RegExp objects of a state that have the same pattern and flags.
type compiledRegexp struct {
	re      *regexp2.Regexp
	pattern string // as written: a literal's body, the string given to RegExp()
	flags   string // in JavaScript's canonical order
	global  bool
	sticky  bool
	groups  int      // capture groups, not counting the whole match
	names   []string // names[i] is group i's name ("" when unnamed); nil without named groups
	handle  lua.LValue
}

// jsFlags are the flags wharf accepts, in the order the flags property lists them.
const jsFlags = "gimsuy"

// compileRegexp compiles a JavaScript pattern with its flags.
func compileRegexp(pattern, flags string) (*compiledRegexp, error) {
	if len(pattern) > maxPattern {
		return nil, fmt.Errorf("pattern longer than %d bytes", maxPattern)
	}
	var seen [len(jsFlags)]bool
	opts := regexp2.ECMAScript
	for i := 0; i < len(flags); i++ {
		j := strings.IndexByte(jsFlags, flags[i])
		if j < 0 {
			if flags[i] == 'd' || flags[i] == 'v' {
				return nil, fmt.Errorf("flag %c is not supported", flags[i])
			}
			return nil, fmt.Errorf("invalid flags '%s'", flags)
		}
		if seen[j] {
			return nil, fmt.Errorf("invalid flags '%s'", flags)
		}
		seen[j] = true
		switch flags[i] {
		case 'i':
			opts |= regexp2.IgnoreCase
		case 'm':
			opts |= regexp2.Multiline
		case 's':
			opts |= regexp2.Singleline
		case 'u':
			opts |= regexp2.Unicode
		}
	}
	re, err := regexp2.Compile(pattern, opts, regexp2.OptionMaintainCaptureOrder())
	if err != nil {
		// "error parsing regexp: missing closing ) in `(a`": the caller names the pattern.
		msg := strings.TrimPrefix(err.Error(), "error parsing regexp: ")
		if i := strings.LastIndex(msg, " in `"); i > 0 {
			msg = msg[:i]
		}
		return nil, errors.New(msg)
	}
	c := &compiledRegexp{re: re, pattern: pattern, global: seen[0], sticky: seen[5]}
	var canon []byte
	for j, on := range seen {
		if on {
			canon = append(canon, jsFlags[j])
		}
	}
	c.flags = string(canon)
	c.groups = len(re.GetGroupNumbers()) - 1
	for g := 1; g <= c.groups; g++ {
		if name := re.GroupNameFromNumber(g); name != "" {
			if c.names == nil {
				c.names = make([]string, c.groups+1)
			}
			c.names[g] = name
		}
	}
	return c, nil
}

// CheckRegexp reports whether a regular expression literal's pattern and flags compile, for
// the translator (JavaScript reports a bad literal when the script is parsed).
func CheckRegexp(pattern, flags string) error {
	_, err := compileRegexp(pattern, flags)
	return err
}

// source is the source property: the pattern, escaped so that /source/flags reads back as
// the same expression (a / outside a class, and line breaks).
func (c *compiledRegexp) source() string {
	if c.pattern == "" {
		return "(?:)"
	}
	var b strings.Builder
	char := func(ch byte) {
		switch ch {
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		default:
			b.WriteByte(ch)
		}
	}
	inClass := false
	for i := 0; i < len(c.pattern); i++ {
		ch := c.pattern[i]
		switch ch {
		case '\\':
			b.WriteByte(ch)
			if i+1 < len(c.pattern) {
				i++
				switch c.pattern[i] {
				case '\n':
					b.WriteByte('n')
				case '\r':
					b.WriteByte('r')
				default:
					b.WriteByte(c.pattern[i])
				}
			}
			continue
		case '[':
			inClass = true
		case ']':
			inClass = false
		case '/':
			if !inClass {
				b.WriteByte('\\')
			}
		}
		char(ch)
	}
	return strings.NewReplacer("\u2028", `\u2028`, "\u2029", `\u2029`).Replace(b.String())
}

// input is a subject string decoded to the runes regexp2 matches; offs maps a rune index to
// its byte offset (nil when the string is ASCII and they are the same).
type input struct {
	s     string
	runes []rune
	offs  []int
}

func (in *input) byteAt(r int) int {
	if in.offs == nil {
		return r
	}
	return in.offs[r]
}

// runeAt is the index of the first rune that starts at or after byte offset b.
func (in *input) runeAt(b int) int {
	if in.offs == nil {
		return b
	}
	return sort.SearchInts(in.offs, b)
}

// sub is the text of runes [a, b): a copy when it is a small part of a long subject, so
// that keeping it does not keep the subject (as the string library's captures do).
func (in *input) sub(a, b int) lua.LString {
	s := in.s[in.byteAt(a):in.byteAt(b)]
	if len(in.s) > 64 && 2*len(s) < len(in.s) {
		s = strings.Clone(s)
	}
	return lua.LString(s)
}

// decode fills in for s, reusing its buffers.
func (in *input) decode(s string) {
	in.s = s
	in.runes = in.runes[:0]
	in.offs = in.offs[:0]
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		for i := 0; i < len(s); i++ {
			in.runes = append(in.runes, rune(s[i]))
		}
		in.offs = nil
		return
	}
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		in.runes = append(in.runes, r)
		in.offs = append(in.offs, i)
		i += size
	}
	in.offs = append(in.offs, len(s))
}

// next is the rune index after r, for stepping past an empty match.
func (in *input) next(r int) int { return r + 1 }

// regexps is a state's regular expression machinery: its compiled cache and the runtime's
// tables it builds values with.
type regexps struct {
	deadline func() time.Time
	cache    map[[2]string]*compiledRegexp

	reMT, arrMT, objMT *lua.LTable
	keysKey            lua.LValue
	null               lua.LValue
	str                *lua.LFunction // the runtime's ToString, for values other than primitives

	// scratch is the subject of the operation in progress. An operation that calls back
	// into Lua (replace with a function) decodes its subject into a buffer of its own.
	scratch input
}

// compile returns the compiled form of pattern and flags, from the cache when it is there.
func (rs *regexps) compile(L *lua.LState, pattern, flags string) (*compiledRegexp, error) {
	key := [2]string{pattern, flags}
	if c, ok := rs.cache[key]; ok {
		return c, nil
	}
	c, err := compileRegexp(pattern, flags)
	if err != nil {
		return nil, err
	}
	ud := L.NewUserData()
	ud.Value = c
	c.handle = ud
	if len(pattern) <= maxCachedPattern {
		if rs.cache == nil || len(rs.cache) >= maxCachedRegexps {
			rs.cache = make(map[[2]string]*compiledRegexp)
		}
		rs.cache[key] = c
	}
	return c, nil
}

// object returns the compiled regular expression of a RegExp object.
func (rs *regexps) object(L *lua.LState, n int) (*lua.LTable, *compiledRegexp) {
	t, ok := L.Get(n).(*lua.LTable)
	if ok && t.Metatable == rs.reMT {
		if ud, ok := t.RawGetInt(reHandle).(*lua.LUserData); ok {
			if c, ok := ud.Value.(*compiledRegexp); ok {
				return t, c
			}
		}
	}
	L.ArgError(n, "not a RegExp")
	return nil, nil
}

func (rs *regexps) newObject(L *lua.LState, c *compiledRegexp) *lua.LTable {
	t := L.CreateTable(2, 0)
	t.RawSetInt(reHandle, c.handle)
	setLastIndex(t, 0)
	t.Metatable = rs.reMT
	return t
}

// A RegExp object is a table with the runtime's ReMT as its metatable, its compiled
// expression at [reHandle] and its lastIndex at [reLastIndex] (the array part: a table
// without a hash part is cheap to make, and each evaluation of a literal makes one). Other
// properties a script sets on it are hash keys.
const (
	reHandle    = 1
	reLastIndex = 2
)

func setLastIndex(t *lua.LTable, n int) { t.RawSetInt(reLastIndex, lua.LNumber(n)) }

// subject decodes s into the scratch input. The operation calls rs.release when done.
func (rs *regexps) subject(s string) *input {
	rs.scratch.decode(s)
	return &rs.scratch
}

// release lets go of the operation's subject, so that the state keeps no text of a run
// (nor a large buffer) for the next.
func (rs *regexps) release() {
	in := &rs.scratch
	in.s = ""
	if cap(in.runes) > maxKeptRunes {
		in.runes, in.offs = nil, nil
	}
}

// maxKeptRunes bounds the scratch buffer a state keeps between operations.
const maxKeptRunes = 4 << 10

// find searches c in the subject from rune index from (only at from when sticky) and fills
// caps with the rune positions of the match and its groups (-1 for a group that did not
// take part). It raises an error when the run's time is up or the match too complex.
func (rs *regexps) find(L *lua.LState, c *compiledRegexp, in *input, from int, sticky bool, caps []int) bool {
	if from > len(in.runes) {
		return false
	}
	timeout := DefaultMatchTimeout
	if rs.deadline != nil {
		if d := rs.deadline(); !d.IsZero() {
			timeout = time.Until(d)
			if timeout <= 0 {
				L.RaiseError("regular expression: timed out")
			}
		}
	}
	// The compiled expression belongs to this state, which runs one match at a time.
	c.re.MatchTimeout = timeout
	found := false
	err := c.re.FindRunesMatches(in.runes, from, func(v regexp2.MatchView) bool {
		i, l, _ := v.GroupRange(0)
		if sticky && i != from {
			return false
		}
		found = true
		caps[0], caps[1] = i, i+l
		for g := 1; g <= c.groups; g++ {
			if i, l, ok := v.GroupRange(g); ok {
				caps[2*g], caps[2*g+1] = i, i+l
			} else {
				caps[2*g], caps[2*g+1] = -1, -1
			}
		}
		return false
	})
	if err != nil {
		if errors.Is(err, regexp2.ErrBacktrackingStackLimit) {
			L.RaiseError("regular expression: too complex for this input (backtracking limit)")
		}
		L.RaiseError("regular expression: timed out")
	}
	return found
}

// group returns group g of a match, nil when it did not take part.
func (in *input) group(caps []int, g int) lua.LValue {
	if caps[2*g] < 0 {
		return lua.LNil
	}
	return in.sub(caps[2*g], caps[2*g+1])
}

// groupsObject is a match's groups property: an object of its named groups, or nil.
func (rs *regexps) groupsObject(L *lua.LState, c *compiledRegexp, in *input, caps []int) lua.LValue {
	if c.names == nil {
		return lua.LNil
	}
	ks, t := L.CreateTable(4, 0), L.CreateTable(0, 4)
	seen := map[string]bool{}
	for g := 1; g <= c.groups; g++ {
		name := c.names[g]
		if name == "" {
			continue
		}
		if !seen[name] {
			seen[name] = true
			ks.Append(lua.LString(name))
		}
		if v := in.group(caps, g); v != lua.LNil {
			L.ChargeMemory(stringOverhead + int64(len(v.(lua.LString))))
			t.RawSetString(name, v)
		}
		L.ChargeMemory(2 * entryMemory)
	}
	t.RawSet(rs.keysKey, ks)
	t.Metatable = rs.objMT
	return t
}

// stringOverhead is what a Go string costs besides its bytes (the memory meter's measure).
const stringOverhead = 16

// matchArray builds exec's result: the match and its groups, with index, input and groups.
func (rs *regexps) matchArray(L *lua.LState, c *compiledRegexp, in *input, caps []int) *lua.LTable {
	n := c.groups + 1
	t := L.CreateTable(n+1, 3)
	L.Push(t) // reachable for the memory measure while it is filled
	t.RawSetInt(1, lua.LNumber(n))
	for g := 0; g < n; g++ {
		if v := in.group(caps, g); v != lua.LNil {
			L.ChargeMemory(stringOverhead + int64(len(v.(lua.LString))))
			t.RawSetInt(g+2, v)
		}
	}
	L.ChargeMemory(int64(n+3) * entryMemory)
	t.RawSetString("index", lua.LNumber(in.byteAt(caps[0])))
	t.RawSetString("input", lua.LString(in.s))
	if g := rs.groupsObject(L, c, in, caps); g != lua.LNil {
		t.RawSetString("groups", g)
	}
	t.Metatable = rs.arrMT
	L.Pop(1)
	return t
}

// lastIndex is ToLength(re.lastIndex), in bytes.
func lastIndex(t *lua.LTable) int {
	var f float64
	switch v := t.RawGetInt(reLastIndex).(type) {
	case lua.LNumber:
		f = float64(v)
	case lua.LString:
		f = StringToNumber(string(v))
	case lua.LBool:
		if v {
			f = 1
		}
	}
	if math.IsNaN(f) || f <= 0 {
		return 0
	}
	if f > math.MaxInt32 {
		return math.MaxInt32
	}
	return int(f)
}

// exec is RegExpBuiltinExec: a global or sticky expression starts at its lastIndex and
// updates it. ok is false when there is no match.
func (rs *regexps) exec(L *lua.LState, t *lua.LTable, c *compiledRegexp, s string, caps []int) (*input, bool) {
	start := 0
	if c.global || c.sticky {
		start = lastIndex(t)
		if start > len(s) {
			setLastIndex(t, 0)
			return nil, false
		}
	}
	in := rs.subject(s)
	if !rs.find(L, c, in, in.runeAt(start), c.sticky, caps) {
		if c.global || c.sticky {
			setLastIndex(t, 0)
		}
		return in, false
	}
	if c.global || c.sticky {
		setLastIndex(t, in.byteAt(caps[1]))
	}
	return in, true
}

func capsFor(c *compiledRegexp) []int { return make([]int, 2*(c.groups+1)) }

// open adds the regular expression functions to the runtime's Go helpers.
func (rs *regexps) open(L *lua.LState, t *lua.LTable) {
	fn := func(name string, f lua.LGFunction) { t.RawSetString(name, L.NewFunction(f)) }
	// reinit(ReMT, ArrMT, ObjMT, KEYS, null, str) hands over the runtime's tables.
	fn("reinit", func(L *lua.LState) int {
		rs.reMT, rs.arrMT, rs.objMT = L.CheckTable(1), L.CheckTable(2), L.CheckTable(3)
		rs.keysKey, rs.null, rs.str = L.Get(4), L.Get(5), L.CheckFunction(6)
		return 0
	})
	// reNew(pattern or RegExp, flags or nil) returns a new RegExp, or nil and the error.
	fn("reNew", func(L *lua.LState) int {
		var pattern, flags string
		if src, ok := L.Get(1).(*lua.LTable); ok && src.Metatable == rs.reMT {
			_, c := rs.object(L, 1)
			pattern, flags = c.pattern, c.flags
		} else {
			pattern = L.CheckString(1)
		}
		if f, ok := L.Get(2).(lua.LString); ok {
			flags = string(f)
		}
		c, err := rs.compile(L, pattern, flags)
		if err != nil {
			L.Push(lua.LNil)
			L.Push(lua.LString(fmt.Sprintf("Invalid regular expression: /%s/%s: %v", pattern, flags, err)))
			return 2
		}
		L.Push(rs.newObject(L, c))
		return 1
	})
	fn("reExec", func(L *lua.LState) int {
		t, c := rs.object(L, 1)
		return rs.execMethod(L, t, c, L.CheckString(2))
	})
	fn("reTest", func(L *lua.LState) int {
		t, c := rs.object(L, 1)
		return rs.testMethod(L, t, c, L.CheckString(2))
	})
	fn("reProp", func(L *lua.LState) int {
		_, c := rs.object(L, 1)
		var v lua.LValue = lua.LNil
		switch L.CheckString(2) {
		case "source":
			v = lua.LString(c.source())
		case "flags":
			v = lua.LString(c.flags)
		case "global":
			v = lua.LBool(c.global)
		case "sticky":
			v = lua.LBool(c.sticky)
		case "ignoreCase":
			v = lua.LBool(strings.IndexByte(c.flags, 'i') >= 0)
		case "multiline":
			v = lua.LBool(strings.IndexByte(c.flags, 'm') >= 0)
		case "dotAll":
			v = lua.LBool(strings.IndexByte(c.flags, 's') >= 0)
		case "unicode":
			v = lua.LBool(strings.IndexByte(c.flags, 'u') >= 0)
		case "hasIndices", "unicodeSets":
			v = lua.LFalse
		}
		L.Push(v)
		return 1
	})
	fn("reString", func(L *lua.LState) int {
		_, c := rs.object(L, 1)
		L.Push(lua.LString("/" + c.source() + "/" + c.flags))
		return 1
	})
	fn("reSearch", func(L *lua.LState) int {
		_, c := rs.object(L, 1)
		caps := capsFor(c)
		defer rs.release()
		in := rs.subject(L.CheckString(2))
		if rs.find(L, c, in, 0, c.sticky, caps) {
			L.Push(lua.LNumber(in.byteAt(caps[0])))
		} else {
			L.Push(lua.LNumber(-1))
		}
		return 1
	})
	// remethods(call) returns test(o, s) and exec(o, s) for the translated code: the RegExp
	// methods called directly from Go, and for anything else o.test(s) / o.exec(s) through
	// call, the runtime's method call.
	fn("remethods", func(L *lua.LState) int {
		call := L.CheckFunction(1)
		method := func(name string, f func(L *lua.LState, t *lua.LTable, c *compiledRegexp, s string) int) *lua.LFunction {
			return L.NewFunction(func(L *lua.LState) int {
				if t, ok := L.Get(1).(*lua.LTable); ok && t.Metatable == rs.reMT {
					_, c := rs.object(L, 1)
					return f(L, t, c, rs.toString(L, L.Get(2)))
				}
				// Not a RegExp: call(o, name, args…).
				n := L.GetTop()
				L.Push(call)
				L.Push(L.Get(1))
				L.Push(lua.LString(name))
				for i := 2; i <= n; i++ {
					L.Push(L.Get(i))
				}
				L.Call(n+1, lua.MultRet)
				return L.GetTop() - n
			})
		}
		L.Push(method("test", rs.testMethod))
		L.Push(method("exec", rs.execMethod))
		return 2
	})
	fn("reMatch", rs.match)
	fn("reMatchAll", rs.matchAll)
	fn("reReplace", rs.replace)
	fn("reSplit", rs.split)
}

// testMethod is RegExp.prototype.test.
func (rs *regexps) testMethod(L *lua.LState, t *lua.LTable, c *compiledRegexp, s string) int {
	defer rs.release()
	var buf [8]int
	var caps []int
	if n := 2 * (c.groups + 1); n <= len(buf) {
		caps = buf[:n]
	} else {
		caps = capsFor(c)
	}
	_, ok := rs.exec(L, t, c, s, caps)
	L.Push(lua.LBool(ok))
	return 1
}

// execMethod is RegExp.prototype.exec.
func (rs *regexps) execMethod(L *lua.LState, t *lua.LTable, c *compiledRegexp, s string) int {
	defer rs.release()
	caps := capsFor(c)
	in, ok := rs.exec(L, t, c, s, caps)
	if !ok {
		L.Push(rs.null)
		return 1
	}
	L.Push(rs.matchArray(L, c, in, caps))
	return 1
}

// each calls f for the successive matches of c in the subject from rune index from, as a
// global expression finds them (one past an empty match), sticky ones only where the last
// match ended. f returns false to stop.
func (rs *regexps) each(L *lua.LState, c *compiledRegexp, in *input, from int, caps []int, f func() bool) {
	for from <= len(in.runes) {
		if !rs.find(L, c, in, from, c.sticky, caps) {
			return
		}
		if !f() {
			return
		}
		from = caps[1]
		if caps[1] == caps[0] {
			from = in.next(from)
		}
	}
}

// match is String.prototype.match with a RegExp: exec's result, or for a global expression
// the array of every match's text (null when none).
func (rs *regexps) match(L *lua.LState) int {
	defer rs.release()
	t, c := rs.object(L, 1)
	s := L.CheckString(2)
	caps := capsFor(c)
	if !c.global {
		in, ok := rs.exec(L, t, c, s, caps)
		if !ok {
			L.Push(rs.null)
			return 1
		}
		L.Push(rs.matchArray(L, c, in, caps))
		return 1
	}
	setLastIndex(t, 0)
	in := rs.subject(s)
	out := L.CreateTable(4, 0)
	L.Push(out)
	n := 0
	rs.each(L, c, in, 0, caps, func() bool {
		v := in.sub(caps[0], caps[1])
		L.ChargeMemory(stringOverhead + int64(len(v)) + entryMemory)
		out.RawSetInt(n+2, v)
		n++
		return true
	})
	if n == 0 {
		L.Pop(1)
		L.Push(rs.null)
		return 1
	}
	out.RawSetInt(1, lua.LNumber(n))
	out.Metatable = rs.arrMT
	return 1
}

// matchAll is String.prototype.matchAll: every match as exec gives it, from the
// expression's lastIndex (which it leaves alone). wharf returns an array rather than an
// iterator: for…of, Array.from and indexing work on it.
func (rs *regexps) matchAll(L *lua.LState) int {
	defer rs.release()
	t, c := rs.object(L, 1)
	s := L.CheckString(2)
	caps := capsFor(c)
	out := L.CreateTable(4, 0)
	L.Push(out)
	n := 0
	start := lastIndex(t)
	if start <= len(s) {
		in := rs.subject(s)
		rs.each(L, c, in, in.runeAt(start), caps, func() bool {
			m := rs.matchArray(L, c, in, caps)
			L.ChargeMemory(entryMemory)
			out.RawSetInt(n+2, m)
			n++
			return true
		})
	}
	out.RawSetInt(1, lua.LNumber(n))
	out.Metatable = rs.arrMT
	return 1
}

// split is String.prototype.split with a RegExp separator (its @@split): the pieces
// between matches, with each match's groups between them, at most limit items.
func (rs *regexps) split(L *lua.LState) int {
	defer rs.release()
	_, c := rs.object(L, 1)
	s := L.CheckString(2)
	limit := int64(L.CheckNumber(3))
	out := L.CreateTable(4, 0)
	L.Push(out)
	n := 0
	done := func() int {
		out.RawSetInt(1, lua.LNumber(n))
		out.Metatable = rs.arrMT
		return 1
	}
	push := func(v lua.LValue) bool {
		if s, ok := v.(lua.LString); ok {
			L.ChargeMemory(stringOverhead + int64(len(s)))
		}
		L.ChargeMemory(entryMemory)
		out.RawSetInt(n+2, v)
		n++
		return int64(n) < limit
	}
	if limit == 0 {
		return done()
	}
	in := rs.subject(s)
	caps := capsFor(c)
	size := len(in.runes)
	if size == 0 {
		if !rs.find(L, c, in, 0, true, caps) {
			push(lua.LString(s))
		}
		return done()
	}
	p, q := 0, 0
	for q < size {
		if !rs.find(L, c, in, q, false, caps) || caps[0] >= size {
			break
		}
		q = caps[0]
		e := caps[1]
		if e == p {
			q = in.next(q)
			continue
		}
		if !push(in.sub(p, q)) {
			return done()
		}
		p = e
		for g := 1; g <= c.groups; g++ {
			if !push(in.group(caps, g)) {
				return done()
			}
		}
		q = p
	}
	push(in.sub(p, size))
	return done()
}

// replace is String.prototype.replace (and replaceAll) with a RegExp pattern: every match of
// a global expression, else the first (from lastIndex when sticky), replaced by the expansion
// of a replacement string or by what a function returns for it. The result is at most
// maxResult bytes.
func (rs *regexps) replace(L *lua.LState) int {
	defer rs.release()
	t, c := rs.object(L, 1)
	s := L.CheckString(2)
	rep, repFn := "", (*lua.LFunction)(nil)
	if f, ok := L.Get(3).(*lua.LFunction); ok {
		repFn = f
	} else {
		rep = L.CheckString(3)
	}
	caps := capsFor(c)
	var in *input
	if repFn != nil {
		// The function runs Lua code, which may match other expressions: this operation
		// keeps its own subject.
		in = &input{}
		in.decode(s)
	} else {
		in = rs.subject(s)
	}
	var b strings.Builder
	write := func(x string) {
		if b.Len()+len(x) > maxResult {
			L.RaiseError("replace: result longer than %d bytes", maxResult)
		}
		b.WriteString(x)
	}
	pos := 0 // the byte offset of the text not yet copied
	one := func() bool {
		start, end := in.byteAt(caps[0]), in.byteAt(caps[1])
		write(s[pos:start])
		if repFn != nil {
			write(rs.callReplacer(L, repFn, c, in, caps))
		} else {
			rs.expand(write, rep, c, in, caps)
		}
		pos = end
		return c.global
	}
	if c.global {
		setLastIndex(t, 0)
		rs.each(L, c, in, 0, caps, one)
	} else {
		start := 0
		if c.sticky {
			start = lastIndex(t)
		}
		switch {
		case start > len(s):
			setLastIndex(t, 0)
		case rs.find(L, c, in, in.runeAt(start), c.sticky, caps):
			if c.sticky {
				setLastIndex(t, in.byteAt(caps[1]))
			}
			one()
		case c.sticky:
			setLastIndex(t, 0)
		}
	}
	write(s[pos:])
	L.ChargeMemory(stringOverhead + int64(b.Len()))
	L.Push(lua.LString(b.String()))
	return 1
}

// callReplacer calls a replacement function with the match, its groups, its offset, the
// subject and (when the expression has named groups) the groups object, and returns its
// result as a string.
func (rs *regexps) callReplacer(L *lua.LState, f *lua.LFunction, c *compiledRegexp, in *input, caps []int) string {
	top := L.GetTop()
	L.Push(f)
	for g := 0; g <= c.groups; g++ {
		L.Push(in.group(caps, g))
	}
	L.Push(lua.LNumber(in.byteAt(caps[0])))
	L.Push(lua.LString(in.s))
	nargs := c.groups + 3
	if c.names != nil {
		L.Push(rs.groupsObject(L, c, in, caps))
		nargs++
	}
	L.Call(nargs, 1)
	v := L.Get(-1)
	L.SetTop(top)
	return rs.toString(L, v)
}

// toString is JavaScript's ToString.
func (rs *regexps) toString(L *lua.LState, v lua.LValue) string {
	switch x := v.(type) {
	case lua.LString:
		return string(x)
	case lua.LNumber:
		return NumberToString(float64(x))
	}
	L.Push(rs.str)
	L.Push(v)
	L.Call(1, 1)
	s := L.Get(-1)
	L.Pop(1)
	return lua.LVAsString(s)
}

// expand writes a replacement string with its $ patterns (GetSubstitution): $$, $&, $`,
// $', $1 to $99 (a group that did not take part is empty; a number past the groups stays
// text) and $<name>.
func (rs *regexps) expand(write func(string), rep string, c *compiledRegexp, in *input, caps []int) {
	if strings.IndexByte(rep, '$') < 0 {
		write(rep)
		return
	}
	start, end := in.byteAt(caps[0]), in.byteAt(caps[1])
	text := func(g int) {
		if v := in.group(caps, g); v != lua.LNil {
			write(string(v.(lua.LString)))
		}
	}
	for i := 0; i < len(rep); i++ {
		ch := rep[i]
		if ch != '$' || i+1 >= len(rep) {
			write(rep[i : i+1])
			continue
		}
		nx := rep[i+1]
		switch {
		case nx == '$':
			write("$")
			i++
		case nx == '&':
			write(in.s[start:end])
			i++
		case nx == '`':
			write(in.s[:start])
			i++
		case nx == '\'':
			write(in.s[end:])
			i++
		case nx >= '0' && nx <= '9':
			d := int(nx - '0')
			if i+2 < len(rep) && rep[i+2] >= '0' && rep[i+2] <= '9' {
				if dd := d*10 + int(rep[i+2]-'0'); dd >= 1 && dd <= c.groups {
					text(dd)
					i += 2
					continue
				}
			}
			if d >= 1 && d <= c.groups {
				text(d)
				i++
				continue
			}
			write("$")
		case nx == '<' && c.names != nil:
			close := strings.IndexByte(rep[i+2:], '>')
			if close < 0 {
				write("$")
				continue
			}
			name := rep[i+2 : i+2+close]
			for g := 1; g <= c.groups; g++ {
				if c.names[g] == name && caps[2*g] >= 0 {
					text(g)
					break
				}
			}
			i += 2 + close
		default:
			write("$")
		}
	}
}

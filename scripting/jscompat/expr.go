package jscompat

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/tdewolff/parse/v2/js"
)

// hostObjects are the wharf globals whose methods are called directly, as in a Lua script.
var hostObjects = map[string]bool{"Session": true, "Conn": true}

// hostResult lists the wharf methods whose result needs adapting to JS: nil is null, a Lua
// sequence is an array. The others return strings, numbers, Dates or nothing.
var hostResult = map[string]bool{"GetUser": true, "GetLastCommandTime": true, "GetLastErrorTime": true,
	"GetAllCustomData": true, "GetAnsweredQuestions": true, "GetCurrentVFS": true}

// hostString lists the wharf methods and functions known to return a string.
var hostString = map[string]bool{"GetID": true, "GetUserID": true, "GetVirtualSite": true,
	"GetRemoteAddress": true, "GetClientVersion": true, "GetProtocol": true, "GetAbsPath": true,
	"GetAbsTargetPath": true, "GetRelPath": true, "GetRelTargetPath": true, "GetLastCommand": true,
	"GetLastError": true, "GetCustomData": true}

var hostFuncString = map[string]bool{"ExtractExt": true, "CtxRelPath": true, "CtxRelTargetPath": true, "EventHandler": true}

// namespaces are JS built-in objects provided by the runtime, by JS name.
var namespaces = map[string]string{"Math": "Math", "JSON": "JSON", "Object": "Object", "Array": "Array",
	"String": "StringNS", "Number": "NumberNS"}

// refused are globals whose use is outside the subset.
var refused = map[string]string{"eval": "eval", "arguments": "arguments object", "Function": "Function constructor",
	"globalThis": "globalThis", "Symbol": "Symbol", "Promise": "Promise", "Proxy": "Proxy", "Reflect": "Reflect",
	"Map": "Map", "Set": "Set", "WeakMap": "WeakMap", "WeakSet": "WeakSet",
	"require": "require", "setTimeout": "setTimeout", "setInterval": "setInterval"}

func isGlobal(v *js.Var) bool {
	for v.Link != nil {
		v = v.Link
	}
	return v.Decl == js.NoDecl
}

func globalName(e js.IExpr) string {
	if v, ok := e.(*js.Var); ok && isGlobal(v) {
		return string(v.Name())
	}
	return ""
}

func (t *translator) expr(e js.IExpr) ex {
	switch n := e.(type) {
	case *js.Var:
		return t.ident(n)
	case *js.LiteralExpr:
		return t.literal(n)
	case *js.GroupExpr:
		return t.expr(n.X)
	case *js.ArrayExpr:
		return t.array(n)
	case *js.ObjectExpr:
		return t.object(n)
	case *js.TemplateExpr:
		return t.template(n)
	case *js.DotExpr:
		return t.dot(n)
	case *js.IndexExpr:
		if n.Optional {
			o := t.expr(n.X)
			k := t.operands2(o, n.Y)
			return ex{s: t.h("opt") + "(" + o.s + ", " + k.s + ")", call: true}
		}
		o := t.expr(n.X)
		k := t.operands2(o, n.Y)
		return t.get(o, k)
	case *js.CallExpr:
		return t.call(n)
	case *js.NewExpr:
		return t.newExpr(n)
	case *js.UnaryExpr:
		return t.unary(n)
	case *js.BinaryExpr:
		return t.binary(n)
	case *js.CondExpr:
		c := t.cond(n.Cond)
		r := t.newTemp()
		t.emit("local " + r)
		t.open("if " + c + " then")
		a := t.expr(n.X)
		t.emit(r + " = " + a.s)
		t.f.indent--
		t.open("else")
		b := t.expr(n.Y)
		t.emit(r + " = " + b.s)
		t.close("end")
		typ := tAny
		if a.t == b.t {
			typ = a.t
		}
		return ex{s: r, t: typ, pure: true}
	case *js.CommaExpr:
		for _, x := range n.List[:len(n.List)-1] {
			t.exprStmt(x)
		}
		return t.expr(n.List[len(n.List)-1])
	case *js.FuncDecl:
		t.checkFunc(n, "function")
		f := t.newTemp()
		if n.Name != nil {
			// A named function expression sees its own name.
			name := t.varName(n.Name)
			t.emitPure("local " + name)
			t.defineFunction(name+" = ", &n.Params, &n.Body, "")
			t.emitPure("local " + f + " = " + name)
		} else {
			t.defineFunction("local "+f+" = ", &n.Params, &n.Body, "")
		}
		return ex{s: f, pure: true}
	case *js.ArrowFunc:
		if n.Async {
			t.unsupported("async", "async function")
		}
		f := t.newTemp()
		t.defineFunction("local "+f+" = ", &n.Params, &n.Body, "")
		return ex{s: f, pure: true}
	case *js.ClassDecl:
		t.unsupported("class", "class expression")
	case *js.YieldExpr:
		t.unsupported("yield", "yield")
	case *js.NewTargetExpr:
		t.unsupported("new", "new.target")
	case *js.ImportMetaExpr:
		t.unsupported("import", "import.meta")
	}
	t.unsupported("", "expression")
	return ex{}
}

func (t *translator) ident(v *js.Var) ex {
	name := string(v.Name())
	t.pos.find(name)
	if !isGlobal(v) {
		return ex{s: t.varName(v), t: t.types[root(v)], nonNeg: t.nonNeg[root(v)]}
	}
	switch name {
	case "undefined":
		return ex{s: "nil", pure: true}
	case "NaN":
		return ex{s: "(0/0)", t: tNum, pure: true}
	case "Infinity":
		return ex{s: "(1/0)", t: tNum, pure: true}
	case "parseInt", "parseFloat", "isNaN", "isFinite", "String", "Number", "Boolean", "RegExp":
		return ex{s: t.h(name), pure: true}
	}
	if ns, ok := namespaces[name]; ok {
		return ex{s: t.h(ns), pure: true}
	}
	if what, ok := refused[name]; ok {
		l, c := t.pos.here()
		// the name was just found: report at it
		for i := t.pos.cur - 1; i >= 0; i-- {
			if string(t.pos.toks[i].text) == name {
				l, c = t.pos.toks[i].line, t.pos.toks[i].col
				break
			}
		}
		t.fail(l, c, "unsupported: %s", what)
	}
	if hostObjects[name] {
		return ex{s: name, t: tHost}
	}
	if validLuaName(name) {
		return ex{s: name}
	}
	return ex{s: "_G[" + luaString(name) + "]"}
}

func (t *translator) literal(n *js.LiteralExpr) ex {
	t.pos.at(n.Data)
	switch n.TokenType {
	case js.StringToken:
		return ex{s: luaString(decodeString(n.Data[1 : len(n.Data)-1])), t: tStr, pure: true}
	case js.DecimalToken, js.BinaryToken, js.OctalToken, js.HexadecimalToken, js.IntegerToken:
		if strings.HasSuffix(string(n.Data), "n") {
			t.unsupportedAt(n.Data, "BigInt literal")
		}
		f := parseNumber(string(n.Data))
		return ex{s: luaNumber(f), t: tNum, pure: true, nonNeg: f >= 0}
	case js.TrueToken:
		return ex{s: "true", t: tBool, pure: true}
	case js.FalseToken:
		return ex{s: "false", t: tBool, pure: true}
	case js.NullToken:
		return ex{s: t.h("null"), pure: true}
	case js.ThisToken:
		t.unsupportedAt(n.Data, "this")
	case js.RegExpToken:
		// A literal is compiled here once, so that a bad one is refused when the script is
		// loaded, as JavaScript does; each evaluation makes a new RegExp (its lastIndex is
		// its own) from the state's compiled copy.
		pattern, flags := splitRegexpLiteral(n.Data)
		if err := CheckRegexp(pattern, flags); err != nil {
			l, c, ok := t.pos.at(n.Data)
			if !ok {
				l, c = t.pos.here()
			}
			t.fail(l, c, "invalid regular expression: /%s/%s: %v", pattern, flags, err)
		}
		return ex{s: t.h("re") + "(" + luaString(pattern) + ", " + luaString(flags) + ")", call: true}
	case js.SuperToken:
		t.unsupportedAt(n.Data, "super")
	}
	t.unsupportedAt(n.Data, "literal "+string(n.Data))
	return ex{}
}

// operands2 translates the second operand of an operation whose first is already translated
// as a: when b needs statements of its own, a is evaluated first into a temporary.
func (t *translator) operands2(a ex, be js.IExpr) ex {
	mark, imp := len(t.f.lines), t.impure
	b := t.expr(be)
	if t.impure != imp && !a.pure {
		t.capture(&a, mark)
	}
	return b
}

// capture stores *a in a temporary declared at line index mark (before the statements that
// followed its translation).
func (t *translator) capture(a *ex, mark int) {
	name := t.newTemp()
	l := line{indent: t.f.indent, text: "local " + name + " = " + a.s}
	t.f.lines = append(t.f.lines, line{})
	copy(t.f.lines[mark+1:], t.f.lines[mark:])
	t.f.lines[mark] = l
	a.s, a.pure, a.call = name, true, false
}

// list translates expressions left to right, keeping their order of evaluation when a later
// one needs statements of its own.
func (t *translator) list(es []js.IExpr) []ex {
	out := make([]ex, 0, len(es))
	for _, e := range es {
		mark, imp := len(t.f.lines), t.impure
		v := t.expr(e)
		if t.impure != imp {
			// Earlier operands are evaluated before this one's statements.
			for i := len(out) - 1; i >= 0; i-- {
				if !out[i].pure {
					t.capture(&out[i], mark)
				}
			}
		}
		out = append(out, v)
	}
	return out
}

// get reads a property.
func (t *translator) get(o, k ex) ex {
	if o.t == tStr && k.s == `"length"` {
		return ex{s: "#" + paren(o.s), t: tNum}
	}
	if o.t == tArr && validLuaName(o.s) {
		// An array keeps its length at [1] and element i at [i + 2] (runtime.lua's newarr).
		if k.s == `"length"` {
			return ex{s: o.s + "[1]", t: tNum}
		}
		if i, err := strconv.Atoi(k.s); err == nil && i >= 0 && k.t == tNum {
			return ex{s: o.s + "[" + strconv.Itoa(i+2) + "]"}
		}
		if k.t == tNum && k.nonNeg && validLuaName(k.s) {
			return ex{s: o.s + "[" + k.s + " + 2]"}
		}
	}
	return ex{s: t.h("get") + "(" + o.s + ", " + k.s + ")", call: true}
}

func (t *translator) propName(y js.IExpr) string {
	if p, ok := y.(js.LiteralExpr); ok {
		y = &p
	}
	switch p := y.(type) {
	case *js.LiteralExpr:
		t.pos.at(p.Data)
		if p.TokenType == js.PrivateIdentifierToken || strings.HasPrefix(string(p.Data), "#") {
			t.unsupportedAt(p.Data, "private name")
		}
		return string(p.Data)
	case *js.Var:
		t.pos.find(string(p.Data))
		return string(p.Data)
	}
	t.unsupported("", fmt.Sprintf("property name %T", y))
	return ""
}

func (t *translator) dot(n *js.DotExpr) ex {
	if g := globalName(n.X); g != "" {
		if ns, ok := namespaces[g]; ok {
			t.pos.find(g)
			key := t.propName(n.Y)
			return ex{s: t.h(ns) + "[" + luaString(key) + "]"}
		}
	}
	o := t.expr(n.X)
	key := t.propName(n.Y)
	if n.Optional {
		return ex{s: t.h("opt") + "(" + o.s + ", " + luaString(key) + ")", call: true}
	}
	if o.t == tHost {
		return ex{s: o.s + luaField(key)}
	}
	return t.get(o, ex{s: luaString(key), t: tStr, pure: true})
}

// args translates call arguments after the callee parts already translated (before).
func (t *translator) args(before []*ex, a js.Args) []ex {
	var es []js.IExpr
	for _, x := range a.List {
		if x.Rest {
			t.unsupported("...", "spread argument")
		}
		es = append(es, x.Value)
	}
	mark, imp := len(t.f.lines), t.impure
	out := t.list(es)
	if t.impure != imp {
		for i := len(before) - 1; i >= 0; i-- {
			if !before[i].pure {
				t.capture(before[i], mark)
			}
		}
	}
	// A call in last position would pass on all of its results: keep exactly one.
	if n := len(out); n > 0 && out[n-1].call {
		out[n-1].s = "(" + out[n-1].s + ")"
	}
	return out
}

func joinEx(es []ex) string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.s
	}
	return strings.Join(parts, ", ")
}

// strs converts log arguments to strings as JS's String() would.
func (t *translator) strs(es []ex) string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = t.toStr(e).s
	}
	return strings.Join(parts, ", ")
}

func (t *translator) toStr(e ex) ex {
	if e.t == tStr {
		return e
	}
	if e.t == tNum {
		return ex{s: t.h("numstr") + "(" + e.s + ")", t: tStr, call: true}
	}
	return ex{s: t.h("str") + "(" + e.s + ")", t: tStr, call: true}
}

func (t *translator) call(n *js.CallExpr) ex {
	if n.Optional {
		t.unsupported("?.", "optional call")
	}
	switch x := n.X.(type) {
	case *js.GroupExpr:
		return t.call(&js.CallExpr{X: x.X, Args: n.Args})
	case *js.Var:
		g := ""
		if isGlobal(x) {
			g = string(x.Name())
		}
		switch g {
		case "Log":
			t.pos.find(g)
			a := t.args(nil, n.Args)
			return ex{s: "Log(" + t.strs(a) + ")", call: true}
		case "String":
			t.pos.find(g)
			a := t.args(nil, n.Args)
			if len(a) == 0 {
				return ex{s: `""`, t: tStr, pure: true}
			}
			return t.toStr(a[0])
		case "Number":
			t.pos.find(g)
			a := t.args(nil, n.Args)
			if len(a) == 0 {
				return ex{s: "0", t: tNum, pure: true}
			}
			return t.toNum(a[0])
		case "Boolean":
			t.pos.find(g)
			a := t.args(nil, n.Args)
			if len(a) == 0 {
				return ex{s: "false", t: tBool, pure: true}
			}
			return ex{s: t.truthy(a[0]), t: tBool}
		}
		f := t.ident(x)
		if !validLuaName(f.s) {
			f.s = "(" + f.s + ")" // undefined(), NaN()
		}
		a := t.args([]*ex{&f}, n.Args)
		r := ex{s: f.s + "(" + joinEx(a) + ")", call: true}
		if hostFuncString[g] {
			r.t = tStr
		}
		return r
	case *js.DotExpr:
		g := globalName(x.X)
		if ns, ok := namespaces[g]; ok && !x.Optional {
			t.pos.find(g)
			key := t.propName(x.Y)
			a := t.args(nil, n.Args)
			r := ex{s: t.h(ns) + "[" + luaString(key) + "](" + joinEx(a) + ")", call: true}
			if g == "JSON" && key == "stringify" || g == "String" {
				r.t = tAny // stringify can give undefined
			}
			return r
		}
		if g == "Log" && !x.Optional {
			t.pos.find(g)
			key := t.propName(x.Y)
			a := t.args(nil, n.Args)
			return ex{s: "Log[" + luaString(key) + "](" + t.strs(a) + ")", call: true}
		}
		o := t.expr(x.X)
		key := t.propName(x.Y)
		if x.Optional {
			t.unsupported("", "optional method call")
		}
		if hostObjects[g] && validLuaName(key) {
			a := t.args(nil, n.Args)
			r := ex{s: g + "." + key + "(" + joinEx(a) + ")", call: true}
			if hostResult[key] {
				r.s = t.h("host") + "(" + r.s + ")"
				if key == "GetAllCustomData" {
					r.t = tArr
				}
			} else if hostString[key] {
				r.t = tStr
			}
			return r
		}
		args := n.Args
		if key == "replace" || key == "replaceAll" || key == "split" {
			key, args = t.literalRegexp(key, args)
		}
		a := t.args([]*ex{&o}, args)
		if (key == "test" || key == "exec") && o.t != tStr && o.t != tArr {
			return ex{s: t.h(key) + "(" + joinEx(append([]ex{o}, a...)) + ")", call: true}
		}
		// Methods of values whose type is known are called directly.
		if rt, ok := strMethods[key]; ok && o.t == tStr {
			return ex{s: t.h("S") + luaField(key) + "(" + joinEx(append([]ex{o}, a...)) + ")", t: rt, call: true}
		}
		if rt, ok := arrMethods[key]; ok && o.t == tArr {
			return ex{s: t.h("AR") + luaField(key) + "(" + joinEx(append([]ex{o}, a...)) + ")", t: rt, call: true}
		}
		parts := append([]ex{o, {s: luaString(key)}}, a...)
		return ex{s: t.h("call") + "(" + joinEx(parts) + ")", call: true}
	case *js.IndexExpr:
		if x.Optional {
			t.unsupported("", "optional method call")
		}
		o := t.expr(x.X)
		k := t.operands2(o, x.Y)
		a := t.args([]*ex{&o, &k}, n.Args)
		parts := append([]ex{o, k}, a...)
		return ex{s: t.h("call") + "(" + joinEx(parts) + ")", call: true}
	}
	f := t.expr(n.X)
	if !validLuaName(f.s) {
		f.s = "(" + f.s + ")" // a Lua call needs a prefix expression: (0)(), ("s")()
	}
	a := t.args([]*ex{&f}, n.Args)
	return ex{s: f.s + "(" + joinEx(a) + ")", call: true}
}

func (t *translator) newExpr(n *js.NewExpr) ex {
	nl, nc := t.pos.find("new")
	g := globalName(n.X)
	var a []ex
	args := func() {
		if n.Args != nil {
			a = t.args(nil, *n.Args)
		}
	}
	switch g {
	case "RegExp":
		t.pos.find(g)
		args()
		return ex{s: t.h("RegExp") + "(" + joinEx(a) + ")", call: true}
	case "Date":
		t.pos.find(g)
		args()
		return ex{s: t.h("newDate") + "(" + strings.Join(append([]string{"Date"}, exStrings(a)...), ", ") + ")", call: true}
	case "Error", "TypeError", "RangeError", "SyntaxError", "ReferenceError":
		t.pos.find(g)
		args()
		msg := "nil"
		if len(a) > 0 {
			msg = a[0].s
		}
		return ex{s: t.h("newerror") + "(" + luaString(g) + ", " + msg + ")", call: true}
	case "Object":
		t.pos.find(g)
		args()
		if len(a) == 0 {
			return ex{s: t.h("O") + "({}, {})", call: true}
		}
	case "Array":
		t.pos.find(g)
		args()
		if len(a) == 0 {
			return ex{s: t.h("A") + "({0}, 0)", call: true}
		}
	}
	// Any other global is a host class (VirtualFS, HttpCli, …), constructed by the runtime's
	// new, which refuses what is not one at run time ("X is not a constructor"). A script's
	// own functions cannot be constructors: `this` is outside the subset.
	_, refusedName := refused[g]
	_, builtin := namespaces[g]
	builtin = builtin || builtinFuncs[g] || hostObjects[g]
	name := hostClassName(n.X)
	if refusedName || builtin || name == "" || g == "" && isVar(n.X) {
		what := "new with a computed constructor"
		if g != "" {
			what = "new " + g
		} else if v, ok := n.X.(*js.Var); ok {
			what = "new " + string(v.Name())
		}
		t.fail(nl, nc, "unsupported: %s", what)
	}
	c := t.expr(n.X)
	before := []*ex{&c}
	if n.Args != nil {
		a = t.args(before, *n.Args)
	}
	return ex{s: t.h("new") + "(" + strings.Join(append([]string{c.s, luaString(name)}, exStrings(a)...), ", ") + ")", call: true}
}

// builtinFuncs are the globals, besides the namespaces, that the translator maps to the
// runtime or to wharf's functions, and that new cannot construct.
var builtinFuncs = map[string]bool{"parseInt": true, "parseFloat": true, "isNaN": true, "isFinite": true,
	"String": true, "Number": true, "Boolean": true, "Log": true, "undefined": true, "NaN": true, "Infinity": true}

func isVar(e js.IExpr) bool {
	_, ok := e.(*js.Var)
	return ok
}

// hostClassName is how new's constructor is written when it can name a host class: a
// variable or a chain of property names (Ns.Class); "" otherwise.
func hostClassName(e js.IExpr) string {
	switch x := e.(type) {
	case *js.Var:
		return string(x.Name())
	case *js.DotExpr:
		if x.Optional {
			return ""
		}
		left := hostClassName(x.X)
		if left == "" {
			return ""
		}
		switch y := x.Y.(type) {
		case js.LiteralExpr:
			return left + "." + string(y.Data)
		case *js.LiteralExpr:
			return left + "." + string(y.Data)
		}
	}
	return ""
}

// splitRegexpLiteral splits a regular expression literal (/body/flags) into its pattern and
// flags.
func splitRegexpLiteral(lit []byte) (pattern, flags string) {
	end := strings.LastIndexByte(string(lit), '/')
	return string(lit[1:end]), string(lit[end+1:])
}

func exStrings(es []ex) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.s
	}
	return out
}

func (t *translator) array(n *js.ArrayExpr) ex {
	var es []js.IExpr
	for _, el := range n.List {
		if el.Spread {
			t.unsupported("...", "spread element")
		}
		es = append(es, el.Value)
	}
	vals := make([]ex, len(es))
	var present []js.IExpr
	var idx []int
	for i, e := range es {
		if e == nil {
			vals[i] = ex{s: "nil", pure: true}
			continue
		}
		present = append(present, e)
		idx = append(idx, i)
	}
	got := t.list(present)
	for j, i := range idx {
		vals[i] = got[j]
	}
	// The length first, then the elements (runtime.lua's newarr).
	count := strconv.Itoa(len(vals))
	var b strings.Builder
	b.WriteString(t.h("A") + "({" + count)
	for _, v := range vals {
		s := v.s
		if v.call {
			s = "(" + s + ")"
		}
		b.WriteString(", " + s)
	}
	b.WriteString("}, " + count + ")")
	return ex{s: b.String(), call: true}
}

func (t *translator) object(n *js.ObjectExpr) ex {
	type prop struct {
		key      string
		computed js.IExpr
		value    js.IExpr
		method   *js.MethodDecl
	}
	var props []prop
	for _, p := range n.List {
		if p.Spread {
			t.unsupported("...", "object spread")
		}
		if p.Init != nil {
			t.unsupported("=", "shorthand property initializer")
		}
		var pr prop
		name := p.Name
		if m, ok := p.Value.(*js.MethodDecl); ok && name == nil {
			if m.Name.Private != nil {
				t.unsupported("#", "private name")
			}
			name = &m.Name.PropertyName
		}
		if name == nil {
			v, ok := p.Value.(*js.Var)
			if !ok {
				t.unsupported("", "property")
			}
			pr.key = string(v.Name())
		} else if name.IsComputed() {
			pr.computed = name.Computed
		} else {
			lit := name.Literal
			switch lit.TokenType {
			case js.StringToken:
				pr.key = string(decodeString(lit.Data[1 : len(lit.Data)-1]))
			case js.DecimalToken, js.BinaryToken, js.OctalToken, js.HexadecimalToken, js.IntegerToken:
				pr.key = NumberToString(parseNumber(string(lit.Data)))
			default:
				pr.key = string(lit.Data)
			}
		}
		if m, ok := p.Value.(*js.MethodDecl); ok {
			switch {
			case m.Get:
				t.unsupported("get", "getter")
			case m.Set:
				t.unsupported("set", "setter")
			case m.Async:
				t.unsupported("async", "async method")
			case m.Generator:
				t.unsupported("*", "generator method")
			}
			pr.method = m
		} else {
			pr.value = p.Value
		}
		props = append(props, pr)
	}
	// Keys in order of first appearance; a repeated key keeps its place and takes the last
	// value. Computed keys are set after the literal part, in order.
	var keys []string
	seen := map[string]bool{}
	var fields []string
	vals := map[string]string{}
	obj := ex{}
	var rest []prop
	for i, p := range props {
		if p.computed != nil {
			rest = props[i:]
			break
		}
		var v ex
		if p.method != nil {
			f := t.newTemp()
			t.defineFunction("local "+f+" = ", &p.method.Params, &p.method.Body, "")
			v = ex{s: f, pure: true}
		} else {
			mark, imp := len(t.f.lines), t.impure
			v = t.expr(p.value)
			if t.impure != imp {
				for _, k := range keys {
					if s := vals[k]; !isSimple(s) && !strings.HasPrefix(s, "__t") {
						e := ex{s: s}
						t.capture(&e, mark)
						vals[k] = e.s
					}
				}
			}
		}
		if !seen[p.key] {
			seen[p.key] = true
			keys = append(keys, p.key)
		}
		s := v.s
		if v.call {
			s = "(" + s + ")"
		}
		vals[p.key] = s
	}
	var kl []string
	for _, k := range keys {
		kl = append(kl, luaString(k))
		fields = append(fields, "["+luaString(k)+"] = "+vals[k])
	}
	obj = ex{s: t.h("O") + "({" + strings.Join(kl, ", ") + "}, {" + strings.Join(fields, ", ") + "})", call: true}
	if len(rest) == 0 {
		return obj
	}
	obj = t.temp(obj)
	for _, p := range rest {
		var k ex
		if p.computed != nil {
			k = t.expr(p.computed)
		} else {
			k = ex{s: luaString(p.key), pure: true}
		}
		var v ex
		if p.method != nil {
			f := t.newTemp()
			t.defineFunction("local "+f+" = ", &p.method.Params, &p.method.Body, "")
			v = ex{s: f, pure: true}
		} else {
			v = t.operands2(k, p.value)
		}
		t.emit(t.h("set") + "(" + obj.s + ", " + k.s + ", " + v.s + ")")
	}
	return obj
}

func (t *translator) template(n *js.TemplateExpr) ex {
	if n.Tag != nil {
		first := n.Tail
		if len(n.List) > 0 {
			first = n.List[0].Value
		}
		t.unsupportedAt(first, "tagged template")
	}
	// Text and expressions alternate; translate in source order.
	var vals []ex
	for _, p := range n.List {
		t.pos.at(p.Value)
		raw := p.Value
		raw = trimAnyPrefix(raw, "`", "}")
		raw = trimSuffixBytes(raw, "${")
		vals = append(vals, ex{s: luaString(decodeString(raw)), t: tStr, pure: true})
		mark, imp := len(t.f.lines), t.impure
		v := t.expr(p.Expr)
		if t.impure != imp {
			for i := range vals {
				if !vals[i].pure {
					t.capture(&vals[i], mark)
				}
			}
		}
		vals = append(vals, t.toStr(v))
	}
	t.pos.at(n.Tail)
	tail := trimAnyPrefix(n.Tail, "`", "}")
	tail = trimSuffixBytes(tail, "`")
	vals = append(vals, ex{s: luaString(decodeString(tail)), t: tStr, pure: true})
	var out *ex
	for _, v := range vals {
		if v.s == `""` {
			continue
		}
		if out == nil {
			out = &v
			continue
		}
		c := concat(*out, v)
		out = &c
	}
	if out == nil {
		return ex{s: `""`, t: tStr, pure: true}
	}
	if out.parts == nil {
		// A single part: ToString of the one expression, or the text.
		return ex{s: out.s, t: tStr, pure: out.pure, call: out.call}
	}
	return *out
}

func trimAnyPrefix(b []byte, prefixes ...string) []byte {
	for _, p := range prefixes {
		if len(b) >= len(p) && string(b[:len(p)]) == p {
			return b[len(p):]
		}
	}
	return b
}

func trimSuffixBytes(b []byte, suffix string) []byte {
	if len(b) >= len(suffix) && string(b[len(b)-len(suffix):]) == suffix {
		return b[:len(b)-len(suffix)]
	}
	return b
}

// cond translates an expression used as a condition to a Lua boolean expression.
func (t *translator) cond(e js.IExpr) string {
	switch n := e.(type) {
	case *js.GroupExpr:
		return t.cond(n.X)
	case *js.UnaryExpr:
		if n.Op == js.NotToken {
			return "not " + paren(t.cond(n.X))
		}
	case *js.BinaryExpr:
		if n.Op == js.AndToken || n.Op == js.OrToken {
			a := t.cond(n.X)
			mark, imp, save, tmp := len(t.f.lines), t.impure, *t.pos, t.tmp
			b := t.cond(n.Y)
			if t.impure == imp && len(t.f.lines) == mark {
				op := " and "
				if n.Op == js.OrToken {
					op = " or "
				}
				return "(" + a + op + b + ")"
			}
			// b needs statements, which must run only when a allows: compute the value.
			t.f.lines, t.impure, *t.pos, t.tmp = t.f.lines[:mark], imp, save, tmp
			r := t.newTemp()
			t.emit("local " + r + " = " + a)
			if n.Op == js.AndToken {
				t.open("if " + r + " then")
			} else {
				t.open("if not " + r + " then")
			}
			b = t.cond(n.Y)
			t.emit(r + " = " + b)
			t.close("end")
			return r
		}
	}
	return t.truthy(t.expr(e))
}

func (t *translator) truthy(v ex) string {
	switch v.t {
	case tBool, tHost:
		return v.s
	case tStr:
		return "(" + v.s + ` ~= "")`
	case tNum:
		if validLuaName(v.s) {
			return "(" + v.s + " ~= 0 and " + v.s + " == " + v.s + ")"
		}
	}
	return t.h("T") + "(" + v.s + ")"
}

func (t *translator) toNum(v ex) ex {
	if v.t == tNum {
		return v
	}
	return ex{s: t.h("num") + "(" + v.s + ")", t: tNum, call: true}
}

func (t *translator) unary(n *js.UnaryExpr) ex {
	switch n.Op {
	case js.NotToken:
		return ex{s: "(not " + paren(t.cond(n.X)) + ")", t: tBool}
	case js.NegToken:
		v := t.expr(n.X)
		if v.t == tNum {
			if v.pure && isSimple(v.s) {
				return ex{s: "(-" + v.s + ")", t: tNum, pure: true}
			}
			return ex{s: "(-" + paren(v.s) + ")", t: tNum}
		}
		return ex{s: t.h("neg") + "(" + v.s + ")", t: tNum, call: true}
	case js.PosToken:
		return t.toNum(t.expr(n.X))
	case js.BitNotToken:
		v := t.expr(n.X)
		return ex{s: t.h("bnot") + "(" + v.s + ")", t: tNum, call: true}
	case js.TypeofToken:
		v := t.expr(n.X)
		return ex{s: t.h("typeof") + "(" + v.s + ")", t: tStr, call: true}
	case js.VoidToken:
		t.exprStmt(n.X)
		return ex{s: "nil", pure: true}
	case js.DeleteToken:
		switch x := n.X.(type) {
		case *js.DotExpr:
			o := t.expr(x.X)
			key := t.propName(x.Y)
			return ex{s: t.h("del") + "(" + o.s + ", " + luaString(key) + ")", t: tBool, call: true}
		case *js.IndexExpr:
			o := t.expr(x.X)
			k := t.operands2(o, x.Y)
			return ex{s: t.h("del") + "(" + o.s + ", " + k.s + ")", t: tBool, call: true}
		}
		t.unsupported("delete", "delete of a variable")
	case js.PreIncrToken, js.PreDecrToken, js.PostIncrToken, js.PostDecrToken:
		return t.update(n, true)
	case js.AwaitToken:
		t.unsupported("await", "await")
	}
	t.unsupported("", "operator "+n.Op.String())
	return ex{}
}

// lvalue is an assignment target: a variable, or an object and key already evaluated.
type lvalue struct {
	name string // a variable (or global)
	obj  ex
	key  ex
	typ  typ
}

func (t *translator) lvalue(e js.IExpr) lvalue {
	switch n := e.(type) {
	case *js.GroupExpr:
		return t.lvalue(n.X)
	case *js.Var:
		l, c := t.pos.here()
		v := t.ident(n)
		name := string(n.Name())
		if v.pure && !validLuaName(v.s) && !strings.HasPrefix(v.s, "_G[") ||
			isGlobal(n) && (name == "undefined" || name == "NaN" || name == "Infinity" || namespaces[name] != "" || hostObjects[name]) {
			t.fail(l, c, "unsupported: assignment to %s", name)
		}
		return lvalue{name: v.s, typ: v.t}
	case *js.DotExpr:
		if n.Optional {
			t.unsupported("?.", "optional chain as assignment target")
		}
		o := t.expr(n.X)
		key := t.propName(n.Y)
		return lvalue{obj: t.temp(o), key: ex{s: luaString(key), pure: true, t: tStr}}
	case *js.IndexExpr:
		if n.Optional {
			t.unsupported("?.", "optional chain as assignment target")
		}
		o := t.expr(n.X)
		k := t.operands2(o, n.Y)
		o = t.temp(o)
		return lvalue{obj: o, key: t.temp(k)}
	case *js.ArrayExpr:
		t.unsupported("[", "destructuring assignment")
	case *js.ObjectExpr:
		t.unsupported("{", "destructuring assignment")
	}
	t.unsupported("", "assignment target")
	return lvalue{}
}

func (t *translator) read(lv lvalue) ex {
	if lv.name != "" {
		return ex{s: lv.name, t: lv.typ}
	}
	return t.get(lv.obj, lv.key)
}

func (t *translator) write(lv lvalue, v ex) {
	if lv.name != "" {
		t.emit(lv.name + " = " + v.s)
		return
	}
	t.emit(t.h("set") + "(" + lv.obj.s + ", " + lv.key.s + ", " + v.s + ")")
}

func isAssign(op js.TokenType) bool {
	switch op {
	case js.EqToken, js.AddEqToken, js.SubEqToken, js.MulEqToken, js.DivEqToken, js.ModEqToken, js.ExpEqToken,
		js.LtLtEqToken, js.GtGtEqToken, js.GtGtGtEqToken, js.BitAndEqToken, js.BitOrEqToken, js.BitXorEqToken,
		js.AndEqToken, js.OrEqToken, js.NullishEqToken:
		return true
	}
	return false
}

var compoundOp = map[js.TokenType]js.TokenType{js.AddEqToken: js.AddToken, js.SubEqToken: js.SubToken,
	js.MulEqToken: js.MulToken, js.DivEqToken: js.DivToken, js.ModEqToken: js.ModToken, js.ExpEqToken: js.ExpToken,
	js.LtLtEqToken: js.LtLtToken, js.GtGtEqToken: js.GtGtToken, js.GtGtGtEqToken: js.GtGtGtToken,
	js.BitAndEqToken: js.BitAndToken, js.BitOrEqToken: js.BitOrToken, js.BitXorEqToken: js.BitXorToken}

// assign translates an assignment; with value it returns the assigned value.
func (t *translator) assign(n *js.BinaryExpr, value bool) ex {
	lv := t.lvalue(n.X)
	var v ex
	switch n.Op {
	case js.EqToken:
		v = t.expr(n.Y)
	case js.AndEqToken, js.OrEqToken, js.NullishEqToken:
		cur := t.temp(t.read(lv))
		switch n.Op {
		case js.AndEqToken:
			t.open("if " + t.truthy(cur) + " then")
		case js.OrEqToken:
			t.open("if not " + paren(t.truthy(cur)) + " then")
		default:
			t.open("if " + cur.s + " == nil or " + cur.s + " == " + t.h("null") + " then")
		}
		y := t.expr(n.Y)
		y = t.temp(y)
		t.write(lv, y)
		t.emit(cur.s + " = " + y.s)
		t.close("end")
		return cur
	default:
		cur := t.read(lv)
		if !value && lv.name != "" {
			cur.pure = true // a variable read right before its own assignment
		}
		y := t.operands2(cur, n.Y)
		v = t.arith(compoundOp[n.Op], cur, y)
	}
	if value {
		v = t.temp(v)
	}
	t.write(lv, v)
	return v
}

// update translates ++ and --.
func (t *translator) update(n *js.UnaryExpr, value bool) ex {
	lv := t.lvalue(n.X)
	cur := t.read(lv)
	op := " + 1"
	if n.Op == js.PreDecrToken || n.Op == js.PostDecrToken {
		op = " - 1"
	}
	post := n.Op == js.PostIncrToken || n.Op == js.PostDecrToken
	old := t.toNum(cur)
	if value && post {
		old = t.temp(old)
	}
	nv := ex{s: paren(old.s) + op, t: tNum}
	if value && !post {
		nv = t.temp(nv)
	}
	t.write(lv, nv)
	if post {
		return old
	}
	return nv
}

func (t *translator) binary(n *js.BinaryExpr) ex {
	if isAssign(n.Op) {
		return t.assign(n, true)
	}
	switch n.Op {
	case js.AndToken, js.OrToken, js.NullishToken:
		a := t.temp(t.expr(n.X))
		r := t.newTemp()
		t.emit("local " + r + " = " + a.s)
		switch n.Op {
		case js.AndToken:
			t.open("if " + t.truthy(ex{s: r, t: a.t}) + " then")
		case js.OrToken:
			t.open("if not " + paren(t.truthy(ex{s: r, t: a.t})) + " then")
		default:
			t.open("if " + r + " == nil or " + r + " == " + t.h("null") + " then")
		}
		b := t.expr(n.Y)
		t.emit(r + " = " + b.s)
		t.close("end")
		typ := tAny
		if a.t == b.t {
			typ = a.t
		}
		return ex{s: r, t: typ, pure: true}
	}
	if n.Op == js.InstanceofToken {
		t.unsupported("instanceof", "instanceof")
	}
	a := t.expr(n.X)
	b := t.operands2(a, n.Y)
	switch n.Op {
	case js.EqEqEqToken:
		return ex{s: "(" + t.strictEq(a, b) + ")", t: tBool}
	case js.NotEqEqToken:
		return ex{s: "(not (" + t.strictEq(a, b) + "))", t: tBool}
	case js.EqEqToken, js.NotEqToken:
		var s string
		switch {
		case a.t == b.t && a.t != tAny && a.t != tHost:
			s = a.s + " == " + b.s
		case b.s == t.h("null") || b.s == "nil":
			s = paren(a.s) + " == nil or " + paren(a.s) + " == " + t.h("null")
			if !a.pure {
				s = t.h("eq") + "(" + a.s + ", nil)"
			}
		default:
			s = t.h("eq") + "(" + a.s + ", " + b.s + ")"
		}
		if n.Op == js.NotEqToken {
			return ex{s: "(not (" + s + "))", t: tBool}
		}
		return ex{s: "(" + s + ")", t: tBool}
	case js.LtToken, js.LtEqToken, js.GtToken, js.GtEqToken:
		ops := map[js.TokenType][2]string{js.LtToken: {" < ", "lt"}, js.LtEqToken: {" <= ", "le"},
			js.GtToken: {" > ", "gt"}, js.GtEqToken: {" >= ", "ge"}}[n.Op]
		if a.t == b.t && (a.t == tNum || a.t == tStr) {
			return ex{s: "(" + a.s + ops[0] + b.s + ")", t: tBool}
		}
		return ex{s: t.h(ops[1]) + "(" + a.s + ", " + b.s + ")", t: tBool, call: true}
	case js.InToken:
		return ex{s: t.h("has") + "(" + a.s + ", " + b.s + ")", t: tBool, call: true}
	}
	return t.arith(n.Op, a, b)
}

func (t *translator) strictEq(a, b ex) string {
	if a.t == tAny && b.t == tAny && !isSimple(b.s) && !isSimple(a.s) {
		return t.h("seq") + "(" + a.s + ", " + b.s + ")"
	}
	return a.s + " == " + b.s
}

func (t *translator) arith(op js.TokenType, a, b ex) ex {
	num := a.t == tNum && b.t == tNum
	switch op {
	case js.AddToken:
		switch {
		case num:
			return ex{s: "(" + a.s + " + " + b.s + ")", t: tNum}
		case a.t == tStr || b.t == tStr:
			// String concatenation: the other operand converted as ToString(ToPrimitive(x)),
			// which str does for every value; chains of + stay one Lua concatenation.
			return concat(t.toStr(a), t.toStr(b))
		}
		return ex{s: t.h("add") + "(" + a.s + ", " + b.s + ")", call: true}
	case js.SubToken, js.MulToken, js.DivToken:
		sym, name := map[js.TokenType][2]string{js.SubToken: {" - ", "sub"}, js.MulToken: {" * ", "mul"}, js.DivToken: {" / ", "div"}}[op][0],
			map[js.TokenType]string{js.SubToken: "sub", js.MulToken: "mul", js.DivToken: "div"}[op]
		if num {
			return ex{s: "(" + a.s + sym + b.s + ")", t: tNum}
		}
		return ex{s: t.h(name) + "(" + a.s + ", " + b.s + ")", t: tNum, call: true}
	}
	name := map[js.TokenType]string{js.ModToken: "mod", js.ExpToken: "pow", js.BitAndToken: "band",
		js.BitOrToken: "bor", js.BitXorToken: "bxor", js.LtLtToken: "shl", js.GtGtToken: "shr", js.GtGtGtToken: "ushr"}[op]
	if name == "" {
		t.unsupported("", "operator "+op.String())
	}
	return ex{s: t.h(name) + "(" + a.s + ", " + b.s + ")", t: tNum, call: true}
}

// Literals.

// simpleEscape maps the one-character escapes (\n, \t, …) to their byte.
func simpleEscape(e byte) (byte, bool) {
	switch e {
	case 'n':
		return '\n', true
	case 't':
		return '\t', true
	case 'r':
		return '\r', true
	case 'b':
		return '\b', true
	case 'f':
		return '\f', true
	case 'v':
		return '\v', true
	case '0':
		return 0, true
	}
	return 0, false
}

func parseNumber(s string) float64 {
	s = strings.ReplaceAll(s, "_", "")
	if v, ok := parseRadixNumber(s); ok {
		return v
	}
	if len(s) > 2 && s[0] == '0' {
		// Legacy octal (010) in sloppy mode.
		if strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '7' }) < 0 {
			v := 0.0
			for _, c := range s[1:] {
				v = v*8 + float64(c-'0')
			}
			return v
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !math.IsInf(f, 0) {
		return math.NaN()
	}
	return f
}

func luaNumber(f float64) string {
	switch {
	case math.IsNaN(f):
		return "(0/0)"
	case math.IsInf(f, 1):
		return "(1/0)"
	case math.IsInf(f, -1):
		return "(-1/0)"
	case f == math.Trunc(f) && math.Abs(f) < 1e15:
		return strconv.FormatFloat(f, 'f', 0, 64)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// luaString quotes bytes as a Lua string literal.
func luaString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\n':
			b.WriteString(`\n`)
		case c >= 0x20 && c < 0x7f:
			b.WriteByte(c)
		default:
			b.WriteString(`\` + leftPad(strconv.Itoa(int(c))))
		}
	}
	b.WriteByte('"')
	return b.String()
}

func leftPad(s string) string {
	for len(s) < 3 {
		s = "0" + s
	}
	return s
}

// decodeString decodes the escapes of a JS string or template literal body to UTF-8.
func decodeString(raw []byte) string {
	var out []byte
	var units []uint16 // pending UTF-16 code units from \u escapes, to pair surrogates
	flush := func() {
		if len(units) > 0 {
			for _, r := range utf16.Decode(units) {
				out = utf8.AppendRune(out, r)
			}
			units = units[:0]
		}
	}
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' || i+1 >= len(raw) {
			flush()
			if c == '\r' {
				// Template literals normalise line ends.
				out = append(out, '\n')
				if i+1 < len(raw) && raw[i+1] == '\n' {
					i++
				}
				i++
				continue
			}
			out = append(out, c)
			i++
			continue
		}
		e := raw[i+1]
		i += 2
		if b, ok := simpleEscape(e); ok {
			flush()
			out = append(out, b)
			continue
		}
		switch e {
		case '\r':
			flush()
			if i < len(raw) && raw[i] == '\n' {
				i++
			}
		case '\n':
			flush()
		case 'x':
			flush()
			if i+2 <= len(raw) {
				if v, err := strconv.ParseUint(string(raw[i:i+2]), 16, 8); err == nil {
					out = utf8.AppendRune(out, rune(v))
					i += 2
				}
			}
		case 'u':
			if i < len(raw) && raw[i] == '{' {
				end := i + 1
				for end < len(raw) && raw[end] != '}' {
					end++
				}
				if v, err := strconv.ParseUint(string(raw[i+1:end]), 16, 32); err == nil {
					flush()
					out = utf8.AppendRune(out, rune(v))
				}
				i = end + 1
			} else if i+4 <= len(raw) {
				if v, err := strconv.ParseUint(string(raw[i:i+4]), 16, 16); err == nil {
					units = append(units, uint16(v))
				}
				i += 4
			}
		default:
			flush()
			out = append(out, e)
		}
	}
	flush()
	return string(out)
}

// luaField is a table access to a constant key.
func luaField(key string) string {
	if validLuaName(key) {
		return "." + key
	}
	return "[" + luaString(key) + "]"
}

// concat joins two string expressions with Lua's .., merging chains.
func concat(a, b ex) ex {
	parts := func(e ex) []string {
		if e.parts != nil {
			return e.parts
		}
		return []string{e.s}
	}
	ps := append(slices.Clip(parts(a)), parts(b)...)
	return ex{s: "(" + strings.Join(ps, " .. ") + ")", t: tStr, parts: ps}
}

// literalRegexp turns a regular expression literal that matches only literal text, the
// first argument of replace, replaceAll or split, into that text, which the string
// functions handle faster: /-/g in replace becomes replaceAll("-"). Other regular
// expressions are left as they are.
func (t *translator) literalRegexp(key string, args js.Args) (string, js.Args) {
	if len(args.List) == 0 {
		return key, args
	}
	var lit *js.LiteralExpr
	switch x := args.List[0].Value.(type) {
	case *js.LiteralExpr:
		lit = x
	case js.LiteralExpr:
		lit = &x
	}
	if lit == nil || lit.TokenType != js.RegExpToken {
		return key, args
	}
	pattern, flags := splitRegexpLiteral(lit.Data)
	var text strings.Builder
	// (replaceAll refuses an expression without g: the runtime raises that TypeError.)
	ok := flags == "" && key != "replaceAll" || flags == "g"
	for i := 0; ok && i < len(pattern); i++ {
		c := pattern[i]
		switch {
		case c == '\\' && i+1 < len(pattern) && strings.IndexByte(`.*+?^$()[]{}|/\-`, pattern[i+1]) >= 0:
			i++
			text.WriteByte(pattern[i])
		case strings.IndexByte(`.*+?^$()[]{}|\`, c) >= 0:
			ok = false
		default:
			text.WriteByte(c)
		}
	}
	if !ok {
		return key, args // a real regular expression
	}
	t.pos.at(lit.Data)
	if flags == "g" && key == "replace" {
		key = "replaceAll"
	}
	list := slices.Clone(args.List)
	quoted := `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(text.String()) + `"`
	list[0] = js.Arg{Value: &js.LiteralExpr{TokenType: js.StringToken, Data: []byte(quoted)}}
	return key, js.Args{List: list}
}

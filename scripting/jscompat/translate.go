// Package jscompat runs Syncplify-style JavaScript event scripts on wharf's Lua engine: it
// translates a script to Lua 5.1 when the script is loaded, and provides the runtime (Open)
// that gives the translated code JavaScript semantics.
//
// Values map as follows: undefined is nil, null is a unique sentinel, numbers are Lua numbers
// (float64), strings are Lua strings (indices count bytes), arrays are tables with a metatable
// holding their length at [1] and element i at [i + 2] (all in the table's array part), objects
// are tables with a metatable that remember the order of their keys. Functions are Lua
// functions; `this`, prototypes and classes are not part of the subset, and constructs outside
// the subset are refused with their position rather than translated approximately.
package jscompat

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/tdewolff/parse/v2"
	"github.com/tdewolff/parse/v2/js"
)

// Error is a script that cannot be translated: a syntax error or a construct outside the
// supported subset. Line and Column are 1-based.
type Error struct {
	Line, Column int
	Msg          string // "unsupported: class declaration", "unexpected ; in expression"
}

func (e *Error) Error() string { return fmt.Sprintf("%d:%d: %s", e.Line, e.Column, e.Msg) }

// Translate translates a script to Lua. chunk is the name the Lua code is compiled under;
// uncaught exceptions are reported as "chunk:line: uncaught exception: …". Statements keep
// their source line in the generated code, so Lua's run-time errors name the script's lines.
func Translate(src []byte, chunk string) (lua string, err error) {
	// One buffer for the parser and the position finder, with room for the terminating NUL
	// the lexer appends, so that the slices both produce point into the same memory.
	buf := make([]byte, len(src), len(src)+1)
	copy(buf, src)
	ast, perr := js.Parse(parse.NewInputBytes(buf), js.Options{})
	if perr != nil {
		var pe *parse.Error
		if errors.As(perr, &pe) {
			return "", &Error{Line: pe.Line, Column: pe.Column, Msg: pe.Message}
		}
		return "", &Error{Line: 1, Column: 1, Msg: perr.Error()}
	}
	t := &translator{pos: newPositions(buf), chunk: chunk, names: map[*js.Var]string{},
		helpers: map[string]bool{}, headBound: map[*js.Var]bool{},
		funcEnd: map[*js.FuncDecl]int{}}
	defer func() {
		if r := recover(); r != nil {
			e, ok := r.(*Error)
			if !ok {
				panic(r)
			}
			lua, err = "", e
		}
	}()
	return t.program(ast), nil
}

// typ is what the translator knows statically about a value.
type typ int

const (
	tAny  typ = iota
	tNum      // a number
	tStr      // a string
	tBool     // a boolean
	tHost     // a wharf object or nil: Lua truthiness is JS truthiness
	tArr      // an array
)

// ex is a translated expression.
type ex struct {
	s     string
	t     typ
	parts []string // a string concatenation: its operands, so that chains stay one Lua concat
	// nonNeg: a number known to be >= 0 (a literal or a counter), usable as an array index
	nonNeg bool
	call   bool // a Lua function call, valid as a statement
	pure   bool // a constant or a temporary: evaluating it later gives the same value
}

type line struct {
	src    int // the source line, 0 to continue the previous one
	indent int
	text   string
}

// frame is a Lua construct that `break` leaves: a loop, a `repeat … until true` standing for
// a block that JS can break out of, or (closure) the function a try block runs in, which
// jumps leave by returning.
type frame struct {
	id      int
	closure bool
	pending map[int]bool // jumps that leave this frame for an enclosing one
	jumpOut map[int]bool // closure: jump targets outside, by id
	returns bool         // closure: a return statement inside
}

// target is what a JS break or continue can name.
type target struct {
	labels []string
	loop   bool
	sw     bool
	brk    *frame
	cont   *frame // the loop body's frame, when the body continues
}

// fn is a Lua function being generated.
type fn struct {
	lines   []line
	indent  int
	frames  []*frame
	targets []*target
	usesJmp bool
	jmpAt   int // index of the line that declares __jmp when it is used
	parent  *fn
}

type translator struct {
	pos       *positions
	chunk     string
	names     map[*js.Var]string
	helpers   map[string]bool
	headBound map[*js.Var]bool     // bound by a loop head, not declared by the body block
	funcEnd   map[*js.FuncDecl]int // token index after a hoisted function declaration
	types     map[*js.Var]typ      // inferred types of variables (infer.go)
	nonNeg    map[*js.Var]bool     // numeric variables that are never negative
	f         *fn
	tmp       int
	frameID   int
	impure    int // count of emitted statements with effects
	srcLine   int // the line of the statement being translated
}

func (t *translator) fail(line, col int, format string, args ...any) {
	panic(&Error{Line: line, Column: col, Msg: fmt.Sprintf(format, args...)})
}

// unsupported reports a construct outside the subset at the next token spelled near (or at
// the cursor when near is empty).
func (t *translator) unsupported(near, what string) {
	var l, c int
	if near != "" {
		l, c = t.pos.find(near)
	} else {
		l, c = t.pos.here()
	}
	t.fail(l, c, "unsupported: %s", what)
}

func (t *translator) unsupportedAt(b []byte, what string) {
	l, c, ok := t.pos.at(b)
	if !ok {
		l, c = t.pos.here()
	}
	t.fail(l, c, "unsupported: %s", what)
}

// emit appends a statement to the function being generated.
func (t *translator) emit(text string) {
	t.f.lines = append(t.f.lines, line{src: t.srcLine, indent: t.f.indent, text: text})
	t.srcLine = 0
	t.impure++
}

// emitPure appends a statement without effects on existing values (a function definition).
func (t *translator) emitPure(text string) {
	t.emit(text)
	t.impure--
}

func (t *translator) open(text string)  { t.emit(text); t.f.indent++ }
func (t *translator) close(text string) { t.f.indent--; t.emit(text) }

func (t *translator) newTemp() string {
	t.tmp++
	return "__t" + strconv.Itoa(t.tmp)
}

// temp stores e in a new local and returns it.
func (t *translator) temp(e ex) ex {
	if e.pure {
		return e
	}
	name := t.newTemp()
	t.emit("local " + name + " = " + e.s)
	return ex{s: name, t: e.t, pure: true}
}

// h names a runtime helper, declared once at the top of the chunk.
func (t *translator) h(name string) string {
	t.helpers[name] = true
	return "__" + name
}

// markLine sets the source line of the next emitted statement.
func (t *translator) markLine(l int) {
	if l > 0 {
		t.srcLine = l
	}
}

func (t *translator) stmtLine() {
	t.markLine(t.pos.stmtStart())
}

// startOf moves the cursor to the first token of an expression statement (before it, so that
// translating the expression finds it again) and returns its line.
func (t *translator) startOf(e js.IExpr) int {
	if lit, ok := e.(js.LiteralExpr); ok {
		e = &lit
	}
	found := func(text string) int {
		l, _ := t.pos.seek(text)
		return l
	}
	switch n := e.(type) {
	case *js.Var:
		return found(string(n.Data))
	case *js.LiteralExpr:
		if len(n.Data) > 0 {
			if i, ok := t.pos.byPtr[&n.Data[0]]; ok && i >= t.pos.cur {
				t.pos.cur = i
				return t.pos.toks[i].line
			}
		}
	case *js.GroupExpr:
		return found("(")
	case *js.ArrayExpr:
		return found("[")
	case *js.ObjectExpr:
		return found("{")
	case *js.DotExpr:
		return t.startOf(n.X)
	case *js.IndexExpr:
		return t.startOf(n.X)
	case *js.CallExpr:
		return t.startOf(n.X)
	case *js.BinaryExpr:
		return t.startOf(n.X)
	case *js.CondExpr:
		return t.startOf(n.Cond)
	case *js.CommaExpr:
		return t.startOf(n.List[0])
	case *js.NewExpr:
		return found("new")
	case *js.UnaryExpr:
		if n.Op == js.PostIncrToken || n.Op == js.PostDecrToken {
			return t.startOf(n.X)
		}
		l, _ := t.pos.here()
		return l
	case *js.TemplateExpr:
		if n.Tag != nil {
			return t.startOf(n.Tag)
		}
	}
	l, _ := t.pos.here()
	return l
}

// unsupportedBinding reports a destructuring pattern at its opening bracket.
func (t *translator) unsupportedBinding(b js.IBinding, what string) {
	near := "{"
	if _, ok := b.(*js.BindingArray); ok {
		near = "["
	}
	t.unsupported(near, what)
}

// program translates the whole script.
func (t *translator) program(ast *js.AST) string {
	main := &fn{}
	t.f = main
	t.types, t.nonNeg = inferTypes(ast)
	t.nameScope(&ast.BlockStmt.Scope)
	t.declareFunctionScope(&ast.BlockStmt.Scope, ast.BlockStmt.List)
	t.stmts(ast.BlockStmt.List)
	t.finishFn()

	var b strings.Builder
	if names := slices.Sorted(maps.Keys(t.helpers)); len(names) > 0 {
		var locals, args []string
		for _, name := range names {
			locals = append(locals, "__"+name)
			args = append(args, luaString(name))
		}
		b.WriteString("local " + strings.Join(locals, ", ") + " = " + RuntimeGlobal + ".use(" + strings.Join(args, ", ") + ")")
	}
	render(&b, main.lines, 1)
	b.WriteByte('\n')
	return b.String()
}

// render writes lines keeping every statement on its source line where the lines before it
// leave room, so that Lua's error positions are the script's.
func render(b *strings.Builder, lines []line, cur int) {
	for _, l := range lines {
		if l.text == "" {
			continue
		}
		if l.src > cur {
			for cur < l.src {
				b.WriteByte('\n')
				cur++
			}
			b.WriteString(strings.Repeat("  ", l.indent))
		} else {
			b.WriteByte(' ')
		}
		b.WriteString(l.text)
	}
}

// finishFn declares __jmp in the function when a jump needed it.
func (t *translator) finishFn() {
	if t.f.usesJmp {
		l := &t.f.lines[t.f.jmpAt]
		l.text = "local __jmp " + l.text
	}
}

var luaKeywords = map[string]bool{"and": true, "break": true, "do": true, "else": true, "elseif": true,
	"end": true, "false": true, "for": true, "function": true, "if": true, "in": true, "local": true,
	"nil": true, "not": true, "or": true, "repeat": true, "return": true, "then": true, "true": true,
	"until": true, "while": true, "goto": true, "self": true, "_G": true, "_ENV": true}

func validLuaName(s string) bool {
	if s == "" || luaKeywords[s] {
		return false
	}
	for i, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// luaName is the Lua local for a JS binding. Names that Lua cannot spell, and names in the
// translator's own namespace (a leading "__") or that could meet a mangled one (a trailing
// "_"), are mangled.
func luaName(name string) string {
	if validLuaName(name) && !strings.HasPrefix(name, "__") && !strings.HasSuffix(name, "_") {
		return name
	}
	var b strings.Builder
	b.WriteString("__v_")
	for _, c := range name {
		switch {
		case c == '_' || c < 128 && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'):
			b.WriteRune(c)
		case c == '$':
			b.WriteString("_S")
		default:
			fmt.Fprintf(&b, "_u%x", c)
		}
	}
	b.WriteByte('_')
	return b.String()
}

func (t *translator) nameScope(s *js.Scope) {
	for _, v := range s.Declared {
		if _, ok := t.names[v]; !ok {
			t.names[v] = luaName(string(v.Data))
		}
	}
}

func (t *translator) varName(v *js.Var) string {
	for v.Link != nil {
		v = v.Link
	}
	if n, ok := t.names[v]; ok {
		return n
	}
	n := luaName(string(v.Data))
	t.names[v] = n
	return n
}

// declareFunctionScope declares a function's var and function bindings and its top-level
// let/const at its top, and defines its function declarations (JS hoists both).
func (t *translator) declareFunctionScope(s *js.Scope, body []js.IStmt) {
	var names []string
	for _, v := range s.Declared {
		if v.Decl == js.ArgumentDecl || v.Decl == js.ExprDecl || t.headBound[v] {
			continue
		}
		names = append(names, t.varName(v))
	}
	t.f.jmpAt = len(t.f.lines)
	if len(names) > 0 {
		t.emit("local " + strings.Join(dedup(names), ", "))
	} else {
		t.emit("")
	}
	t.hoistFunctions(body)
}

func dedup(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// hoistFunctions defines the function declarations of a statement list before its first
// statement.
func (t *translator) hoistFunctions(list []js.IStmt) {
	start := t.pos.cur
	for i, s := range list {
		if fd, ok := s.(*js.FuncDecl); ok {
			mark := len(t.f.lines)
			// Translate the declaration at its own place in the source, then go back: the
			// statements before it come next.
			t.checkFunc(fd, "function")
			t.pos.find("function")
			t.pos.find(string(fd.Name.Data))
			t.stmtLine()
			t.defineFunction(t.varName(fd.Name)+" = ", &fd.Params, &fd.Body, "")
			t.funcEnd[fd] = t.pos.cur
			if i > 0 {
				// Defined ahead of the statements before it: its lines cannot keep their
				// source line numbers without pushing those statements down.
				for j := mark; j < len(t.f.lines); j++ {
					t.f.lines[j].src = 0
				}
			}
		}
	}
	t.pos.cur = start
}

// blockScope declares a block's let/const/class bindings at its start.
func (t *translator) blockScope(s *js.Scope) {
	var names []string
	for _, v := range s.Declared {
		if v.Decl == js.LexicalDecl && !t.headBound[v] {
			names = append(names, t.varName(v))
		}
	}
	if len(names) > 0 {
		t.emitPure("local " + strings.Join(dedup(names), ", "))
	}
}

func (t *translator) checkFunc(fd *js.FuncDecl, near string) {
	if fd.Async {
		t.unsupported("async", "async function")
	}
	if fd.Generator {
		t.unsupported(near, "generator function")
	}
}

// defineFunction emits prefix followed by a Lua function for a JS function's parameters and
// body, ending with "end" (and suffix).
func (t *translator) defineFunction(prefix string, params *js.Params, body *js.BlockStmt, suffix string) {
	outer := t.f
	inner := &fn{parent: outer, indent: outer.indent + 1}
	headLine := t.srcLine
	t.srcLine = 0
	t.f = inner
	t.nameScope(&body.Scope)
	var ps []string
	for _, p := range params.List {
		v, ok := p.Binding.(*js.Var)
		if !ok {
			t.unsupportedBinding(p.Binding, "destructuring parameter")
		}
		ps = append(ps, t.varName(v))
	}
	if params.Rest != nil {
		v, ok := params.Rest.(*js.Var)
		if !ok {
			t.unsupported("...", "destructuring parameter")
		}
		ps = append(ps, "...")
		t.emit("local " + t.varName(v) + " = " + t.h("rest") + "(...)")
	}
	for _, p := range params.List {
		if p.Default != nil {
			name := t.varName(p.Binding.(*js.Var))
			t.open("if " + name + " == nil then")
			d := t.expr(p.Default)
			t.emit(name + " = " + d.s)
			t.close("end")
		}
	}
	t.declareFunctionScope(&body.Scope, body.List)
	t.stmts(body.List)
	t.finishFn()
	t.f = outer
	t.srcLine = headLine
	t.emitPure(prefix + "function(" + strings.Join(ps, ", ") + ")")
	outer.lines = append(outer.lines, inner.lines...)
	t.emitPure("end" + suffix)
}

// stmts translates a statement list (function declarations were hoisted by the caller).
func (t *translator) stmts(list []js.IStmt) {
	for _, s := range list {
		t.stmt(s)
	}
}

// block translates a nested statement list in a Lua do…end with its lexical scope.
func (t *translator) blockBody(b *js.BlockStmt) {
	t.blockScope(&b.Scope)
	t.hoistFunctions(b.List)
	t.stmts(b.List)
}

// sub translates a statement that is the body of another (if, loop): a block's contents go
// in directly.
func (t *translator) sub(s js.IStmt) {
	if b, ok := s.(*js.BlockStmt); ok {
		t.blockBody(b)
		return
	}
	if fd, ok := s.(*js.FuncDecl); ok {
		t.hoistFunctions([]js.IStmt{fd})
		return
	}
	t.stmt(s)
}

// stmt translates a statement. The temporaries it declares are scoped to it (Lua allows 200
// locals in a function).
func (t *translator) stmt(s js.IStmt) {
	mark, ind := len(t.f.lines), t.f.indent
	t.stmt1(s)
	for _, l := range t.f.lines[mark:] {
		if l.indent == ind && strings.HasPrefix(l.text, "local ") {
			body := t.f.lines[mark:]
			wrapped := make([]line, 0, len(body)+2)
			wrapped = append(wrapped, line{src: body[0].src, indent: ind, text: "do"})
			for _, b := range body {
				b.indent++
				wrapped = append(wrapped, b)
			}
			wrapped[1].src = 0
			wrapped = append(wrapped, line{indent: ind, text: "end"})
			t.f.lines = append(t.f.lines[:mark], wrapped...)
			return
		}
	}
}

func (t *translator) stmt1(s js.IStmt) {
	switch n := s.(type) {
	case *js.EmptyStmt, *js.DirectivePrologueStmt, *js.Comment:
	case *js.BlockStmt:
		t.stmtLine()
		t.open("do")
		t.blockBody(n)
		t.close("end")
	case *js.ExprStmt:
		t.markLine(t.startOf(n.Value))
		t.exprStmt(n.Value)
	case *js.VarDecl:
		l, _ := t.pos.find(n.TokenType.String())
		t.markLine(l)
		t.varDecl(n)
	case *js.FuncDecl:
		// Translated when hoisted to the start of its statement list: skip its tokens.
		t.pos.cur = max(t.pos.cur, t.funcEnd[n])
	case *js.IfStmt:
		t.pos.find("if")
		t.stmtLine()
		t.ifStmt(n)
	case *js.ReturnStmt:
		t.pos.find("return")
		t.stmtLine()
		if n.Value == nil {
			t.ret(ex{s: "nil", pure: true})
		} else {
			t.ret(t.expr(n.Value))
		}
	case *js.ThrowStmt:
		l, _ := t.pos.find("throw")
		t.markLine(l)
		v := t.expr(n.Value)
		t.emit(t.h("throw") + "(" + v.s + ", " + luaString(fmt.Sprintf("%s:%d: ", t.chunk, l)) + ")")
	case *js.WhileStmt:
		t.pos.find("while")
		t.stmtLine()
		t.loop(nil, n.Cond, nil, n.Body, false, nil, "")
	case *js.DoWhileStmt:
		t.pos.find("do")
		t.stmtLine()
		t.loop(nil, n.Cond, nil, n.Body, true, nil, "")
	case *js.ForStmt:
		t.pos.find("for")
		t.stmtLine()
		t.forStmt(nil, n)
	case *js.ForInStmt:
		t.pos.find("for")
		t.stmtLine()
		t.forIn(nil, n.Init, n.Value, n.Body, false)
	case *js.ForOfStmt:
		if n.Await {
			t.unsupported("await", "for await")
		}
		t.pos.find("for")
		t.stmtLine()
		t.forIn(nil, n.Init, n.Value, n.Body, true)
	case *js.LabelledStmt:
		t.labelled(n)
	case *js.BranchStmt:
		t.stmtLine()
		t.branch(n)
	case *js.SwitchStmt:
		t.pos.find("switch")
		t.stmtLine()
		t.switchStmt(nil, n)
	case *js.TryStmt:
		t.pos.find("try")
		t.stmtLine()
		t.tryStmt(n)
	case *js.ClassDecl:
		t.unsupported("class", "class declaration")
	case *js.WithStmt:
		t.unsupported("with", "with statement")
	case *js.DebuggerStmt:
		t.unsupported("debugger", "debugger statement")
	case *js.ImportStmt:
		t.unsupported("import", "import")
	case *js.ExportStmt:
		t.unsupported("export", "export")
	default:
		t.unsupported("", fmt.Sprintf("statement %T", s))
	}
}

// exprStmt translates an expression evaluated for its effects.
func (t *translator) exprStmt(e js.IExpr) {
	switch n := e.(type) {
	case *js.GroupExpr:
		t.exprStmt(n.X)
		return
	case *js.UnaryExpr:
		switch n.Op {
		case js.PreIncrToken, js.PostIncrToken, js.PreDecrToken, js.PostDecrToken:
			t.update(n, false)
			return
		case js.VoidToken:
			t.exprStmt(n.X)
			return
		}
	case *js.BinaryExpr:
		if isAssign(n.Op) {
			t.assign(n, false)
			return
		}
	case *js.CommaExpr:
		for _, x := range n.List {
			t.exprStmt(x)
		}
		return
	}
	v := t.expr(e)
	if v.call {
		t.emit(v.s)
	} else if !v.pure {
		t.emit("local _ = " + v.s)
	}
}

func (t *translator) varDecl(n *js.VarDecl) {
	for _, b := range n.List {
		v, ok := b.Binding.(*js.Var)
		if !ok {
			t.unsupportedBinding(b.Binding, "destructuring declaration")
		}
		if b.Default == nil {
			continue
		}
		name := t.varName(v)
		t.pos.find(string(v.Data))
		if fe, ok := b.Default.(*js.FuncDecl); ok && fe.Name == nil {
			t.checkFunc(fe, "function")
			t.defineFunction(name+" = ", &fe.Params, &fe.Body, "")
			continue
		}
		if af, ok := b.Default.(*js.ArrowFunc); ok && !af.Async {
			t.defineFunction(name+" = ", &af.Params, &af.Body, "")
			continue
		}
		val := t.expr(b.Default)
		t.emit(name + " = " + val.s)
	}
}

func (t *translator) ifStmt(n *js.IfStmt) {
	c := t.cond(n.Cond)
	t.open("if " + c + " then")
	t.sub(n.Body)
	for n.Else != nil {
		if next, ok := n.Else.(*js.IfStmt); ok {
			t.pos.find("if")
			mark := len(t.f.lines)
			save := *t.pos
			c := t.cond(next.Cond)
			if len(t.f.lines) == mark {
				t.f.indent--
				t.open("elseif " + c + " then")
				t.sub(next.Body)
				n = next
				continue
			}
			// The condition needs statements of its own: nest it.
			t.f.lines = t.f.lines[:mark]
			*t.pos = save
		}
		t.f.indent--
		t.open("else")
		t.sub(n.Else)
		break
	}
	t.close("end")
}

// ret translates a return: from a try block's closure it returns a completion record.
func (t *translator) ret(v ex) {
	if v.call {
		// Not a tail call: a tail call would drop this function from error positions (and a
		// call's extra results are dropped too).
		v.s = "(" + v.s + ")"
	}
	for i := len(t.f.frames) - 1; i >= 0; i-- {
		if fr := t.f.frames[i]; fr.closure {
			fr.returns = true
			t.emit("do return 1, " + v.s + " end")
			return
		}
	}
	t.emit("do return " + v.s + " end")
}

func (t *translator) newFrame(closure bool) *frame {
	t.frameID++
	return &frame{id: t.frameID, closure: closure, pending: map[int]bool{}, jumpOut: map[int]bool{}}
}

func (t *translator) pushFrame(fr *frame) { t.f.frames = append(t.f.frames, fr) }

// popFrame ends a Lua loop frame: jumps that left it for an enclosing frame continue.
func (t *translator) popFrame(fr *frame) {
	t.f.frames = t.f.frames[:len(t.f.frames)-1]
	if len(fr.pending) == 0 {
		return
	}
	t.afterJump(fr.pending)
}

// afterJump continues the jumps in pending (by target frame id) from the statement after the
// Lua construct they left.
func (t *translator) afterJump(pending map[int]bool) {
	if len(t.f.frames) == 0 {
		return
	}
	parent := t.f.frames[len(t.f.frames)-1]
	if parent.closure {
		// Leave the try block's closure with the jump as its completion.
		t.emit("if __jmp ~= nil then local __j = __jmp __jmp = nil do return 2, __j end end")
		for id := range pending {
			parent.jumpOut[id] = true
		}
		return
	}
	clear := ""
	if pending[parent.id] {
		clear = "if __jmp == " + strconv.Itoa(parent.id) + " then __jmp = nil end "
	}
	t.emit("if __jmp ~= nil then " + clear + "break end")
	for id := range pending {
		if id != parent.id {
			parent.pending[id] = true
		}
	}
}

// jump leaves Lua frames up to and including fr.
func (t *translator) jump(fr *frame) {
	fs := t.f.frames
	if fs[len(fs)-1] == fr {
		t.emit("do break end")
		return
	}
	for i := len(fs) - 1; fs[i] != fr; i-- {
		if fs[i].closure {
			fs[i].jumpOut[fr.id] = true
			t.emit("do return 2, " + strconv.Itoa(fr.id) + " end")
			return
		}
	}
	// Each crossed frame, once it ends, passes the jump on (popFrame).
	fs[len(fs)-1].pending[fr.id] = true
	t.f.usesJmp = true
	t.emit("__jmp = " + strconv.Itoa(fr.id) + " do break end")
}

func (t *translator) branch(n *js.BranchStmt) {
	kw := "break"
	if n.Type == js.ContinueToken {
		kw = "continue"
	}
	l, c := t.pos.find(kw)
	label := string(n.Label)
	for i := len(t.f.targets) - 1; i >= 0; i-- {
		tg := t.f.targets[i]
		if label != "" {
			found := false
			for _, x := range tg.labels {
				found = found || x == label
			}
			if !found {
				continue
			}
			if kw == "continue" && !tg.loop {
				t.fail(l, c, "continue %s does not name a loop", label)
			}
		} else if kw == "continue" && !tg.loop || kw == "break" && !tg.loop && !tg.sw {
			continue
		}
		if kw == "continue" {
			if tg.cont == nil {
				t.fail(l, c, "internal error: continue without a loop body frame")
			}
			t.jump(tg.cont)
		} else {
			t.jump(tg.brk)
		}
		return
	}
	// Targets of an enclosing function are not visible (the parser rejects those too).
	t.fail(l, c, "%s outside a loop", kw)
}

// loopBody translates a loop's body inside the loop frame; when the body continues it runs
// in a repeat…until true that continue leaves.
func (t *translator) loopBody(tg *target, body js.IStmt) {
	if continues(body, tg.labels, true) {
		tg.cont = t.newFrame(false)
		t.open("repeat")
		t.pushFrame(tg.cont)
		t.sub(body)
		t.close("until true")
		t.popFrame(tg.cont)
	} else {
		t.sub(body)
	}
}

// loop emits a while/do-while/for loop. init was emitted by the caller; update runs after
// the body (and after continue).
func (t *translator) loop(labels []string, cond js.IExpr, update js.IExpr, body js.IStmt, isDo bool, perIter func(), after string) {
	tg := &target{labels: labels, loop: true, brk: t.newFrame(false)}
	t.f.targets = append(t.f.targets, tg)
	head := len(t.f.lines)
	t.open("while true do")
	t.pushFrame(tg.brk)
	if perIter != nil {
		perIter()
	}
	var updateSrc []line
	if !isDo && cond != nil {
		mark := len(t.f.lines)
		c := t.cond(cond)
		if len(t.f.lines) == mark && perIter == nil {
			t.f.lines[head].text = "while " + c + " do"
		} else {
			t.emit("if not " + paren(c) + " then break end")
		}
	}
	if update != nil {
		// The update is translated (in source order) before the body, and emitted after it.
		mark, ind := len(t.f.lines), t.f.indent
		t.exprStmt(update)
		updateSrc = append(updateSrc, t.f.lines[mark:]...)
		t.f.lines = t.f.lines[:mark]
		t.f.indent = ind
	}
	t.loopBody(tg, body)
	if after != "" {
		t.emit(after)
	}
	if isDo && cond != nil {
		t.pos.find("while")
		c := t.cond(cond)
		t.emit("if not " + paren(c) + " then break end")
	}
	t.f.lines = append(t.f.lines, updateSrc...)
	t.f.targets = t.f.targets[:len(t.f.targets)-1]
	t.f.frames = t.f.frames[:len(t.f.frames)-1]
	t.close("end")
	t.f.frames = append(t.f.frames, tg.brk)
	t.popFrame(tg.brk)
}

func paren(s string) string {
	if isSimple(s) {
		return s
	}
	return "(" + s + ")"
}

func isSimple(s string) bool {
	if validLuaName(s) || s == "true" || s == "false" || s == "nil" {
		return true
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil && !strings.HasPrefix(s, "-") {
		return true
	}
	return false
}

func (t *translator) forStmt(labels []string, n *js.ForStmt) {
	t.open("do")
	var letVars []*js.Var
	if n.Init != nil {
		if vd, ok := n.Init.(*js.VarDecl); ok {
			if vd.TokenType != js.VarToken {
				for _, b := range vd.List {
					v, ok := b.Binding.(*js.Var)
					if !ok {
						t.unsupported("", "destructuring declaration")
					}
					t.headBound[v] = true
					letVars = append(letVars, v)
				}
			}
		}
	}
	perIter := len(letVars) > 0 && hasClosure(n.Body)
	if len(letVars) > 0 {
		var names []string
		for _, v := range letVars {
			names = append(names, t.varName(v))
		}
		if perIter {
			// Each iteration gets its own copy of the loop variables (closures made in the
			// body keep the values of their iteration); the update applies to the new copy.
			for i := range names {
				names[i] = "__o_" + names[i]
			}
		}
		t.emitPure("local " + strings.Join(names, ", "))
	}
	if n.Init != nil {
		if vd, ok := n.Init.(*js.VarDecl); ok {
			for _, b := range vd.List {
				if b.Default == nil {
					continue
				}
				name := t.varName(b.Binding.(*js.Var))
				if perIter {
					name = "__o_" + name
				}
				v := t.expr(b.Default)
				t.emit(name + " = " + v.s)
			}
		} else {
			t.exprStmt(n.Init)
		}
	}
	if !perIter {
		t.loop(labels, n.Cond, n.Post, n.Body, false, nil, "")
		t.close("end")
		return
	}
	first := t.newTemp()
	t.emitPure("local " + first + " = true")
	var inner, outer []string
	for _, v := range letVars {
		inner = append(inner, t.varName(v))
		outer = append(outer, "__o_"+t.varName(v))
	}
	// The update and the copy back run inside the loop, so they are folded into perIter and
	// the body: translate the update first (source order), then emit it at the right place.
	var upd []line
	if n.Post != nil {
		mark := len(t.f.lines)
		t.f.indent += 2
		t.exprStmt(n.Post)
		t.f.indent -= 2
		upd = append(upd, t.f.lines[mark:]...)
		t.f.lines = t.f.lines[:mark]
	}
	t.loop(labels, n.Cond, nil, n.Body, false, func() {
		t.emit("local " + strings.Join(inner, ", ") + " = " + strings.Join(outer, ", "))
		t.open("if " + first + " then " + first + " = false else")
		t.f.lines = append(t.f.lines, upd...)
		t.close("end")
	}, strings.Join(outer, ", ")+" = "+strings.Join(inner, ", "))
	t.close("end")
}

func (t *translator) forIn(labels []string, init, value js.IExpr, body *js.BlockStmt, of bool) {
	t.open("do")
	var bind func(string)
	switch n := init.(type) {
	case *js.VarDecl:
		if len(n.List) != 1 || n.List[0].Default != nil {
			t.unsupported("", "for…in/of declaration with an initializer")
		}
		v, ok := n.List[0].Binding.(*js.Var)
		if !ok {
			t.unsupported("", "destructuring declaration")
		}
		name := t.varName(v)
		if n.TokenType == js.VarToken {
			bind = func(x string) { t.emit(name + " = " + x) }
		} else {
			t.headBound[v] = true
			bind = func(x string) { t.emit("local " + name + " = " + x) }
		}
	case *js.Var:
		name := t.varName(n)
		bind = func(x string) { t.emit(name + " = " + x) }
	default:
		t.unsupported("", "for…in/of target other than a variable")
	}
	coll := t.expr(value)
	tg := &target{labels: labels, loop: true, brk: t.newFrame(false)}
	t.f.targets = append(t.f.targets, tg)
	if of {
		a, i := t.newTemp(), t.newTemp()
		t.emit("local " + a + " = " + t.h("iter") + "(" + coll.s + ") local " + i + " = 0")
		// Arrays keep their length at [1] and element i at [i + 2] (runtime.lua's newarr).
		t.open("while " + i + " < " + a + "[1] do")
		t.pushFrame(tg.brk)
		bind(a + "[" + i + " + 2]")
		t.emit(i + " = " + i + " + 1")
	} else {
		ks, i := t.newTemp(), t.newTemp()
		t.emit("local " + ks + " = " + t.h("forin") + "(" + coll.s + ")")
		t.open("for " + i + " = 1, #" + ks + " do")
		t.pushFrame(tg.brk)
		bind(ks + "[" + i + "]")
	}
	t.loopBody(tg, body)
	t.f.targets = t.f.targets[:len(t.f.targets)-1]
	t.f.frames = t.f.frames[:len(t.f.frames)-1]
	t.close("end")
	t.f.frames = append(t.f.frames, tg.brk)
	t.popFrame(tg.brk)
	t.close("end")
}

func (t *translator) labelled(n *js.LabelledStmt) {
	var labels []string
	var s js.IStmt = n
	for {
		ls, ok := s.(*js.LabelledStmt)
		if !ok {
			break
		}
		t.pos.find(string(ls.Label))
		labels = append(labels, string(ls.Label))
		s = ls.Value
	}
	t.stmtLine()
	switch x := s.(type) {
	case *js.WhileStmt:
		t.pos.find("while")
		t.loop(labels, x.Cond, nil, x.Body, false, nil, "")
	case *js.DoWhileStmt:
		t.pos.find("do")
		t.loop(labels, x.Cond, nil, x.Body, true, nil, "")
	case *js.ForStmt:
		t.pos.find("for")
		t.forStmt(labels, x)
	case *js.ForInStmt:
		t.pos.find("for")
		t.forIn(labels, x.Init, x.Value, x.Body, false)
	case *js.ForOfStmt:
		t.pos.find("for")
		t.forIn(labels, x.Init, x.Value, x.Body, true)
	case *js.SwitchStmt:
		t.pos.find("switch")
		t.switchStmt(labels, x)
	default:
		// A labelled block (or other statement) that break can leave.
		tg := &target{labels: labels, brk: t.newFrame(false)}
		t.f.targets = append(t.f.targets, tg)
		t.open("repeat")
		t.pushFrame(tg.brk)
		if b, ok := s.(*js.BlockStmt); ok {
			t.blockBody(b)
		} else {
			t.stmt(s)
		}
		t.f.targets = t.f.targets[:len(t.f.targets)-1]
		t.f.frames = t.f.frames[:len(t.f.frames)-1]
		t.close("until true")
		t.f.frames = append(t.f.frames, tg.brk)
		t.popFrame(tg.brk)
	}
}

func (t *translator) switchStmt(labels []string, n *js.SwitchStmt) {
	tg := &target{labels: labels, sw: true, brk: t.newFrame(false)}
	disc := t.expr(n.Init)
	t.open("repeat")
	t.pushFrame(tg.brk)
	sv, cv := t.newTemp(), t.newTemp()
	bodies := t.pos.cur
	t.emit("local " + sv + " = " + disc.s + " local " + cv + " = 0")
	def := len(n.List) + 1
	for i, c := range n.List {
		if c.Cond == nil {
			def = i + 1
			continue
		}
		t.pos.find("case")
		t.open("if " + cv + " == 0 then")
		v := t.expr(c.Cond)
		t.emit("if " + t.strictEq(ex{s: sv, pure: true}, v) + " then " + cv + " = " + strconv.Itoa(i+1) + " end")
		t.close("end")
	}
	t.emit("if " + cv + " == 0 then " + cv + " = " + strconv.Itoa(def) + " end")
	t.pos.cur = bodies
	t.blockScope(&n.Scope)
	t.f.targets = append(t.f.targets, tg)
	for i, c := range n.List {
		if c.Cond == nil {
			t.pos.find("default")
		}
		t.open("if " + cv + " <= " + strconv.Itoa(i+1) + " then")
		t.hoistFunctions(c.List)
		t.stmts(c.List)
		t.close("end")
	}
	t.f.targets = t.f.targets[:len(t.f.targets)-1]
	t.f.frames = t.f.frames[:len(t.f.frames)-1]
	t.close("until true")
	t.f.frames = append(t.f.frames, tg.brk)
	t.popFrame(tg.brk)
}

func (t *translator) tryStmt(n *js.TryStmt) {
	id := strconv.Itoa(t.newFrame(false).id)
	ok, r, a := "__ok"+id, "__r"+id, "__a"+id
	t.open("do")
	// The try block runs in a closure; its return, break and continue leave it as a
	// completion record (1, value) or (2, target frame) that is replayed after finally.
	body := t.newFrame(true)
	t.pushFrame(body)
	t.emitPure("local " + ok + ", " + r + ", " + a + " = pcall(function()")
	t.f.indent++
	t.tryBlock(n.Body)
	t.f.indent--
	t.emitPure("end)")
	t.f.frames = t.f.frames[:len(t.f.frames)-1]
	outs := []*frame{body}
	if n.Catch != nil {
		t.pos.find("catch")
		param := ""
		if n.Binding != nil {
			v, isVar := n.Binding.(*js.Var)
			if !isVar {
				t.unsupported("", "destructuring catch parameter")
			}
			param = t.varName(v)
		}
		catch := t.newFrame(true)
		t.pushFrame(catch)
		t.open("if not " + ok + " then")
		t.emitPure(ok + ", " + r + ", " + a + " = pcall(function(" + param + ")")
		t.f.indent++
		t.tryBlock(n.Catch)
		t.f.indent--
		t.emitPure("end, " + t.h("caught") + "(" + r + "))")
		t.close("end")
		t.f.frames = t.f.frames[:len(t.f.frames)-1]
		outs = append(outs, catch)
	}
	if n.Finally != nil {
		t.pos.find("finally")
		t.open("do")
		t.blockBody(n.Finally)
		t.close("end")
	}
	t.emit("if not " + ok + " then " + t.h("rethrow") + "(" + r + ") end")
	returns := false
	jumps := map[int]bool{}
	for _, o := range outs {
		returns = returns || o.returns
		for j := range o.jumpOut {
			jumps[j] = true
		}
	}
	if returns {
		t.open("if " + r + " == 1 then")
		t.ret(ex{s: a, pure: true})
		t.close("end")
	}
	for _, j := range slices.Sorted(maps.Keys(jumps)) {
		fr := t.frameByID(j)
		t.open("if " + r + " == 2 and " + a + " == " + strconv.Itoa(j) + " then")
		t.jump(fr)
		t.close("end")
	}
	t.close("end")
}

func (t *translator) tryBlock(b *js.BlockStmt) {
	t.blockScope(&b.Scope)
	t.hoistFunctions(b.List)
	t.stmts(b.List)
}

func (t *translator) frameByID(id int) *frame {
	for _, f := range t.f.frames {
		if f.id == id {
			return f
		}
	}
	panic("jscompat: jump to a frame that is not open")
}

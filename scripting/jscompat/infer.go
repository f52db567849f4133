package jscompat

import "github.com/tdewolff/parse/v2/js"

// Type inference for local variables, so that the translator can use Lua's own operators
// where JS's would give the same result (`..` for strings, `<` for numbers, `#s`, a[i]).
//
// A variable gets a type when every value assigned to it has that type and every read of it
// comes after an assignment on every path (so it is never undefined when read). Both are
// checked conservatively: a read inside a function declaration (hoisted, so callable before
// anything is assigned) or after a branch that assigns on one side only makes the variable
// untyped, and so does an assignment whose type is not known.

type inference struct {
	assigns map[*js.Var][]assignment
	unsafe  map[*js.Var]bool
	types   map[*js.Var]typ
}

// assignment is a value assigned to a variable: an expression, or a known type (++, for…in).
type assignment struct {
	e     js.IExpr
	op    js.TokenType // compound assignment operator, 0 for plain
	t     typ          // when e is nil
	grows bool         // ++: the value does not decrease
}

// tTop is the optimistic start of the fixpoint: "no assignment seen yet".
const tTop typ = -1

type defined map[*js.Var]bool

func (d defined) clone() defined {
	c := make(defined, len(d))
	for k := range d {
		c[k] = true
	}
	return c
}

func root(v *js.Var) *js.Var {
	for v.Link != nil {
		v = v.Link
	}
	return v
}

func candidate(v *js.Var) bool {
	return v.Decl == js.VariableDecl || v.Decl == js.LexicalDecl
}

// inferTypes returns the static types of the script's variables, and which numeric variables
// are never negative (only ever assigned non-negative literals, incremented or increased by
// such literals: loop counters), so that they can index arrays directly.
func inferTypes(ast *js.AST) (map[*js.Var]typ, map[*js.Var]bool) {
	in := &inference{assigns: map[*js.Var][]assignment{}, unsafe: map[*js.Var]bool{}, types: map[*js.Var]typ{}}
	in.stmts(ast.List, defined{})
	for v, as := range in.assigns {
		if candidate(v) && !in.unsafe[v] && len(as) > 0 {
			in.types[v] = tTop
		}
	}
	// Each pass can only lower a type (tTop > a known type > tAny) as long as typeOf is
	// monotone; the bound guards against a cycle that is not, by giving up on typing.
	for pass, changed := 0, true; changed; pass++ {
		if pass == 50 {
			clear(in.types)
			break
		}
		changed = false
		for v, cur := range in.types {
			if cur == tAny {
				continue
			}
			t := tTop
			for _, a := range in.assigns[v] {
				at := a.t
				if a.e != nil {
					at = in.typeOf(a.e)
					if a.op != 0 {
						at = in.binaryType(a.op, cur, at)
					}
				}
				t = join(t, at)
			}
			if t == tTop {
				t = tAny
			}
			if t != cur {
				in.types[v] = t
				changed = true
			}
		}
	}
	for v, t := range in.types {
		if t == tAny || t == tTop {
			delete(in.types, v)
		}
	}
	nonNeg := map[*js.Var]bool{}
	for v, t := range in.types {
		if t != tNum {
			continue
		}
		ok := true
		for _, a := range in.assigns[v] {
			switch {
			case a.grows:
			case a.e != nil && (a.op == 0 || a.op == js.AddToken):
				ok = ok && nonNegLiteral(a.e)
			default:
				ok = false
			}
		}
		nonNeg[v] = ok
	}
	return in.types, nonNeg
}

func nonNegLiteral(e js.IExpr) bool {
	lit, ok := unparen(e).(*js.LiteralExpr)
	if !ok {
		return false
	}
	switch lit.TokenType {
	case js.DecimalToken, js.BinaryToken, js.OctalToken, js.HexadecimalToken, js.IntegerToken:
		return parseNumber(string(lit.Data)) >= 0
	}
	return false
}

func join(a, b typ) typ {
	switch {
	case a == tTop:
		return b
	case b == tTop:
		return a
	case a == b:
		return a
	}
	return tAny
}

func (in *inference) assign(v *js.Var, a assignment, d defined) {
	v = root(v)
	in.assigns[v] = append(in.assigns[v], a)
	d[v] = true
}

func (in *inference) read(v *js.Var, d defined) {
	v = root(v)
	if !d[v] {
		in.unsafe[v] = true
	}
}

// stmts walks a statement list in order; d grows with what is assigned on every path.
func (in *inference) stmts(list []js.IStmt, d defined) {
	// Hoisted function declarations may run before anything is assigned.
	for _, s := range list {
		if fd, ok := s.(*js.FuncDecl); ok {
			in.function(&fd.Params, &fd.Body, defined{})
		}
	}
	for _, s := range list {
		in.stmt(s, d)
	}
}

func (in *inference) stmt(s js.IStmt, d defined) {
	switch n := s.(type) {
	case *js.BlockStmt:
		in.stmts(n.List, d)
	case *js.ExprStmt:
		in.expr(n.Value, d)
	case *js.VarDecl:
		in.varDecl(n, d)
	case *js.IfStmt:
		in.expr(n.Cond, d)
		a, b := d.clone(), d.clone()
		in.stmt(n.Body, a)
		if n.Else != nil {
			in.stmt(n.Else, b)
			for v := range a {
				if b[v] {
					d[v] = true
				}
			}
		}
	case *js.ReturnStmt:
		if n.Value != nil {
			in.expr(n.Value, d)
		}
	case *js.ThrowStmt:
		in.expr(n.Value, d)
	case *js.WhileStmt:
		in.expr(n.Cond, d)
		in.stmt(n.Body, d.clone())
	case *js.DoWhileStmt:
		// The body runs at least once, but a continue can skip its end: keep nothing.
		b := d.clone()
		in.stmt(n.Body, b)
		in.expr(n.Cond, b)
	case *js.ForStmt:
		if n.Init != nil {
			if vd, ok := n.Init.(*js.VarDecl); ok {
				in.varDecl(vd, d)
			} else {
				in.expr(n.Init, d)
			}
		}
		if n.Cond != nil {
			in.expr(n.Cond, d)
		}
		b := d.clone()
		in.stmt(n.Body, b)
		if n.Post != nil {
			in.expr(n.Post, d.clone())
		}
	case *js.ForInStmt:
		in.expr(n.Value, d)
		b := d.clone()
		in.bindLoop(n.Init, tStr, b)
		in.stmt(n.Body, b)
	case *js.ForOfStmt:
		in.expr(n.Value, d)
		b := d.clone()
		in.bindLoop(n.Init, tAny, b)
		in.stmt(n.Body, b)
	case *js.LabelledStmt:
		switch n.Value.(type) {
		case *js.WhileStmt, *js.DoWhileStmt, *js.ForStmt, *js.ForInStmt, *js.ForOfStmt, *js.SwitchStmt, *js.LabelledStmt:
			in.stmt(n.Value, d)
		default:
			// break can leave a labelled block half-way: what it assigns is not certain.
			in.stmt(n.Value, d.clone())
		}
	case *js.SwitchStmt:
		in.expr(n.Init, d)
		for _, c := range n.List {
			b := d.clone()
			if c.Cond != nil {
				in.expr(c.Cond, b)
			}
			in.stmts(c.List, b)
		}
	case *js.TryStmt:
		in.stmt(n.Body, d.clone())
		if n.Catch != nil {
			b := d.clone()
			if v, ok := n.Binding.(*js.Var); ok {
				in.assign(v, assignment{t: tAny}, b)
			}
			in.stmt(n.Catch, b)
		}
		if n.Finally != nil {
			in.stmt(n.Finally, d)
		}
	}
}

func (in *inference) bindLoop(init js.IExpr, t typ, d defined) {
	switch n := init.(type) {
	case *js.VarDecl:
		for _, b := range n.List {
			if v, ok := b.Binding.(*js.Var); ok {
				in.assign(v, assignment{t: t}, d)
			}
		}
	case *js.Var:
		in.assign(n, assignment{t: t}, d)
	}
}

func (in *inference) varDecl(n *js.VarDecl, d defined) {
	for _, b := range n.List {
		v, ok := b.Binding.(*js.Var)
		if !ok || b.Default == nil {
			continue
		}
		in.expr(b.Default, d)
		in.assign(v, assignment{e: b.Default}, d)
	}
}

func (in *inference) function(params *js.Params, body *js.BlockStmt, d defined) {
	inner := d.clone()
	for _, p := range params.List {
		if p.Default != nil {
			in.expr(p.Default, inner)
		}
	}
	in.stmts(body.List, inner)
}

// expr walks an expression in evaluation order.
func (in *inference) expr(e js.IExpr, d defined) {
	switch n := e.(type) {
	case nil:
	case *js.Var:
		in.read(n, d)
	case *js.GroupExpr:
		in.expr(n.X, d)
	case *js.ArrayExpr:
		for _, el := range n.List {
			in.expr(el.Value, d)
		}
	case *js.ObjectExpr:
		for _, p := range n.List {
			if p.Name != nil && p.Name.IsComputed() {
				in.expr(p.Name.Computed, d)
			}
			if m, ok := p.Value.(*js.MethodDecl); ok {
				in.function(&m.Params, &m.Body, d)
			} else {
				in.expr(p.Value, d)
			}
		}
	case *js.TemplateExpr:
		in.expr(n.Tag, d)
		for _, p := range n.List {
			in.expr(p.Expr, d)
		}
	case *js.DotExpr:
		in.expr(n.X, d)
	case *js.IndexExpr:
		in.expr(n.X, d)
		in.expr(n.Y, d)
	case *js.CallExpr:
		in.expr(n.X, d)
		for _, a := range n.Args.List {
			in.expr(a.Value, d)
		}
	case *js.NewExpr:
		in.expr(n.X, d)
		if n.Args != nil {
			for _, a := range n.Args.List {
				in.expr(a.Value, d)
			}
		}
	case *js.UnaryExpr:
		switch n.Op {
		case js.PreIncrToken, js.PreDecrToken, js.PostIncrToken, js.PostDecrToken:
			if v, ok := unparen(n.X).(*js.Var); ok {
				in.read(v, d)
				in.assign(v, assignment{t: tNum, grows: n.Op == js.PreIncrToken || n.Op == js.PostIncrToken}, d)
				return
			}
		}
		in.expr(n.X, d)
	case *js.BinaryExpr:
		if isAssign(n.Op) {
			v, ok := unparen(n.X).(*js.Var)
			if !ok {
				in.expr(n.X, d)
				in.expr(n.Y, d)
				return
			}
			switch n.Op {
			case js.EqToken:
				in.expr(n.Y, d)
				in.assign(v, assignment{e: n.Y}, d)
			case js.AndEqToken, js.OrEqToken, js.NullishEqToken:
				in.read(v, d)
				in.expr(n.Y, d.clone())
				in.assign(v, assignment{t: tAny}, defined{})
			default:
				in.read(v, d)
				in.expr(n.Y, d)
				in.assign(v, assignment{e: n.Y, op: compoundOp[n.Op]}, d)
			}
			return
		}
		in.expr(n.X, d)
		if n.Op == js.AndToken || n.Op == js.OrToken || n.Op == js.NullishToken {
			in.expr(n.Y, d.clone())
			return
		}
		in.expr(n.Y, d)
	case *js.CondExpr:
		in.expr(n.Cond, d)
		a, b := d.clone(), d.clone()
		in.expr(n.X, a)
		in.expr(n.Y, b)
		for v := range a {
			if b[v] {
				d[v] = true
			}
		}
	case *js.CommaExpr:
		for _, x := range n.List {
			in.expr(x, d)
		}
	case *js.FuncDecl:
		in.function(&n.Params, &n.Body, d)
	case *js.ArrowFunc:
		in.function(&n.Params, &n.Body, d)
	}
}

func unparen(e js.IExpr) js.IExpr {
	for {
		g, ok := e.(*js.GroupExpr)
		if !ok {
			return e
		}
		e = g.X
	}
}

// strMethods are the string methods by result type.
var strMethods = map[string]typ{"toLowerCase": tStr, "toUpperCase": tStr, "trim": tStr, "trimStart": tStr,
	"trimEnd": tStr, "substring": tStr, "substr": tStr, "slice": tStr, "charAt": tStr, "replace": tStr,
	"replaceAll": tStr, "padStart": tStr, "padEnd": tStr, "repeat": tStr, "concat": tStr, "toString": tStr,
	"indexOf": tNum, "lastIndexOf": tNum, "charCodeAt": tNum, "includes": tBool, "startsWith": tBool,
	"endsWith": tBool, "split": tArr, "search": tNum, "matchAll": tArr}

// arrMethods are the array methods whose result type is known.
var arrMethods = map[string]typ{"join": tStr, "indexOf": tNum, "lastIndexOf": tNum, "push": tNum, "unshift": tNum,
	"includes": tBool, "some": tBool, "every": tBool, "findIndex": tNum, "slice": tArr, "splice": tArr,
	"concat": tArr, "map": tArr, "filter": tArr, "toString": tStr}

var numFuncs = map[string]bool{"parseInt": true, "parseFloat": true, "Number": true}

// typeOf is the static type of an expression given the current variable types.
func (in *inference) typeOf(e js.IExpr) typ {
	switch n := e.(type) {
	case *js.Var:
		if t, ok := in.types[root(n)]; ok {
			return t
		}
		switch string(n.Name()) {
		case "NaN", "Infinity":
			if n.Decl == js.NoDecl {
				return tNum
			}
		}
		return tAny
	case *js.GroupExpr:
		return in.typeOf(n.X)
	case *js.LiteralExpr:
		switch n.TokenType {
		case js.StringToken:
			return tStr
		case js.DecimalToken, js.BinaryToken, js.OctalToken, js.HexadecimalToken, js.IntegerToken:
			return tNum
		case js.TrueToken, js.FalseToken:
			return tBool
		}
	case *js.TemplateExpr:
		if n.Tag == nil {
			return tStr
		}
	case *js.ArrayExpr:
		return tArr
	case *js.UnaryExpr:
		switch n.Op {
		case js.NotToken, js.DeleteToken:
			return tBool
		case js.TypeofToken:
			return tStr
		case js.NegToken, js.PosToken, js.BitNotToken, js.PreIncrToken, js.PreDecrToken, js.PostIncrToken, js.PostDecrToken:
			return tNum
		}
	case *js.BinaryExpr:
		switch n.Op {
		case js.EqToken:
			return in.typeOf(n.Y)
		case js.AndToken, js.OrToken, js.NullishToken, js.AndEqToken, js.OrEqToken, js.NullishEqToken:
			return tAny
		}
		if op, ok := compoundOp[n.Op]; ok {
			return in.binaryType(op, in.typeOf(n.X), in.typeOf(n.Y))
		}
		return in.binaryType(n.Op, in.typeOf(n.X), in.typeOf(n.Y))
	case *js.CondExpr:
		return join(in.typeOf(n.X), in.typeOf(n.Y))
	case *js.CommaExpr:
		return in.typeOf(n.List[len(n.List)-1])
	case *js.DotExpr:
		if lit, ok := n.Y.(js.LiteralExpr); ok && string(lit.Data) == "length" {
			switch in.typeOf(n.X) {
			case tStr, tArr:
				return tNum
			case tTop:
				return tTop
			}
		}
		// Math.PI, Number.MAX_SAFE_INTEGER: the constants are capitalised, the functions not.
		if g := globalName(n.X); g == "Math" || g == "Number" {
			if lit, ok := n.Y.(js.LiteralExpr); ok && len(lit.Data) > 0 && lit.Data[0] >= 'A' && lit.Data[0] <= 'Z' {
				return tNum
			}
		}
	case *js.CallExpr:
		return in.callType(n)
	}
	return tAny
}

func (in *inference) callType(n *js.CallExpr) typ {
	switch x := n.X.(type) {
	case *js.Var:
		g := ""
		if isGlobal(x) {
			g = string(x.Name())
		}
		switch {
		case g == "String" || hostFuncString[g]:
			return tStr
		case numFuncs[g]:
			return tNum
		case g == "isNaN" || g == "isFinite" || g == "Boolean":
			return tBool
		}
	case *js.DotExpr:
		lit, ok := x.Y.(js.LiteralExpr)
		if !ok || x.Optional {
			return tAny
		}
		key := string(lit.Data)
		g := globalName(x.X)
		switch {
		case hostObjects[g]:
			if hostString[key] {
				return tStr
			}
			if key == "GetAllCustomData" {
				return tArr
			}
			return tAny
		case g == "Math":
			return tNum
		case g == "JSON":
			return tAny
		case g == "Object" && (key == "keys" || key == "values" || key == "entries"):
			return tArr
		}
		switch in.typeOf(x.X) {
		case tTop:
			return tTop
		case tStr:
			return strMethods[key]
		case tArr:
			return arrMethods[key]
		case tNum:
			if key == "toFixed" || key == "toString" {
				return tStr
			}
		}
	}
	return tAny
}

func (in *inference) binaryType(op js.TokenType, a, b typ) typ {
	switch op {
	case js.AddToken:
		switch {
		case a == tNum && b == tNum:
			return tNum
		case a == tStr || b == tStr:
			return tStr
		case a == tTop || b == tTop:
			return tTop
		}
		return tAny
	case js.SubToken, js.MulToken, js.DivToken, js.ModToken, js.ExpToken, js.BitAndToken, js.BitOrToken,
		js.BitXorToken, js.LtLtToken, js.GtGtToken, js.GtGtGtToken:
		return tNum
	case js.EqEqToken, js.NotEqToken, js.EqEqEqToken, js.NotEqEqToken, js.LtToken, js.LtEqToken, js.GtToken,
		js.GtEqToken, js.InToken, js.InstanceofToken:
		return tBool
	}
	return tAny
}

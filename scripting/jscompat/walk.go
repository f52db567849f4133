package jscompat

import "github.com/tdewolff/parse/v2/js"

// continues reports whether a loop body has a continue that targets the loop (unlabelled
// continues outside nested loops, or a continue naming one of labels). Nested functions are
// not searched.
func continues(s js.IStmt, labels []string, direct bool) bool {
	found := false
	var walk func(s js.IStmt, direct bool)
	walkList := func(l []js.IStmt, direct bool) {
		for _, x := range l {
			walk(x, direct)
		}
	}
	walk = func(s js.IStmt, direct bool) {
		if found || s == nil {
			return
		}
		switch n := s.(type) {
		case *js.BranchStmt:
			if n.Type != js.ContinueToken {
				return
			}
			if n.Label == nil {
				found = found || direct
				return
			}
			for _, l := range labels {
				found = found || l == string(n.Label)
			}
		case *js.BlockStmt:
			walkList(n.List, direct)
		case *js.IfStmt:
			walk(n.Body, direct)
			walk(n.Else, direct)
		case *js.LabelledStmt:
			walk(n.Value, direct)
		case *js.WhileStmt:
			walk(n.Body, false)
		case *js.DoWhileStmt:
			walk(n.Body, false)
		case *js.ForStmt:
			walk(n.Body, false)
		case *js.ForInStmt:
			walk(n.Body, false)
		case *js.ForOfStmt:
			walk(n.Body, false)
		case *js.SwitchStmt:
			for _, c := range n.List {
				walkList(c.List, direct)
			}
		case *js.TryStmt:
			walk(n.Body, direct)
			if n.Catch != nil {
				walk(n.Catch, direct)
			}
			if n.Finally != nil {
				walk(n.Finally, direct)
			}
		}
	}
	walk(s, direct)
	return found
}

// hasClosure reports whether a statement defines a function.
func hasClosure(s js.IStmt) bool {
	found := false
	var v visitor = func(n js.INode) bool {
		switch n.(type) {
		case *js.FuncDecl, *js.ArrowFunc, *js.MethodDecl:
			found = true
		}
		return !found
	}
	js.Walk(v, s)
	return found
}

type visitor func(n js.INode) bool

func (v visitor) Enter(n js.INode) js.IVisitor {
	if v(n) {
		return v
	}
	return nil
}

func (v visitor) Exit(js.INode) {}

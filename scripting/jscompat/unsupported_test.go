package jscompat

import (
	"errors"
	"testing"
)

// Every construct outside the subset is refused when the script is loaded, naming the
// construct, the line and the column; none is translated into something else.
func TestUnsupportedConstructs(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"var a = 1;\nclass A {}", "2:1: unsupported: class declaration"},
		{"var A = class {};", "1:9: unsupported: class expression"},
		{"function* g() { yield 1; }", "1:1: unsupported: generator function"},
		{"var o = {*g() {}};", "1:10: unsupported: generator method"},
		{"async function f() {}", "1:1: unsupported: async function"},
		{"var f = async () => 1;", "1:9: unsupported: async function"},
		{"var o = {async m() {}};", "1:10: unsupported: async method"},
		{"var r = /ab+c/q;", "1:9: invalid regular expression: /ab+c/q: invalid flags 'q'"},
		{"var r = 1;\n'a-b'.replace(/(-+/g, '+');", "2:15: invalid regular expression: /(-+/g: missing closing )"},
		{"var r = /a/gg;", "1:9: invalid regular expression: /a/gg: invalid flags 'gg'"},
		{"var r = /a/d;", "1:9: invalid regular expression: /a/d: flag d is not supported"},
		{"var r = /[b-a]/;", "1:9: invalid regular expression: /[b-a]/: [b-a] range in reverse order"},
		{"function f() { return this; }", "1:23: unsupported: this"},
		{"var x = eval('1');", "1:9: unsupported: eval"},
		{"function f() { return arguments.length; }", "1:23: unsupported: arguments object"},
		{"with (Math) { floor(1); }", "1:1: unsupported: with statement"},
		{"debugger;", "1:1: unsupported: debugger statement"},
		{"var o = {get x() { return 1; }};", "1:10: unsupported: getter"},
		{"var o = {set x(v) {}};", "1:10: unsupported: setter"},
		{"Math.max(...[1, 2]);", "1:10: unsupported: spread argument"},
		{"var a = [...[1]];", "1:10: unsupported: spread element"},
		{"var o = {...{a: 1}};", "1:10: unsupported: object spread"},
		{"var [a, b] = [1, 2];", "1:5: unsupported: destructuring declaration"},
		{"var {a} = {a: 1};", "1:5: unsupported: destructuring declaration"},
		{"function f({a}) {}", "1:12: unsupported: destructuring parameter"},
		{"var a, b;\n[a, b] = [1, 2];", "2:1: unsupported: destructuring assignment"},
		{"var m = new Map();", "1:9: unsupported: new Map"},
		{"function F() {}\nvar f = new F();", "2:9: unsupported: new F"},
		{"var x = [] instanceof Array;", "1:12: unsupported: instanceof"},
		{"function tag(s) {}\ntag`x`;", "2:4: unsupported: tagged template"},
		{"var n = 10n;", "1:9: unsupported: BigInt literal"},
		{"var f; f?.();", "1:9: unsupported: optional call"},
		{"var x = 1; delete x;", "1:12: unsupported: delete of a variable"},
		{"import x from 'y';", "1:1: unsupported: import"},
		{"export var x = 1;", "1:1: unsupported: export"},
		{"var s = Symbol('x');", "1:9: unsupported: Symbol"},
		{"var p = new Promise(function () {});", "1:9: unsupported: new Promise"},
		{"var a = new Array(3);", "1:9: unsupported: new Array"},
		{"var a = new Math();", "1:9: unsupported: new Math"},
		{"var a = new Session();", "1:9: unsupported: new Session"},
		{"var a = new (Math.random() ? A : B)();", "1:9: unsupported: new with a computed constructor"},
		{"var o = {};\nvar a = new o();", "2:9: unsupported: new o"},
		{"var s = new Set();", "1:9: unsupported: new Set"},
		{"function f() { return new.target; }", "1:23: unsupported: new.target"},
		{"for await (var x of y) {}", "1:5: unsupported: for await"},
		{"var q = {a = 1} = {};", "1:9: unsupported: destructuring assignment"},
		{"Session = null;", "1:1: unsupported: assignment to Session"},
	} {
		_, err := Translate([]byte(tc.src), "x.js")
		var je *Error
		if !errors.As(err, &je) {
			t.Errorf("%q: translated, want %s", tc.src, tc.want)
			continue
		}
		if got := je.Error(); got != tc.want {
			t.Errorf("%q:\n got %s\nwant %s", tc.src, got, tc.want)
		}
	}
}

// Syntax errors come from the parser with its position.
func TestSyntaxErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"var x = (;", "1:10: unexpected ; in expression"},
		{"if (x {\n}", "1:7: expected ) instead of { in if statement"},
		{"var = 1;", "1:5: unexpected = in binding"},
	} {
		_, err := Translate([]byte(tc.src), "x.js")
		if err == nil || err.Error() != tc.want {
			t.Errorf("%q: %v, want %s", tc.src, err, tc.want)
		}
	}
}

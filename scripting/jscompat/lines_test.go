package jscompat

import (
	"strings"
	"testing"
)

// Run-time errors name the script's line: statements keep their source lines in the Lua.
func TestErrorLines(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"var a = 1;\n\nmissing(a);\n", "x.js:3:"},
		{"function f(x) {\n  return x.y.z;\n}\nLog('start');\nf({});\n", "x.js:2:"},
		{"for (var i = 0; i < 3; i++) {\n  if (i == 2) {\n    null.x = 1;\n  }\n}\n", "x.js:3:"},
		{"var s = 'a';\nswitch (s) {\n  case 'a':\n    throw new Error('in case');\n}\n", "x.js:4:"},
		{"try {\n  var x = 1;\n} finally {\n  undefinedFn();\n}\n", "x.js:4:"},
		{"Log('one'); Log('two');\nvar o = {\n  a: 1,\n};\no.f();\n", "x.js:5:"},
		{"\n\nfunction later() { nope(); }\nlater();\n", "x.js:3:"},
	} {
		_, code, err := runJS(t, tc.src, "x.js")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want it at %s\n%s", tc.src, err, tc.want, numbered(code))
		}
	}
}

// Temporaries are scoped to their statement: a long script does not run out of Lua's 200
// locals per function.
func TestManyStatements(t *testing.T) {
	var b strings.Builder
	b.WriteString("var a = 0, b = 1, n = 0;\n")
	for range 300 {
		b.WriteString("n += (a || b) + (a ? 1 : 0);\n")
	}
	b.WriteString("Log(n);\n")
	out, code, err := runJS(t, b.String(), "x.js")
	if err != nil || out != "300\n" {
		t.Fatalf("%q, %v\n%s", out, err, numbered(code))
	}
}
